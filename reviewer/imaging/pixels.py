"""Per-pixel classification of differences between two aligned images of the same shape.

Every pixel whose bytes differ is sorted, in this order, into exactly one class:

  IGNORED    inside a configured ignore rectangle;
  DRIFT      the colours differ by less than `drift_delta_e` (CIEDE2000): nobody can see it;
  ANTIALIAS  pixelmatch's anti-aliasing detector (Kotsalis, "Anti-aliased pixel and intensity
             slope detector", 2009) says the pixel is an anti-aliased edge in either image;
  SUBPIXEL   the pixel's colour is found within `subpixel_tolerance_px` in the other image,
             in both directions: an edge that moved by less than a pixel;
  SIGNIFICANT everything else: a difference a person can see.

All work is done on the differing pixels only (as coordinate lists), so a tall page with a
one-word change costs little more than finding the changed rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, rgb2lab

from reviewer.model import Box

SIGNIFICANT, IGNORED, DRIFT, ANTIALIAS, SUBPIXEL = 0, 1, 2, 3, 4
CLASS_NAMES = {SIGNIFICANT: "significant", IGNORED: "ignored", DRIFT: "drift", ANTIALIAS: "antialias",
               SUBPIXEL: "subpixel"}

# pixelmatch's default colour threshold (0.1) expressed as its squared YIQ distance:
# 35215 is the largest possible YIQ delta between two colours.
SAME_COLOUR_YIQ = 35215 * 0.1 * 0.1
# Rounding in the browser's resampling can put a blended shade a few levels outside the range.
SUBPIXEL_SLACK = 4

Img = NDArray[np.uint8]
Idx = NDArray[np.intp]


@dataclass(frozen=True)
class PixelDiff:
    """Differing pixels of one block, as parallel arrays (coordinates relative to the block)."""

    ys: Idx
    xs: Idx
    delta_e: NDArray[np.float32]
    cls: NDArray[np.uint8]

    @property
    def significant(self) -> NDArray[np.bool_]:
        return self.cls == SIGNIFICANT

    def counts(self) -> dict[str, int]:
        binc = np.bincount(self.cls, minlength=5)
        return {CLASS_NAMES[i]: int(binc[i]) for i in range(5) if binc[i]}


def empty_diff() -> PixelDiff:
    z = np.zeros(0, dtype=np.intp)
    return PixelDiff(z, z.copy(), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.uint8))


def classify_pixels(
    a: Img,
    b: Img,
    *,
    drift_delta_e: float,
    detect_antialiasing: bool,
    subpixel_tolerance_px: int,
    subpixel_match_threshold: float = 0.1,
    ignore: tuple[Box, ...] = (),
) -> PixelDiff:
    """Classify every differing pixel of `a` (reference) and `b` (test), same shape."""
    ys, xs = np.nonzero((a != b).any(axis=2))
    if ys.size == 0:
        return empty_diff()
    cls = np.full(ys.size, SIGNIFICANT, dtype=np.uint8)
    delta_e = colour_delta_e(a[ys, xs], b[ys, xs])

    for box in ignore:
        inside = (xs >= box.x) & (xs < box.x2) & (ys >= box.y) & (ys < box.y2)
        cls[inside] = IGNORED
    open_ = cls == SIGNIFICANT
    cls[open_ & (delta_e < drift_delta_e)] = DRIFT

    if detect_antialiasing:
        open_ = np.flatnonzero(cls == SIGNIFICANT)
        if open_.size:
            py, px = ys[open_], xs[open_]
            aa = antialiased(a, b, py, px) | antialiased(b, a, py, px)
            cls[open_[aa]] = ANTIALIAS

    if subpixel_tolerance_px > 0:
        open_ = np.flatnonzero(cls == SIGNIFICANT)
        if open_.size:
            py, px = ys[open_], xs[open_]
            r = subpixel_tolerance_px
            moved = within_range(b, a, py, px, r, SUBPIXEL_SLACK) & within_range(a, b, py, px, r, SUBPIXEL_SLACK)
            cls[open_[moved]] = SUBPIXEL
    return PixelDiff(ys, xs, delta_e, cls)


def colour_delta_e(ca: Img, cb: Img) -> NDArray[np.float32]:
    """CIEDE2000 between colour lists (N, 3), computed once per distinct colour pair.

    Screenshots have few distinct colours, so deduplicating first makes a large diff cheap.
    """
    if ca.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    packed = (_pack(ca).astype(np.uint64) << np.uint64(24)) | _pack(cb).astype(np.uint64)
    uniq, inverse = np.unique(packed, return_inverse=True)
    ua = _unpack((uniq >> np.uint64(24)).astype(np.uint32))
    ub = _unpack((uniq & np.uint64(0xFFFFFF)).astype(np.uint32))
    lab_a = rgb2lab(ua[:, None, :].astype(np.float64) / 255.0)[:, 0, :]
    lab_b = rgb2lab(ub[:, None, :].astype(np.float64) / 255.0)[:, 0, :]
    de = deltaE_ciede2000(lab_a, lab_b).astype(np.float32)
    return de[inverse.reshape(-1)]


def _pack(c: Img) -> NDArray[np.uint32]:
    c32 = c.astype(np.uint32)
    return ((c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]).astype(np.uint32)


def _unpack(p: NDArray[np.uint32]) -> Img:
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=1).astype(np.uint8)


# The 8 neighbours in pixelmatch's visiting order (x outer, y inner), so ties break the same way.
_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]


def _luma(img: Img, ys: Idx, xs: Idx) -> NDArray[np.float64]:
    c = img[ys, xs].astype(np.float64)
    return c[..., 0] * 0.29889531 + c[..., 1] * 0.58662247 + c[..., 2] * 0.11448223


def antialiased(img: Img, other: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """pixelmatch's `antialiased(img, x, y, ..., other)` for many pixels at once.

    A pixel is anti-aliased when, among its 8 neighbours in `img`, at most two have the same
    brightness, it has both a darker and a brighter neighbour, and the darkest or the
    brightest neighbour sits in a flat area (3+ identical neighbours) in both images:
    i.e. it is an intermediate shade on the edge between two solid areas.
    """
    h, w = img.shape[:2]
    on_edge = (xs == 0) | (xs == w - 1) | (ys == 0) | (ys == h - 1)
    zeroes = on_edge.astype(np.int32)
    centre = _luma(img, ys, xs)
    lo = np.zeros(ys.size)
    hi = np.zeros(ys.size)
    lo_y, lo_x = ys.copy(), xs.copy()
    hi_y, hi_x = ys.copy(), xs.copy()
    for dx, dy in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        cy, cx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        delta = np.where(valid, centre - _luma(img, cy, cx), np.nan)
        zeroes += valid & (delta == 0)
        darker = valid & (delta < lo)
        lo = np.where(darker, delta, lo)
        lo_y, lo_x = np.where(darker, cy, lo_y), np.where(darker, cx, lo_x)
        brighter = valid & (delta > hi) & ~darker
        hi = np.where(brighter, delta, hi)
        hi_y, hi_x = np.where(brighter, cy, hi_y), np.where(brighter, cx, hi_x)
    candidate = (zeroes <= 2) & (lo != 0) & (hi != 0)
    result = np.zeros(ys.size, dtype=bool)
    idx = np.flatnonzero(candidate)
    if idx.size == 0:
        return result
    ly, lx, hy, hx = lo_y[idx], lo_x[idx], hi_y[idx], hi_x[idx]
    flat_lo = many_siblings(img, ly, lx) & many_siblings(other, ly, lx)
    flat_hi = many_siblings(img, hy, hx) & many_siblings(other, hy, hx)
    result[idx] = flat_lo | flat_hi
    return result


def many_siblings(img: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """True where 3 or more of the 8 neighbours have exactly the pixel's colour."""
    h, w = img.shape[:2]
    count = ((xs == 0) | (xs == w - 1) | (ys == 0) | (ys == h - 1)).astype(np.int32)
    centre = img[ys, xs]
    for dx, dy in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        same = (img[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)] == centre).all(axis=1)
        count += valid & same
    return count > 2


def _yiq_delta(c1: NDArray[np.float64], c2: NDArray[np.float64]) -> NDArray[np.float64]:
    r, g, b = (c1[..., i] - c2[..., i] for i in range(3))
    y = r * 0.29889531 + g * 0.58662247 + b * 0.11448223
    i = r * 0.59597799 - g * 0.27417610 - b * 0.32180189
    q = r * 0.21147017 - g * 0.52261711 + b * 0.31114694
    return 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q


def within_range(src: Img, other: Img, ys: Idx, xs: Idx, radius: int, slack: int) -> NDArray[np.bool_]:
    """True where each channel of src's pixel lies between the darkest and brightest values of
    that channel in `other`'s neighbourhood (radius px, centre included), give or take `slack`.

    An edge moved by a fraction of a pixel is re-sampled: its new shades are blends of the
    shades around it, so they stay inside the local range. New content (a different glyph,
    a recoloured area) brings shades that the neighbourhood did not have.
    """
    h, w = other.shape[:2]
    value = src[ys, xs].astype(np.int16)
    lo = np.full(value.shape, 255, dtype=np.int16)
    hi = np.zeros(value.shape, dtype=np.int16)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            near = other[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)].astype(np.int16)
            np.minimum(lo, near, out=lo)
            np.maximum(hi, near, out=hi)
    return np.asarray(((value >= lo - slack) & (value <= hi + slack)).all(axis=1), dtype=bool)


def found_nearby(
    src: Img, other: Img, ys: Idx, xs: Idx, radius: int, limit: float = SAME_COLOUR_YIQ
) -> NDArray[np.bool_]:
    """True where src's pixel colour appears (YIQ distance <= limit) in `other`
    at a distance of at most `radius` pixels, excluding the pixel's own position."""
    h, w = other.shape[:2]
    colour = src[ys, xs].astype(np.float64)
    found = np.zeros(ys.size, dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx == 0 and dy == 0:
                continue
            ny, nx = ys + dy, xs + dx
            valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            near = other[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)].astype(np.float64)
            found |= valid & (_yiq_delta(colour, near) <= limit)
    return found
