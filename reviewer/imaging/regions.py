"""Group differing pixels into regions and say what kind of change each region is."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.measure import label
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation

from reviewer.model import Box, RegionKind

Img = NDArray[np.uint8]
Idx = NDArray[np.intp]

SUBPIXEL_GAIN = 0.2  # share of the difference a sub-pixel move must explain
SUBPIXEL_INK = 0.03  # largest change of total ink for a region that only moved
SHIFT_EXPLAINED = 0.97  # share of differing pixels a whole-pixel move must explain


def group_pixels(ys: Idx, xs: Idx, shape: tuple[int, int], merge_px: int) -> list[tuple[Box, Idx]]:
    """Cluster pixels that lie within about `merge_px` of each other.

    Pixels are binned into merge_px-sized cells; touching cells (8-connected) form one
    cluster, so the glyphs of a changed word become one region rather than one per glyph.
    Returns each cluster's tight box and the indices of its pixels, boxes merged where they
    overlap, ordered top to bottom.
    """
    if ys.size == 0:
        return []
    cell = max(1, merge_px)
    h, w = shape
    gy, gx = ys // cell, xs // cell
    grid = np.zeros((h // cell + 1, w // cell + 1), dtype=bool)
    grid[gy, gx] = True
    labels = label(grid, connectivity=2)
    pix_label = labels[gy, gx]
    order = np.argsort(pix_label, kind="stable")
    bounds = np.flatnonzero(np.diff(pix_label[order])) + 1
    clusters = [np.sort(idx) for idx in np.split(order, bounds)]
    boxes = [(_bbox(ys[idx], xs[idx]), idx) for idx in clusters]
    return sorted(_merge_overlapping(boxes), key=lambda item: (item[0].y, item[0].x))


def _bbox(ys: Idx, xs: Idx) -> Box:
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    return Box(x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x2 and b.x < a.x2 and a.y < b.y2 and b.y < a.y2


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    return Box(x0, y0, max(a.x2, b.x2) - x0, max(a.y2, b.y2) - y0)


def _merge_overlapping(items: list[tuple[Box, Idx]]) -> list[tuple[Box, Idx]]:
    merged = list(items)
    changed = True
    while changed:
        changed = False
        out: list[tuple[Box, Idx]] = []
        for box, idx in merged:
            for k, (obox, oidx) in enumerate(out):
                if _overlap(box, obox):
                    out[k] = (_union(box, obox), np.concatenate([oidx, idx]))
                    changed = True
                    break
            else:
                out.append((box, idx))
        merged = out
    return merged


def pad_box(box: Box, pad: int, w: int, h: int) -> Box:
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(w, box.x2 + pad), min(h, box.y2 + pad)
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop(img: Img, box: Box) -> Img:
    return img[box.y : box.y2, box.x : box.x2]


def grey(img: Img) -> NDArray[np.float64]:
    c = img.astype(np.float64)
    return c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114


def region_ssim(a: Img, b: Img) -> float | None:
    """SSIM of two same-shape crops on luminance; None when the crop is too thin for a window."""
    side = min(a.shape[0], a.shape[1])
    if side < 3:
        return None
    win = min(7, side if side % 2 else side - 1)
    value = structural_similarity(grey(a), grey(b), win_size=win, data_range=255.0)
    return round(float(value), 4)


def edges(img: Img) -> NDArray[np.bool_]:
    """Where the colour jumps between neighbours: the outline of text, boxes and images."""
    c = img.astype(np.int16)
    e = np.zeros(img.shape[:2], dtype=bool)
    e[:, :-1] |= np.abs(c[:, 1:] - c[:, :-1]).max(axis=2) > 40
    e[:-1, :] |= np.abs(c[1:, :] - c[:-1, :]).max(axis=2) > 40
    return e


def same_structure(a: Img, b: Img) -> bool:
    """True when both crops have their edges in the same places (IoU >= 0.6).

    A recoloured button keeps its outline and its text; new text or a hidden block does not.
    """
    ea, eb = edges(a), edges(b)
    union = int((ea | eb).sum())
    if union == 0:
        return True
    return (ea & eb).sum() / union >= 0.6


def _quantise(colours: Img) -> NDArray[np.int32]:
    c = (colours.reshape(-1, 3) >> 4).astype(np.int32)
    return (c[:, 0] << 8) | (c[:, 1] << 4) | c[:, 2]


def new_colours(ref_crop: Img, test_pixels: Img) -> bool:
    """True when most changed pixels take colours the reference region did not have.

    Tells a recolour (green button turned red) from new content drawn in the same palette
    (a clock's digits, a changed word): both keep their outlines, only one brings new colours.
    """
    palette = np.unique(_quantise(ref_crop))
    fresh = ~np.isin(_quantise(test_pixels), palette)
    return bool(fresh.mean() >= 0.5)


def find_shift(
    ref: Img, test: Img, ys: Idx, xs: Idx, max_shift: int
) -> tuple[int, int] | None:
    """The whole-pixel move (dy, dx) that explains the region's differing test pixels.

    Tries every offset up to `max_shift` on the differing pixels only: if SHIFT_EXPLAINED of them
    equal the reference pixel at that offset (and the offset is not zero), the content moved.
    Below that share something else changed too (a word that reflowed its line is content).
    """
    if ys.size == 0 or max_shift <= 0:
        return None
    h, w = ref.shape[:2]
    if ys.size > 20_000:
        step = ys.size // 20_000 + 1
        ys, xs = ys[::step], xs[::step]
    target = test[ys, xs].astype(np.int16)
    best: tuple[float, int, int] = (0.0, 0, 0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            if dy == 0 and dx == 0:
                continue
            ry, rx = ys - dy, xs - dx
            valid = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
            src = ref[np.clip(ry, 0, h - 1), np.clip(rx, 0, w - 1)].astype(np.int16)
            match = valid & (np.abs(src - target).max(axis=1) <= 16)
            score = float(match.mean())
            if score > best[0] or (score == best[0] and abs(dy) + abs(dx) < abs(best[1]) + abs(best[2])):
                best = (score, dy, dx)
    return (best[1], best[2]) if best[0] >= SHIFT_EXPLAINED else None


def kind_of(ref: Img, test: Img, ys: Idx, xs: Idx, box: Box, max_shift: int) -> tuple[RegionKind, str]:
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


def subpixel_offset(ref: Img, test: Img, max_offset: float = 1.0) -> tuple[float, float] | None:
    """The fraction-of-a-pixel move that explains a region, or None if none does.

    Edges re-rasterised at a sub-pixel offset change shades in ways no per-pixel test can
    explain (a thin stroke's ink moves between two pixels). Over the whole region, though, the
    test crop is the reference crop moved by less than a pixel: phase correlation (upsampled
    to 1/20 px) estimates that move, and it counts when moving the reference by it removes at
    least SUBPIXEL_GAIN of the difference and the ink (total darkness) is conserved within
    SUBPIXEL_INK. Measured on Chromium text moved by 0.3 px the move removes 30-67% of the
    difference; on a changed word the best move is several pixels, or removes nothing.
    """
    if min(ref.shape[0], ref.shape[1]) < 4 or ref.shape[0] * ref.shape[1] > 512 * 512:
        return None
    a, b = grey(ref), grey(test)
    before = float(np.abs(a - b).mean())
    if before == 0:
        return None
    ink_a, ink_b = float((255 - a).sum()), float((255 - b).sum())
    if abs(ink_a - ink_b) > SUBPIXEL_INK * max(ink_a, ink_b, 1.0):
        return None
    offset, _, _ = phase_cross_correlation(b, a, upsample_factor=20, normalization=None)
    dy, dx = float(offset[0]), float(offset[1])
    if max(abs(dy), abs(dx)) > max_offset or max(abs(dy), abs(dx)) < 0.05:
        return None
    moved = ndimage.shift(a, (dy, dx), order=1, mode="nearest")
    inner = (slice(1, -1), slice(1, -1))
    after = float(np.abs(moved[inner] - b[inner]).mean())
    return (dy, dx) if after <= (1 - SUBPIXEL_GAIN) * float(np.abs(a[inner] - b[inner]).mean()) else None
