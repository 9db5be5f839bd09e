"""reviewer.review_state: per-pair review marks, as pure functions and as review-state.json.

What is held: pairs are named by file name (with the rank when a name repeats); only valid
marks for the served analysis are read back; an update the server must refuse says why; the
file is replaced whole (no temporary file left, a damaged file is recovered from); and a pair
marked "needs work" blocks a release-level Approve, naming the pair.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewer.review_state import (
    NEEDS_WORK,
    STATE_FILE,
    StateError,
    StateStore,
    approve_blocker,
    pair_keys,
    parse_update,
    read_marks,
    with_mark,
)

PAIRS = [{"file": "a.png", "label": "Home", "viewport": "phone", "rank": 1},
         {"file": "b.png", "label": "Blog", "viewport": "desktop", "rank": 2},
         {"file": "b.png", "label": "Blog again", "viewport": "desktop", "rank": 3}]


def test_pairs_are_named_by_file_and_a_repeated_name_gets_its_rank():
    assert pair_keys(PAIRS) == {"a.png": "Home [phone]", "b.png#2": "Blog [desktop]",
                                "b.png#3": "Blog again [desktop]"}


def test_only_valid_marks_of_this_analysis_are_read():
    keys = pair_keys(PAIRS)
    data = {"schema": 1, "digest": "d1", "pairs": {
        "a.png": {"state": "accepted", "at": "t"}, "b.png#2": {"state": "approved"}, "zzz.png": {"state": "seen"},
        "b.png#3": "seen"}}
    assert read_marks(data, "d1", keys) == {"a.png": {"state": "accepted", "at": "t"}}
    assert read_marks(data, "d2", keys) == {}  # marks made for another analysis
    assert read_marks({**data, "schema": 2}, "d1", keys) == {}
    assert read_marks([1, 2], "d1", keys) == {}


def test_an_update_the_server_refuses_says_what_to_do():
    keys = pair_keys(PAIRS)
    assert parse_update({"digest": "d1", "pair": "a.png", "state": "seen"}, "d1", keys) == ("a.png", "seen")
    assert parse_update({"digest": "d1", "pair": "a.png", "state": None}, "d1", keys) == ("a.png", None)
    with pytest.raises(StateError, match="reload the page") as exc:
        parse_update({"digest": "old", "pair": "a.png", "state": "seen"}, "d1", keys)
    assert exc.value.conflict
    with pytest.raises(StateError, match="no such pair"):
        parse_update({"digest": "d1", "pair": "../x", "state": "seen"}, "d1", keys)
    with pytest.raises(StateError, match="one of seen, accepted, needs-work"):
        parse_update({"digest": "d1", "pair": "a.png", "state": "approved"}, "d1", keys)
    with pytest.raises(StateError):
        parse_update("seen", "d1", keys)


def test_needs_work_blocks_approve_and_names_the_pairs():
    keys = pair_keys(PAIRS)
    marks = with_mark({}, "a.png", "accepted", "t")
    assert approve_blocker(marks, keys) is None
    marks = with_mark(marks, "b.png#3", NEEDS_WORK, "t")
    why = approve_blocker(marks, keys)
    assert why is not None and "1 pair(s)" in why and "Blog again [desktop]" in why and "clear those marks" in why
    assert approve_blocker(with_mark(marks, "b.png#3", None, "t"), keys) is None


def test_the_store_writes_the_file_whole_and_reads_it_back(tmp_path: Path):
    store = StateStore.beside(tmp_path, {"digest": "d1", "pairs": PAIRS})
    assert store.snapshot() == {"ok": True, "digest": "d1", "pairs": {}}
    answer = store.update({"digest": "d1", "pair": "b.png#2", "state": NEEDS_WORK})
    assert answer["pairs"] == {"b.png#2": NEEDS_WORK}
    on_disk = json.loads((tmp_path / STATE_FILE).read_text())
    assert on_disk["digest"] == "d1" and on_disk["pairs"]["b.png#2"]["state"] == NEEDS_WORK
    assert on_disk["pairs"]["b.png#2"]["at"].endswith("Z")
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]  # no temporary file left behind
    # another server on the same folder sees the mark; one serving another analysis does not
    assert StateStore.beside(tmp_path, {"digest": "d1", "pairs": PAIRS}).approve_blocker()
    assert StateStore.beside(tmp_path, {"digest": "d2", "pairs": PAIRS}).snapshot()["pairs"] == {}
    store.update({"digest": "d1", "pair": "b.png#2", "state": None})
    assert store.approve_blocker() is None
    # a damaged file counts as no marks and is replaced by the next mark
    (tmp_path / STATE_FILE).write_text("{not json")
    assert store.snapshot()["pairs"] == {}
    assert store.update({"digest": "d1", "pair": "a.png", "state": "seen"})["pairs"] == {"a.png": "seen"}
