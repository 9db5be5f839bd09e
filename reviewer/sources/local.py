"""Find and read a BackstopJS report in a local folder or zip.

SOURCE may be a `backstop_data` folder, any folder containing one (e.g. the `app/` folder of
CircleCI artifacts), the `html_report` folder itself, or a `.zip` of any of these.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reviewer.backstop import parse_config_js, parse_json_report, report_from_data
from reviewer.errors import ReportError, SourceError, UsageError
from reviewer.model import Report

# A zip is refused before extraction when it would unpack to more than this, or holds more
# members: a report is a few hundred screenshots, a zip bomb is not.
MAX_ZIP_BYTES = 8 * 1024**3
MAX_ZIP_MEMBERS = 100_000
MAX_REPORT_FILE_BYTES = 256 * 1024**2
_SEARCH_DEPTH = 5


@contextlib.contextmanager
def opened_source(source: Path, unpack_in: Path | None = None) -> Iterator[Path]:
    """Yield a folder holding the report; a zip is extracted to a temporary folder first,
    inside `unpack_in` when given (the output folder's parent: the same file system, so the
    screenshots are hard-linked into the output instead of copied, and a large report does not
    fill a small /tmp), removed afterwards."""
    if not source.exists():
        raise SourceError(f"{source} does not exist; pass a backstop_data folder, an html_report folder or a .zip")
    if source.is_dir():
        yield source
        return
    if source.suffix.lower() in (".html", ".htm") and (source.parent / "config.js").is_file():
        # html_report/index.html: the file people open today to see BackstopJS's report.
        yield source.parent
        return
    if not zipfile.is_zipfile(source):
        raise SourceError(f"{source} is neither a folder nor a zip file; pass the BackstopJS report folder or a .zip")
    if unpack_in is not None:
        unpack_in.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".reviewer-zip-", dir=unpack_in) as tmp:
        extract_zip(source, Path(tmp))
        yield Path(tmp)


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract safely: no member may land outside `dest`, be a link, or inflate past the limits."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise SourceError(f"{archive} has {len(members)} entries; a BackstopJS report never has that many")
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_BYTES:
                raise SourceError(
                    f"{archive} would expand to {total / 1024**3:.1f} GiB; refusing (limit "
                    f"{MAX_ZIP_BYTES / 1024**3:.0f} GiB). Unpack it yourself if it is genuine."
                )
            root = dest.resolve()
            for member in members:
                _check_member(member, root, archive)
            for member in members:
                if member.is_dir():
                    continue
                target = root.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as out:
                    # Copy with a running count: a forged header may understate the size.
                    written = 0
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > member.file_size:
                            raise SourceError(f"{archive}: {member.filename} is larger than its header says")
                        out.write(chunk)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{archive} is not a readable zip ({exc}); download it again") from None
    except OSError as exc:
        raise SourceError(f"cannot extract {archive}: {exc.strerror or exc}") from None


def _check_member(member: zipfile.ZipInfo, root: Path, archive: Path) -> None:
    name = member.filename.replace("\\", "/")
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SourceError(f"{archive}: entry {member.filename!r} is a symbolic link; refusing to extract")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (name[1:2] == ":"):
        raise SourceError(f"{archive}: entry {member.filename!r} would be written outside the folder (zip slip)")
    target = root.joinpath(*path.parts).resolve()
    if not target.is_relative_to(root):
        raise SourceError(f"{archive}: entry {member.filename!r} would be written outside the folder (zip slip)")


def find_report_files(folder: Path) -> list[Path]:
    """Report data files under `folder`, best first (config.js, then the JSON reports)."""
    found: list[Path] = []
    for base in _candidate_roots(folder):
        found += _report_files_in(base)
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _candidate_roots(folder: Path) -> list[Path]:
    """backstop_data-like folders: `folder` itself, its parent if it is html_report, then below."""
    roots: list[Path] = []
    if (folder / "config.js").is_file() and not (folder / "html_report").is_dir():
        roots.append(folder.parent)  # folder is html_report
    roots.append(folder)
    queue = [(folder, 0)]
    while queue:
        current, depth = queue.pop(0)
        if depth >= _SEARCH_DEPTH:
            continue
        try:
            children = sorted(p for p in current.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            continue
        for child in children:
            if (child / "html_report").is_dir() or (child / "bitmaps_test").is_dir():
                roots.append(child)
            elif child.name not in ("bitmaps_reference", "bitmaps_test", "node_modules"):
                queue.append((child, depth + 1))
    return roots


def _report_files_in(base: Path) -> list[Path]:
    files = [base / "html_report" / "config.js", base / "json_report" / "jsonReport.json"]
    tests = base / "bitmaps_test"
    if tests.is_dir():
        runs = sorted((p for p in tests.iterdir() if p.is_dir()), reverse=True)
        files += [run / "report.json" for run in runs]
    return [f for f in files if f.is_file()]


@dataclass(frozen=True)
class FoundReport:
    """One BackstopJS report below a folder: its backstop_data folder and its data files, best first."""

    root: Path
    files: tuple[Path, ...]


def report_root(path: Path) -> Path:
    """The backstop_data folder a report data file belongs to."""
    if path.name == "report.json" and path.parent.parent.name == "bitmaps_test":
        return path.parent.parent.parent
    return path.parent.parent


def find_reports(folder: Path) -> list[FoundReport]:
    """The distinct reports below `folder` (several files of one backstop_data are one report)."""
    grouped: dict[Path, list[Path]] = {}
    for path in find_report_files(folder):
        grouped.setdefault(report_root(path), []).append(path)
    return [FoundReport(root, tuple(files)) for root, files in grouped.items()]


_RUN_FOLDER = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$")


def run_time(found: FoundReport) -> str:
    """When BackstopJS ran: its newest bitmaps_test/<YYYYMMDD-HHMMSS> folder, else the data file's time."""
    tests = found.root / "bitmaps_test"
    with contextlib.suppress(OSError):
        runs = sorted((m for p in tests.iterdir() if p.is_dir() and (m := _RUN_FOLDER.match(p.name))),
                      key=lambda m: m.string)
        if runs:
            y, mo, d, h, mi, se = runs[-1].groups()
            return f"{y}-{mo}-{d} {h}:{mi}:{se}"
    with contextlib.suppress(OSError):
        return dt.datetime.fromtimestamp(found.files[0].stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    return "unknown time"


def describe(found: FoundReport, folder: Path) -> str:
    where = found.root.relative_to(folder) if found.root.is_relative_to(folder) else found.root
    try:
        report = read_report_file(found.files[0])
        what = f"id {report.id}, {len(report.pairs)} tests"
    except ReportError as exc:
        what = f"unreadable: {exc}"
    return f"{where}: {what}, run {run_time(found)}"


def load_report(folder: Path) -> Report:
    """Read the report in `folder`; refuse (exit 2) when there are several, listing them, so the
    wrong one is never analysed silently. Say what was tried when none parses."""
    reports = find_reports(folder)
    if len(reports) > 1:
        listing = "\n".join(f"  {describe(r, folder)}" for r in reports)
        raise UsageError(f"{folder} holds {len(reports)} BackstopJS reports; pass the one to review:\n{listing}")
    candidates = list(reports[0].files) if reports else []
    if not candidates:
        raise SourceError(
            f"no BackstopJS report found in {folder}: expected html_report/config.js, "
            "json_report/jsonReport.json or bitmaps_test/<run>/report.json (is this the backstop_data folder?)"
        )
    problems: list[str] = []
    for path in candidates:
        try:
            return read_report_file(path)
        except ReportError as exc:
            problems.append(str(exc))
    raise ReportError("no readable BackstopJS report: " + " | ".join(problems))


def read_report_file(path: Path) -> Report:
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_FILE_BYTES:
            raise ReportError(f"{path} is {size} bytes; too large to be a BackstopJS report")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.name == "config.js":
        data = parse_config_js(text)
        root = path.parent.parent
    else:
        data = parse_json_report(text, path.name)
        root = path.parent.parent if path.parent.name == "json_report" else path.parent.parent.parent
    # BackstopJS writes every image path relative to html_report/ (`../bitmaps_test/...`),
    # in all three files, including bitmaps_test/<run>/report.json, which lives deeper.
    base = path.parent if path.parent.parent == root else root / "html_report"
    return report_from_data(data, root=root, base=base, source_file=path)

