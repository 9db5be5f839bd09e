"""What a person sees of a difference: a spatial-CIELAB model of flipping between two crops.

A screenshot difference is visible when, seen through the eye's blur at a normal viewing
distance, the two images differ in colour by more than a person notices, and the difference is
not explained by content that moved by a fraction of a pixel (the same text re-rasterised at
another sub-pixel position: nobody sees a move of a third of a pixel).

The model (S-CIELAB, Zhang & Wandell 1997, "A spatial extension of CIELAB for digital
color-image reproduction"): both crops go from sRGB to an opponent colour space (luminance,
red-green, blue-yellow; Poirson & Wandell), each channel is blurred by the contrast sensitivity
of that channel (a sum of two Gaussians whose widths are angles of the visual field: the eye
resolves fine detail in luminance, only coarse detail in colour), back to CIE XYZ, then CIELAB,
and the colour difference is CIEDE2000. `pixels_per_degree` converts the angles to pixels.

Tolerance of small moves: the test value at a pixel is compared with the nearest colour the
blurred reference takes within `tolerance` px of that pixel (per channel, the range of the
reference's values at the pixel and at its neighbours' positions moved `tolerance` px towards
them, by linear interpolation of the blurred image: exact for a smooth image), and the other
way round; the larger of the two differences counts. A move of less than a pixel leaves every
blurred value inside that range; a new glyph, a new colour or a missing stroke does not.

    visible_difference(ref, test, viewing)  ->  float32 map, CIEDE2000 units, same shape

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


def envelope(blurred: F32, tolerance: int) -> tuple[F32, F32]:
    """Per pixel and channel, the lowest and highest value the blurred image takes within
    `tolerance` px (a square neighbourhood): every value a move of at most that far, whole or
    fractional, can bring to the pixel (a blurred image is smooth: a value between two
    neighbours is between their values)."""
    size = (2 * tolerance + 1, 2 * tolerance + 1, 1)
    lo = ndimage.minimum_filter(blurred, size=size, mode="nearest")
    hi = ndimage.maximum_filter(blurred, size=size, mode="nearest")
    return lo, hi




def _band_difference(ba: F32, bb: F32, tolerance: int, ys: NDArray[np.intp], xs: NDArray[np.intp]) -> F32:
    """The visible difference of two blurred bands (H, W, 3) at the listed positions."""
    w = ba.shape[1]
    flat = ys * w + xs
    out = np.zeros(flat.size, dtype=np.float32)
    pairs = ((ba, bb), (bb, ba)) if tolerance > 0 else ((ba, bb),)
    for src, dst in pairs:
        value = dst.reshape(-1, 3)[flat]
        if tolerance > 0:
            lo, hi = envelope(src, tolerance)
            nearest = np.clip(value, lo.reshape(-1, 3)[flat], hi.reshape(-1, 3)[flat])
        else:
            nearest = src.reshape(-1, 3)[flat]
        # Values closer than this to the other image's range are not worth a CIEDE2000: the
        # difference is far below anything visible (opponent channels are in units of Y = 1).
        idx = np.flatnonzero(np.abs(value - nearest).max(axis=-1) > np.float32(1e-4))
        if idx.size == 0:
            continue
        de = deltaE_ciede2000(to_lab(nearest[idx]), to_lab(value[idx]), channel_axis=-1).astype(np.float32)
        out[idx] = np.maximum(out[idx], de)
    return out


def visible_difference(ref: Img, test: Img, viewing: Viewing, ys: NDArray[np.intp] | None = None,
                       xs: NDArray[np.intp] | None = None) -> F32:
    """The visible difference of two same-shape crops: CIEDE2000 between what a person sees of
    each (after the blur of `viewing.pixels_per_degree`, allowing moves of `viewing.tolerance`
    px), at the listed pixels (`ys`, `xs`: crop coordinates), or as a map of the whole crop.

    Values near the crop's edges see the crop's edge replicated: pass crops with a margin of
    `reach(viewing)` px around what you want measured.
    """
    if ref.shape != test.shape:
        raise ValueError("visible_difference needs two crops of the same shape")
    h, w = ref.shape[:2]
    whole = ys is None or xs is None
    if whole:
        ys, xs = (v.reshape(-1) for v in np.indices((h, w)))
    assert ys is not None and xs is not None
    out = np.zeros(ys.size, dtype=np.float32)
    if ys.size == 0:
        return out.reshape(h, w) if whole else out
    margin = reach(viewing)
    rows = max(16, BAND_PIXELS // max(w, 1))
    ppd = viewing.pixels_per_degree
    order = np.argsort(ys, kind="stable")
    sorted_ys = ys[order]
    for y0 in range(int(sorted_ys[0]) // rows * rows, int(sorted_ys[-1]) + 1, rows):
        lo, hi = np.searchsorted(sorted_ys, [y0, y0 + rows])
        if lo == hi:
            continue
        pick = order[lo:hi]
        a0, a1 = max(0, y0 - margin), min(h, y0 + rows + margin)
        ba = blur(opponent(ref[a0:a1]), ppd)
        bb = blur(opponent(test[a0:a1]), ppd)
        out[pick] = _band_difference(ba, bb, viewing.tolerance, ys[pick] - a0, xs[pick])
    return out.reshape(h, w) if whole else out
