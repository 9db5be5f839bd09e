"""Which projects make up the fleet: names given, a sites.txt, or `[fleet] sites` in the settings.

planet4-base's sites.txt lists one NRO per line (`africa`, `aotearoa`, ...); a line may also be
a full project name or slug. Blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reviewer.circleci import BadProject, project_slug
from reviewer.errors import UsageError


def slug_for(name: str) -> str:
    """`africa` -> gh/greenpeace/planet4-africa; planet4-<nro> and full slugs as project_slug."""
    text = name.strip()
    if "/" not in text and not text.startswith("planet4-"):
        text = f"planet4-{text}"
    return project_slug(text)


def parse_sites_text(text: str, origin: str) -> list[str]:
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            slug_for(line)
        except BadProject as exc:
            raise UsageError(f"{origin} line {number}: {exc}") from None
        names.append(line)
    return names


def read_sites_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --sites {path}: {exc.strerror or exc}; give a file with one site a line"
                         ) from None
    return parse_sites_text(text, str(path))


def configured_sites(config: Path | None = None, search_from: Path | None = None) -> list[str]:
    """`sites` of the `[fleet]` table of reviewer.toml (or `[tool.reviewer.fleet]` of pyproject.toml)."""
    base = search_from or Path.cwd()
    candidates = [config] if config is not None else [base / "reviewer.toml", base / "pyproject.toml"]
    for path in candidates:
        if path is None or not path.is_file():
            continue
        try:
            with path.open("rb") as fh:
                data: dict[str, Any] = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("reviewer", {})
            if not isinstance(data, dict):
                continue
        table = data.get("fleet")
        if table is None:
            continue
        sites = table.get("sites") if isinstance(table, dict) else None
        if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
            raise UsageError(f"{path}: [fleet] sites must be a list of names, e.g. sites = [\"africa\", \"brasil\"]")
        return parse_sites_text("\n".join(sites), f"{path} [fleet] sites")
    return []


def choose_sites(names: list[str], sites_file: Path | None, config: Path | None) -> list[str]:
    """Names given, plus the --sites file; else the configured list. Duplicates (by slug) once."""
    chosen = list(names)
    if sites_file is not None:
        chosen += read_sites_file(sites_file)
    if not chosen:
        chosen = configured_sites(config)
    if not chosen:
        raise UsageError("no sites: name them (reviewer fleet africa brasil), pass --sites sites.txt, or set "
                         "`sites = [...]` in the [fleet] table of reviewer.toml")
    seen: set[str] = set()
    unique = []
    for name in chosen:
        try:
            slug = slug_for(name)
        except BadProject as exc:
            raise UsageError(str(exc)) from None
        if slug not in seen:
            seen.add(slug)
            unique.append(name)
    return unique
