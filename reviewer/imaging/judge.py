"""Stage 4: judge each region. Would a person flipping between the two screenshots see it?

This is the one place where "is this difference visible?" is decided. Every region formed from
candidate pixels (regions.py) and every band of rows the alignment found only on one side comes
here, with its evidence, and leaves as Regions that say `significant` or not, and why.

A candidate region is judged by the perceptual model (perceive.py): both crops as the eye sees
them at `pixels_per_degree`, allowing moves of up to `subpixel_tolerance_px`, compared in
CIEDE2000. Its candidate pixels whose visible difference reaches the threshold (config's
`VISIBLE_DELTA_E` divided by `sensitivity`) are significant, grouped again into the visible regions a reviewer is
shown; a region with none is discounted as `invisible`, with the largest visible difference it
had. Before that, a region that is content moved by whole pixels with nothing else changed (its
moved reference is invisible against the test) is a `shift`, significant only when the move is
larger than `BENIGN_MOVE_ARCMIN` of visual angle.

A band of rows that exists on one side only is significant unless it is blank (the colour of
the page around it, nothing drawn in it) and either at the very end of the page, up to
`BLANK_END_ROWS` rows, or thin enough to be a benign move of what follows it.

Not judged here: byte- and pixel-identical pairs, pixels below the drift threshold and pixels
inside ignore regions (candidates.py: those rules are exact), and re-capture's dynamic regions
(capture.py marks them; verdict.py counts them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from reviewer.config import Settings
from reviewer.imaging.evidence import band_contrast, find_shift, kind_of, region_ssim
from reviewer.imaging.perceive import Viewing, reach, visible_difference
from reviewer.imaging.regions import Candidate, crop, group_pixels, pad_box
from reviewer.model import Box, Region, RegionKind

Img = NDArray[np.uint8]

# A pure move of content by this much visual angle or less is not a change worth holding a
# release for (2 px at the default 47 px/°).
BENIGN_MOVE_ARCMIN = 3.0
# A blank band at the end of the page (the page grew by empty rows) is discounted up to this
# height; a taller empty area at the end is a layout change a reviewer should see.
BLANK_END_ROWS = 100
# A band of at most this many rows that looks like the row above or below it is layout
# rounding (a fractional height), wherever it is.
ROUNDING_ROWS = 2


@dataclass(frozen=True)
class Criteria:
    """What the judge needs from the settings."""

    viewing: Viewing
    threshold: float  # visible difference at which a pixel counts
    benign_move_px: int
    drift_delta_e: float
    merge_px: int
    max_shift_px: int

    @classmethod
    def of(cls, settings: Settings) -> Criteria:
        ppd = settings.pixels_per_degree
        return cls(
            viewing=Viewing(ppd, settings.subpixel_tolerance_px),
            threshold=settings.visible_threshold,
            benign_move_px=math.floor(BENIGN_MOVE_ARCMIN / 60.0 * ppd),
            drift_delta_e=settings.drift_delta_e,
            merge_px=settings.merge_distance_px,
            max_shift_px=settings.max_shift_px,
        )


@dataclass(frozen=True)
class Judged:
    """The regions a candidate region became, and its pixels that count (segment coordinates)."""

    regions: tuple[Region, ...]
    changed_ys: NDArray[np.intp]
    changed_xs: NDArray[np.intp]


def judge_candidate(a: Img, b: Img, cand: Candidate, c: Criteria, t0: int = 0) -> Judged:
    """Judge one candidate region of a segment (`a`, `b`: the segment's rows; `t0`: its first
    row in the test image, added to the boxes)."""
    moved = _pure_move(a, b, cand, c)
    if moved is not None:
        return _moved(cand, moved, c, t0)
    margin = reach(c.viewing)
    padded = pad_box(cand.box, margin, b.shape[1], b.shape[0])
    at = visible_difference(crop(a, padded), crop(b, padded), c.viewing, cand.ys - padded.y, cand.xs - padded.x)
    visible = at >= c.threshold
    contrast = _contrast(cand.delta_e)
    if not visible.any():
        peak = float(at.max()) if at.size else 0.0
        region = Region(_shifted(cand.box, t0), RegionKind.INVISIBLE, int(cand.ys.size), contrast, None,
                        significant=False, visibility=round(peak, 2),
                        why=f"invisible: largest visible difference {peak:.1f} < {c.threshold:g} "
                            f"(seen at {c.viewing.pixels_per_degree:g} px/°, moves up to "
                            f"{c.viewing.tolerance} px allowed)")
        empty = np.zeros(0, dtype=np.intp)
        return Judged((region,), empty, empty)
    ys, xs, vals = cand.ys[visible], cand.xs[visible], at[visible]
    regions = []
    for box, idx in group_pixels(ys, xs, (b.shape[0], b.shape[1]), c.merge_px):
        kind, what = kind_of(a, b, ys[idx], xs[idx], box, c.max_shift_px)
        peak = float(vals[idx].max())
        around = pad_box(box, 3, b.shape[1], b.shape[0])
        regions.append(Region(
            _shifted(box, t0), kind, int(idx.size), _contrast(cand.delta_e[visible][idx]),
            region_ssim(crop(a, around), crop(b, around)), significant=True, visibility=round(peak, 2),
            why=f"visible difference {peak:.0f} over {idx.size:,} px (threshold {c.threshold:g}): {what}",
        ))
    return Judged(tuple(regions), ys.astype(np.intp), xs.astype(np.intp))


def _contrast(delta_e: NDArray[np.float32]) -> float:
    known = delta_e[delta_e >= 0]
    return round(float(np.percentile(known, 95)), 2) if known.size else 0.0


def _shifted(box: Box, t0: int) -> Box:
    return Box(box.x, box.y + t0, box.w, box.h)


def _pure_move(a: Img, b: Img, cand: Candidate, c: Criteria) -> tuple[int, int] | None:
    """The whole-pixel move (dy, dx) that explains the region, when the reference moved by it is
    invisible against the test: the content moved and nothing else changed."""
    move = find_shift(a, b, cand.ys, cand.xs, c.max_shift_px)
    if move is None:
        return None
    dy, dx = move
    h, w = b.shape[:2]
    margin = reach(c.viewing)
    box = pad_box(cand.box, margin, w, h)
    # The reference's pixels that the test's box shows after the move; the box shrinks where
    # they would lie outside the reference.
    y0, y1 = max(box.y, dy), min(box.y2, h + dy)
    x0, x1 = max(box.x, dx), min(box.x2, w + dx)
    if y1 - y0 < 3 or x1 - x0 < 3:
        return None
    src = a[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    inside = (cand.ys >= y0) & (cand.ys < y1) & (cand.xs >= x0) & (cand.xs < x1)
    if not inside.any():
        return None
    at = visible_difference(src, b[y0:y1, x0:x1], c.viewing, cand.ys[inside] - y0, cand.xs[inside] - x0)
    return move if float(at.max()) < c.threshold else None


def _moved(cand: Candidate, move: tuple[int, int], c: Criteria, t0: int) -> Judged:
    dy, dx = move
    far = max(abs(dy), abs(dx))
    significant = far > c.benign_move_px
    arcmin = far / c.viewing.pixels_per_degree * 60.0
    what = f"content moved by {dx:+d} px horizontally, {dy:+d} px vertically, nothing else changed"
    why = (f"{what}: a move of {far} px ({arcmin:.1f} arcmin) is seen" if significant
           else f"{what}: a move of {far} px ({arcmin:.1f} arcmin) is too small to matter")
    region = Region(_shifted(cand.box, t0), RegionKind.SHIFT, int(cand.ys.size), _contrast(cand.delta_e), None,
                    significant=significant, visibility=None, why=why)
    if significant:
        return Judged((region,), cand.ys.astype(np.intp), cand.xs.astype(np.intp))
    empty = np.zeros(0, dtype=np.intp)
    return Judged((region,), empty, empty)


def judge_band(band: Img, page: Img, span: tuple[int, int], inserted: bool, box: Box, ref_y: int,
               c: Criteria) -> Region:
    """Judge rows that exist on one side only. `page` is the image the band belongs to (the test
    image for inserted rows, the reference for removed ones), `span` its rows there; `box` is
    where the band goes in the test image."""
    rows = band.shape[0]
    start, stop = span
    contrast = band_contrast(band, _neighbour_row(page, start, stop))
    kind = RegionKind.INSERTED if inserted else RegionKind.REMOVED
    where = "only in the test image" if inserted else "only in the reference"
    blank = contrast < c.drift_delta_e
    at_end = stop >= page.shape[0] and start > 0
    ref_h = 0 if inserted else rows
    pixels = int(band.shape[0] * band.shape[1])

    def region(significant: bool, why: str) -> Region:
        return Region(box, kind, pixels, contrast, None, significant=significant, visibility=None,
                      ref_y=ref_y, ref_h=ref_h, why=why)

    if blank and at_end and rows <= BLANK_END_ROWS:
        return region(False, f"{rows} blank row(s) {where}, at the end of the page: nothing visible changed")
    if blank and rows <= c.benign_move_px:
        return region(False, f"{rows} blank row(s) {where}: what follows moved by {rows} px, too little to matter")
    if rows <= ROUNDING_ROWS and _blends_in(band, page, span, c.drift_delta_e):
        return region(False, f"{rows} row(s) {where} that look like the rows next to them: layout rounding")
    if blank:
        return region(True, f"{rows} blank row(s) {where}: what follows moved by {rows} px")
    return region(True, f"{rows} row(s) {where}, contrast ΔE {contrast:.0f} against the page around them")


def _blends_in(band: Img, img: Img, span: tuple[int, int], threshold: float) -> bool:
    """A thin band no one can tell from the row just above it or the row just below it: where
    in a run of identical rows the alignment put it is arbitrary (the top of a white gap, under
    a heading's edge, is as good a place as its middle), so either side may vouch for it."""
    start, stop = span
    sides = [img[start - 1]] if start > 0 else []
    if stop < img.shape[0]:
        sides.append(img[stop])
    return any(band_contrast(band, side) < threshold for side in sides or [img[0]])


def _neighbour_row(img: Img, start: int, stop: int) -> Img:
    """The row just above a band (or just below it at the top): the page around the band."""
    if start > 0:
        return img[start - 1]
    if stop < img.shape[0]:
        return img[stop]
    return img[0]
