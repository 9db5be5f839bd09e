"""The output folder: one writer at a time, and write failures that say what to do."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from reviewer.errors import ReportError

LOCK_NAME = ".reviewer.lock"


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
