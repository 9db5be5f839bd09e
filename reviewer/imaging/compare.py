"""Compare one reference/test pair: the five stages, in order.

    1. align       align.py       rows of the reference matched to rows of the test
    2. candidates  candidates.py  differing pixels, minus the exact rules (drift, ignored)
    3. regions     regions.py     candidate pixels grouped into areas
    4. judge       judge.py       each area and each one-sided band: visible or not, and why
    5. verdict     verdict.py     changed when anything visible remains, else noise

Pure: arrays and settings in, PairAnalysis out. File handling lives in reviewer.analyze.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
from numpy.typing import NDArray

from reviewer.config import Settings
from reviewer.imaging.align import Segment, align_rows, realign_same_height
from reviewer.imaging.candidates import differing_rows, scan_segment
from reviewer.imaging.judge import ISOLATION_PX, Criteria, judge_band, judge_candidate
from reviewer.imaging.regions import candidate_regions, exact_noise_regions, isolated
from reviewer.imaging.verdict import noise_counts, verdict_of
from reviewer.model import Box, PairAnalysis, Region, Verdict

Img = NDArray[np.uint8]

MAX_NOISE_REGIONS = 20
# Rows of the other image a thin band at the end is compared with (judge._same_edge).
TAIL_ROWS = 8

# Values of the mask that compare_images can fill, one per test-image pixel.
MASK_NONE, MASK_NOISE, MASK_CHANGED, MASK_INSERTED = 0, 1, 2, 3


def compare_images(
    ref: Img, test: Img, settings: Settings, ignore: tuple[Box, ...] = (), mask: Img | None = None
) -> PairAnalysis:
    """Compare two screenshots. When `mask` (uint8, test-image height x width) is given it is
    filled with MASK_* values so the review page can paint where the differences are."""
    if mask is not None and (mask.shape != test.shape[:2] or not mask.flags.c_contiguous):
        # It is written through flat views: a strided mask would silently stay empty.
        raise ValueError("mask must be a C-contiguous array of the test image's height x width")
    ref_size = (int(ref.shape[1]), int(ref.shape[0]))
    test_size = (int(test.shape[1]), int(test.shape[0]))
    same_shape = ref.shape == test.shape
    rows = differing_rows(ref, test) if same_shape else None
    if rows is not None and not rows.any():
        return PairAnalysis(Verdict.UNCHANGED, "pixel-identical", (), ref_size, test_size)

    criteria = Criteria.of(settings)
    judged: list[Region] = []
    exact: Counter[str] = Counter()
    # Regions discounted by the exact rules, computed only when the pair turns out to have
    # nothing significant to show, in page order.
    exact_regions: list[Callable[[], list[Region]]] = []
    w = min(ref.shape[1], test.shape[1])
    if ref.shape[1] != test.shape[1]:
        columns = _columns(ref, test, w, criteria)
        judged.append(columns)
        if mask is not None and test.shape[1] > w:
            mask[:, w:] = MASK_INSERTED if columns.significant else MASK_NOISE
    ref_c, test_c = ref[:, :w], test[:, :w]

    # A same-height page is realigned only when a block of rows appeared or vanished: content
    # pushed by a pixel or two is a move, judged in place.
    realigned = realign_same_height(ref_c, test_c, rows, 2 * criteria.benign_move_px) if rows is not None else None
    segments = realigned or align_rows(ref_c, test_c)
    for seg in segments:
        seg_rows = rows if (rows is not None and seg.kind == "compare" and seg.r0 == 0
                            and seg.r1 == ref.shape[0]) else None
        if seg.kind == "equal":
            seg_rows = differing_rows(ref_c[seg.r0 : seg.r1], test_c[seg.t0 : seg.t1])
            if not seg_rows.any():
                continue
        if seg.kind in ("inserted", "removed"):
            band = _band(ref_c, test_c, seg, criteria)
            if mask is not None and seg.kind == "inserted":
                mask[seg.t0 : seg.t1, :w] = MASK_INSERTED if band.significant else MASK_NOISE
            judged.append(band)
            continue
        a, b = ref_c[seg.r0 : seg.r1], test_c[seg.t0 : seg.t1]
        seg_ignore = tuple(Box(i.x, i.y - seg.t0, i.w, i.h) for i in ignore)
        if seg_rows is None:
            seg_rows = differing_rows(a, b)
        scan = scan_segment(a, b, seg_rows, settings.drift_delta_e, seg_ignore, settings.merge_distance_px,
                            mask, MASK_NOISE, seg.t0)
        exact.update({k: n for k, n in scan.counts().items() if k != "candidate"})
        cands = candidate_regions(scan, (b.shape[0], b.shape[1]), settings.merge_distance_px)
        for cand, alone in zip(cands, isolated([c.box for c in cands], ISOLATION_PX), strict=True):
            result = judge_candidate(a, b, cand, criteria, seg.t0, alone)
            judged += result.regions
            if mask is not None and result.changed_ys.size:
                mask.reshape(-1)[(result.changed_ys + seg.t0) * mask.shape[1] + result.changed_xs] = MASK_CHANGED
        if scan.n > scan.cand_pos.size:
            exact_regions.append(partial(exact_noise_regions, a, b, scan, seg.t0, settings.merge_distance_px,
                                         settings.drift_delta_e))

    noise = noise_counts(judged, exact)
    verdict, reason = verdict_of(judged, noise)
    significant = [r for r in judged if r.significant]
    if significant:
        shown = significant
    else:
        discounted = judged + [r for make in exact_regions for r in make()]
        shown = sorted(discounted, key=lambda r: -r.pixels)[:MAX_NOISE_REGIONS]
    ssims = [r.ssim for r in significant if r.ssim is not None]
    return PairAnalysis(
        verdict=verdict,
        reason=reason,
        regions=tuple(sorted(shown, key=lambda r: (r.box.y, r.box.x))),
        ref_size=ref_size,
        test_size=test_size,
        changed_pixels=sum(r.pixels for r in significant),
        noise_pixels=noise,
        ssim=min(ssims) if ssims else None,
    )


def _band(ref: Img, test: Img, seg: Segment, criteria: Criteria) -> Region:
    """A band of rows found on one side only, judged."""
    w = test.shape[1]
    if seg.kind == "inserted":
        edge = ref[-TAIL_ROWS:] if seg.t1 >= test.shape[0] and ref.shape[0] else None
        return judge_band(test[seg.t0 : seg.t1], test, (seg.t0, seg.t1), True,
                          Box(0, seg.t0, w, seg.t1 - seg.t0), seg.r0, criteria, edge)
    edge = test[-TAIL_ROWS:] if seg.r1 >= ref.shape[0] and test.shape[0] else None
    line = Box(0, min(seg.t0, max(test.shape[0] - 1, 0)), w, 1)
    return judge_band(ref[seg.r0 : seg.r1], ref, (seg.r0, seg.r1), False, line, seg.r0, criteria, edge)


def _columns(ref: Img, test: Img, w: int, criteria: Criteria) -> Region:
    """Columns one image has and the other has not (always at the right edge), judged like rows
    found on one side only."""
    wider, other = (test, ref) if test.shape[1] > w else (ref, test)
    band = np.swapaxes(wider[:, w:], 0, 1)
    page = np.swapaxes(wider, 0, 1)
    edge = np.swapaxes(other[:, max(0, w - TAIL_ROWS) : w], 0, 1) if w > 0 else None
    if wider is test:
        box = Box(w, 0, test.shape[1] - w, test.shape[0])
        return judge_band(band, page, (w, wider.shape[1]), True, box, 0, criteria, edge, "column")
    box = Box(max(w - 1, 0), 0, 1, test.shape[0])
    region = judge_band(band, page, (w, wider.shape[1]), False, box, 0, criteria, edge, "column")
    return replace(region, ref_y=0, ref_h=int(ref.shape[0]))
