from __future__ import annotations

import numpy as np
import pytest
from imgs import page, render

from reviewer.config import Settings
from reviewer.imaging.align import align_rows, realign_same_height
from reviewer.imaging.candidates import differing_rows
from reviewer.imaging.compare import MASK_CHANGED, MASK_INSERTED, compare_images
from reviewer.imaging.regions import group_pixels
from reviewer.model import Box, RegionKind, Verdict

S = Settings()


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return page()


def kinds(analysis) -> set[str]:
    return {r.kind.value for r in analysis.regions if r.significant}


def test_identical_pair_is_unchanged(base):
    a = compare_images(base, base.copy(), S)
    assert a.verdict is Verdict.UNCHANGED
    assert a.regions == ()


def shapes_page(offset=(0, 0)):
    return render(300, 300, [("ellipse", (20, 20, 120, 120), (0, 90, 200)), ("rect", (150, 40, 260, 90), (40, 40, 40)),
                             ("ellipse", (160, 160, 280, 200), (200, 30, 30))], offset)


def test_quarter_pixel_shift_is_noise():
    moved = shapes_page(offset=(1, 1))
    assert not np.array_equal(shapes_page(), moved)
    a = compare_images(shapes_page(), moved, S)
    assert a.verdict is Verdict.NOISE, a.reason
    assert a.changed_pixels == 0


def test_invisible_colour_drift_is_noise(base):
    drifted = page(bg=(254, 255, 253))
    a = compare_images(base, drifted, S)
    assert a.verdict is Verdict.NOISE
    assert a.noise_pixels.get("drift", 0) > 100_000


def test_one_word_change_is_content_at_the_word(base):
    a = compare_images(base, page("the quick brown cat"), S)
    assert a.verdict is Verdict.CHANGED
    assert kinds(a) == {"content"}
    (region,) = [r for r in a.regions if r.significant]
    # line 5 is drawn at y = 100 + 5 * 40: the region must be on that line, not elsewhere
    assert 295 <= region.box.y <= 305 and region.box.h <= 22
    assert region.pixels < 0.001 * base.shape[0] * base.shape[1] * 10


def test_button_recolour_is_colour_region(base):
    a = compare_images(base, page(button=(198, 40, 40)), S)
    assert a.verdict is Verdict.CHANGED
    (region,) = [r for r in a.regions if r.significant]
    assert region.kind is RegionKind.COLOUR
    assert (region.box.x, region.box.y) == (40, 1050)
    assert region.contrast > 20


def test_inserted_banner_is_one_band_and_the_tail_is_not_changed(base):
    taller = page(banner=True)
    mask = np.zeros(taller.shape[:2], dtype=np.uint8)
    a = compare_images(base, taller, S, mask=mask)
    assert a.verdict is Verdict.CHANGED
    sig = [r for r in a.regions if r.significant]
    assert [r.kind for r in sig] == [RegionKind.INSERTED]
    # the banner is 80.25 px tall (drawn at 4x): 81 rows, from row 100
    assert sig[0].box.y == 100 and sig[0].box.h == 81
    # below the banner everything lines up again: no changed pixel in the tail
    assert not (mask[181:] == MASK_CHANGED).any()
    assert (mask[100:181] == MASK_INSERTED).all()


def test_removed_band_points_back_into_the_reference(base):
    taller = page(banner=True)
    a = compare_images(taller, base, S)
    (region,) = [r for r in a.regions if r.significant]
    assert region.kind is RegionKind.REMOVED
    assert region.ref_y == 100 and region.ref_h == 81


def test_whole_pixel_move_is_shift():
    a_img = render(200, 100, [("rect", (50, 30, 120, 60), (0, 0, 0))])
    b_img = render(200, 100, [("rect", (54, 30, 124, 60), (0, 0, 0))])
    a = compare_images(a_img, b_img, S)
    assert a.verdict is Verdict.CHANGED
    assert kinds(a) == {"shift"}
    assert "+4 px horizontally" in a.regions[0].why


def test_ignore_region_discounts_changes(base):
    changed = page("the quick brown cat")
    a = compare_images(base, changed, S, ignore=(Box(0, 290, 400, 30),))
    assert a.verdict is Verdict.NOISE
    assert a.noise_pixels.get("ignored", 0) > 0


def test_width_change_is_reported():
    a_img = render(200, 50, [("rect", (10, 10, 50, 40), (0, 0, 0))])
    b_img = np.concatenate([a_img, np.full((50, 20, 3), 255, np.uint8)], axis=1)
    b_img[:, 200:] = 0
    a = compare_images(a_img, b_img, S)
    assert a.verdict is Verdict.CHANGED
    assert RegionKind.INSERTED in {r.kind for r in a.regions}


def test_one_blank_row_more_is_layout_rounding(base):
    taller = np.concatenate([base, np.full((1, base.shape[1], 3), 255, np.uint8)])
    a = compare_images(base, taller, S)
    assert a.verdict is Verdict.NOISE


def test_an_edge_re_rasterised_a_pixel_over_is_invisible():
    """An anti-aliased circle drawn a quarter pixel to the side: hundreds of edge pixels differ,
    some by a lot, and the judge sees nothing (the move is within the tolerance)."""
    a = render(60, 60, [("ellipse", (10, 10, 50, 50), (0, 0, 0))])
    b = render(60, 60, [("ellipse", (10, 10, 50, 50), (0, 0, 0))], offset=(1, 0))
    result = compare_images(a, b, S)
    assert result.verdict is Verdict.NOISE, result.reason
    (region,) = result.regions
    assert region.kind is RegionKind.INVISIBLE and not region.significant
    assert region.visibility is not None and region.visibility < 1
    assert "invisible: at most 0." in region.why and "of what a person notices" in region.why


def test_a_solid_square_drawn_in_is_visible():
    a = np.full((40, 40, 3), 255, np.uint8)
    b = a.copy()
    b[15:25, 15:25] = 0
    result = compare_images(a, b, S)
    assert result.verdict is Verdict.CHANGED
    (region,) = result.regions
    assert region.significant and region.box == Box(15, 15, 10, 10)
    assert region.visibility is not None and region.visibility > 5  # far above 1, where a change counts
    assert "a lone spot" in region.why


def test_the_allowances_can_be_switched_off():
    """A quarter-pixel move of solid shapes: far under what counts with the move allowance,
    visible without it at a higher sensitivity."""
    moved = shapes_page(offset=(1, 1))
    assert max(r.visibility or 0 for r in compare_images(shapes_page(), moved, S).regions) < 0.2
    strict = Settings(subpixel_tolerance_px=0, drift_delta_e=0.0, sensitivity=2.0)
    assert compare_images(shapes_page(), moved, strict).verdict is Verdict.CHANGED


def test_group_pixels_merges_glyphs_into_words():
    ys = np.array([10, 10, 12, 300], dtype=np.intp)
    xs = np.array([10, 18, 25, 10], dtype=np.intp)
    groups = group_pixels(ys, xs, (400, 100), merge_px=12)
    assert [g[0] for g in groups] == [Box(10, 10, 16, 3), Box(10, 300, 1, 1)]


def test_alignment_of_a_taller_page(base):
    segs = align_rows(base, page(banner=True))
    assert ("inserted", 100, 181) in {(s.kind, s.t0, s.t1) for s in segs}


def test_text_moved_a_quarter_pixel_down_is_noise():
    """Real crop from a benchmark page: a paragraph re-rendered 0.2 px lower. With a 4 px margin
    the moved ink crossed the crop's edge and the region was wrongly called content."""
    from pathlib import Path

    from reviewer.imaging.decode import load_rgb

    data = Path(__file__).parent / "data"
    ref = load_rgb(data / "text_quarter_px_down_ref.png")
    test = load_rgb(data / "text_quarter_px_down_test.png")
    a = compare_images(ref, test, S)
    assert not np.array_equal(ref, test)
    assert a.verdict is Verdict.NOISE, a.reason


def test_content_pushed_down_at_the_same_height_is_one_inserted_band(base):
    """A banner inserted near the top of a fixed-height screenshot pushes everything below it
    down and cuts the end off: the banner is the change, not every row below it."""
    pushed = page(banner=True)[: base.shape[0]]
    a = compare_images(base, pushed, S)
    assert a.verdict is Verdict.CHANGED
    found = {(r.kind, r.box.y, r.box.h) for r in a.regions if r.kind is RegionKind.INSERTED}
    assert found == {(RegionKind.INSERTED, 100, 81)}  # as for the taller page below
    # The 81 rows cut off the end were blank: discounted, counted, not shown beside the banner.
    assert a.noise_pixels["removed"] == 81 * base.shape[1]
    assert not {RegionKind.SHIFT, RegionKind.CONTENT} & {r.kind for r in a.regions}


def test_a_small_element_moved_down_stays_a_shift():
    a_img = render(200, 300, [("rect", (50, 30, 120, 60), (0, 0, 0)), ("rect", (130, 30, 190, 60), (0, 90, 0))])
    b_img = render(200, 300, [("rect", (50, 34, 120, 64), (0, 0, 0)), ("rect", (130, 30, 190, 60), (0, 90, 0))])
    assert realign_same_height(a_img, b_img, differing_rows(a_img, b_img)) is None
    assert kinds(compare_images(a_img, b_img, S)) == {"shift"}


def test_a_page_that_changed_everywhere_is_not_realigned(base):
    drifted = (base.astype(np.int16) - 1).clip(0, 255).astype(np.uint8)
    assert realign_same_height(base, drifted, differing_rows(base, drifted)) is None


def test_content_pulled_up_at_the_same_height_is_one_removed_band(base):
    """The other direction: a block removed near the top pulls everything up; the freed rows
    at the end are new in the test image."""
    pulled = page(banner=True)[: base.shape[0]]
    a = compare_images(pulled, base, S)
    assert a.verdict is Verdict.CHANGED
    removed = [r for r in a.regions if r.kind is RegionKind.REMOVED]
    assert [(r.ref_y, r.ref_h) for r in removed] == [(100, 81)]
    assert not {RegionKind.SHIFT, RegionKind.CONTENT} & {r.kind for r in a.regions}


def test_a_mask_that_cannot_be_written_in_place_is_refused(base):
    with pytest.raises(ValueError, match="C-contiguous"):
        compare_images(base, page("x"), S, mask=np.zeros((base.shape[1], base.shape[0]), np.uint8).T)


def test_one_blank_row_pushed_in_at_the_same_height_is_layout_rounding_only_if_nothing_visible_is_cut(base):
    """Content pushed down by a row at the same height: a move too small to matter when the row
    it pushes out of the image is blank. If that row shows something, the pair is changed."""
    blank = np.full((1, base.shape[1], 3), 255, np.uint8)
    pushed = np.concatenate([base[:80], blank, base[80:-1]])  # inside the gap under the header
    assert compare_images(base, pushed, S).verdict is Verdict.NOISE
    footer = base.copy()
    footer[-1, 50:350] = (20, 20, 20)  # a rule along the very bottom: pushed out of the image
    pushed_footer = np.concatenate([footer[:80], blank, footer[80:-1]])
    a = compare_images(footer, pushed_footer, S)
    assert a.verdict is Verdict.CHANGED
    assert [r.box.y2 for r in a.regions if r.significant] == [base.shape[0]]  # at the bottom, where it left


def test_a_thin_visible_rule_pushed_in_is_a_change(base):
    rule = np.full((2, base.shape[1], 3), 255, np.uint8)
    rule[:, 40:360] = (200, 30, 30)
    pushed = np.concatenate([base[:80], rule, base[80:-2]])
    a = compare_images(base, pushed, S)
    assert a.verdict is Verdict.CHANGED
    # Two rows pushed in are a move of what follows (judged in place), not a realigned band;
    # the rule is what stands out.
    assert [(r.box.y, r.box.h) for r in a.regions if r.significant] == [(80, 2)]
