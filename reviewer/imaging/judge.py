"""Stage 4: judge each region. Would a person flipping between the two screenshots see it?

This is the one place where "is this difference visible?" is decided. Every region formed from
candidate pixels (regions.py) and every band of rows the alignment found only on one side comes
here, with its evidence, and leaves as Regions that say `significant` or not, and why.

A candidate region is seen through the perceptual model (perceive.py: both crops as the eye sees
them at `pixels_per_degree`) and measured twice at each of its pixels:

  - its structure difference, allowing moves of up to `subpixel_tolerance_px`: counts from
    STRUCTURE (L* contrast), or from SPOT when the region is a lone spot (at most
    SPOT_PIXELS differing pixels with no other difference within ISOLATION_PX): a glyph that
    changes in a still page pops out; the same change amid a whole paragraph's re-rendering does
    not stand out of it;
  - when the region is a recolouring (same outlines, new colours: evidence.kind_of), its colour
    difference as seen: counts from COLOUR (CIEDE2000).

Each is divided by its threshold (and multiplied by `sensitivity`): the larger is the pixel's
visibility, and pixels at 1 or more are significant, grouped again into the visible regions a
reviewer is shown. A region with none is discounted as `invisible`, with the visibility it had.
The thresholds were set on the tune half of fixtures/calibration and checked on its holdout
half (benchmarks/judgment.py prints both).

Before that, a region that is content moved by whole pixels with nothing else changed (its moved
reference is invisible against the test) is a `shift`, significant only when the move is larger
than BENIGN_MOVE_ARCMIN of visual angle. A band of rows that exists on one side only is
significant unless it is blank (the page's background colour, nothing drawn in it) and either at
the very end of the page, up to BLANK_END_ROWS rows, or thin enough to be a benign move of what
follows it.

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
from reviewer.imaging.evidence import band_contrast, find_shift, kind_of, new_colours, region_ssim, same_structure
from reviewer.imaging.perceive import Viewing, colour_difference, reach, seen, structure_difference
from reviewer.imaging.regions import Candidate, crop, group_pixels, pad_box
from reviewer.model import Box, Region, RegionKind

Img = NDArray[np.uint8]

# Where a difference starts to count, at sensitivity 1 (see the module's docstring). Derived from
# the tune half of fixtures/calibration alone by `benchmarks/judgment.py --derive` (each midway,
# as a geometric mean, between the strongest benign and the weakest real value of its channel
# there), then checked on the holdout half.
STRUCTURE = 5.1  # (1 - SSIM) x contrast, L* units
SPOT = 1.2  # the same, for a lone spot
COLOUR = 3.1  # CIEDE2000 between the seen colours of a recoloured region
# A lone spot: a region of at most SPOT_PIXELS differing pixels (a few glyphs) with no other
# difference within ISOLATION_PX (four merge distances: the rest of the line is untouched).
SPOT_PIXELS = 256
ISOLATION_PX = 48
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
    sensitivity: float
    benign_move_px: int
    drift_delta_e: float
    merge_px: int
    max_shift_px: int

    @classmethod
    def of(cls, settings: Settings) -> Criteria:
        ppd = settings.pixels_per_degree
        return cls(
            viewing=Viewing(ppd, settings.subpixel_tolerance_px),
            sensitivity=settings.sensitivity,
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


def judge_candidate(a: Img, b: Img, cand: Candidate, c: Criteria, t0: int = 0, isolated: bool = False) -> Judged:
    """Judge one candidate region of a segment (`a`, `b`: the segment's rows; `t0`: its first
    row in the test image, added to the boxes; `isolated`: no other difference near it)."""
    h, w = b.shape[:2]
    padded = pad_box(cand.box, reach(c.viewing), w, h)
    ys, xs = cand.ys - padded.y, cand.xs - padded.x
    seen_a = seen(crop(a, padded), c.viewing.pixels_per_degree)
    seen_b = seen(crop(b, padded), c.viewing.pixels_per_degree)
    spot = isolated and cand.ys.size <= SPOT_PIXELS
    structure_at = SPOT if spot else STRUCTURE
    structure = structure_difference(seen_a, seen_b, ys, xs, c.viewing.tolerance, structure_at / c.sensitivity)
    vis = structure * np.float32(c.sensitivity / structure_at)
    recoloured = recolouring(a, b, cand)
    colour = colour_difference(seen_a, seen_b, ys, xs, c.viewing.tolerance) if recoloured else None
    if colour is not None:
        vis = np.maximum(vis, colour * np.float32(c.sensitivity / COLOUR))
    visible = vis >= 1.0
    contrast = _contrast(cand.delta_e)
    if not visible.any():
        lost = _lost_at_edge(a, b, cand, c, t0)
        if lost is not None:
            return lost
        peak = float(vis.max()) if vis.size else 0.0
        measured = ("structure" + (", colour" if recoloured else ""))
        region = Region(_shifted(cand.box, t0), RegionKind.INVISIBLE, int(cand.ys.size), contrast, None,
                        significant=False, visibility=round(peak, 3),
                        why=f"invisible: at most {peak:.2f} of what a person notices ({measured}; seen at "
                            f"{c.viewing.pixels_per_degree:g} px/°, moves up to {c.viewing.tolerance} px allowed)")
        empty = np.zeros(0, dtype=np.intp)
        return Judged((region,), empty, empty)
    moved = _pure_move(a, b, cand, c)
    if moved is not None:
        return _moved(cand, moved, c, t0)
    vys, vxs, vals = cand.ys[visible], cand.xs[visible], vis[visible]
    seen_colour = colour[visible] if colour is not None else None
    regions = []
    for box, idx in group_pixels(vys, vxs, (h, w), c.merge_px):
        # The kind is read from every differing pixel of the part, not only the visible ones:
        # a handful of them can match some small move by chance.
        inside = (cand.ys >= box.y) & (cand.ys < box.y2) & (cand.xs >= box.x) & (cand.xs < box.x2)
        kind, what = kind_of(a, b, cand.ys[inside], cand.xs[inside], box, c.max_shift_px)
        peak = float(vals[idx].max())
        if seen_colour is not None and float(seen_colour[idx].max()) * c.sensitivity / COLOUR >= peak:
            how = f"colour as seen differs by ΔE {float(seen_colour[idx].max()):.0f} (counts from {COLOUR:g})"
        else:
            how = (f"shapes differ by {float(structure[visible][idx].max()):.1f} "
                   f"(counts from {structure_at:g}{', a lone spot' if spot else ''})")
        around = pad_box(box, 3, w, h)
        regions.append(Region(
            _shifted(box, t0), kind, int(idx.size), _contrast(cand.delta_e[visible][idx]),
            region_ssim(crop(a, around), crop(b, around)), significant=True, visibility=round(peak, 3),
            why=f"visible: {peak:.1f}x what a person notices over {idx.size:,} px; {how}; {what}",
        ))
    return Judged(tuple(regions), vys.astype(np.intp), vxs.astype(np.intp))


def recolouring(a: Img, b: Img, cand: Candidate) -> bool:
    """The region keeps its outlines and takes new colours (a link, a heading, a background)."""
    h, w = b.shape[:2]
    padded = pad_box(cand.box, 2, w, h)
    ref_crop, test_crop = crop(a, padded), crop(b, padded)
    return same_structure(ref_crop, test_crop) and new_colours(ref_crop, b[cand.ys, cand.xs])


def _contrast(delta_e: NDArray[np.float32]) -> float:
    known = delta_e[delta_e >= 0]
    return round(float(np.percentile(known, 95)), 2) if known.size else 0.0


def _shifted(box: Box, t0: int) -> Box:
    return Box(box.x, box.y + t0, box.w, box.h)


def _pure_move(a: Img, b: Img, cand: Candidate, c: Criteria) -> tuple[int, int] | None:
    """The whole-pixel move (dy, dx) that explains the region, when the reference moved by it
    shows no visible structure difference against the test: the content moved and nothing else
    changed."""
    move = find_shift(a, b, cand.ys, cand.xs, c.max_shift_px)
    if move is None:
        return None
    dy, dx = move
    h, w = b.shape[:2]
    box = pad_box(cand.box, reach(c.viewing), w, h)
    # The reference's pixels that the test's box shows after the move; the box shrinks where
    # they would lie outside the reference.
    y0, y1 = max(box.y, dy), min(box.y2, h + dy)
    x0, x1 = max(box.x, dx), min(box.x2, w + dx)
    if y1 - y0 < 3 or x1 - x0 < 3:
        return None
    inside = (cand.ys >= y0) & (cand.ys < y1) & (cand.xs >= x0) & (cand.xs < x1)
    if not inside.any() or _pushes_out(a, cand.box, dy, dx, c.drift_delta_e):
        return None
    ppd = c.viewing.pixels_per_degree
    left = structure_difference(seen(a[y0 - dy : y1 - dy, x0 - dx : x1 - dx], ppd), seen(b[y0:y1, x0:x1], ppd),
                                cand.ys[inside] - y0, cand.xs[inside] - x0, c.viewing.tolerance,
                                STRUCTURE / c.sensitivity)
    return move if float(left.max()) * c.sensitivity < STRUCTURE else None


def _lost_at_edge(a: Img, b: Img, cand: Candidate, c: Criteria, t0: int) -> Judged | None:
    """A region at the image's edge that is content moved by whole pixels, pushing something
    visible out of a fixed-size screenshot: what left the image is a change, even though what
    stayed only moved a little (which the move allowance does not see)."""
    box, (h, w) = cand.box, b.shape[:2]
    if not (box.y == 0 or box.y2 == h or box.x == 0 or box.x2 == w):
        return None
    move = find_shift(a, b, cand.ys, cand.xs, c.max_shift_px)
    if move is None or not _pushes_out(a, box, move[0], move[1], c.drift_delta_e):
        return None
    dy, dx = move
    region = Region(_shifted(box, t0), RegionKind.SHIFT, int(cand.ys.size), _contrast(cand.delta_e), None,
                    significant=True, visibility=None,
                    why=f"content moved by {dx:+d} px horizontally, {dy:+d} px vertically and pushed something "
                        "visible out of the image")
    return Judged((region,), cand.ys.astype(np.intp), cand.xs.astype(np.intp))


def _pushes_out(a: Img, box: Box, dy: int, dx: int, threshold: float) -> bool:
    """The move pushes something visible out of the image (a rule along the bottom of a
    fixed-height screenshot): the reference's rows or columns that leave it are not blank."""
    h, w = a.shape[:2]
    x0, x1, y0, y1 = box.x, box.x2, box.y, box.y2
    gone = []
    if dy > 0 and y1 + dy > h:
        gone.append(a[h - dy : h, x0:x1])
    if dy < 0 and y0 + dy < 0:
        gone.append(a[0:-dy, x0:x1])
    if dx > 0 and x1 + dx > w:
        gone.append(a[y0:y1, w - dx : w])
    if dx < 0 and x0 + dx < 0:
        gone.append(a[y0:y1, 0:-dx])
    step = max(1, h * w // 200_000)
    background = a.reshape(-1, 3)[::step]  # its commonest colour: the page's background
    return any(part.size and band_contrast(part, background) >= threshold for part in gone)


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
               c: Criteria, other_tail: Img | None = None, unit: str = "row") -> Region:
    """Judge rows that exist on one side only. `page` is the image the band belongs to (the test
    image for inserted rows, the reference for removed ones), `span` its rows there; `box` is
    where the band goes in the test image; `other_tail`, for a band at the end, the other
    image's last rows: an element captured a pixel taller ends on the same border, spread over
    one more row. Columns are judged the same way, transposed (`unit="column"`)."""
    rows = band.shape[0]
    start, stop = span
    contrast = band_contrast(band, _neighbour_row(page, start, stop))
    kind = RegionKind.INSERTED if inserted else RegionKind.REMOVED
    where = "only in the test image" if inserted else "only in the reference"
    blank = contrast < c.drift_delta_e or _blank(band, page, span, c.drift_delta_e)
    at_end = stop >= page.shape[0] and start > 0
    ref_h = 0 if inserted else rows
    pixels = int(band.shape[0] * band.shape[1])
    n = f"{rows} {unit}(s)"

    def region(significant: bool, why: str) -> Region:
        return Region(box, kind, pixels, contrast, None, significant=significant, visibility=None,
                      ref_y=ref_y, ref_h=ref_h, why=why)

    if blank and at_end and rows <= BLANK_END_ROWS:
        return region(False, f"{n} of background colour {where}, at the end of the page: nothing drawn in them")
    if blank and rows <= c.benign_move_px:
        return region(False, f"{n} of background colour {where}: what follows moved by {rows} px, "
                             "too little to matter")
    if rows <= ROUNDING_ROWS and (_blends_in(band, page, span, c.drift_delta_e) or (
            at_end and other_tail is not None and _same_edge(page[:stop], other_tail, rows, c))):
        return region(False, f"{n} {where} that look like their neighbours: layout rounding")
    if blank:
        return region(True, f"{n} of background colour {where}: what follows moved by {rows} px")
    return region(True, f"{n} {where}, contrast ΔE {contrast:.0f} against the page around them")


def _same_edge(page: Img, other_tail: Img, rows: int, c: Criteria) -> bool:
    """The last rows of `page`, `rows` more than the other image has, show the same edge as the
    other image's last rows, seen and allowing moves of up to a pixel: a border that a box at a
    fractional position spreads over one more row."""
    k = min(other_tail.shape[0], page.shape[0] - rows)
    if k < 2 or other_tail.shape[1] != page.shape[1]:
        return False
    mine = page[-(k + rows):]
    theirs = np.concatenate([other_tail[-k:], np.repeat(other_tail[-1:], rows, axis=0)])
    ppd = c.viewing.pixels_per_degree
    ys, xs = (v.reshape(-1) for v in np.indices((k + rows, mine.shape[1])))
    left = structure_difference(seen(theirs, ppd), seen(mine, ppd), ys, xs, max(1, c.viewing.tolerance),
                                STRUCTURE / c.sensitivity)
    return float(left.max()) * c.sensitivity < STRUCTURE


def _blank(band: Img, page: Img, span: tuple[int, int], threshold: float) -> bool:
    """Nothing is drawn in the band: the page's background extended. Either one colour
    throughout, the page's commonest colour; or every row the same, a row the page has
    elsewhere (a sidebar's background beside the white of the text column). (A band the colour
    of the rows next to it is blank too: judge_band.)"""
    if not (band == band[:1]).all():
        return False
    if band_contrast(band) < threshold:
        step = max(1, page.shape[0] * page.shape[1] // 200_000)
        if band_contrast(band.reshape(-1, 3)[:1], page.reshape(-1, 3)[::step]) < threshold:
            return True
    start, stop = span
    rest = np.concatenate([page[:start], page[stop:]])
    return bool((rest == band[:1]).all(axis=(1, 2)).any())


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
