"""BackstopJS report model and parser (pure: text and paths in, Report out).

BackstopJS writes the same list of tests three times: `html_report/config.js` (JSONP,
`report({...});`), `json_report/jsonReport.json` and `bitmaps_test/<timestamp>/report.json`.
We read the first one that exists and parses. config.js is parsed as data and never executed:
it comes from a CI artifact and must not be trusted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from reviewer.errors import ReportError
from reviewer.model import Pair, Report

_JSONP_PREFIX = "report("


def parse_config_js(text: str) -> dict[str, Any]:
    """Parse BackstopJS's `report({...});` as JSON, refusing anything else around it."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise ReportError("config.js is empty: the BackstopJS run probably did not finish")
    if not body.startswith(_JSONP_PREFIX):
        raise ReportError("config.js does not start with `report(`: it is not a BackstopJS html report")
    try:
        data, end = json.JSONDecoder().raw_decode(body, len(_JSONP_PREFIX))
    except json.JSONDecodeError as exc:
        raise ReportError(f"config.js holds no valid JSON inside report(...): {exc.msg} at {exc.pos}") from None
    rest = body[end:].strip()
    if rest not in (")", ");"):
        raise ReportError(
            "config.js has unexpected content after the report data; refusing to guess what it means"
        )
    if not isinstance(data, dict):
        raise ReportError("config.js: report(...) must hold a JSON object")
    return data


def parse_json_report(text: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{name} is not valid JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{name} must hold a JSON object")
    return data


def report_from_data(data: Mapping[str, Any], root: Path, base: Path, source_file: Path) -> Report:
    """Build the Report. `base` is the folder image paths are relative to; `root` bounds them."""
    tests = data.get("tests")
    if not isinstance(tests, list):
        raise ReportError(f"{source_file.name}: `tests` is missing or not a list; is this a BackstopJS report?")
    report_id = data.get("id")
    rid = report_id if isinstance(report_id, str) and report_id.strip() else root.resolve().name
    pairs: list[Pair] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for index, test in enumerate(tests):
        pair = _pair(index, test, root, base)
        if pair.file in seen:
            warnings.append(f"test {index} repeats file name {pair.file!r} of test {seen[pair.file]}")
        seen.setdefault(pair.file, index)
        pairs.append(pair)
    return Report(id=_clean_id(rid), root=root, source_file=source_file, pairs=tuple(pairs),
                  warnings=tuple(warnings))


def _clean_id(raw: str) -> str:
    # The id names the default output folder, so keep it to safe file-name characters.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)[:80].strip("._")
    return safe or "report"


def _pair(index: int, test: Any, root: Path, base: Path) -> Pair:
    test = test if isinstance(test, Mapping) else {}
    raw = test.get("pair")
    p: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    status = _text(test.get("status")) or "fail"
    diff = p.get("diff") if isinstance(p.get("diff"), Mapping) else None
    problems: list[str] = []
    reference = _resolve(p.get("reference"), root, base, problems, "reference")
    test_img = _resolve(p.get("test"), root, base, problems, "test")
    file_name = _text(p.get("fileName"))
    if not file_name:
        candidate = p.get("test") or p.get("reference")
        file_name = _basename(candidate) if isinstance(candidate, str) else f"test-{index}"
    error_parts = [_text(p.get("error")), _text(p.get("engineErrorMsg"))]
    error = "; ".join(e for e in error_parts if e) or None
    return Pair(
        index=index,
        file=file_name,
        label=_text(p.get("label")) or f"test {index}",
        viewport=_text(p.get("viewportLabel")) or "?",
        selector=_text(p.get("selector")) or "document",
        url=_text(p.get("url")),
        reference_url=_text(p.get("referenceUrl")),
        reference=reference,
        test=test_img,
        backstop_diff_image=_resolve(p.get("diffImage"), root, base, [], "diff"),
        backstop_status="pass" if status == "pass" else "fail",
        backstop_mismatch=_number(diff.get("misMatchPercentage")) if diff else None,
        backstop_error=error,
        mismatch_threshold=_number(p.get("misMatchThreshold")) or 0.0,
        same_dimensions=bool(diff.get("isSameDimensions")) if diff and "isSameDimensions" in diff else None,
        path_problem="; ".join(problems) or None,
    )


def _text(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return ""
    text = str(value)
    # Control characters would garble terminals and logs; the label is still recognisable.
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _basename(path: str) -> str:
    return PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name


def _resolve(value: Any, root: Path, base: Path, problems: list[str], what: str) -> Path | None:
    """Resolve an image path from the report; refuse ones that leave the report folder.

    Returns None when the report names no image, or when the path is absolute, climbs out
    with `..`, or goes through a symlink that points outside `root`: a report from a CI
    artifact must never make us read (and publish) a file from elsewhere on the machine.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    windows = "\\" in value
    parts = PureWindowsPath(value).parts if windows else PurePosixPath(value).parts
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or not parts:
        problems.append(f"{what} image path {value!r} is absolute; refusing to read outside the report")
        return None
    try:
        resolved = base.joinpath(*parts).resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        inside = False
    if not inside:
        problems.append(f"{what} image path {value!r} leads outside the report folder; refusing to read it")
        return None
    return resolved


def verdict_text(pair: Pair, short: bool = False) -> str:
    """BackstopJS's verdict on a pair, with the reason it gave it, in one line.

    A pair BackstopJS failed although its mismatch is within the threshold failed on its size
    difference: saying "mismatch 0.00% ≤ misMatchThreshold" there would contradict the verdict.
    `short` keeps it to a table cell ("fail: sizes differ", "pass 0.03%").
    """
    status = pair.backstop_status or "?"
    if pair.backstop_error:
        return f"{status}: error" if short else f"{status}: {pair.backstop_error}"
    mm, limit = pair.backstop_mismatch, pair.mismatch_threshold
    if mm is None:
        return status if short else f"{status} (no mismatch computed)"
    if status == "fail" and mm <= limit and pair.same_dimensions is False:
        return f"{status}: sizes differ" if short else \
            f"{status}: sizes differ (mismatch {mm:.2f}% is within misMatchThreshold {limit:g}%)"
    if short:
        return f"{status} {mm:.2f}%"
    return f"{status}: mismatch {mm:.2f}% {'>' if mm > limit else '≤'} misMatchThreshold {limit:g}%"
