"""Cache of pair analyses, so re-analysing a report that did not change costs hashing its files.

An entry is keyed by what decides a pair's analysis and nothing else:

    sha256 of the reference file, sha256 of the test file, the settings digest, the ignore
    rectangles that apply to the pair (they depend on its label and viewport), whether the
    page's images are wanted, and the version of the analysis code (a digest of its source).

It holds the PairAnalysis (JSON) and the images written for the review page (mask, thumbnail,
region crops), as files. Entries live in a folder of the output folder
(`<out>/.reviewer-cache/`), are written atomically (a complete folder is renamed into place)
and checked when read (the key recorded inside must match, every image must be there with
its recorded size); anything else is a miss, never an error. After a run, entries that the
run did not use are removed, so the cache holds one report's worth of entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from reviewer.config import Settings
from reviewer.model import Box, PairAnalysis
from reviewer.render.jsonout import analysis_dict, analysis_from_dict

CACHE_DIR_NAME = ".reviewer-cache"
ENTRY = "entry.json"
FORMAT = 3  # 3: the analysis as review.json's pair entries carry it (render.jsonout)

# The code an analysis comes from: every module and data file of the package, found rather than
# listed, so a new module (or a moved function) can never leave stale results valid. A change
# to the CLI or the page also invalidates: a recomputation is cheap beside a wrong verdict.
_CODE_SUFFIXES = (".py", ".npz")


def _code_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in _CODE_SUFFIXES
                  and "__pycache__" not in p.parts)


@lru_cache(maxsize=1)
def code_version() -> str:
    base = Path(__file__).resolve().parent
    h = hashlib.sha256(f"format {FORMAT}".encode())
    for path in _code_files(base):
        h.update(path.relative_to(base).as_posix().encode())
        with contextlib.suppress(OSError):
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def pair_key(ref_digest: str, test_digest: str, settings: Settings, ignore: Iterable[Box], with_images: bool) -> str:
    parts = {
        "reference": ref_digest,
        "test": test_digest,
        "settings": settings.digest(),
        "ignore": [[b.x, b.y, b.w, b.h] for b in ignore],
        "images": with_images,
        "code": code_version(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    analysis: PairAnalysis
    images: dict[str, Any]  # {"mask": name | None, "thumb": name | None, "crops": [[ref | None, test | None]]}
    folder: Path  # where the image files are


def entry_dir(root: Path, key: str) -> Path:
    return root / key[:2] / key


def load(root: Path, key: str) -> Hit | None:
    """The entry for `key`, or None when there is none or it does not check out."""
    folder = entry_dir(root, key)
    try:
        data = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("key") != key:
            return None
        for name, size in data["files"].items():
            if Path(name).name != name or (folder / name).stat().st_size != size:
                return None
        return Hit(analysis_from_dict(data["analysis"]), data["images"], folder)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(root: Path, key: str, analysis: PairAnalysis, images: dict[str, Any], files: dict[str, Path]) -> None:
    """Record an entry: `files` maps the names used in `images` to files to keep (hard-linked
    when possible). Best effort: a cache that cannot be written only costs a later rerun time."""
    folder = entry_dir(root, key)
    if folder.exists():
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    except OSError:
        return
    try:
        sizes: dict[str, int] = {}
        for name, src in files.items():
            dst = tmp / name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            sizes[name] = dst.stat().st_size
        entry = {"format": FORMAT, "key": key, "analysis": analysis_dict(analysis), "images": images,
                 "files": sizes}
        (tmp / ENTRY).write_text(json.dumps(entry), encoding="utf-8")
        os.rename(tmp, folder)  # atomic: readers see a complete entry or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def prune(root: Path, keep: set[str]) -> None:
    """Remove the entries (and leftovers of interrupted writes) whose key is not in `keep`.
    Best effort, like the rest of the cache: what cannot be removed stays."""
    try:
        shards = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        for shard in shards:
            for folder in shard.iterdir():
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty
    except OSError:
        pass
