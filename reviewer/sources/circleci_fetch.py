"""Download a BackstopJS report from a CircleCI job's artifacts, so `reviewer analyze DIR` works.

    list artifacts ──> find <prefix>html_report/config.js ──> download the report page, its
    assets and the report files ──> read the report ──> download every image it names

Into DIR/backstop_data/, mirroring the artifacts below the `backstop_data` prefix
(`app/backstop_data/html_report/config.js` -> `DIR/backstop_data/html_report/config.js`).

Guarantees:
- every file is written to a temporary name, checked (Content-Length; a PNG must end with its
  IEND chunk) and only then renamed into place, so a file under its final name is complete;
- an artifact path that would leave DIR (absolute, `..`, backslashes, drive letters) is
  refused and never written;
- downloads run in a bounded thread pool; each is retried on 429/5xx/dropped connections/
  truncated bodies within the client's RetryPolicy;
- resumable: DIR/.reviewer-fetch.json records each verified file (size, sha256) for the job,
  so running again skips what is already complete and re-downloads the rest;
- `FetchResult.complete` is True only when the report and every file it names were
  downloaded and verified; anything else is listed (failed, refused, missing).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from reviewer.circleci import CircleCIClient
from reviewer.errors import ReportError, ReviewerError
from reviewer.model import Report
from reviewer.outdir import file_sha256, write_error
from reviewer.redact import redact

MANIFEST = ".reviewer-fetch.json"
MANIFEST_VERSION = 1
LOCAL_ROOT = "backstop_data"
DEFAULT_WORKERS = 8
REPORT_FILES = ("html_report/config.js", "json_report/jsonReport.json")
PAGE_DIRS = ("html_report/", "json_report/", "ci_report/")
_RUN_REPORT = re.compile(r"(^|/)bitmaps_test/[^/]+/report\.json$")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

Progress = Callable[[int, int, int], None]  # (files done, files total, bytes downloaded so far)


class FetchError(ReviewerError):
    exit_code = 1


class UnsafeArtifactPath(FetchError):
    pass


@dataclass(frozen=True)
class JobRef:
    """The job whose artifacts hold the report (visualtests-compare of one release)."""

    project_slug: str
    job_number: int
    workflow_id: str | None = None
    tag: str | None = None
    job_name: str = "visualtests-compare"

    def key(self) -> dict[str, Any]:
        return {"project": self.project_slug, "job_number": self.job_number}


@dataclass(frozen=True)
class FetchResult:
    out: Path
    root: Path  # DIR/backstop_data: what `reviewer analyze` reads
    job: JobRef
    report_file: str  # the report data file, relative to root
    downloaded: int = 0
    skipped: int = 0
    bytes: int = 0
    failed: tuple[str, ...] = ()  # "path: why"
    refused: tuple[str, ...] = ()  # artifact paths that would leave DIR
    missing: tuple[str, ...] = ()  # files the report names that the job did not store

    @property
    def downloads_ok(self) -> bool:
        return not self.failed and not self.refused

    @property
    def complete(self) -> bool:
        return self.downloads_ok and not self.missing

    def problems(self) -> list[str]:
        out = [f"download failed: {f}" for f in self.failed]
        out += [f"refused (would be written outside {self.out}): {r}" for r in self.refused]
        out += [f"named by the report but not among the job's artifacts: {m}" for m in self.missing]
        return out


def safe_relpath(path: str) -> PurePosixPath:
    """An artifact path as a relative path that stays inside the folder, or UnsafeArtifactPath."""
    if not path or "\\" in path or "\x00" in path or path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise UnsafeArtifactPath(f"artifact path {path!r} is absolute or not a plain relative path")
    raw = path.split("/")
    if any(seg in ("..", ".", "") for seg in raw):  # checked before PurePosixPath hides `.` and `//`
        raise UnsafeArtifactPath(f"artifact path {path!r} would leave the download folder")
    parts = PurePosixPath(path).parts
    if not parts:
        raise UnsafeArtifactPath(f"artifact path {path!r} would leave the download folder")
    return PurePosixPath(*parts)


def target_path(out: Path, rel: PurePosixPath) -> Path:
    """Where `rel` lands under out; refuses a path that resolves outside out (e.g. via a symlink)."""
    base = out.resolve()
    dest = base.joinpath(*rel.parts)
    parent = dest.parent.resolve()  # non-strict: resolves any existing symlinked folder on the way
    if not (parent == base or parent.is_relative_to(base)) or dest.is_symlink():
        raise UnsafeArtifactPath(f"{rel} would be written outside {out}")
    return dest


def png_check(path: Path) -> str | None:
    """A PNG must start with its signature and end with IEND: catches bodies cut short."""
    if path.suffix.lower() != ".png":
        return None
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        fh.seek(max(0, size - len(_PNG_END)))
        tail = fh.read()
    if head != b"\x89PNG\r\n\x1a\n":
        return "not a PNG file"
    if tail != _PNG_END:
        return "the PNG ends early (no IEND chunk)"
    return None


# -- manifest ---------------------------------------------------------------------------------


@dataclass
class _Manifest:
    path: Path
    job: JobRef
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, out: Path, job: JobRef) -> _Manifest:
        path = out / MANIFEST
        manifest = cls(path, job)
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if data.get("job") != job.key():
                raise FetchError(
                    f"{out} holds a report fetched from another job ({data.get('job')}); "
                    "choose another --out or delete that folder")
            files = data.get("files")
            if isinstance(files, dict):
                manifest.files = {k: v for k, v in files.items() if isinstance(v, dict)}
        elif (out / LOCAL_ROOT).exists():
            raise FetchError(f"{out / LOCAL_ROOT} already exists and was not fetched by reviewer; "
                             "choose another --out or delete it")
        return manifest

    def is_complete(self, rel: str, dest: Path) -> bool:
        entry = self.files.get(rel)
        if not entry or not dest.is_file() or dest.is_symlink():
            return False
        return bool(dest.stat().st_size == entry.get("size") and file_sha256(dest) == entry.get("sha256"))

    def record(self, rel: str, dest: Path) -> None:
        entry = {"size": dest.stat().st_size, "sha256": file_sha256(dest)}
        with self.lock:
            self.files[rel] = entry
            self.save(state="partial")

    def save(self, state: str, result: FetchResult | None = None) -> None:
        data: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "job": self.job.key(),
            "workflow_id": self.job.workflow_id,
            "tag": self.job.tag,
            "state": state,
            "updated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "files": self.files,
        }
        if result is not None:
            data["report_file"] = result.report_file
            data["problems"] = result.problems()
            # Every file the job stored arrived intact; only files it never stored are missing.
            data["downloads_ok"] = result.downloads_ok
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.part")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def read_manifest(folder: Path, max_up: int = 3) -> tuple[Path, dict[str, Any]] | None:
    """The fetch manifest in `folder` or one of its `max_up` parents: (its folder, its data)."""
    current = folder.resolve()
    for _ in range(max_up + 1):
        candidate = current / MANIFEST
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return (current, data) if isinstance(data, dict) else None
        if current.parent == current:
            break
        current = current.parent
    return None


# -- the fetch ----------------------------------------------------------------------------------


def _report_prefix(paths: list[str]) -> tuple[str, str]:
    """(prefix of the backstop_data folder in artifact paths, report file relative to it)."""
    for name in REPORT_FILES:
        hits = sorted((p for p in paths if p == name or p.endswith("/" + name)), key=len)
        if hits:
            return hits[0][: len(hits[0]) - len(name)], name
    runs = sorted(p for p in paths if _RUN_REPORT.search(p))
    if runs:
        newest = runs[-1]  # run folders are named by timestamp
        cut = newest.rfind("bitmaps_test/")
        return newest[:cut], newest[cut:]
    raise FetchError(
        "the job's artifacts hold no BackstopJS report (no html_report/config.js, json_report/jsonReport.json "
        "or bitmaps_test/<run>/report.json): did visualtests-compare run `backstop test` and store "
        "/app/backstop_data as artifacts?")


def _page_files(paths: list[str], prefix: str) -> list[str]:
    """The report page, its assets and the report data files, relative to the prefix."""
    chosen = []
    for p in paths:
        if not p.startswith(prefix):
            continue
        rel = p[len(prefix):]
        if rel.startswith(PAGE_DIRS) or (rel.startswith("bitmaps_test/") and rel.endswith("/report.json")):
            chosen.append(rel)
    return chosen


def _named_images(report: Report, root: Path) -> tuple[list[str], set[str]]:
    """Images the report names (relative to root) and those BackstopJS itself says are absent."""
    named: list[str] = []
    excused: set[str] = set()
    base = root.resolve()
    for pair in report.pairs:
        for image in (pair.reference, pair.test, pair.backstop_diff_image):
            if image is None:
                continue
            try:
                rel = Path(image).resolve().relative_to(base).as_posix()
            except ValueError:
                continue  # the analysis reports paths that leave the report (pair.path_problem)
            if rel not in named:
                named.append(rel)
            if pair.backstop_error:
                excused.add(rel)  # e.g. "Reference file not found": the report says so itself
    return named, excused


def fetch_report(client: CircleCIClient, job: JobRef, out: Path, *, workers: int = DEFAULT_WORKERS,
                 progress: Progress | None = None) -> FetchResult:
    """Download the job's BackstopJS report into `out`; see the module docstring for guarantees.

    Returns a FetchResult (check `.complete`); raises FetchError when there is no report at
    all, the folder belongs to another job or cannot be written (e.g. the disk is full).
    """
    try:
        return _fetch_report(client, job, out, workers=workers, progress=progress)
    except OSError as exc:  # the manifest or a folder cannot be written: say so, not a traceback
        raise FetchError(str(write_error(exc, out))) from None


def _fetch_report(client: CircleCIClient, job: JobRef, out: Path, *, workers: int,
                  progress: Progress | None) -> FetchResult:
    from reviewer.sources.local import read_report_file

    out.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest.open(out, job)
    listing = client.artifacts(job.project_slug, job.job_number)
    urls: dict[str, str] = {}
    for item in listing:
        path, url = item.get("path"), item.get("url")
        if isinstance(path, str) and isinstance(url, str) and path not in urls:
            urls[path] = url
    prefix, report_rel = _report_prefix(list(urls))
    state = _Run(client, manifest, out, urls, prefix, max(1, workers), progress)

    page = _page_files(list(urls), prefix)
    state.total = len(page)
    state.download_all(page)
    report_path = out / LOCAL_ROOT / report_rel
    if not report_path.is_file():
        state.finish(report_rel, missing=[])
        raise FetchError(f"the report file {prefix}{report_rel} could not be downloaded: "
                         + "; ".join(state.failed + state.refused))
    try:
        report = read_report_file(report_path)
    except ReportError as exc:
        raise FetchError(f"the downloaded report cannot be read: {exc}") from None
    named, excused = _named_images(report, out / LOCAL_ROOT)
    todo = [rel for rel in named if prefix + rel in urls and rel not in page]
    missing = [rel for rel in named if prefix + rel not in urls and rel not in excused]
    state.total += len(todo)
    state.download_all(todo)
    return state.finish(report_rel, missing)


class _Run:
    def __init__(self, client: CircleCIClient, manifest: _Manifest, out: Path, urls: dict[str, str],
                 prefix: str, workers: int, progress: Progress | None) -> None:
        self.client, self.manifest, self.out, self.urls = client, manifest, out, urls
        self.prefix, self.workers, self.progress = prefix, workers, progress
        self.total = self.done = self.bytes = self.downloaded = self.skipped = 0
        self.failed: list[str] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()

    def _tick(self, size: int = 0) -> None:
        with self.lock:
            self.done += 1
            self.bytes += size
            if self.progress:
                self.progress(self.done, self.total, self.bytes)

    def _one(self, rel: str) -> None:
        artifact = self.prefix + rel
        try:
            safe_relpath(artifact)  # the artifact path as CircleCI gave it: refuse escapes
            local = safe_relpath(f"{LOCAL_ROOT}/{rel}")
            dest = target_path(self.out, local)
        except UnsafeArtifactPath:
            with self.lock:
                self.refused.append(artifact)
            self._tick()
            return
        key = local.as_posix()
        if self.manifest.is_complete(key, dest):
            with self.lock:
                self.skipped += 1
            self._tick()
            return
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = self.client.download(self.urls[artifact], dest, verify=png_check)
            self.manifest.record(key, dest)
        except Exception as exc:  # any failure leaves the report incomplete, said per file
            detail = (str(exc) if isinstance(exc, ReviewerError) else str(write_error(exc, self.out))
                      if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
            with self.lock:
                self.failed.append(redact(f"{artifact}: {detail}"))
            self._tick()
            return
        with self.lock:
            self.downloaded += 1
        self._tick(size)

    def download_all(self, rels: list[str]) -> None:
        if not rels:
            return
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(rels)), thread_name_prefix="fetch")
        try:
            for fut in as_completed([pool.submit(self._one, rel) for rel in rels]):
                fut.result()
        finally:
            # On Ctrl-C, do not start the queued downloads; the running ones end by themselves
            # and leave no partial file (each writes to a temporary name first).
            pool.shutdown(wait=True, cancel_futures=True)

    def finish(self, report_rel: str, missing: list[str]) -> FetchResult:
        result = FetchResult(
            out=self.out, root=self.out / LOCAL_ROOT, job=self.manifest.job, report_file=report_rel,
            downloaded=self.downloaded, skipped=self.skipped, bytes=self.bytes,
            failed=tuple(sorted(self.failed)), refused=tuple(sorted(self.refused)),
            missing=tuple(sorted(self.prefix + m for m in missing)),
        )
        self.manifest.save("complete" if result.complete else "incomplete", result)
        return result


def verify_fetched(folder: Path, job: JobRef, *, allow_missing: bool = False) -> str | None:
    """None when `folder` (a fetched report or anything inside it) is a complete fetch of `job`,
    else why not. Every recorded file is re-hashed: nothing changed since the fetch.
    `allow_missing`: also accept a fetch whose only gap is images the job never stored (a
    review may show it, its error pairs hold; approval never accepts it)."""
    found = read_manifest(folder)
    if found is None:
        return f"{folder} was not fetched by reviewer from CircleCI (no {MANIFEST})"
    base, data = found
    if data.get("job") != job.key():
        return f"{base} holds the report of {data.get('job')}, not of {job.key()}"
    if data.get("state") != "complete" and not (allow_missing and data.get("downloads_ok") is True):
        problems = data.get("problems") or []
        return f"the report in {base} is incomplete" + (f": {problems[0]}" if problems else "")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        return f"{base / MANIFEST} lists no files"
    for rel, entry in files.items():
        path = base / rel
        if not path.is_file() or not isinstance(entry, dict) or path.stat().st_size != entry.get("size") \
                or file_sha256(path) != entry.get("sha256"):
            return f"{path} changed or disappeared since it was fetched"
    return None
