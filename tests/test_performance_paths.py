"""The fast paths of the imaging code give the same answers as the plain computations they
replace (benchmarks/ measures the speed; these tests hold the results to the slow versions).

Each slow version here is the straightforward code the fast path replaced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from imgs import page, render
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation

import reviewer.imaging.compare as compare_mod
import reviewer.imaging.pixels as px
import reviewer.imaging.regions as rg
from reviewer.config import Settings
from reviewer.imaging.compare import compare_images
from reviewer.model import Box, RegionKind

RNG = np.random.default_rng(20261126)


def noisy_pair(h: int, w: int, changes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = a.copy()
    ys, xs = rng.integers(0, h, changes), rng.integers(0, w, changes)
    b[ys, xs, rng.integers(0, 3, changes)] ^= np.uint8(1 << int(rng.integers(0, 8)))
    return a, b


# -- finding what differs -----------------------------------------------------------------------


@pytest.mark.parametrize("w", [1, 3, 7, 333, 350, 1500])
def test_differing_rows_is_the_rows_where_any_pixel_differs(w: int) -> None:
    for seed, changes in ((0, 0), (1, 1), (2, 17), (3, 5000)):
        a, b = noisy_pair(97, w, changes, seed)
        want = (a != b).any(axis=2).any(axis=1)
        assert np.array_equal(px.differing_rows(a, b), want)
        # a width-cropped view (not contiguous) takes the other path
        assert np.array_equal(px.differing_rows(a[:, : max(1, w - 1)], b[:, : max(1, w - 1)]),
                              (a[:, : max(1, w - 1)] != b[:, : max(1, w - 1)]).any(axis=2).any(axis=1))


def test_differing_rows_of_a_page_that_differs_everywhere() -> None:
    a = RNG.integers(0, 256, (300, 350, 3), dtype=np.uint8)
    b = a ^ np.uint8(1)
    assert px.differing_rows(a, b).all()


def test_differing_pixels_in_rows_lists_them_in_row_major_order() -> None:
    a, b = noisy_pair(60, 41, 300, 4)
    ys, xs = np.nonzero((a != b).any(axis=2))
    rows = np.flatnonzero(px.differing_rows(a, b))
    got_y, got_x = [], []
    for chunk in px.row_chunks(px.differing_rows(a, b), 41, max_pixels=41 * 3):
        y, x = px.differing_pixels_in_rows(a, b, chunk)
        got_y.append(y)
        got_x.append(x)
    assert np.array_equal(np.concatenate(got_y), ys) and np.array_equal(np.concatenate(got_x), xs)
    consecutive = np.arange(10, 20)
    y, x = px.differing_pixels_in_rows(a, b, consecutive)
    keep = (ys >= 10) & (ys < 20)
    assert np.array_equal(y, ys[keep]) and np.array_equal(x, xs[keep])
    assert rows.size > 0


# -- colour differences -------------------------------------------------------------------------


def test_srgb_to_lab_is_scikit_images_rgb2lab() -> None:
    colours = RNG.integers(0, 256, (200_000, 3), dtype=np.uint8)
    colours[:8] = [[0, 0, 0], [255, 255, 255], [10, 10, 10], [11, 11, 11], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                   [128, 128, 128]]
    want = rgb2lab(colours[:, None, :].astype(np.float64) / 255.0)[:, 0, :]
    assert np.array_equal(px.srgb_to_lab(colours), want)


def test_delta_e_cache_gives_the_uncached_values_even_when_slots_collide() -> None:
    cache = px.DeltaECache(bits=4)  # 16 slots: nearly every look-up collides
    for _ in range(3):
        ca = RNG.integers(0, 256, (5000, 3), dtype=np.uint8)
        cb = ca.copy()
        cb[::3] = RNG.integers(0, 256, (cb[::3].shape[0], 3), dtype=np.uint8)
        assert np.array_equal(cache.lookup(ca, cb), px.colour_delta_e(ca, cb))
    assert cache.lookup(np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8)).size == 0


def test_delta_e_is_computed_in_slices_with_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = RNG.integers(0, 256, (3000, 3), dtype=np.uint8)
    cb = RNG.integers(0, 256, (3000, 3), dtype=np.uint8)
    want = px.colour_delta_e(ca, cb)
    monkeypatch.setattr(px, "SLICE", 7)
    assert np.array_equal(px.DeltaECache().lookup(ca, cb), want)


# -- neighbourhood tests ------------------------------------------------------------------------


def edge_pair(h: int = 40, w: int = 50) -> tuple[np.ndarray, np.ndarray]:
    a = render(w, h, [("ellipse", (5, 5, 30, 30), (0, 0, 0)), ("rect", (28, 10, 49, 39), (200, 30, 30))])
    b = render(w, h, [("ellipse", (5, 5, 30, 30), (0, 0, 0)), ("rect", (28, 10, 49, 39), (200, 30, 30))],
               offset=(1, 1))
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def test_antialias_detector_fast_paths_match_the_per_pixel_version() -> None:
    a, b = edge_pair()
    ys, xs = np.nonzero((a != b).any(axis=2))
    # include every border pixel too: they take the general branch
    by, bx = np.nonzero(np.ones(a.shape[:2], bool))
    border = (by == 0) | (by == a.shape[0] - 1) | (bx == 0) | (bx == a.shape[1] - 1)
    ys, xs = np.concatenate([ys, by[border]]), np.concatenate([xs, bx[border]])
    for img, other in ((a, b), (b, a)):
        want = px._antialiased_gather(img, other, ys, xs)
        assert np.array_equal(px.antialiased(img, other, ys, xs), want)
        band = px._Band(img, other, 0, img.shape[0])
        assert np.array_equal(px._antialiased_band(band, band.luma_a, band.colour_a, band.colour_b, ys, xs), want)
    assert np.array_equal(px.antialiased_either(a, b, ys, xs),
                          px._antialiased_gather(a, b, ys, xs) | px._antialiased_gather(b, a, ys, xs))
    assert px._antialiased_gather(a, b, ys, xs).any()  # the test exercises detections


def test_antialias_on_random_content_matches() -> None:
    a, b = noisy_pair(30, 30, 400, 9)
    a //= 64  # few levels: flat areas and equal neighbours happen
    b //= 64
    ys, xs = np.nonzero((a != b).any(axis=2))
    assert np.array_equal(px.antialiased_either(a, b, ys, xs),
                          px._antialiased_gather(a, b, ys, xs) | px._antialiased_gather(b, a, ys, xs))


@pytest.mark.parametrize("radius", [1, 2])
def test_within_range_both_matches_the_per_pixel_version(radius: int) -> None:
    a, b = edge_pair()
    ys, xs = np.nonzero(np.ones(a.shape[:2], bool))  # every pixel, border included
    want = (px.within_range(b, a, ys, xs, radius, px.SUBPIXEL_SLACK)
            & px.within_range(a, b, ys, xs, radius, px.SUBPIXEL_SLACK))
    assert np.array_equal(px.within_range_both(a, b, ys, xs, radius, px.SUBPIXEL_SLACK), want)
    assert want.any() and not want.all()


# -- regions ------------------------------------------------------------------------------------


def find_shift_plain(ref: np.ndarray, test: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                     max_shift: int) -> tuple[int, int] | None:
    """regions.find_shift before its sample pre-test: every offset scored on every pixel."""
    if ys.size == 0 or max_shift <= 0:
        return None
    h, w = ref.shape[:2]
    if ys.size > 20_000:
        step = ys.size // 20_000 + 1
        ys, xs = ys[::step], xs[::step]
    target = test[ys, xs].astype(np.int16)
    best: tuple[float, int, int] = (0.0, 0, 0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            if dy == 0 and dx == 0:
                continue
            ry, rx = ys - dy, xs - dx
            valid = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
            src = ref[np.clip(ry, 0, h - 1), np.clip(rx, 0, w - 1)].astype(np.int16)
            match = valid & (np.abs(src - target).max(axis=1) <= 16)
            score = float(match.mean())
            if score > best[0] or (score == best[0] and abs(dy) + abs(dx) < abs(best[1]) + abs(best[2])):
                best = (score, dy, dx)
    return (best[1], best[2]) if best[0] >= rg.SHIFT_EXPLAINED else None


@pytest.mark.parametrize("shift", [(0, 0), (3, 0), (0, -5), (2, 2), (8, 8)])
@pytest.mark.parametrize("size", [20, 160])
def test_find_shift_matches_scoring_every_offset(shift: tuple[int, int], size: int) -> None:
    rng = np.random.default_rng(size + 10 * shift[0] + shift[1])
    h = w = size + 40
    ref = (rng.integers(0, 4, (h, w, 3)) * 80).astype(np.uint8)
    test = np.roll(ref, shift, axis=(0, 1))
    test[:5] = 255  # something that does not move, near the border
    ys, xs = np.nonzero((ref != test).any(axis=2))
    for sel in (slice(None), slice(0, 50), slice(0, None, 7)):
        assert rg.find_shift(ref, test, ys[sel], xs[sel], 8) == find_shift_plain(ref, test, ys[sel], xs[sel], 8)


def test_find_shift_on_a_region_larger_than_its_window_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = (RNG.integers(0, 3, (120, 120, 3)) * 100).astype(np.uint8)
    test = ref.copy()
    test[20:100, 24:104] = ref[20:100, 20:100]  # a block moved 4 px right
    ys, xs = np.nonzero((ref != test).any(axis=2))
    monkeypatch.setattr(rg._Window, "MAX_PIXELS", 10)
    assert rg.find_shift(ref, test, ys, xs, 8) == find_shift_plain(ref, test, ys, xs, 8) == (0, 4)


def subpixel_offset_plain(ref: np.ndarray, test: np.ndarray, max_offset: float = 1.0) -> tuple[float, float] | None:
    """regions.subpixel_offset without the early exit on a whole-pixel peak."""
    if min(ref.shape[0], ref.shape[1]) < 4 or ref.shape[0] * ref.shape[1] > 512 * 512:
        return None
    a, b = rg.grey(ref), rg.grey(test)
    if float(np.abs(a - b).mean()) == 0:
        return None
    ink_a, ink_b = float((255 - a).sum()), float((255 - b).sum())
    if abs(ink_a - ink_b) > rg.SUBPIXEL_INK * max(ink_a, ink_b, 1.0):
        return None
    offset, _, _ = phase_cross_correlation(b, a, upsample_factor=20, normalization=None)
    dy, dx = float(offset[0]), float(offset[1])
    if max(abs(dy), abs(dx)) > max_offset or max(abs(dy), abs(dx)) < 0.05:
        return None
    moved = ndimage.shift(a, (dy, dx), order=1, mode="nearest")
    inner = (slice(1, -1), slice(1, -1))
    after = float(np.abs(moved[inner] - b[inner]).mean())
    return (dy, dx) if after <= (1 - rg.SUBPIXEL_GAIN) * float(np.abs(a[inner] - b[inner]).mean()) else None


@pytest.mark.parametrize("offset", [(0, 0), (1, 0), (1, 1), (2, 3), (4, 0), (12, 0), (0, 40)])
def test_subpixel_offset_matches_the_full_phase_correlation(offset: tuple[int, int]) -> None:
    shapes = [("text", (6, 6, 90, 22), (20, 20, 20), "quick brown"), ("rect", (30, 30, 60, 45), (0, 90, 200))]
    a = render(100, 60, shapes)
    b = render(100, 60, shapes, offset=offset)  # quarter pixels: 0.25 .. 10 px
    assert rg.subpixel_offset(a, b) == subpixel_offset_plain(a, b)


def test_region_ssim_in_strips_equals_scikit_image(monkeypatch: pytest.MonkeyPatch) -> None:
    a = page()[:300]
    b = page("the quick brown cat")[:300]
    want = structural_similarity(rg.grey(a), rg.grey(b), win_size=7, data_range=255.0)
    monkeypatch.setattr(rg, "STRIP_PIXELS", 400 * 23)  # bands of 23 rows
    assert abs(rg._ssim_in_strips(a, b, 7) - want) < 1e-12
    assert rg.region_ssim(a, b) == round(float(want), 4)


def test_edge_and_palette_tests_in_strips_equal_the_whole_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = page()[:400], page(button=(198, 40, 40))[:400]
    ea, eb = rg.edges(a), rg.edges(b)
    c = a.astype(np.int16)
    e = np.zeros(a.shape[:2], dtype=bool)
    e[:, :-1] |= np.abs(c[:, 1:] - c[:, :-1]).max(axis=2) > 40
    e[:-1, :] |= np.abs(c[1:, :] - c[:-1, :]).max(axis=2) > 40
    assert np.array_equal(ea, e)
    union, both = int((ea | eb).sum()), int((ea & eb).sum())
    whole = rg.same_structure(a, b)
    assert whole == (union == 0 or both / union >= 0.6)
    pixels = b[RNG.integers(0, 400, 999), RNG.integers(0, 400, 999)]
    palette = np.unique(rg._quantise(a))
    want_colours = bool((~np.isin(rg._quantise(pixels), palette)).mean() >= 0.5)
    monkeypatch.setattr(rg, "STRIP_PIXELS", 400 * 7 + 3)
    assert rg.same_structure(a, b) == whole
    assert rg.new_colours(a, pixels) == want_colours


# -- whole comparisons --------------------------------------------------------------------------


def noise_regions_plain(ys: np.ndarray, xs: np.ndarray, cls: np.ndarray, de: np.ndarray,
                        shape: tuple[int, int], settings: Settings) -> list[tuple]:
    """compare._noise_regions before streaming: group every differing pixel at once."""
    out = []
    for box, idx in rg.group_pixels(ys, xs, shape, settings.merge_distance_px):
        classes = Counter(px.CLASS_NAMES[int(c)] for c in cls[idx])
        top = classes.most_common(1)[0][0]
        kind = compare_mod._NOISE_KIND.get(top, RegionKind.SUBPIXEL)
        out.append((box, kind, int(idx.size), round(float(np.percentile(de[idx], 95)), 2),
                    "discounted as " + ", ".join(f"{k} {n} px" for k, n in classes.most_common())))
    return out


@pytest.mark.parametrize("chunk", [1 << 17, 500])
def test_streamed_noise_regions_equal_grouping_every_pixel(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    a = page()
    b = page(offset=(1, 0)).copy()  # quarter-pixel shift everywhere: many noise clusters
    b[300:340, 0:400] = np.clip(b[300:340, 0:400].astype(int) - 1, 0, 255).astype(np.uint8)  # and drift
    s = Settings()
    d = px.classify_pixels(a, b, drift_delta_e=s.drift_delta_e, detect_antialiasing=s.detect_antialiasing,
                           subpixel_tolerance_px=s.subpixel_tolerance_px)
    want = noise_regions_plain(d.ys, d.xs, d.cls, d.delta_e, b.shape[:2], s)
    real_chunks = px.row_chunks
    monkeypatch.setattr(compare_mod, "row_chunks", lambda rows, w: real_chunks(rows, w, chunk))
    # Every value computed: the drift bound's sampled contrasts are tested in test_drift_table.
    monkeypatch.setattr(compare_mod, "proven_drift", lambda ca, cb, t: np.zeros(ca.shape[0], dtype=bool))
    scan = compare_mod._scan_segment(a, b, px.differing_rows(a, b), s, (), None, 0)
    got = [(Box(r.box.x, r.box.y, r.box.w, r.box.h), r.kind, r.pixels, r.contrast, r.why)
           for r in compare_mod._noise_regions(a, b, scan, 0, s)]
    assert len(want) > 3
    assert got == want


def compare_all(a: np.ndarray, b: np.ndarray, **kw: object) -> tuple:
    mask = np.zeros(b.shape[:2], np.uint8)
    return compare_images(a, b, Settings(**kw), (), mask), mask  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ["word", "button", "banner", "removed", "drift", "shifted", "wider"])
def test_results_do_not_depend_on_how_the_work_is_cut(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    base = page()
    other = {
        "word": lambda: page("the quick brown cat"),
        "button": lambda: page(button=(198, 40, 40)),
        "banner": lambda: page(banner=True),
        "removed": lambda: base[np.r_[0:500, 560:base.shape[0]]],
        "drift": lambda: page(bg=(254, 255, 253)),
        "shifted": lambda: page(offset=(1, 1)),
        "wider": lambda: np.concatenate([base, np.full((base.shape[0], 9, 3), 30, np.uint8)], axis=1),
    }[case]()
    want = compare_all(base, other)
    real_chunks = px.row_chunks
    monkeypatch.setattr(compare_mod, "row_chunks", lambda rows, w: real_chunks(rows, w, 3 * w))  # 3 rows
    monkeypatch.setattr(px, "SLICE", 101)
    monkeypatch.setattr(rg, "STRIP_PIXELS", 5000)
    monkeypatch.setattr(compare_mod, "_DELTA_E", px.DeltaECache(bits=6))
    got = compare_all(base, other)
    assert got[0] == want[0]
    assert np.array_equal(got[1], want[1])


def test_row_keys_are_equal_exactly_for_equal_rows() -> None:
    from reviewer.imaging.align import row_keys

    img = np.zeros((6, 5, 3), np.uint8)
    img[1, 2] = 1
    img[3] = img[1]
    img[4, 4, 2] = 1
    keys = row_keys(img)
    assert keys[0] == keys[2] == keys[5] and keys[1] == keys[3]
    assert len({keys[0], keys[1], keys[4]}) == 3
    assert row_keys(np.ascontiguousarray(img[:, :4])) == row_keys(img[:, :4])  # a strided view hashes the same


@pytest.mark.parametrize("seed", range(6))
def test_streamed_noise_regions_break_class_ties_like_counter(seed: int) -> None:
    """Clusters whose classes are tied: the kind and the order of the `why` are those of a
    Counter fed the pixels in order (first appearance wins ties)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((80, 90, 3), np.uint8)
    b = a.copy()
    ys, xs = rng.integers(0, 80, 60), rng.integers(0, 90, 60)
    b[ys, xs] = 7
    ys, xs = np.nonzero((a != b).any(axis=2))
    n = ys.size
    cls = rng.integers(1, 5, n).astype(np.uint8)
    de = rng.random(n).astype(np.float32) * 3
    s = Settings(merge_distance_px=int(rng.integers(3, 14)))
    cell = s.merge_distance_px
    occupied = np.zeros((80 // cell + 1, 90 // cell + 1), bool)
    occupied[ys // cell, xs // cell] = True
    rows = px.differing_rows(a, b)
    chunks, start = [], 0
    for chunk in px.row_chunks(rows, 90, 90 * 4):
        k = int(((a[chunk] != b[chunk]).any(axis=2)).sum())
        chunks.append((chunk, start, start + k))
        start += k
    empty = np.zeros(0, np.int32)
    scan = compare_mod._Scan(n, de.copy(), cls.copy(), chunks, empty, empty, empty, occupied)
    got = [(Box(r.box.x, r.box.y, r.box.w, r.box.h), r.kind, r.pixels, r.contrast, r.why)
           for r in compare_mod._noise_regions(a, b, scan, 0, s)]
    assert got == noise_regions_plain(ys, xs, cls, de, (80, 90), s)


# -- scheduling ---------------------------------------------------------------------------------


def test_the_memory_budget_follows_the_largest_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    import reviewer.analyze as an

    base = 80 * 1024**2
    monkeypatch.setattr(an, "_process_baseline", lambda: base)
    margin = 1 - an.MEMORY_MARGIN
    for big in (11_400_000, 30_000_000):
        assert an._memory_budget(big, 2) == int(40 * big * margin) - 3 * base
    # just too small for the largest pair beside the processes: it runs alone, nothing beside it
    tight = 8_000_000
    assert int(40 * tight * margin) - 3 * base < an._estimate_pixels(tight)
    assert an._memory_budget(tight, 2) == an._estimate_pixels(tight)
    # a report of small pages: the target cannot mean anything; pairs share a fixed amount
    assert an._memory_budget(1_000_000, 2) == an.SMALL_REPORT_BUDGET
    # workers measured smaller than this process: the budget counts what they hold
    held = 60 * 1024**2
    assert an._memory_budget(11_400_000, 2, base, [held]) == int(40 * 11_400_000 * margin) - 2 * base - held
    assert an._memory_budget(11_400_000, 2, base, [held, held]) == int(40 * 11_400_000 * margin) - base - 2 * held


def test_workers_report_what_they_hold_and_the_run_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pair's result carries the pid and size of its worker; the scheduler recomputes the
    budget from them (at most one entry per worker)."""
    from conftest import FIXTURE

    import reviewer.analyze as an
    from reviewer.sources.local import load_report

    calls: list[tuple[int, ...]] = []
    real = an._memory_budget

    def spy(largest: int, workers: int, parent: int | None = None, held: Sequence[int] = ()) -> int:
        calls.append(tuple(held))
        return real(largest, workers, parent, held)

    monkeypatch.setattr(an, "_memory_budget", spy)
    an.analyze_report(load_report(FIXTURE), Settings(workers=2))
    assert calls[0] == () and len(calls) > 1
    assert all(1 <= len(held) <= 2 and all(10 * 2**20 < rss < 2**31 for rss in held) for held in calls[1:])


def test_a_tight_memory_budget_still_analyses_every_pair_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing fits beside another pair: the pairs run one at a time, none is left waiting."""
    from conftest import FIXTURE

    import reviewer.analyze as an
    from reviewer.sources.local import load_report

    report = load_report(FIXTURE)
    want, _ = an.analyze_report(report, Settings(workers=1))
    monkeypatch.setattr(an, "_memory_budget", lambda *args: 1)
    got, _ = an.analyze_report(report, Settings(workers=2))
    assert [(p.file, a.verdict, a.regions) for p, a in got] == [(p.file, a.verdict, a.regions) for p, a in want]


def test_gather_reads_what_fancy_indexing_reads():
    from reviewer.imaging.pixels import gather

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ys, xs = rng.integers(0, 40, 500), rng.integers(0, 30, 500)
    assert np.array_equal(gather(img, ys, xs), img[ys, xs])
    narrow = img[:, 5:25]  # not contiguous: a width-cropped page
    assert np.array_equal(gather(narrow, ys, xs % 20), narrow[ys, xs % 20])
    assert gather(img, ys[:0], xs[:0]).shape == (0, 3)
