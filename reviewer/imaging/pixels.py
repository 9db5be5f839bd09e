"""Per-pixel classification of differences between two aligned images of the same shape.

Every pixel whose bytes differ is sorted, in this order, into exactly one class:

  IGNORED    inside a configured ignore rectangle;
  DRIFT      the colours differ by less than `drift_delta_e` (CIEDE2000): nobody can see it;
  ANTIALIAS  pixelmatch's anti-aliasing detector (Kotsalis, "Anti-aliased pixel and intensity
             slope detector", 2009) says the pixel is an anti-aliased edge in either image;
  SUBPIXEL   each channel lies within the range of the other image's neighbourhood
             (`subpixel_tolerance_px`), in both directions: a re-sampled edge that moved by
             less than a pixel (whole regions are tested again in regions.subpixel_offset);
  SIGNIFICANT everything else: a difference a person can see.

All work is done on the differing pixels only (as coordinate lists), so a tall page with a
one-word change costs little more than finding the changed rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, xyz2lab
from skimage.color.colorconv import xyz_from_rgb

from reviewer.model import Box

SIGNIFICANT, IGNORED, DRIFT, ANTIALIAS, SUBPIXEL = 0, 1, 2, 3, 4
CLASS_NAMES = {SIGNIFICANT: "significant", IGNORED: "ignored", DRIFT: "drift", ANTIALIAS: "antialias",
               SUBPIXEL: "subpixel"}

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
    ignore: tuple[Box, ...] = (),
) -> PixelDiff:
    """Classify every differing pixel of `a` (reference) and `b` (test), same shape."""
    ys, xs = np.nonzero(pixels_differ(a, b))
    if ys.size == 0:
        return empty_diff()
    delta_e = colour_delta_e(gather(a, ys, xs), gather(b, ys, xs))
    cls = classify_at(a, b, ys, xs, delta_e, drift_delta_e=drift_delta_e, detect_antialiasing=detect_antialiasing,
                      subpixel_tolerance_px=subpixel_tolerance_px, ignore=ignore)
    return PixelDiff(ys, xs, delta_e, cls)


def classify_at(
    a: Img,
    b: Img,
    ys: Idx,
    xs: Idx,
    delta_e: NDArray[np.float32],
    *,
    drift_delta_e: float,
    detect_antialiasing: bool,
    subpixel_tolerance_px: int,
    ignore: tuple[Box, ...] = (),
) -> NDArray[np.uint8]:
    """The class of each listed differing pixel (coordinates in `a`/`b`, same shape).

    A pixel's class depends only on the two images around it, never on which other pixels are
    listed, so a page can be classified a band of rows at a time with the same result.
    """
    cls = np.full(ys.size, SIGNIFICANT, dtype=np.uint8)
    for box in ignore:
        inside = (xs >= box.x) & (xs < box.x2) & (ys >= box.y) & (ys < box.y2)
        cls[inside] = IGNORED
    open_ = cls == SIGNIFICANT
    cls[open_ & (delta_e < drift_delta_e)] = DRIFT

    # The neighbourhood tests hold a dozen arrays per pixel tested: a bounded number at a time.
    if detect_antialiasing:
        for open_ in _slices(np.flatnonzero(cls == SIGNIFICANT)):
            py, px = ys[open_], xs[open_]
            aa = antialiased_either(a, b, py, px)
            cls[open_[aa]] = ANTIALIAS

    if subpixel_tolerance_px > 0:
        r = subpixel_tolerance_px
        for open_ in _slices(np.flatnonzero(cls == SIGNIFICANT)):
            py, px = ys[open_], xs[open_]
            cls[open_[within_range_both(a, b, py, px, r, SUBPIXEL_SLACK)]] = SUBPIXEL
    return cls


SLICE = 1 << 15


def _slices(idx: NDArray[np.intp]) -> list[NDArray[np.intp]]:
    return [idx[i : i + SLICE] for i in range(0, idx.size, SLICE)]


def gather(img: Img, ys: Idx, xs: Idx) -> Img:
    """`img[ys, xs]`: the (N, channels) values at the listed pixels. A contiguous image is read
    with one flat take, about 4 times faster than 2-D fancy indexing for the same values."""
    if img.flags.c_contiguous and img.ndim == 3:
        return np.take(img.reshape(-1, img.shape[2]), ys * img.shape[1] + xs, axis=0)
    return img[ys, xs]


def pixels_differ(a: Img, b: Img) -> NDArray[np.bool_]:
    """(H, W) True where any channel differs. Three 2-D ORs: `(a != b).any(axis=2)` reduces
    along a 3-long axis and is about 15 times slower."""
    ne = a != b
    out = ne[..., 0] | ne[..., 1]
    out |= ne[..., 2]
    return out


# Rows are compared about this many bytes at a time, so no temporary grows with the page.
_BLOCK_BYTES = 1 << 18


def differing_rows(a: Img, b: Img) -> NDArray[np.bool_]:
    """Per row of two same-shape images: True where the row differs anywhere.

    The rows are compared as packed 8-byte words, a block of rows at a time, and only the few
    words that differ are looked at byte by byte: an unchanged page costs one pass of word
    compares and no full-size temporary.
    """
    h = a.shape[0]
    out = np.zeros(h, dtype=bool)
    if h == 0 or a.size == 0:
        return out
    row_bytes = a[0].nbytes
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        step = max(1, _BLOCK_BYTES // row_bytes)
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            out[r0:r1] = pixels_differ(a[r0:r1], b[r0:r1]).any(axis=1)
        return out
    fa, fb = a.reshape(-1), b.reshape(-1)
    step = max(8, (_BLOCK_BYTES // row_bytes) // 8 * 8)  # a multiple of 8 rows: whole words
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        lo, hi = r0 * row_bytes, r1 * row_bytes
        n8 = (hi - lo) // 8 * 8
        wa, wb = fa[lo : lo + n8].view(np.uint64), fb[lo : lo + n8].view(np.uint64)
        words = np.flatnonzero(wa != wb)
        if words.size * 16 > wa.size:  # much of the block differs: rows at once
            out[r0:r1] = pixels_differ(a[r0:r1], b[r0:r1]).any(axis=1)
            continue
        if words.size:
            ba = fa[lo : lo + n8].reshape(-1, 8)[words]
            bb = fb[lo : lo + n8].reshape(-1, 8)[words]
            wi, bi = np.nonzero(ba != bb)
            out[r0 + (words[wi] * 8 + bi) // row_bytes] = True
        if n8 < hi - lo:  # the last block's tail, shorter than a word
            tail = np.flatnonzero(fa[lo + n8 : hi] != fb[lo + n8 : hi])
            out[r0 + (n8 + tail) // row_bytes] = True
    return out


def row_chunks(rows: NDArray[np.bool_], width: int, max_pixels: int = 1 << 17) -> list[NDArray[np.intp]]:
    """The indices of the True rows, in order, cut into groups of at most `max_pixels` pixels."""
    idx = np.flatnonzero(rows)
    per = max(1, max_pixels // max(width, 1))
    return [idx[i : i + per] for i in range(0, idx.size, per)]


def differing_pixels_in_rows(a: Img, b: Img, rows: NDArray[np.intp]) -> tuple[Idx, Idx]:
    """(ys, xs) of the differing pixels in the given rows (ascending), in row-major order."""
    if rows.size == 0:
        z = np.zeros(0, dtype=np.intp)
        return z, z.copy()
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    if r1 - r0 == rows.size:  # consecutive rows: a view, no gather
        ys, xs = np.nonzero(pixels_differ(a[r0:r1], b[r0:r1]))
        return ys + r0, xs
    ys, xs = np.nonzero(pixels_differ(a[rows], b[rows]))
    return rows[ys], xs


class DeltaECache:
    """CIEDE2000 per (reference colour, test colour) pair, remembered in a direct-mapped table.

    A page's differing pixels take few distinct colour pairs (a drifted page: thousands among
    millions of pixels), so most look-ups hit and only new pairs are converted to Lab. The
    value of a pair never depends on which other pairs are computed with it.
    """

    _EMPTY = np.uint64(1 << 63)  # packed pairs use 48 bits: never a real key

    def __init__(self, bits: int = 18) -> None:
        self.bits = bits
        self.keys = np.full(1 << bits, self._EMPTY, dtype=np.uint64)
        self.values = np.zeros(1 << bits, dtype=np.float32)

    def lookup(self, ca: Img, cb: Img) -> NDArray[np.float32]:
        if ca.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        packed = (_pack(ca).astype(np.uint64) << np.uint64(24)) | _pack(cb).astype(np.uint64)
        slot = ((packed * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.intp)
        out = self.values[slot]
        miss = np.flatnonzero(self.keys[slot] != packed)
        if miss.size:
            uniq, inverse = np.unique(packed[miss], return_inverse=True)
            de = np.concatenate([_ciede2000_packed(uniq[i : i + SLICE]) for i in range(0, uniq.size, SLICE)])
            out[miss] = de[inverse.reshape(-1)]
            uslot = ((uniq * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.intp)
            self.keys[uslot] = uniq
            self.values[uslot] = de
        return out


def colour_delta_e(ca: Img, cb: Img) -> NDArray[np.float32]:
    """CIEDE2000 between colour lists (N, 3), computed once per distinct colour pair.

    Screenshots have few distinct colours, so deduplicating first makes a large diff cheap.
    """
    if ca.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    packed = (_pack(ca).astype(np.uint64) << np.uint64(24)) | _pack(cb).astype(np.uint64)
    uniq, inverse = np.unique(packed, return_inverse=True)
    return _ciede2000_packed(uniq)[inverse.reshape(-1)]


def _ciede2000_packed(uniq: NDArray[np.uint64]) -> NDArray[np.float32]:
    ua = _unpack((uniq >> np.uint64(24)).astype(np.uint32))
    ub = _unpack((uniq & np.uint64(0xFFFFFF)).astype(np.uint32))
    # Channels first: the formula's many element-wise steps then run on contiguous arrays
    # (same operations, same values; about a fifth faster than on (N, 3) columns).
    lab_a = np.ascontiguousarray(srgb_to_lab(ua).T)
    lab_b = np.ascontiguousarray(srgb_to_lab(ub).T)
    return deltaE_ciede2000(lab_a, lab_b, channel_axis=0).astype(np.float32)


def _linear_lut() -> NDArray[np.float64]:
    """scikit-image's sRGB to linear step (rgb2xyz) for the 256 values of a channel: the same
    operations on the same values, so the table holds exactly what it computes per pixel."""
    arr = np.arange(256, dtype=np.float64) / 255.0
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    return arr


_LINEAR = _linear_lut()


def srgb_to_lab(colours: Img) -> NDArray[np.float64]:
    """`rgb2lab(colours[:, None, :] / 255.0)[:, 0, :]` for (N, 3) uint8 colours, with the
    power function of the sRGB curve read from a 256-entry table; then scikit-image's own
    matrix product and xyz2lab, so the values are identical."""
    linear = _LINEAR[colours][:, None, :]
    xyz = linear @ xyz_from_rgb.T.astype(linear.dtype)
    return xyz2lab(xyz)[:, 0, :]


def _pack(c: Img) -> NDArray[np.uint32]:
    c32 = c.astype(np.uint32)
    return ((c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]).astype(np.uint32)


def _unpack(p: NDArray[np.uint32]) -> Img:
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=1).astype(np.uint8)


# The 8 neighbours in pixelmatch's visiting order (x outer, y inner), so ties break the same way.
_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]


def _luma(img: Img, ys: Idx, xs: Idx) -> NDArray[np.float64]:
    c = gather(img, ys, xs).astype(np.float64)
    return c[..., 0] * 0.29889531 + c[..., 1] * 0.58662247 + c[..., 2] * 0.11448223


def antialiased(img: Img, other: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """pixelmatch's `antialiased(img, x, y, ..., other)` for many pixels at once.

    A pixel is anti-aliased when, among its 8 neighbours in `img`, at most two have the same
    brightness, it has both a darker and a brighter neighbour, and the darkest or the
    brightest neighbour sits in a flat area (3+ identical neighbours) in both images:
    i.e. it is an intermediate shade on the edge between two solid areas.
    """
    band = _Band.around(img, other, ys)
    if band is None:
        return _antialiased_gather(img, other, ys, xs)
    return _antialiased_band(band, band.luma_a, band.colour_a, band.colour_b, ys, xs)


def antialiased_either(a: Img, b: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """`antialiased(a, b, ...) | antialiased(b, a, ...)`, sharing the work of both."""
    band = _Band.around(a, b, ys)
    if band is None:
        return _antialiased_gather(a, b, ys, xs) | _antialiased_gather(b, a, ys, xs)
    return (_antialiased_band(band, band.luma_a, band.colour_a, band.colour_b, ys, xs)
            | _antialiased_band(band, band.luma_b, band.colour_b, band.colour_a, ys, xs))


class _Band:
    """The rows of an image pair that a list of pixels and their neighbours' neighbours touch,
    flattened: luma and packed colour per pixel, so each neighbour look-up is one 1-D gather
    instead of a 3-channel gather and a conversion. Same values as computed per pixel."""

    def __init__(self, a: Img, b: Img, r0: int, r1: int) -> None:
        self.h, self.w = a.shape[:2]
        self.r0 = r0
        self.luma_a, self.colour_a = _luma_and_colour(a[r0:r1])
        self.luma_b, self.colour_b = _luma_and_colour(b[r0:r1])

    @classmethod
    def around(cls, a: Img, b: Img, ys: Idx) -> _Band | None:
        """A band when it is not much larger than the pixel list (a chunk of a page's changed
        rows); None when the pixels are few and far apart (gather them one by one then)."""
        if ys.size == 0:
            return None
        h, w = a.shape[:2]
        r0, r1 = max(0, int(ys.min()) - 2), min(h, int(ys.max()) + 3)
        if (r1 - r0) * w > 16 * ys.size + 4096:
            return None
        return cls(a, b, r0, r1)

    def at(self, ys: Idx, xs: Idx) -> Idx:
        return (ys - self.r0) * self.w + xs


def _luma_and_colour(rows: Img) -> tuple[NDArray[np.float64], NDArray[np.uint32]]:
    c = rows.astype(np.float64)
    luma = c[..., 0] * 0.29889531 + c[..., 1] * 0.58662247 + c[..., 2] * 0.11448223
    u = rows.astype(np.uint32)
    colour = ((u[..., 0] << 16) | (u[..., 1] << 8) | u[..., 2]).astype(np.uint32, copy=False)
    return luma.reshape(-1), colour.reshape(-1)


def _antialiased_band(band: _Band, luma: NDArray[np.float64], mine: NDArray[np.uint32],
                      theirs: NDArray[np.uint32], ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """_antialiased_gather with look-ups into a _Band (luma and colours of `img` = mine).

    Pixels away from the image's border have all 8 neighbours: for them a neighbour is a fixed
    offset in the flattened band, with no clipping and no validity test.
    """
    h, w = band.h, band.w
    interior = (xs > 0) & (xs < w - 1) & (ys > 0) & (ys < h - 1)
    result = np.zeros(ys.size, dtype=bool)
    inner = np.flatnonzero(interior)
    if inner.size:
        result[inner] = _antialiased_inner(band, luma, mine, theirs, band.at(ys[inner], xs[inner]))
    edge = np.flatnonzero(~interior)
    if edge.size:
        result[edge] = _antialiased_edge(band, luma, mine, theirs, ys[edge], xs[edge])
    return result


def _antialiased_inner(band: _Band, luma: NDArray[np.float64], mine: NDArray[np.uint32],
                       theirs: NDArray[np.uint32], f: Idx) -> NDArray[np.bool_]:
    """The 8 neighbours of every pixel at once. The loop over neighbours in _antialiased_edge
    keeps the strictly smallest (largest) brightness difference below (above) zero and the first
    neighbour that has it: that is the minimum (maximum) and argmin (argmax, first of equals)
    over the neighbours, when it is below (above) zero."""
    w = band.w
    offsets = np.array([dy * w + dx for dx, dy in _NEIGHBOURS], dtype=np.intp)[:, None]
    near = f[None, :] + offsets  # (8, n) positions
    delta = luma[f][None, :] - luma[near]
    zeroes = np.count_nonzero(delta == 0, axis=0)
    cols = np.arange(f.size)
    k_lo, k_hi = delta.argmin(axis=0), delta.argmax(axis=0)
    lo, hi = delta[k_lo, cols], delta[k_hi, cols]
    candidate = (zeroes <= 2) & (lo < 0) & (hi > 0)
    result = np.zeros(f.size, dtype=bool)
    idx = np.flatnonzero(candidate)
    if idx.size == 0:
        return result
    lf, hf = near[k_lo[idx], idx], near[k_hi[idx], idx]
    flat_lo = _siblings_at(band, mine, lf) & _siblings_at(band, theirs, lf)
    flat_hi = _siblings_at(band, mine, hf) & _siblings_at(band, theirs, hf)
    result[idx] = flat_lo | flat_hi
    return result


def _siblings_at(band: _Band, colour: NDArray[np.uint32], f: Idx) -> NDArray[np.bool_]:
    """many_siblings for band positions `f`: fixed offsets inside, the general test at the border."""
    ys, xs = f // band.w + band.r0, f % band.w
    h, w = band.h, band.w
    interior = (xs > 0) & (xs < w - 1) & (ys > 0) & (ys < h - 1)
    if interior.all():
        offsets = np.array([dy * w + dx for dx, dy in _NEIGHBOURS], dtype=np.intp)[:, None]
        return np.count_nonzero(colour[f[None, :] + offsets] == colour[f][None, :], axis=0) > 2
    return _siblings_band(band, colour, ys, xs)


def _antialiased_edge(band: _Band, luma: NDArray[np.float64], mine: NDArray[np.uint32],
                      theirs: NDArray[np.uint32], ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """The general form, for pixels on the image's border (neighbours clipped and validated)."""
    return _antialiased_general(
        band.h, band.w, ys, xs,
        luma_at=lambda y, x: luma[band.at(y, x)],
        flat_at=lambda y, x: _siblings_band(band, mine, y, x) & _siblings_band(band, theirs, y, x),
    )


def _antialiased_general(
    h: int, w: int, ys: Idx, xs: Idx,
    luma_at: Callable[[Idx, Idx], NDArray[np.float64]],
    flat_at: Callable[[Idx, Idx], NDArray[np.bool_]],
) -> NDArray[np.bool_]:
    """pixelmatch's test, written once; callers say how to read brightness and flatness
    (from a band's packed rows, or straight from the images for a few scattered pixels)."""
    on_edge = (xs == 0) | (xs == w - 1) | (ys == 0) | (ys == h - 1)
    zeroes = on_edge.astype(np.int32)
    centre = luma_at(ys, xs)
    lo = np.zeros(ys.size)
    hi = np.zeros(ys.size)
    lo_y, lo_x = ys.copy(), xs.copy()
    hi_y, hi_x = ys.copy(), xs.copy()
    for dx, dy in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        cy, cx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        delta = np.where(valid, centre - luma_at(cy, cx), np.nan)
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
    result[idx] = flat_at(lo_y[idx], lo_x[idx]) | flat_at(hi_y[idx], hi_x[idx])
    return result


def _siblings_band(band: _Band, colour: NDArray[np.uint32], ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """many_siblings with look-ups into a _Band's packed colours."""
    h, w = band.h, band.w
    count = ((xs == 0) | (xs == w - 1) | (ys == 0) | (ys == h - 1)).astype(np.int32)
    centre = colour[band.at(ys, xs)]
    for dx, dy in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        count += valid & (colour[band.at(np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1))] == centre)
    return count > 2


def _antialiased_gather(img: Img, other: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """antialiased() reading each neighbour from the images directly (few, scattered pixels)."""
    return _antialiased_general(
        img.shape[0], img.shape[1], ys, xs,
        luma_at=lambda y, x: _luma(img, y, x),
        flat_at=lambda y, x: many_siblings(img, y, x) & many_siblings(other, y, x),
    )


def many_siblings(img: Img, ys: Idx, xs: Idx) -> NDArray[np.bool_]:
    """True where 3 or more of the 8 neighbours have exactly the pixel's colour."""
    h, w = img.shape[:2]
    count = ((xs == 0) | (xs == w - 1) | (ys == 0) | (ys == h - 1)).astype(np.int32)
    centre = gather(img, ys, xs)
    for dx, dy in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        eq = gather(img, np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)) == centre
        count += valid & _all3(eq)
    return count > 2


def _all3(m: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """`m.all(axis=1)` for an (N, 3) array: two ANDs instead of a slow reduction over 3 items."""
    out = m[:, 0] & m[:, 1]
    out &= m[:, 2]
    return out


def within_range(src: Img, other: Img, ys: Idx, xs: Idx, radius: int, slack: int) -> NDArray[np.bool_]:
    """True where each channel of src's pixel lies between the darkest and brightest values of
    that channel in `other`'s neighbourhood (radius px, centre included), give or take `slack`.

    An edge moved by a fraction of a pixel is re-sampled: its new shades are blends of the
    shades around it, so they stay inside the local range. New content (a different glyph,
    a recoloured area) brings shades that the neighbourhood did not have.
    """
    h, w = other.shape[:2]
    value = gather(src, ys, xs).astype(np.int16)
    lo = np.full(value.shape, 255, dtype=np.int16)
    hi = np.zeros(value.shape, dtype=np.int16)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            near = gather(other, np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)).astype(np.int16)
            np.minimum(lo, near, out=lo)
            np.maximum(hi, near, out=hi)
    return _all3((value >= lo - slack) & (value <= hi + slack))


def within_range_both(a: Img, b: Img, ys: Idx, xs: Idx, radius: int, slack: int) -> NDArray[np.bool_]:
    """`within_range(b, a, ...) & within_range(a, b, ...)`.

    For pixels at least `radius` from the image's border, the neighbours are read from the
    band of rows the pixels span, flattened, at fixed offsets (no clipping); the others (and
    pixels too few and far apart for a band to pay off) use within_range itself.
    """
    out = np.zeros(ys.size, dtype=bool)
    if ys.size == 0:
        return out
    h, w = a.shape[:2]
    inner = (ys >= radius) & (ys < h - radius) & (xs >= radius) & (xs < w - radius)
    r0, r1 = max(0, int(ys.min()) - radius), min(h, int(ys.max()) + radius + 1)
    if (r1 - r0) * w > 8 * ys.size + 4096:
        inner[:] = False
    rest = np.flatnonzero(~inner)
    if rest.size:
        ry, rx = ys[rest], xs[rest]
        out[rest] = within_range(b, a, ry, rx, radius, slack) & within_range(a, b, ry, rx, radius, slack)
    idx = np.flatnonzero(inner)
    if idx.size:
        f = (ys[idx] - r0) * w + xs[idx]
        band_a = a[r0:r1].reshape(-1, 3)
        band_b = b[r0:r1].reshape(-1, 3)
        out[idx] = _range_inner(band_b, band_a, f, w, radius, slack) & _range_inner(band_a, band_b, f, w, radius, slack)
    return out


def _range_inner(src: Img, other: Img, f: Idx, w: int, radius: int, slack: int) -> NDArray[np.bool_]:
    """within_range for flattened (N, 3) bands and positions away from the border: the
    neighbourhood of every pixel gathered at once, its minimum and maximum per channel."""
    value = src[f].astype(np.int16)
    offsets = np.array([dy * w + dx for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)],
                       dtype=np.intp)[:, None]
    near = other[f[None, :] + offsets]  # (k, n, 3)
    lo = near.min(axis=0).astype(np.int16) - slack
    hi = near.max(axis=0).astype(np.int16) + slack
    return _all3((value >= lo) & (value <= hi))
