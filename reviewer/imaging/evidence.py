"""Measurements of a region that the judge weighs: what kind of change it is, whether it is
content that moved by whole pixels, how similar its crops are, how a band of rows stands out
from the page around it. Pure functions of the two images and the region's pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.metrics import structural_similarity

from reviewer.imaging.colour import colour_delta_e
from reviewer.imaging.regions import crop, pad_box
from reviewer.model import Box, RegionKind

Img = NDArray[np.uint8]
Idx = NDArray[np.intp]
Ints = NDArray[np.signedinteger[Any]]

SHIFT_EXPLAINED = 0.97  # share of differing pixels a whole-pixel move must explain


def grey(img: Img) -> NDArray[np.float64]:
    c = img.astype(np.float64)
    return c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114


# Crops larger than this many pixels are measured a band of rows at a time, so a region as
# large as the page needs a few MB of temporaries, not ~150 bytes per pixel of it.
STRIP_PIXELS = 1 << 18


def region_ssim(a: Img, b: Img) -> float | None:
    """SSIM of two same-shape crops on luminance; None when the crop is too thin for a window."""
    side = min(a.shape[0], a.shape[1])
    if side < 3:
        return None
    win = min(7, side if side % 2 else side - 1)
    if a.shape[0] * a.shape[1] <= STRIP_PIXELS:
        value = structural_similarity(grey(a), grey(b), win_size=win, data_range=255.0)
    else:
        value = _ssim_in_strips(a, b, win)
    return round(float(value), 4)


def _ssim_in_strips(a: Img, b: Img, win: int) -> float:
    """scikit-image's mean SSIM (uniform window, sample covariance), computed on bands of rows.

    The mean runs over the pixels at least win//2 from the crop's edges, and each of those
    only sees its window, so bands of rows with win//2 rows of context above and below give
    the same local values (to floating-point rounding) without whole-crop temporaries.
    """
    pad = (win - 1) // 2
    h, w = a.shape[:2]
    rows = max(1, STRIP_PIXELS // w)
    total, count = 0.0, 0
    for y0 in range(pad, h - pad, rows):
        y1 = min(h - pad, y0 + rows)
        ga, gb = grey(a[y0 - pad : y1 + pad]), grey(b[y0 - pad : y1 + pad])
        s = _ssim_map(ga, gb, win)[pad : pad + (y1 - y0), pad : w - pad]
        total += float(s.sum(dtype=np.float64))
        count += s.size
    return total / count


def _ssim_map(x: NDArray[np.float64], y: NDArray[np.float64], win: int) -> NDArray[np.float64]:
    """The local SSIM map exactly as skimage.metrics.structural_similarity computes it for
    uniform windows, sample covariance, K1 = 0.01, K2 = 0.03 and data_range = 255."""
    np_ = win**2
    cov_norm = np_ / (np_ - 1)
    ux = ndimage.uniform_filter(x, size=win)
    uy = ndimage.uniform_filter(y, size=win)
    uxx = ndimage.uniform_filter(x * x, size=win)
    uyy = ndimage.uniform_filter(y * y, size=win)
    uxy = ndimage.uniform_filter(x * y, size=win)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    a1, a2, b1, b2 = 2 * ux * uy + c1, 2 * vxy + c2, ux**2 + uy**2 + c1, vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def _jump(d: NDArray[np.int16]) -> NDArray[np.bool_]:
    """Any channel of a (..., 3) absolute difference above 40 (3 compares: a max over the short
    last axis is several times slower)."""
    out = d[..., 0] > 40
    out |= d[..., 1] > 40
    out |= d[..., 2] > 40
    return out


def edges(img: Img) -> NDArray[np.bool_]:
    """Where the colour jumps between neighbours: the outline of text, boxes and images."""
    return _edges_rows(img, 0, img.shape[0])


def _edges_rows(img: Img, r0: int, r1: int) -> NDArray[np.bool_]:
    """edges(img)[r0:r1], reading one row below the band for the vertical jumps."""
    h = img.shape[0]
    c = img[r0 : min(h, r1 + 1)].astype(np.int16)
    n = r1 - r0
    e = np.zeros((n, img.shape[1]), dtype=bool)
    e[:, :-1] |= _jump(np.abs(c[:n, 1:] - c[:n, :-1]))
    k = min(r1, h - 1) - r0  # rows of the band that have a row below them
    if k > 0:
        e[:k] |= _jump(np.abs(c[1 : k + 1] - c[:k]))
    return e


def same_structure(a: Img, b: Img) -> bool:
    """True when both crops have their edges in the same places (IoU >= 0.6).

    A recoloured button keeps its outline and its text; new text or a hidden block does not.
    """
    h, w = a.shape[:2]
    rows = max(1, STRIP_PIXELS // max(w, 1))
    union = both = 0
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        ea, eb = _edges_rows(a, r0, r1), _edges_rows(b, r0, r1)
        union += int((ea | eb).sum())
        both += int((ea & eb).sum())
    if union == 0:
        return True
    return both / union >= 0.6


def _quantise(colours: Img) -> NDArray[np.int32]:
    c = (colours.reshape(-1, 3) >> 4).astype(np.int32)
    return (c[:, 0] << 8) | (c[:, 1] << 4) | c[:, 2]


def new_colours(ref_crop: Img, test_pixels: Img) -> bool:
    """True when most changed pixels take colours the reference region did not have.

    Tells a recolour (green button turned red) from new content drawn in the same palette
    (a clock's digits, a changed word): both keep their outlines, only one brings new colours.
    """
    palette = np.zeros(1 << 12, dtype=bool)  # quantised colours have 12 bits
    rows = max(1, STRIP_PIXELS // max(ref_crop.shape[1], 1))
    for r0 in range(0, ref_crop.shape[0], rows):
        palette[_quantise(ref_crop[r0 : r0 + rows])] = True
    flat = test_pixels.reshape(-1, 3)
    fresh = 0
    for i in range(0, flat.shape[0], STRIP_PIXELS):
        fresh += int(np.count_nonzero(~palette[_quantise(flat[i : i + STRIP_PIXELS])]))
    return flat.shape[0] > 0 and fresh / flat.shape[0] >= 0.5


def find_shift(
    ref: Img, test: Img, ys: Ints, xs: Ints, max_shift: int
) -> tuple[int, int] | None:
    """The whole-pixel move (dy, dx) that explains the region's differing test pixels.

    Tries every offset up to `max_shift` on the differing pixels only: if SHIFT_EXPLAINED of them
    equal the reference pixel at that offset (and the offset is not zero), the content moved.
    Below that share something else changed too (a word that reflowed its line is content).

    An offset is first tried on a sample of the pixels: when the sample alone already holds
    more misses than the whole region may have, the offset cannot reach SHIFT_EXPLAINED and is
    not scored further. That changes nothing in the answer (only an offset that reaches it can
    be returned) and makes a region that did not move cost a few sampled look-ups per offset.
    """
    if ys.size == 0 or max_shift <= 0:
        return None
    if ys.size > 20_000:
        step = ys.size // 20_000 + 1
        ys, xs = ys[::step], xs[::step]
    n = ys.size
    target = test[ys, xs].astype(np.int16)
    window = _Window(ref, ys, xs, max_shift)
    offsets = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
               if dy or dx]
    # Every offset at once on a sample (all pixels when there are few): counts of matches. The
    # sample is large enough that an offset missing a quarter of the pixels shows more misses
    # in it than the whole region may have.
    allowed = n - _least_matches(n)  # misses an offset may have and still explain the region
    stride = -(-n // min(n, 4 * allowed + 64))
    sample = np.arange(0, n, stride)
    hits = np.zeros(len(offsets), dtype=np.int64)
    for g in range(0, len(offsets), 48):  # 48 offsets at a time: a few MB of temporaries
        dys = np.array([o[0] for o in offsets[g : g + 48]])[:, None]
        dxs = np.array([o[1] for o in offsets[g : g + 48]])[:, None]
        hits[g : g + 48] = np.count_nonzero(window.matches(sample, target[sample][None, :], dys, dxs), axis=1)
    misses = sample.size - hits
    if stride == 1:  # the sample was every pixel: exact scores
        scores = {k: int(hits[k]) / n for k in range(len(offsets))}
    else:
        # Score the offsets that can still reach SHIFT_EXPLAINED, most promising first; skip
        # one whose best possible score (no misses outside the sample) is below the best so
        # far: it can be neither the answer nor tie with it.
        scores = {}
        top = -1.0
        for k in sorted(np.flatnonzero(misses <= allowed).tolist(), key=lambda k: (int(misses[k]), k)):
            if (n - int(misses[k])) / n < top:
                continue
            dy, dx = offsets[k]
            scores[k] = int(np.count_nonzero(window.matches(None, target, dy, dx))) / n
            top = max(top, scores[k])
    best: tuple[float, int, int] = (0.0, 0, 0)
    for k, (dy, dx) in enumerate(offsets):  # the original scan order decides ties
        score = scores.get(k)
        if score is None:
            continue
        if score > best[0] or (score == best[0] and abs(dy) + abs(dx) < abs(best[1]) + abs(best[2])):
            best = (score, dy, dx)
    return (best[1], best[2]) if best[0] >= SHIFT_EXPLAINED else None


def _least_matches(n: int) -> int:
    """The smallest number of matches m with m / n >= SHIFT_EXPLAINED, in float arithmetic."""
    m = min(n, int(np.ceil(SHIFT_EXPLAINED * n)))
    while m > 0 and (m - 1) / n >= SHIFT_EXPLAINED:
        m -= 1
    while m < n and m / n < SHIFT_EXPLAINED:
        m += 1
    return m


class _Window:
    """The reference around a region's pixels, as int16 and flattened, so that the reference
    pixel (dy, dx) away from each test pixel is one gather at a fixed offset (no clipping, no
    conversion per offset). Falls back to reading the whole reference for a region so large
    that its window would be a big copy."""

    MAX_PIXELS = 1 << 20

    def __init__(self, ref: Img, ys: Ints, xs: Ints, max_shift: int) -> None:
        self.ref, self.ys, self.xs = ref, ys, xs
        h, w = ref.shape[:2]
        y0, y1 = max(0, int(ys.min()) - max_shift), min(h, int(ys.max()) + max_shift + 1)
        x0, x1 = max(0, int(xs.min()) - max_shift), min(w, int(xs.max()) + max_shift + 1)
        self.flat: NDArray[np.int16] | None = None
        if (y1 - y0) * (x1 - x0) <= self.MAX_PIXELS:
            self.flat = ref[y0:y1, x0:x1].astype(np.int16).reshape(-1, 3)
            self.cw = x1 - x0
            self.base = (ys - y0).astype(np.intp) * self.cw + (xs - x0)
            # every offset stays inside the image: no validity test needed
            self.inside = (int(ys.min()) - max_shift >= 0 and int(ys.max()) + max_shift < h
                           and int(xs.min()) - max_shift >= 0 and int(xs.max()) + max_shift < w)

    def matches(self, idx: Idx | None, target: NDArray[np.int16], dy: int | Idx, dx: int | Idx) -> NDArray[np.bool_]:
        """_matches for the pixels idx (None: all), as _matches(ref, ys[idx], xs[idx], ...)."""
        ys = self.ys if idx is None else self.ys[idx]
        xs = self.xs if idx is None else self.xs[idx]
        if self.flat is None:
            return _matches(self.ref, ys, xs, target, dy, dx)
        base = self.base if idx is None else self.base[idx]
        f = base - (dy * self.cw + dx)
        if not self.inside:
            h, w = self.ref.shape[:2]
            ry, rx = ys - dy, xs - dx
            valid = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
            f = np.where(valid, f, 0)
        d = np.abs(self.flat[f] - target)
        ok = (d[..., 0] <= 16) & (d[..., 1] <= 16) & (d[..., 2] <= 16)
        return ok if self.inside else ok & valid


def _matches(ref: Img, ys: Ints, xs: Ints, target: NDArray[np.int16], dy: int | Idx,
             dx: int | Idx) -> NDArray[np.bool_]:
    """Which test pixels (colours `target` at ys, xs) equal, within 16 per channel, the
    reference pixel (dy, dx) away. Broadcasts: offsets as a column give one row per offset."""
    h, w = ref.shape[:2]
    ry, rx = ys - dy, xs - dx
    valid = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
    src = ref[np.clip(ry, 0, h - 1), np.clip(rx, 0, w - 1)].astype(np.int16)
    d = np.abs(src - target)
    return valid & (d[..., 0] <= 16) & (d[..., 1] <= 16) & (d[..., 2] <= 16)


def kind_of(ref: Img, test: Img, ys: Ints, xs: Ints, box: Box, max_shift: int) -> tuple[RegionKind, str]:
    """Decide a compared region's kind from crops of both images (same coordinates)."""
    h, w = test.shape[:2]
    padded = pad_box(box, 2, w, h)
    ref_crop, test_crop = crop(ref, padded), crop(test, padded)
    if same_structure(ref_crop, test_crop) and new_colours(ref_crop, test[ys, xs]):
        return RegionKind.COLOUR, "same outlines in both images, different colours"
    shift = find_shift(ref, test, ys, xs, max_shift)
    if shift is not None:
        dy, dx = shift
        return RegionKind.SHIFT, f"content moved by {dx:+d} px horizontally, {dy:+d} px vertically"
    return RegionKind.CONTENT, "outlines differ: text, image or layout changed"


def band_contrast(band: Img, context: Img | None = None) -> float:
    """How visible a band is against the page around it: CIEDE2000 between the band's pixels
    and the commonest colour of `context` (default: of the band itself), 95th percentile."""
    flat = band.reshape(-1, 3)
    if flat.shape[0] == 0:
        return 0.0
    step = max(1, flat.shape[0] // 50_000)
    sample = flat[::step]
    around = (context if context is not None else band).reshape(-1, 3)
    colours, counts = np.unique(around, axis=0, return_counts=True)
    mode = np.ascontiguousarray(np.broadcast_to(colours[int(np.argmax(counts))], sample.shape))
    return round(float(np.percentile(colour_delta_e(mode, sample), 95)), 2)
