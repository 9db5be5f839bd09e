"""The drift bound (reviewer/imaging/drift_table.py) only ever says `drift` where the full
CIEDE2000 computation says so, and the analysis gives the same results with it as without."""

from __future__ import annotations

import numpy as np
import pytest
from imgs import page

from reviewer.config import Settings
from reviewer.imaging import candidates, drift_table
from reviewer.imaging.colour import colour_delta_e
from reviewer.imaging.compare import compare_images


def _bins_to_check() -> list[int]:
    k1, k2 = drift_table.tables()
    n = k1.size
    rng = np.random.default_rng(11)
    chosen = {0, n - 1, n // 2, int(np.argmax(k1)), int(np.argmax(k2)), int(np.argmin(k1))}
    chosen |= {int(i) for i in rng.integers(0, n, 14)}
    return sorted(chosen)


@pytest.mark.parametrize("index", _bins_to_check())
def test_each_bound_is_the_exact_maximum_of_its_bin(index):
    """Recomputed exhaustively: every colour of the bin, every change of 1 and of 2 levels."""
    colours = drift_table.bin_colours(index)
    assert drift_table.bin_of(colours).tolist() == [index] * 512
    for k, table in enumerate(drift_table.tables(), start=1):
        exact = float(drift_table.exact_max(colours, k).max())
        assert exact <= table[index] <= exact * (1 + 1e-6), (k, index)


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0, 3.5])
def test_the_bound_never_calls_drift_what_is_not(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    ca = rng.integers(0, 256, (300_000, 3)).astype(np.uint8)
    step = rng.integers(-2, 3, (300_000, 3))
    step[:1000] = rng.integers(-9, 10, (1000, 3))  # and some larger changes, never proven
    cb = np.clip(ca.astype(int) + step, 0, 255).astype(np.uint8)
    proven = drift_table.proven_drift(ca, cb, threshold)
    exact = colour_delta_e(ca, cb)  # float32, as the analysis classifies with
    assert proven.any()
    assert (exact[proven] < threshold).all()
    size = np.abs(ca.astype(int) - cb).max(axis=1)
    assert not proven[(size == 0) | (size > 2)].any()
    if threshold >= 2.0:  # at the default, most 1-level changes are decided by the bound
        assert proven[size == 1].mean() > 0.95


def test_no_bound_when_drift_is_switched_off():
    ca = np.full((10, 3), 100, np.uint8)
    assert not drift_table.proven_drift(ca, ca + 1, 0.0).any()


def _drifted(shape: tuple[int, int], seed: int, levels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (*shape, 3)).astype(np.uint8)  # photo-like: a new colour per pixel
    b = np.clip(a.astype(int) + rng.integers(-levels, levels + 1, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "proven_drift", lambda ca, cb, t: np.zeros(ca.shape[0], dtype=bool))


@pytest.mark.parametrize("case", ["photo", "photo-2-levels", "page-with-drifted-photo", "text-and-drift"])
def test_analysis_is_the_same_with_and_without_the_bound(monkeypatch, case):
    """Regions under SAMPLE_STRIDE * MIN_SAMPLE pixels: every value computed, identical results."""
    if case == "photo":
        a, b = _drifted((80, 200), 1)
    elif case == "photo-2-levels":
        a, b = _drifted((80, 200), 2, levels=2)
    elif case == "page-with-drifted-photo":
        a = page().copy()
        b = a.copy()
        pa, pb = _drifted((50, 300), 3)  # 15,000 px: under the sampling size
        a[500:550, 50:350], b[500:550, 50:350] = pa, pb
    else:
        a, b = page(), page("the quick brown cat", bg=(254, 255, 254))
    mask_with = np.zeros(b.shape[:2], np.uint8)
    with_bound = compare_images(a, b, Settings(), (), mask_with)
    _without_bound(monkeypatch)
    mask_without = np.zeros(b.shape[:2], np.uint8)
    assert compare_images(a, b, Settings(), (), mask_without) == with_bound
    assert np.array_equal(mask_with, mask_without)


def test_a_large_drifted_region_gets_a_sampled_contrast_close_to_the_exact_one(monkeypatch):
    a, b = _drifted((700, 600), 4)  # 420,000 differing pixels in one region
    # A change of one level reaches ΔE 2.35 on a few of these random colours: at 2.5 every
    # pixel is drift, so the whole photo is one region of the exact rules.
    settings = Settings(drift_delta_e=2.5)
    with_bound = compare_images(a, b, settings)
    _without_bound(monkeypatch)
    exact = compare_images(a, b, settings)
    assert with_bound.verdict == exact.verdict and with_bound.noise_pixels == exact.noise_pixels
    (got,), (want,) = with_bound.regions, exact.regions
    assert (got.box, got.kind, got.pixels, got.why) == (want.box, want.kind, want.pixels, want.why)
    assert got.pixels >= candidates.SAMPLE_STRIDE * candidates.MIN_SAMPLE
    assert abs(got.contrast - want.contrast) <= 0.05


def test_a_large_region_whose_percentile_lies_above_the_threshold_keeps_its_exact_contrast(monkeypatch):
    """Drift everywhere plus a strongly changed part (ignored here, as a dynamic area would be):
    the 95th percentile lies among the strong values, which are all known."""
    from reviewer.model import Box

    a, b = _drifted((200, 300), 5)  # 60,000 px: sampled size
    b[20:60, 20:200] = 255 - a[20:60, 20:200]  # 7,200 px, 12%: strongly changed
    ignore = (Box(20, 20, 180, 40),)
    assert drift_table.proven_drift(a.reshape(-1, 3), b.reshape(-1, 3), 2.0).mean() > 0.8  # mostly unknown values
    settings = Settings(drift_delta_e=2.5)  # every unignored pixel is drift (see above)
    with_bound = compare_images(a, b, settings, ignore)
    _without_bound(monkeypatch)
    exact = compare_images(a, b, settings, ignore)
    assert with_bound == exact
    (region,) = exact.regions
    assert region.contrast > settings.drift_delta_e
