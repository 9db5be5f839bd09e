"""The result cache (reviewer/cache.py): a rerun on an unchanged report reuses every analysis and
gives the same outputs and page images; anything that could change a result misses; a damaged
entry is a miss, never an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURE

import reviewer.analyze as analyze_mod
from reviewer import cache
from reviewer.analyze import run
from reviewer.config import IgnoreRegion, Settings
from reviewer.model import Box, PairAnalysis, Region, RegionKind, Verdict
from reviewer.render.jsonout import analysis_dict, analysis_from_dict

ONE = Settings(workers=1)  # in this process, so the tests can see what is recomputed


def outputs(out: Path) -> dict:
    data = json.loads((out / "review.json").read_text())
    data.pop("generated_at", None)
    data.pop("digest", None)
    for pair in data["pairs"]:
        pair.pop("seconds", None)
    return data


def image_files(out: Path, data: dict) -> dict[str, bytes]:
    files = {}
    for pair in data["pairs"]:
        images = pair.get("images") or {}
        rels = [images.get(k) for k in ("reference", "test", "mask", "thumb")]
        for crop in images.get("crops") or []:
            rels += list(crop) if isinstance(crop, list) else [crop.get("reference"), crop.get("test")]
        for rel in rels:
            if rel:
                files[rel] = (out / rel).read_bytes()
    return files


def count_compares(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = analyze_mod.compare_images

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(analyze_mod, "compare_images", counting)
    return calls


@pytest.fixture
def report(tmp_path: Path) -> Path:
    dest = tmp_path / "report" / "backstop_data"
    shutil.copytree(FIXTURE, dest)
    return dest


def test_a_rerun_of_an_unchanged_report_comes_from_the_cache_with_the_same_outputs(
        report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    calls = count_compares(monkeypatch)
    run(report, out, ONE)
    first = outputs(out)
    computed = calls[0]
    assert computed > 10
    run(report, out, ONE)
    assert calls[0] == computed, "the rerun recomputed pairs"
    assert outputs(out) == first
    files = image_files(out, first)
    assert files and all(files.values())
    # the same images as a run without any cache
    fresh = tmp_path / "fresh"
    run(report, fresh, ONE, use_cache=False)
    assert outputs(fresh) == first
    assert image_files(fresh, outputs(fresh)) == files
    assert not list(out.rglob("*.part")) and not list((out / cache.CACHE_DIR_NAME).rglob(".tmp-*"))


def test_a_hit_puts_the_page_images_back_even_when_they_were_deleted(
        report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    run(report, out, ONE)
    want = image_files(out, outputs(out))
    shutil.rmtree(out / "images")
    calls = count_compares(monkeypatch)
    run(report, out, ONE)
    assert calls[0] == 0
    assert image_files(out, outputs(out)) == want


def test_a_changed_image_or_setting_misses(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    run(report, out, ONE)
    calls = count_compares(monkeypatch)
    # one test image replaced by another pair's: only that pair is recomputed
    tests = sorted((report / "bitmaps_test").glob("*/fixture_Article_0_document_0_phone.png"))
    other = sorted((report / "bitmaps_test").glob("*/fixture_Signup_0_document_0_phone.png"))
    shutil.copyfile(other[0], tests[0])
    run(report, out, ONE)
    assert calls[0] == 1
    # any setting that decides results: everything is recomputed
    before = calls[0]
    run(report, out, Settings(workers=1, drift_delta_e=2.5))
    assert calls[0] - before > 10
    # an ignore region: only the pairs it applies to
    before = calls[0]
    run(report, out, Settings(workers=1, drift_delta_e=2.5,
                              ignore_regions=(IgnoreRegion(0, 0, 10, 10, label="News", viewport="phone"),)))
    assert calls[0] - before > 10  # the settings digest changed for all
    before = calls[0]
    run(report, out, Settings(workers=1, drift_delta_e=2.5,
                              ignore_regions=(IgnoreRegion(0, 0, 10, 10, label="News", viewport="phone"),)))
    assert calls[0] == before


def test_a_new_code_version_misses(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    run(report, out, ONE)
    calls = count_compares(monkeypatch)
    monkeypatch.setattr(cache, "code_version", lambda: "another-version")
    run(report, out, ONE)
    assert calls[0] > 10


@pytest.mark.parametrize("damage", ["entry", "image", "key", "truncate"])
def test_a_damaged_entry_is_recomputed_not_an_error(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     damage: str) -> None:
    out = tmp_path / "out"
    run(report, out, ONE)
    first = outputs(out)
    entries = sorted((out / cache.CACHE_DIR_NAME).glob("*/*/entry.json"))
    assert entries
    for entry in entries:
        data = json.loads(entry.read_text())
        if damage == "entry":
            entry.write_text("{not json")
        elif damage == "key":
            data["key"] = "0" * 64
            entry.write_text(json.dumps(data))
        elif data["files"]:
            name = sorted(data["files"])[0]
            target = entry.parent / name
            if damage == "image":
                target.unlink()
            else:
                target.write_bytes(target.read_bytes()[:10])
    calls = count_compares(monkeypatch)
    run(report, out, ONE)
    assert calls[0] > 0
    assert outputs(out) == first
    assert image_files(out, first)


def test_entries_the_last_run_did_not_use_are_removed(report: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(report, out, ONE)
    root = out / cache.CACHE_DIR_NAME
    before = {p.name for p in root.glob("*/*")}
    run(report, out, Settings(workers=1, drift_delta_e=2.5))
    after = {p.name for p in root.glob("*/*")}
    assert before and after and not (before & after)


def test_the_cache_works_from_worker_processes(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    run(report, out, Settings(workers=2))
    first = outputs(out)
    run(report, out, Settings(workers=2))
    assert outputs(out) == first
    entries = list((out / cache.CACHE_DIR_NAME).glob("*/*/entry.json"))
    assert len(entries) >= 10


def test_analyses_round_trip_through_json() -> None:
    regions = (
        Region(Box(0, 5, 10, 1), RegionKind.REMOVED, 400, 12.5, None, significant=True, ref_y=5, ref_h=40,
               why="40 row(s)"),
        Region(Box(3, 4, 5, 6), RegionKind.COLOUR, 17, 33.33, 0.1234, significant=True, visibility=3.125,
               why="same outlines"),
        Region(Box(9, 9, 2, 2), RegionKind.INVISIBLE, 4, 9.5, None, significant=False, visibility=0.35, why="faint"),
    )
    a = PairAnalysis(Verdict.CHANGED, "2 changed region(s)", regions, (10, 50), (10, 11), 417,
                     {"drift": 3, "invisible": 1, "removed": 2}, 0.1234, seconds=1.5)
    back = analysis_from_dict(json.loads(json.dumps(analysis_dict(a))))
    assert back == PairAnalysis(**{**a.__dict__, "seconds": 0.0})
    assert list(back.noise_pixels) == ["drift", "invisible", "removed"]


def test_the_key_covers_what_decides_a_result() -> None:
    s = Settings()
    base = cache.pair_key("a" * 64, "b" * 64, s, (), True)
    assert base == cache.pair_key("a" * 64, "b" * 64, Settings(workers=7), (), True)  # workers: no
    for other in (cache.pair_key("c" * 64, "b" * 64, s, (), True),
                  cache.pair_key("a" * 64, "c" * 64, s, (), True),
                  cache.pair_key("b" * 64, "a" * 64, s, (), True),
                  cache.pair_key("a" * 64, "b" * 64, Settings(max_shift_px=3), (), True),
                  cache.pair_key("a" * 64, "b" * 64, s, (Box(0, 0, 1, 1),), True),
                  cache.pair_key("a" * 64, "b" * 64, s, (), False)):
        assert other != base


def test_the_code_version_covers_every_module_of_the_package(tmp_path: Path) -> None:
    """A module nobody listed (here: a new one in a copy of the package) changes the key."""
    import shutil

    base = Path(cache.__file__).resolve().parent
    copy = tmp_path / "reviewer"
    shutil.copytree(base, copy, ignore=shutil.ignore_patterns("__pycache__"))
    listed = {p.relative_to(copy).as_posix() for p in cache._code_files(copy)}
    assert {"analyze.py", "imaging/judge.py", "imaging/drift_bounds.npz", "rank.py", "cli/output.py"} <= listed
    (copy / "imaging" / "new_stage.py").write_text("THRESHOLD = 1\n")
    assert "imaging/new_stage.py" in {p.relative_to(copy).as_posix() for p in cache._code_files(copy)}
