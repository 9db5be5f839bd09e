"""Line re-captures up with the report's test image, even when their heights differ (pure).

Re-captures normally have exactly the test image's size (reviewer.engine cuts them as
BackstopJS does). When they do not (content whose height changes between loads: a carousel
slide with a longer caption, a random banner; or a page edited since BackstopJS ran), each
capture is lined up with the test image by the same row alignment `analyze` uses for pages
whose height changed (reviewer.imaging.align.align_rows): every capture row that has a
counterpart in the test image is moved to that row, the others are left out. Areas that
differ between captures are then found where the captures overlap, in test-image pixels, and
rows that some captures have at a place and others do not are dynamic as a whole band: the
content there moved between captures.

    warp(capture, test)                  -> Warp (capture rows placed on test rows) or a reason
    moving_areas(warps, settings)        -> dynamic areas, in test-image pixels
    to_capture(box, warp) / to_test(...) -> a box moved between the two, when one offset does it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from reviewer.config import Settings
from reviewer.imaging.align import Segment, align_rows, realign_same_height
from reviewer.model import Box

Img = NDArray[np.uint8]

# A capture lines up with the test image only when at least this share of the test image's
# rows occur, identical, in it. Between captures of the same build only dynamic rows differ
# (a clock: 2 %, a carousel: 20 %); a page that no longer looks like its test image (another
# deploy since BackstopJS ran, an error page) shares far less, and nothing found in it could
# be placed on the test image with confidence.
MIN_EQUAL_SHARE = 0.5


@dataclass(frozen=True)
class Warp:
    """A capture placed on the test image's rows."""

    image: Img  # test-image shape; rows without a counterpart are zero
    valid: NDArray[np.bool_]  # per test row: does the capture have this row?
    segments: tuple[Segment, ...]  # capture rows (r0, r1) -> test rows (t0, t1)
    equal_share: float  # share of test rows found identical in the capture
    same_size: bool  # lined up in place (the capture has the test image's size and rows)


def warp(capture: Img, test: Img) -> Warp | str:
    """`capture` placed on `test`'s rows, or why it cannot be."""
    th, tw = test.shape[:2]
    ch, cw = capture.shape[:2]
    if cw != tw:
        return (f"the page now renders {cw} px wide, the report's test image is {tw} px wide: "
                "rows cannot be lined up across widths")
    if ch == th:
        # Same size, the usual case. Still, content may have moved since BackstopJS ran (a
        # banner added above): then the rows are lined up as analyze lines up a pushed page, and
        # never compared in place, where a dynamic area would land on the wrong content.
        differing = (capture != test).any(axis=(1, 2))
        moved = realign_same_height(capture, test, differing)
        if moved is None:
            whole = Segment("compare", 0, th, 0, th)
            share = 1.0 - float(differing.mean()) if th else 0.0
            if share < MIN_EQUAL_SHARE:
                return _unlike(share, capture, test)
            return Warp(capture, np.ones(th, dtype=bool), (whole,), share, True)
        segments = tuple(moved)
    else:
        segments = tuple(align_rows(capture, test))
    image = np.zeros_like(test)
    valid = np.zeros(th, dtype=bool)
    equal = 0
    for s in segments:
        if s.kind in ("equal", "compare") and s.r1 - s.r0 == s.t1 - s.t0:
            image[s.t0: s.t1] = capture[s.r0: s.r1]
            valid[s.t0: s.t1] = True
            equal += (s.t1 - s.t0) if s.kind == "equal" else 0
    share = equal / th if th else 0.0
    if share < MIN_EQUAL_SHARE:
        return _unlike(share, capture, test)
    return Warp(image, valid, segments, share, False)


def _unlike(share: float, capture: Img, test: Img) -> str:
    (ch, cw), (th, tw) = capture.shape[:2], test.shape[:2]
    return (f"the page now renders at {cw}x{ch} (the report's test image is {tw}x{th}) and only {share:.0%} of the "
            f"test image's rows are found in it (at least {MIN_EQUAL_SHARE:.0%} needed): it no longer looks like "
            "its test image (redeployed since BackstopJS ran? an error page?), so nothing found in it can be placed "
            "there")


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def moving_areas(warps: Sequence[Warp], settings: Settings) -> list[Box]:
    """Areas that differ between the captures, in test-image pixels: visible differences where
    two captures both have the rows (the same noise rules as the main comparison), and whole
    bands where some captures have rows that others lack."""
    from reviewer.capture import dynamic_boxes  # the shared rule for "differs between captures"

    if len(warps) < 2:
        return []
    out: list[Box] = []
    first = warps[0]
    width = first.image.shape[1]
    for other in warps[1:]:
        both = first.valid & other.valid
        if both.all():
            a, b = first.image, other.image
        else:
            a, b = first.image.copy(), other.image.copy()
            a[~both] = 0
            b[~both] = 0
        out += dynamic_boxes([a, b], settings)
    somewhere = np.logical_or.reduce([w.valid for w in warps])
    everywhere = np.logical_and.reduce([w.valid for w in warps])
    out += [Box(0, t0, width, t1 - t0) for t0, t1 in _runs(somewhere & ~everywhere)]
    return out


def _segment_of(rows: tuple[int, int], segments: Sequence[Segment], *, on_test: bool) -> Segment | None:
    """The equal/compare segment holding all of `rows` (test rows if on_test, else capture rows)."""
    y0, y1 = rows
    for s in segments:
        if s.kind not in ("equal", "compare") or s.r1 - s.r0 != s.t1 - s.t0:
            continue
        a, b = (s.t0, s.t1) if on_test else (s.r0, s.r1)
        if a <= y0 and y1 <= b:
            return s
    return None


def to_capture(box: Box, w: Warp) -> tuple[Box, Segment] | None:
    """A test-image box in the capture's pixels, when one stretch of rows holds it whole."""
    s = _segment_of((box.y, box.y2), w.segments, on_test=True)
    if s is None:
        return None
    return Box(box.x, box.y - s.t0 + s.r0, box.w, box.h), s


def to_test(box: Box, s: Segment) -> Box:
    """A capture box (grown on the page) back in test-image pixels, cut to the stretch of rows
    it was moved through: beyond it, capture rows are not where the test image has them."""
    y0 = max(box.y, s.r0) - s.r0 + s.t0
    y1 = min(box.y2, s.r1) - s.r0 + s.t0
    return Box(box.x, y0, box.w, max(1, y1 - y0))
