"""What a person sees of a difference: a spatial-CIELAB model of flipping between two crops.

Both crops are first seen as the eye sees them (S-CIELAB, Zhang & Wandell 1997, "A spatial
extension of CIELAB for digital color-image reproduction"): from sRGB to an opponent colour space
(luminance, red-green, blue-yellow; Poirson & Wandell), each channel blurred by the contrast
sensitivity of that channel (a sum of two Gaussians whose widths are angles of the visual field:
the eye resolves fine detail in luminance, only coarse detail in colour), back to CIE XYZ, then
CIELAB. `pixels_per_degree` converts the angles to pixels. Then two things are measured at each
pixel that differs:

  structure  how much the shapes around the pixel changed: 1 - SSIM (Wang et al. 2004) of the
             seen lightness in a small window, at the best of the small moves of the reference
             (up to `tolerance` px, in half pixels), times the window's contrast (its standard
             deviation in L*). Text re-rasterised at another sub-pixel position, a photo
             re-encoded or resampled: the same shapes, slightly moved or softened, a low value.
             A digit that became another, a word, a missing image: new shapes, a high value.
  colour     CIEDE2000 between the seen colours, each compared with the nearest colour the other
             crop takes within `tolerance` px: what a recoloured link, heading or background
             looks like from where the reviewer sits (a coloured edge moved by a fraction of a
             pixel changes no colour).

The judge (judge.py) decides which of the two counts for a region and against which threshold.
Pure numpy/scipy; a crop is processed a band of rows at a time, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.color import deltaE_ciede2000
from skimage.color.colorconv import xyz_from_rgb

Img = NDArray[np.uint8]
F32 = NDArray[np.float32]

# Poirson & Wandell's opponent space from CIE XYZ (rows: luminance, red-green, blue-yellow).
XYZ_TO_OPPONENT = np.array([[0.279, 0.72, -0.107], [-0.449, 0.29, -0.077], [0.086, -0.59, 0.501]])
OPPONENT_TO_XYZ = np.linalg.inv(XYZ_TO_OPPONENT)
# Opponent (row vectors) to XYZ relative to the D65 white, float32: what to_lab multiplies by.
_OPPONENT_TO_XYZ_T = np.ascontiguousarray((OPPONENT_TO_XYZ / np.array([0.95047, 1.0, 1.08883])[:, None]).T,
                                          dtype=np.float32)
RGB_TO_OPPONENT = (XYZ_TO_OPPONENT @ xyz_from_rgb).astype(np.float32)

# Zhang & Wandell's separable S-CIELAB filters: per opponent channel, (spread in degrees,
# weight) of each Gaussian exp(-x^2 / spread^2). The luminance filter is the narrowest: the eye
# sees a one-pixel line in black and white, but not its colour.
FILTERS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((0.0283, 0.7931), (0.133, 0.2069)),
    ((0.0479, 0.7116), (0.1333, 0.2884)),
    ((0.0670, 0.6064), (0.1333, 0.3936)),
)
TRUNCATE = 3.0  # Gaussians are cut at 3 sigma (scipy's `truncate`)

# Rows of a crop processed at once (plus the filters' reach above and below).
BAND_PIXELS = 1 << 17


@dataclass(frozen=True)
class Viewing:
    """How the screenshots are looked at.

    `pixels_per_degree`: screenshot pixels per degree of visual angle. The default, 47, is the
    CSS reference pixel (1/96 inch seen from 28 inches, 0.0213 degrees): the angle a CSS pixel is
    meant to have on any screen at its normal viewing distance, a laptop's included.
    `tolerance`: the largest move, in pixels, that is not a difference (0 turns the allowance off).
    """

    pixels_per_degree: float = 47.0
    tolerance: int = 1


def sigmas(ppd: float) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Per channel, (sigma in pixels, weight) of each Gaussian; weights sum to 1 per channel."""
    out = []
    for channel in FILTERS:
        total = sum(w for _, w in channel)
        out.append(tuple((spread * ppd / np.sqrt(2.0), w / total) for spread, w in channel))
    return tuple(out)


def reach(viewing: Viewing) -> int:
    """How far (px) a difference spreads through the blur: the margin a crop needs around a
    region so the blurred values inside it are those of the whole page."""
    widest = max(s for channel in sigmas(viewing.pixels_per_degree) for s, _ in channel)
    return int(np.ceil(TRUNCATE * widest)) + 2


@cache
def _linear_table() -> F32:
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92).astype(np.float32)


def opponent(img: Img) -> F32:
    """sRGB (H, W, 3) uint8 -> opponent channels (H, W, 3) float32, linear in light."""
    lin = _linear_table()[img]
    out: F32 = lin @ RGB_TO_OPPONENT.T
    return out


def blur(opp: F32, ppd: float) -> F32:
    """Each opponent channel blurred by its contrast-sensitivity filter: its own narrow
    Gaussian, plus the wide one, which is the same for the three channels (0.133 and 0.1333
    degrees: one filter over the three channels at once)."""
    (narrow_l, wide_l), (narrow_rg, wide_rg), (narrow_by, wide_by) = sigmas(ppd)
    wide_sigma = wide_rg[0]
    out = ndimage.gaussian_filter(opp, (wide_sigma, wide_sigma, 0), mode="nearest", truncate=TRUNCATE)
    for c, (narrow, wide) in enumerate(((narrow_l, wide_l), (narrow_rg, wide_rg), (narrow_by, wide_by))):
        fine = ndimage.gaussian_filter(opp[..., c], narrow[0], mode="nearest", truncate=TRUNCATE)
        out[..., c] = fine * np.float32(narrow[1]) + out[..., c] * np.float32(wide[1])
    return out


def to_lab(opp: F32) -> NDArray[np.float64]:
    """Opponent (N, 3) -> CIELAB (N, 3), D65 (the float64 that CIEDE2000 takes)."""
    xyz = np.maximum(np.dot(opp, _OPPONENT_TO_XYZ_T), np.float32(0.0))  # relative to the white
    f = np.cbrt(xyz)
    small = xyz <= np.float32(0.008856)
    f[small] = np.float32(7.787) * xyz[small] + np.float32(16.0 / 116.0)
    lab = np.empty(f.shape, dtype=np.float64)
    lab[:, 0] = 116.0 * f[:, 1] - 16.0
    lab[:, 1] = 500.0 * (f[:, 0] - f[:, 1])
    lab[:, 2] = 200.0 * (f[:, 1] - f[:, 2])
    return lab


# Structure: SSIM's window (px, square) and constants for L* in [0, 100] (K1 = 0.01, K2 = 0.03).
WINDOW = 5
_C1 = np.float32((0.01 * 100) ** 2)
_C2 = np.float32((0.03 * 100) ** 2)
# Among moves that fit equally well, the smallest wins: each half pixel of move costs this much SSIM.
_MOVE_COST = np.float32(0.002)


def seen(img: Img, ppd: float) -> F32:
    """CIELAB (H, W, 3) float32 of an sRGB crop as the eye sees it at `ppd` (see the module's
    docstring). Values near the edges see the crop's edge replicated: pass a margin of
    `reach` px around what is measured."""
    h, w = img.shape[:2]
    out: F32 = to_lab(blur(opponent(img), ppd).reshape(-1, 3)).astype(np.float32).reshape(h, w, 3)
    return out


def colour_difference(ref: F32, test: F32, ys: NDArray[np.intp], xs: NDArray[np.intp], tolerance: int = 0) -> F32:
    """CIEDE2000 between two seen crops (from `seen`) at the listed pixels. With a `tolerance`,
    each seen colour is compared with the nearest the other crop takes within that many pixels
    (per channel, between the lowest and highest value there: a seen image is smooth), both ways,
    and the larger difference counts: an edge moved by a fraction of a pixel changes no colour."""
    out = np.zeros(ys.size, dtype=np.float32)
    if ys.size == 0:
        return out
    pairs = ((ref, test), (test, ref))
    for src, dst in pairs if tolerance > 0 else pairs[:1]:
        value = dst[ys, xs]
        nearest = src[ys, xs]
        if tolerance > 0:
            size = (2 * tolerance + 1, 2 * tolerance + 1, 1)
            lo = ndimage.minimum_filter(src, size=size, mode="nearest")[ys, xs]
            hi = ndimage.maximum_filter(src, size=size, mode="nearest")[ys, xs]
            nearest = np.clip(value, lo, hi)
        de = deltaE_ciede2000(nearest.astype(np.float64), value.astype(np.float64), channel_axis=-1)
        np.maximum(out, de.astype(np.float32), out=out)
    return out


def _moves(tolerance: int) -> list[tuple[int, int]]:
    """Every move of the reference tried, in half pixels, smallest first (no move first)."""
    steps = range(-2 * tolerance, 2 * tolerance + 1)
    return sorted(((dy, dx) for dy in steps for dx in steps), key=lambda m: (abs(m[0]) + abs(m[1]), m))


def _moved(img: F32, dy2: int, dx2: int) -> F32:
    """img (padded by one pixel more than the move on every side, as _structure_band does)
    moved by (dy2 / 2, dx2 / 2) px, trimmed of that padding: a half-pixel move is the mean of
    the two whole-pixel moves around it (a seen image is smooth: linear interpolation)."""
    h, w = img.shape[0] - 2 * _REACH, img.shape[1] - 2 * _REACH
    ys = (dy2 // 2, -(-dy2 // 2))
    xs = (dx2 // 2, -(-dx2 // 2))
    parts = [img[_REACH - y : _REACH - y + h, _REACH - x : _REACH - x + w] for y in set(ys) for x in set(xs)]
    if len(parts) == 1:
        return parts[0]
    out = parts[0] + parts[1]
    for extra in parts[2:]:
        out += extra
    out *= np.float32(1.0 / len(parts))
    return out


# Padding around a band for the largest move tried (tolerance 1 px = 2 half pixels) and one more.
_REACH = 3


def structure_difference(ref: F32, test: F32, ys: NDArray[np.intp], xs: NDArray[np.intp],
                         tolerance: int, floor: float = 0.0) -> F32:
    """(1 - SSIM) x contrast of the seen lightness around each listed pixel, at the best of the
    reference's moves up to `tolerance` px (at most 1). Both crops from `seen`, same shape.

    Moves are tried smallest first, and a pixel whose value has fallen under `floor` is not
    tried further (more moves can only lower it): values under `floor` are upper bounds, the
    others exact. Pass the lowest value that would count.
    """
    tolerance = min(max(tolerance, 0), 1)
    la, lb = np.ascontiguousarray(ref[..., 0]), np.ascontiguousarray(test[..., 0])
    out = np.zeros(ys.size, dtype=np.float32)
    if ys.size == 0:
        return out
    rows = max(16, BAND_PIXELS // max(la.shape[1], 1))
    order = np.argsort(ys, kind="stable")
    sorted_ys = ys[order]
    for y0 in range(int(sorted_ys[0]) // rows * rows, int(sorted_ys[-1]) + 1, rows):
        lo, hi = np.searchsorted(sorted_ys, [y0, y0 + rows])
        if lo == hi:
            continue
        pick = order[lo:hi]
        out[pick] = _structure_band(la, lb, ys[pick], xs[pick], tolerance, floor)
    return out


def _window(img: F32, y0: int, y1: int, x0: int, x1: int, pad: int) -> F32:
    """img[y0 - pad : y1 + pad, x0 - pad : x1 + pad], the edges replicated beyond the image."""
    h, w = img.shape
    if y0 - pad >= 0 and x0 - pad >= 0 and y1 + pad <= h and x1 + pad <= w:
        inside: F32 = img[y0 - pad : y1 + pad, x0 - pad : x1 + pad]
        return inside
    ry = np.clip(np.arange(y0 - pad, y1 + pad), 0, h - 1)
    rx = np.clip(np.arange(x0 - pad, x1 + pad), 0, w - 1)
    out: F32 = img[np.ix_(ry, rx)]
    return out


def _structure_band(la: F32, lb: F32, ys: NDArray[np.intp], xs: NDArray[np.intp], tolerance: int,
                    floor: float) -> F32:
    half = WINDOW // 2
    best = np.full(ys.size, -np.inf, dtype=np.float32)
    spread = np.zeros(ys.size, dtype=np.float32)
    value = np.full(ys.size, np.inf, dtype=np.float32)
    # The test's window statistics do not depend on the move: once, over the band's pixels.
    by0, bx0 = int(ys.min()) - half, int(xs.min()) - half
    b = _window(lb, by0, int(ys.max()) + half + 1, bx0, int(xs.max()) + half + 1, 0)
    mb_all = _mean(b)
    vb_all = np.maximum(_mean(b * b) - mb_all * mb_all, np.float32(0.0))
    live = np.arange(ys.size)
    for dy2, dx2 in _moves(tolerance):
        if live.size == 0:
            break
        py, px = ys[live], xs[live]
        # Only the rows and columns the pixels still in question need.
        y0, y1 = int(py.min()) - half, int(py.max()) + half + 1
        x0, x1 = int(px.min()) - half, int(px.max()) + half + 1
        a = _moved(_window(la, y0, y1, x0, x1, _REACH), dy2, dx2)
        bw = b[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
        ry, rx = py - y0, px - x0
        ma, mb = _mean(a)[ry, rx], mb_all[py - by0, px - bx0]
        va = np.maximum(_mean(a * a)[ry, rx] - ma * ma, np.float32(0.0))
        vb = vb_all[py - by0, px - bx0]
        c = _mean(a * bw)[ry, rx] - ma * mb
        ssim = ((2 * ma * mb + _C1) * (2 * c + _C2)) / ((ma * ma + mb * mb + _C1) * (va + vb + _C2))
        ssim -= _MOVE_COST * np.float32(abs(dy2) + abs(dx2))
        better = ssim > best[live]
        idx = live[better]
        best[idx] = ssim[better]
        spread[idx] = np.sqrt(np.maximum(va, vb))[better]
        value[live] = (1.0 - best[live]) * spread[live]
        live = live[value[live] >= floor] if floor > 0 else live
    return value


def _mean(x: F32) -> F32:
    """The mean over SSIM's window around each pixel."""
    m: F32 = ndimage.uniform_filter(x, WINDOW, mode="nearest")
    return m
