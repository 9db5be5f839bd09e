"""The judge on pages nobody here wrote: fixtures/calibration, a real BackstopJS report of 151
pairs of third-party pages, each labelled benign or real by looking at it (its README).

Every labelled pair gets its expected verdict (one known false alarm, named below and held to
it), every real change is located by a region box, a release of benign pairs only is approved
and one real change among them holds it, as `reviewer analyze` runs on them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_cli_analyze import run_cli

from reviewer.model import RankedPair, RegionKind, Review, Verdict

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "calibration"
REPORT = CORPUS / "report" / "backstop_data"

# Benign by the label, changed by the judge: the page re-rendered without font hinting
# (text-rendering: geometricPrecision) moves its bold red heading up by 2-3 px and redraws every
# glyph. The judge sees new shapes where the heading was; a person looking at the two pages sees
# the same heading. The holdout half's one false alarm, within the target of 1 in 40.
KNOWN_FALSE_ALARMS = {"calib_dhbrowsers-textrender-geo_0_document_0_phone.png"}

pytestmark = pytest.mark.slow


def labels() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((CORPUS / "labels.json").read_text())
    return data


@pytest.fixture(scope="module")
def corpus_review(tmp_path_factory: pytest.TempPathFactory) -> Review:
    from reviewer.analyze import run
    from reviewer.config import Settings

    review, _out = run(REPORT, tmp_path_factory.mktemp("calibration"), Settings(), use_cache=False)
    return review


def by_file(review: Review) -> dict[str, RankedPair]:
    return {rp.pair.file: rp for rp in review.ranked}


def test_the_report_and_the_labels_agree() -> None:
    from reviewer.sources.local import load_report

    files = {p.file for p in load_report(REPORT).pairs}
    assert files == set(labels())
    counts = {(v["split"], v["label"]) for v in labels().values()}
    assert counts == {("tune", "benign"), ("tune", "real"), ("holdout", "benign"), ("holdout", "real")}


@pytest.mark.parametrize("name", sorted(labels()))
def test_every_labelled_pair_gets_its_expected_verdict(corpus_review: Review, name: str) -> None:
    label = labels()[name]
    rp = by_file(corpus_review)[name]
    if label["label"] == "real":
        assert rp.analysis.verdict is Verdict.CHANGED, f"{label['what']}: {rp.analysis.reason}"
    elif name in KNOWN_FALSE_ALARMS:
        assert rp.analysis.verdict is Verdict.CHANGED, "a known false alarm went away: update KNOWN_FALSE_ALARMS"
    else:
        assert rp.analysis.verdict in (Verdict.NOISE, Verdict.UNCHANGED), f"{label['what']}: {rp.analysis.reason}"


def _points_at(rp: RankedPair, box: list[int]) -> bool:
    x, y, w, h = box
    for r in rp.analysis.regions:
        if not r.significant:
            continue
        b = r.box
        # A removed band is a line where its rows were cut out; what followed moved up over it.
        bottom = b.y + max(b.h, r.ref_h or 0) if r.kind is RegionKind.REMOVED else b.y2
        if b.x < x + w and x < b.x2 and b.y < y + h and y < bottom:
            return True
    return False


def test_every_real_change_is_located_by_a_region_box(corpus_review: Review) -> None:
    pairs = by_file(corpus_review)
    lost = [name for name, label in labels().items()
            if label["label"] == "real" and not _points_at(pairs[name], label["box"])]
    assert lost == []


def test_a_one_digit_change_in_body_text_stays_changed_and_is_a_lone_spot(corpus_review: Review) -> None:
    pairs = by_file(corpus_review)
    digits = [name for name, label in labels().items() if label["variant"] == "digit"]
    assert len(digits) == 20
    for name in digits:
        (region,) = [r for r in pairs[name].analysis.regions if r.significant]
        assert region.box.w <= 40 and region.box.h <= 40, (name, region.box)


def test_the_holdout_half_meets_the_targets(corpus_review: Review) -> None:
    """At most 1 benign pair in 40 flagged, every real change caught, on pages never tuned on."""
    pairs = by_file(corpus_review)
    holdout = {name: label for name, label in labels().items() if label["split"] == "holdout"}
    benign = [n for n, lab in holdout.items() if lab["label"] == "benign"]
    flagged = [n for n in benign if pairs[n].analysis.verdict is Verdict.CHANGED]
    assert len(flagged) * 40 <= len(benign), flagged
    assert all(pairs[n].analysis.verdict is Verdict.CHANGED for n, lab in holdout.items() if lab["label"] == "real")


def _subset(tmp: Path, keep: set[str]) -> Path:
    """The corpus report reduced to the pairs in `keep` (its images hard-linked, not copied)."""
    root = tmp / "backstop_data"
    shutil.copytree(REPORT, root, copy_function=_link)
    cfg = root / "html_report" / "config.js"
    text = cfg.read_text()
    data = json.loads(text[len("report("): text.rindex(")")])
    data["tests"] = [t for t in data["tests"] if t["pair"]["fileName"] in keep]
    assert len(data["tests"]) == len(keep)
    cfg.write_text("report(" + json.dumps(data) + ");")
    for extra in ("json_report", "ci_report"):
        shutil.rmtree(root / extra, ignore_errors=True)
    return root


def _link(src: str, dst: str) -> None:
    """Screenshots hard-linked (large, never written), everything else copied: a linked
    config.js written here would rewrite the corpus itself."""
    if src.endswith(".png"):
        Path(dst).hardlink_to(src)
    else:
        shutil.copy2(src, dst)


def test_a_release_of_benign_differences_is_approved_and_one_real_change_holds_it(tmp_path: Path) -> None:
    benign = {n for n, lab in labels().items() if lab["label"] == "benign"} - KNOWN_FALSE_ALARMS
    quiet = _subset(tmp_path / "quiet", benign)
    res = run_cli("analyze", quiet, "--out", tmp_path / "quiet-out", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    digit = "calib_bscheckout-digit-price_0_document_0_phone.png"
    assert labels()[digit]["label"] == "real"
    held = _subset(tmp_path / "held", benign | {digit})
    res = run_cli("analyze", held, "--out", tmp_path / "held-out", "-q")
    assert res.returncode == 3, res.stdout + res.stderr
    data = json.loads((tmp_path / "held-out" / "review.json").read_text())
    assert [p["file"] for p in data["pairs"] if p["verdict"] == "changed"] == [digit]
