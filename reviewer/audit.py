"""The audit log: one JSON line per approve, hold, reject and rollback, appended and printed.

    {"time": "2025-10-01T09:12:00Z", "who": "jane", "project": "gh/greenpeace/planet4-africa",
     "tag": "v1.234.0", "pipeline": 812, "workflow": "<uuid>", "job": "hold-production",
     "action": "approve", "outcome": "done", "digest": "<review digest>", "reason": "..."}

`who` is the token's user as CircleCI's /me names it. Lines are written with O_APPEND under
an exclusive lock and fsynced, so concurrent runs never interleave and a line that was
printed is on disk. Every line goes through reviewer.redact first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from reviewer.errors import ReviewerError
from reviewer.redact import redact

DEFAULT_AUDIT_LOG = Path("reports") / "audit.jsonl"
FIELDS = ("time", "who", "project", "tag", "pipeline", "workflow", "job", "action", "outcome", "digest", "reason")

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: O_APPEND alone
    fcntl = None  # type: ignore[assignment]


class AuditError(ReviewerError):
    exit_code = 1


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def entry(*, who: str, project: str, tag: str | None, action: str, pipeline: int | None = None,
          workflow: str | None = None, job: str | None = None, digest: str | None = None,
          reason: str | None = None, outcome: str = "done", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"time": now(), "who": who, "project": project, "tag": tag, "pipeline": pipeline,
                            "workflow": workflow, "job": job, "action": action, "outcome": outcome,
                            "digest": digest, "reason": reason}
    data.update(extra)
    return data


def ensure_writable(path: Path) -> None:
    """Fail before acting, not after: the folder can be created and the file opened for append."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc.strerror or exc}; pass --audit-log FILE") \
            from None


def append(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Append one redacted line; return what was written (as a dict)."""
    line = redact(json.dumps(data, ensure_ascii=False, separators=(", ", ": ")))
    ensure_writable(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    result: dict[str, Any] = json.loads(line)
    return result


def read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
