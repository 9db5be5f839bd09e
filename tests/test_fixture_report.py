"""The real BackstopJS report in fixtures/: every pair gets the verdict a careful person gave it
(fixtures/expected.json), real changes rank above noise, and the decision holds for the right
reasons."""

from __future__ import annotations

import json

import numpy as np
from conftest import ROOT

from reviewer.model import Verdict

EXPECTED = json.loads((ROOT / "fixtures" / "expected.json").read_text())


def test_every_pair_gets_the_expected_verdict(fixture_review):
    review, _ = fixture_review
    got = {rp.pair.file: rp.analysis.verdict.value for rp in review.ranked}
    want = {name: e["verdict"] for name, e in EXPECTED.items()}
    assert got == want


def test_changed_pairs_rank_above_errors_noise_and_unchanged(fixture_review):
    review, _ = fixture_review
    order = [rp.analysis.verdict for rp in review.ranked]
    tiers = [Verdict.CHANGED, Verdict.ERROR, Verdict.NOISE, Verdict.UNCHANGED]
    assert order == sorted(order, key=tiers.index)
    assert [rp.rank for rp in review.ranked] == list(range(1, len(order) + 1))


def test_expected_kinds_are_found(fixture_review):
    review, _ = fixture_review
    for rp in review.ranked:
        e = EXPECTED[rp.pair.file]
        if e["verdict"] != "changed":
            continue
        kinds = {r.kind.value for r in rp.analysis.regions if r.significant}
        assert kinds & set(e["kinds"]), (rp.pair.file, kinds, e["kinds"])


def test_inserted_banner_leaves_the_tail_unchanged(fixture_review):
    review, _ = fixture_review
    news = [rp for rp in review.ranked if rp.pair.label == "News"]
    for rp in news:
        sig = [r for r in rp.analysis.regions if r.significant]
        assert [r.kind.value for r in sig] == ["inserted"]
        # the banner is a band, not the whole page below it
        assert sig[0].box.h < 0.5 * rp.analysis.test_size[1]


def test_small_real_changes_that_backstop_passed_are_changed(fixture_review):
    review, _ = fixture_review
    by_label = {(rp.pair.label, rp.pair.viewport): rp for rp in review.ranked}
    for label in ("Article", "Signup"):
        for vp in ("phone", "desktop"):
            rp = by_label[(label, vp)]
            assert rp.pair.backstop_status == "pass"
            assert rp.analysis.verdict is Verdict.CHANGED


def test_errors_say_why(fixture_review):
    review, _ = fixture_review
    reasons = {rp.pair.label: rp.analysis.reason for rp in review.ranked if rp.analysis.verdict is Verdict.ERROR}
    assert "selector was not found" in reasons["Promo"]
    assert "Reference file not found" in reasons["Contact"]
    assert "Waiting for selector" in reasons["Search"]


def test_decision_holds_with_one_reason_per_cause(fixture_review):
    review, _ = fixture_review
    assert review.decision.action == "hold"
    assert len(review.decision.reasons) == 2
    assert review.decision.reasons[0].startswith("12 pair(s) changed")
    assert review.decision.reasons[1].startswith("6 pair(s) could not be compared")


def test_outputs_are_written(fixture_review):
    _review, out = fixture_review
    data = json.loads((out / "review.json").read_text())
    assert data["schema"] == 1 and data["decision"]["action"] == "hold"
    first = data["pairs"][0]
    for key in ("file", "label", "viewport", "selector", "verdict", "score", "rank", "regions", "backstop"):
        assert key in first
    assert set(first["backstop"]) >= {"status", "mismatch"}
    assert set(first["regions"][0]) >= {"x", "y", "w", "h", "kind"}
    for name in ("index.html", "summary.md", "junit.xml"):
        assert (out / name).stat().st_size > 0
    for pair in data["pairs"]:
        for rel in [pair["images"].get("reference"), pair["images"].get("test"), pair["images"].get("mask")]:
            if rel:
                assert (out / rel).is_file(), rel


def test_masks_are_test_sized_and_paint_every_significant_region(fixture_review):
    """The heat map the review page lays over the test image: same size, red (2) inside each
    significant region, transparent (0) where nothing differs."""
    from PIL import Image

    _review, out = fixture_review
    data = json.loads((out / "review.json").read_text())
    checked = 0
    for pair in data["pairs"]:
        rel = pair["images"].get("mask")
        if not rel or pair["verdict"] != "changed":
            continue
        with Image.open(out / rel) as im:
            mask = np.asarray(im)
            assert im.info.get("transparency") == 0
        with Image.open(out / pair["images"]["test"]) as test:
            assert (mask.shape[1], mask.shape[0]) == test.size
        assert set(np.unique(mask)) <= {0, 1, 2, 3} and (mask == 0).any()
        for r in pair["regions"]:
            if r["significant"] and r["kind"] not in ("inserted", "removed"):
                assert (mask[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]] == 2).any(), (pair["file"], r)
        checked += 1
    assert checked >= 8


def test_region_crops_are_previews_of_the_region(fixture_review):
    """A test crop is the region's box with its margin: as it is when it fits the side panel's
    preview size, reduced by a whole factor when it does not."""
    from PIL import Image

    from reviewer.assets import CROP_PAD, CROP_PREVIEW_H, CROP_PREVIEW_W, preview_factor
    from reviewer.imaging.regions import pad_box
    from reviewer.model import Box

    _review, out = fixture_review
    data = json.loads((out / "review.json").read_text())
    factors = []
    for pair in data["pairs"]:
        test_rel = pair["images"].get("test")
        for region, crop in zip(pair["regions"], pair["images"].get("crops", []), strict=False):
            rel = crop.get("test")
            if not rel or rel == test_rel:  # a crop that is the whole page links the screenshot
                continue
            with Image.open(out / test_rel) as page:
                box = pad_box(Box(region["x"], region["y"], region["w"], region["h"]), CROP_PAD, *page.size)
            f = preview_factor(box.w, box.h)
            with Image.open(out / rel) as im:
                assert im.size == (-(-box.w // f), -(-box.h // f)), (pair["file"], region)
                assert im.size[0] <= CROP_PREVIEW_W and im.size[1] <= CROP_PREVIEW_H
            factors.append(f)
    assert 1 in factors and max(factors) > 1  # small regions kept as they are, large ones reduced
    assert preview_factor(640, 320) == 1 and preview_factor(641, 10) == 2 and preview_factor(1500, 7000) == 22
