"""What a person made of each pair: "seen", "accepted" or "needs work" (the review state).

The review page keeps these marks in the browser, under the analysis digest. `reviewer serve`
keeps them on disk next to review.json (review-state.json), so whoever opens the served page
sees the same marks, and a release-level Approve is refused while any pair is marked
"needs work".

Marks belong to one analysis: the file names the digest it was made for, and marks made for
another digest are ignored (re-analysing a report can change what each pair shows).

A pair is named by its test image's file name as BackstopJS wrote it; a name used twice in a
report gets "#<rank>" appended so that both pairs can be marked. The page (review.js) names
pairs the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STATE_FILE = "review-state.json"
SCHEMA = 1
SEEN, ACCEPTED, NEEDS_WORK = "seen", "accepted", "needs-work"
STATES = (SEEN, ACCEPTED, NEEDS_WORK)
_LISTED = 5


class StateError(ValueError):
    """A state update the server refuses; the message says what to do instead."""

    def __init__(self, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict  # True: the page shows another analysis (HTTP 409), else a bad request


# -- pure functions --------------------------------------------------------------------------------

def pair_keys(pairs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """{key: "label [viewport]"} for review.json's pairs, in rank order (see the module's docstring)."""
    counts: dict[str, int] = {}
    for p in pairs:
        counts[str(p.get("file", ""))] = counts.get(str(p.get("file", "")), 0) + 1
    out: dict[str, str] = {}
    for p in pairs:
        file = str(p.get("file", ""))
        key = file if counts[file] == 1 else f"{file}#{p.get('rank')}"
        out[key] = f"{p.get('label', '?')} [{p.get('viewport', '?')}]"
    return out


def read_marks(data: Any, digest: str, keys: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The valid marks in a parsed review-state.json for this digest: {key: {"state", "at"}}.
    Anything else (another digest, an unknown pair or state, a damaged file) is left out."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("digest") != digest:
        return {}
    pairs = data.get("pairs")
    if not isinstance(pairs, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for key, mark in pairs.items():
        if key in keys and isinstance(mark, dict) and mark.get("state") in STATES:
            out[key] = {"state": str(mark["state"]), "at": str(mark.get("at", ""))}
    return out


def parse_update(body: Any, digest: str, keys: Mapping[str, str]) -> tuple[str, str | None]:
    """(pair key, new state or None to clear it) from the page's request body
    {"digest": ..., "pair": key, "state": one of STATES or null}."""
    if not isinstance(body, dict):
        raise StateError('expected {"digest": ..., "pair": ..., "state": ...}')
    if body.get("digest") != digest:
        raise StateError("this page shows another analysis than the one served now: reload the page", conflict=True)
    key = body.get("pair")
    if not isinstance(key, str) or key not in keys:
        raise StateError("no such pair in this review: reload the page")
    state = body.get("state")
    if state is not None and state not in STATES:
        raise StateError(f"state must be one of {', '.join(STATES)}, or null to clear the mark")
    return key, state


def with_mark(marks: Mapping[str, dict[str, str]], key: str, state: str | None, at: str) -> dict[str, dict[str, str]]:
    """The marks with one pair's mark set (or cleared when `state` is None)."""
    out = dict(marks)
    if state is None:
        out.pop(key, None)
    else:
        out[key] = {"state": state, "at": at}
    return out


def approve_blocker(marks: Mapping[str, dict[str, str]], keys: Mapping[str, str]) -> str | None:
    """Why a release-level Approve is refused, or None: a pair marked "needs work" is a person's
    own verdict that the release is not ready, whatever the analysis says."""
    flagged = [keys.get(k, k) for k in keys if marks.get(k, {}).get("state") == NEEDS_WORK]
    if not flagged:
        return None
    shown = "; ".join(flagged[:_LISTED]) + (f"; and {len(flagged) - _LISTED} more" if len(flagged) > _LISTED else "")
    return (f"{len(flagged)} pair(s) are marked \"needs work\" on the review page: {shown}. Fix them and re-run "
            "the tests, or clear those marks if they are fine after all, then approve.")


def snapshot(digest: str, marks: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """What the page receives: the digest and {key: state}."""
    return {"ok": True, "digest": digest, "pairs": {k: m["state"] for k, m in marks.items()}}


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- the file ----------------------------------------------------------------------------------------

class StateStore:
    """review-state.json for one served review. Every change re-reads the file (keeping marks
    another server on the same folder wrote since) and replaces it atomically (temporary file +
    rename), so a reader never sees half a file."""

    def __init__(self, path: Path, digest: str, pairs: Sequence[Mapping[str, Any]]) -> None:
        self.path = path
        self.digest = digest
        self.keys = pair_keys(pairs)
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, review_json_dir: Path, data: Mapping[str, Any]) -> StateStore:
        """The store next to review.json for a review.json dict (with its digest)."""
        return cls(review_json_dir / STATE_FILE, str(data.get("digest", "")), list(data.get("pairs", [])))

    def marks(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return read_marks(data, self.digest, self.keys)

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.digest, self.marks())

    def update(self, body: Any) -> dict[str, Any]:
        """Apply the page's request body; raises StateError with what to do instead."""
        key, state = parse_update(body, self.digest, self.keys)
        with self._lock:
            marks = with_mark(self.marks(), key, state, now())
            self._write(marks)
        return snapshot(self.digest, marks)

    def approve_blocker(self) -> str | None:
        return approve_blocker(self.marks(), self.keys)

    def _write(self, marks: Mapping[str, dict[str, str]]) -> None:
        data = {"schema": SCHEMA, "digest": self.digest, "pairs": dict(marks)}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
