"""The output folder: one writer at a time, and write failures that say what to do."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from reviewer.errors import ReportError, UsageError

LOCK_NAME = ".reviewer.lock"
# What a reviewer output folder holds: a folder with any of these is a previous run's.
OWN_MARKERS = ("review.json", LOCK_NAME, ".reviewer-cache")


def out_dir_problem(out_dir: Path, report_root: Path, *, force: bool = False,
                    inside_report: bool = False) -> str | None:
    """Why writing the analysis into `out_dir` could damage something, or None.

    Inside the report folder the outputs would mix with BackstopJS's evidence (`reviewer ci`
    writes SOURCE/reviewer on purpose: it is stored with the report as the job's artifacts).
    A non-empty folder that no reviewer run wrote is someone's files: images/ and index.html
    would be overwritten among them."""
    out, root = out_dir.resolve(), report_root.resolve()
    if not inside_report and (out == root or out.is_relative_to(root)):
        return (f"--out {out_dir} is inside the report's folder {report_root}; the outputs would mix with "
                "BackstopJS's files. Choose a folder outside it, e.g. reports/<name>")
    if force or not out.is_dir():
        return None
    try:
        entries = [p.name for p in out.iterdir()]
    except OSError:
        return None  # output_lock says what is wrong with the folder
    if entries and not any(name in OWN_MARKERS for name in entries):
        shown = ", ".join(sorted(entries)[:5]) + (" …" if len(entries) > 5 else "")
        return (f"--out {out_dir} already holds files that reviewer did not write ({shown}); choose an empty "
                "or new folder, or pass --force to write among them")
    return None


def check_out_dir(out_dir: Path, report_root: Path, *, force: bool = False, inside_report: bool = False) -> None:
    problem = out_dir_problem(out_dir, report_root, force=force, inside_report=inside_report)
    if problem:
        raise UsageError(problem)


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUT for the whole run.

    Two runs writing the same folder would interleave images from different analyses under
    one review.json; the second run stops at once with a clear message instead.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(out_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ReportError(f"cannot create the output folder {out_dir}: {exc.strerror}; pass --out DIR") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportError(
                f"another reviewer run is writing to {out_dir}; wait for it to finish or pass another --out"
            ) from None
        try:
            yield
        except OSError as exc:
            raise write_error(exc, out_dir) from None
    finally:
        os.close(fd)


def write_error(exc: OSError, out_dir: Path) -> ReportError:
    if exc.errno == errno.ENOSPC:
        return ReportError(f"the disk is full while writing to {out_dir}; free space and run again "
                           "(files already written are complete; nothing half-written is kept)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ReportError(f"no permission to write in {out_dir} ({exc.filename or ''}); pass a writable --out DIR")
    return ReportError(f"cannot write to {out_dir}: {exc.strerror or exc}")


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks (screenshots and downloads can be large)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
