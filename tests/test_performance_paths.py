"""The fast paths of the imaging code give the same answers as the plain computations they
replace (benchmarks/ measures the speed; these tests hold the results to the slow versions).

Each slow version here is the straightforward code the fast path replaced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from imgs import page
from skimage.color import rgb2lab
from skimage.metrics import structural_similarity

import reviewer.imaging.candidates as px
import reviewer.imaging.colour as colour
import reviewer.imaging.evidence as ev
import reviewer.imaging.regions as rg
from reviewer.config import Settings
from reviewer.imaging.compare import compare_images
from reviewer.model import Box

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
    assert np.array_equal(colour.srgb_to_lab(colours), want)


def test_delta_e_cache_gives_the_uncached_values_even_when_slots_collide() -> None:
    cache = colour.DeltaECache(bits=4)  # 16 slots: nearly every look-up collides
    for _ in range(3):
        ca = RNG.integers(0, 256, (5000, 3), dtype=np.uint8)
        cb = ca.copy()
        cb[::3] = RNG.integers(0, 256, (cb[::3].shape[0], 3), dtype=np.uint8)
        assert np.array_equal(cache.lookup(ca, cb), colour.colour_delta_e(ca, cb))
    assert cache.lookup(np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8)).size == 0


def test_delta_e_is_computed_in_slices_with_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = RNG.integers(0, 256, (3000, 3), dtype=np.uint8)
    cb = RNG.integers(0, 256, (3000, 3), dtype=np.uint8)
    want = colour.colour_delta_e(ca, cb)
    monkeypatch.setattr(colour, "SLICE", 7)
    assert np.array_equal(colour.DeltaECache().lookup(ca, cb), want)


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
    return (best[1], best[2]) if best[0] >= ev.SHIFT_EXPLAINED else None


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
        assert ev.find_shift(ref, test, ys[sel], xs[sel], 8) == find_shift_plain(ref, test, ys[sel], xs[sel], 8)


def test_find_shift_on_a_region_larger_than_its_window_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = (RNG.integers(0, 3, (120, 120, 3)) * 100).astype(np.uint8)
    test = ref.copy()
    test[20:100, 24:104] = ref[20:100, 20:100]  # a block moved 4 px right
    ys, xs = np.nonzero((ref != test).any(axis=2))
    monkeypatch.setattr(ev._Window, "MAX_PIXELS", 10)
    assert ev.find_shift(ref, test, ys, xs, 8) == find_shift_plain(ref, test, ys, xs, 8) == (0, 4)


def test_region_ssim_in_strips_equals_scikit_image(monkeypatch: pytest.MonkeyPatch) -> None:
    a = page()[:300]
    b = page("the quick brown cat")[:300]
    want = structural_similarity(ev.grey(a), ev.grey(b), win_size=7, data_range=255.0)
    monkeypatch.setattr(ev, "STRIP_PIXELS", 400 * 23)  # bands of 23 rows
    assert abs(ev._ssim_in_strips(a, b, 7) - want) < 1e-12
    assert ev.region_ssim(a, b) == round(float(want), 4)


def test_edge_and_palette_tests_in_strips_equal_the_whole_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = page()[:400], page(button=(198, 40, 40))[:400]
    ea, eb = ev.edges(a), ev.edges(b)
    c = a.astype(np.int16)
    e = np.zeros(a.shape[:2], dtype=bool)
    e[:, :-1] |= np.abs(c[:, 1:] - c[:, :-1]).max(axis=2) > 40
    e[:-1, :] |= np.abs(c[1:, :] - c[:-1, :]).max(axis=2) > 40
    assert np.array_equal(ea, e)
    union, both = int((ea | eb).sum()), int((ea & eb).sum())
    whole = ev.same_structure(a, b)
    assert whole == (union == 0 or both / union >= 0.6)
    pixels = b[RNG.integers(0, 400, 999), RNG.integers(0, 400, 999)]
    palette = np.unique(ev._quantise(a))
    want_colours = bool((~np.isin(ev._quantise(pixels), palette)).mean() >= 0.5)
    monkeypatch.setattr(ev, "STRIP_PIXELS", 400 * 7 + 3)
    assert ev.same_structure(a, b) == whole
    assert ev.new_colours(a, pixels) == want_colours


# -- whole comparisons --------------------------------------------------------------------------


def noise_regions_plain(ys: np.ndarray, xs: np.ndarray, cls: np.ndarray, de: np.ndarray,
                        shape: tuple[int, int], settings: Settings) -> list[tuple]:
    """regions.exact_noise_regions before streaming: group every differing pixel at once, keep
    the clusters without a candidate pixel."""
    out = []
    for box, idx in rg.group_pixels(ys, xs, shape, settings.merge_distance_px):
        if (cls[idx] == px.CANDIDATE).any():
            continue
        classes = Counter(px.CLASS_NAMES[int(c)] for c in cls[idx])
        kind = rg._EXACT_KIND[classes.most_common(1)[0][0]]
        out.append((box, kind, int(idx.size), round(float(np.percentile(de[idx], 95)), 2),
                    rg._exact_why(classes, settings.drift_delta_e)))
    return out


@pytest.mark.parametrize("chunk", [1 << 17, 500])
def test_streamed_noise_regions_equal_grouping_every_pixel(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    a = page()
    b = page("the quick brown cat").copy()  # a changed word: a cluster with candidates, left out
    for y0, y1, x0, x1 in ((300, 340, 0, 400), (600, 620, 30, 130), (900, 903, 200, 260)):  # drift
        b[y0:y1, x0:x1] = np.clip(b[y0:y1, x0:x1].astype(int) - 1, 0, 255).astype(np.uint8)
    b[700:720, 40:140] = 255 - b[700:720, 40:140]  # a strong change, ignored
    ignore = (Box(40, 700, 100, 20),)
    s = Settings()
    ys, xs = np.nonzero((a != b).any(axis=2))
    de = colour.colour_delta_e(a[ys, xs], b[ys, xs])
    cls = px.classify(ys, xs, de, s.drift_delta_e, ignore)
    want = noise_regions_plain(ys, xs, cls, de, b.shape[:2], s)
    real_chunks = px.row_chunks
    monkeypatch.setattr(px, "row_chunks", lambda rows, w: real_chunks(rows, w, chunk))
    # Every value computed: the drift bound's sampled contrasts are tested in test_drift_table.
    monkeypatch.setattr(px, "proven_drift", lambda ca, cb, t: np.zeros(ca.shape[0], dtype=bool))
    scan = px.scan_segment(a, b, px.differing_rows(a, b), s.drift_delta_e, ignore, s.merge_distance_px)
    got = [(Box(r.box.x, r.box.y, r.box.w, r.box.h), r.kind, r.pixels, r.contrast, r.why)
           for r in rg.exact_noise_regions(a, b, scan, 0, s.merge_distance_px, s.drift_delta_e)]
    assert len(want) >= 3 and {w[1].value for w in want} == {"drift", "ignored"}
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
    monkeypatch.setattr(px, "row_chunks", lambda rows, w: real_chunks(rows, w, 3 * w))  # 3 rows
    monkeypatch.setattr(ev, "STRIP_PIXELS", 5000)
    monkeypatch.setattr(px, "_DELTA_E", colour.DeltaECache(bits=6))
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
    cls = rng.integers(1, 3, n).astype(np.uint8)  # ignored or drift
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
    scan = px.Scan(n, de.copy(), cls.copy(), chunks, empty, empty, empty, occupied)
    got = [(Box(r.box.x, r.box.y, r.box.w, r.box.h), r.kind, r.pixels, r.contrast, r.why)
           for r in rg.exact_noise_regions(a, b, scan, 0, s.merge_distance_px, s.drift_delta_e)]
    assert got == noise_regions_plain(ys, xs, cls, de, (80, 90), s)


# -- scheduling ---------------------------------------------------------------------------------


def test_the_memory_budget_follows_the_largest_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    import reviewer.scheduler as sched

    base = 80 * 1024**2
    monkeypatch.setattr(sched, "process_baseline", lambda: base)
    margin = 1 - sched.MEMORY_MARGIN
    for big in (11_400_000, 30_000_000):
        assert sched._memory_budget(big, 2) == int(40 * big * margin) - 3 * base
    # just too small for the largest pair beside the processes: it runs alone, nothing beside it
    tight = 8_000_000
    assert int(40 * tight * margin) - 3 * base < sched._estimate_pixels(tight)
    assert sched._memory_budget(tight, 2) == sched._estimate_pixels(tight)
    # a report of small pages: the target cannot mean anything; pairs share a fixed amount
    assert sched._memory_budget(1_000_000, 2) == sched.SMALL_REPORT_BUDGET
    # workers measured smaller than this process: the budget counts what they hold
    held = 60 * 1024**2
    assert sched._memory_budget(11_400_000, 2, base, [held]) == int(40 * 11_400_000 * margin) - 2 * base - held
    assert sched._memory_budget(11_400_000, 2, base, [held, held]) == int(40 * 11_400_000 * margin) - base - 2 * held


def test_workers_report_what_they_hold_and_the_run_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pair's result carries the pid and size of its worker; the scheduler recomputes the
    budget from them (at most one entry per worker)."""
    from conftest import FIXTURE

    import reviewer.analyze as an
    import reviewer.scheduler as sched
    from reviewer.sources.local import load_report

    calls: list[tuple[int, ...]] = []
    real = sched._memory_budget

    def spy(largest: int, workers: int, parent: int | None = None, held: Sequence[int] = ()) -> int:
        calls.append(tuple(held))
        return real(largest, workers, parent, held)

    monkeypatch.setattr(sched, "_memory_budget", spy)
    an.analyze_report(load_report(FIXTURE), Settings(workers=2))
    assert calls[0] == () and len(calls) > 1
    assert all(1 <= len(held) <= 2 and all(10 * 2**20 < rss < 2**31 for rss in held) for held in calls[1:])


def test_a_tight_memory_budget_still_analyses_every_pair_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing fits beside another pair: the pairs run one at a time, none is left waiting."""
    from conftest import FIXTURE

    import reviewer.analyze as an
    import reviewer.scheduler as sched
    from reviewer.sources.local import load_report

    report = load_report(FIXTURE)
    want = an.analyze_report(report, Settings(workers=1))
    monkeypatch.setattr(sched, "_memory_budget", lambda *args: 1)
    got = an.analyze_report(report, Settings(workers=2))
    assert [(p.file, a.verdict, a.regions) for p, a, _ in got] == [(p.file, a.verdict, a.regions) for p, a, _ in want]


def test_gather_reads_what_fancy_indexing_reads():
    from reviewer.imaging.candidates import gather

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ys, xs = rng.integers(0, 40, 500), rng.integers(0, 30, 500)
    assert np.array_equal(gather(img, ys, xs), img[ys, xs])
    narrow = img[:, 5:25]  # not contiguous: a width-cropped page
    assert np.array_equal(gather(narrow, ys, xs % 20), narrow[ys, xs % 20])
    assert gather(img, ys[:0], xs[:0]).shape == (0, 3)
