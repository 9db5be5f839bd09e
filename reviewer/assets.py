"""The page images of one pair: its screenshots linked beside the page, the heat-map mask,
the thumbnail and the region crops, written under OUT/images/p<index>/ and named relative to OUT.

One palette for the mask (mask_palette): analyze writes it, re-capture repaints it, the
page's legend shows the same colours.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from reviewer.imaging.compare import MASK_CHANGED, MASK_INSERTED, MASK_NOISE
from reviewer.imaging.regions import pad_box
from reviewer.model import Box, Pair, PairAnalysis, PairAssets, RegionKind

MASK_DYNAMIC = 4  # re-capture's extra value: changed pixels that differ between captures of one build
MASK_COLOURS = {
    MASK_NOISE: (255, 176, 0),  # amber: discounted noise
    MASK_CHANGED: (230, 0, 60),  # red: a change to look at
    MASK_INSERTED: (0, 120, 255),  # blue: inserted rows
    MASK_DYNAMIC: (123, 31, 162),  # violet: dynamic content
}


def mask_palette() -> list[int]:
    palette = [0] * 768
    for value, rgb in MASK_COLOURS.items():
        palette[value * 3: value * 3 + 3] = list(rgb)
    return palette


@dataclass(frozen=True)
class PairFolder:
    """Where one pair's page images go; `images_dir` None: analysis only, nothing written."""

    images_dir: Path | None
    pair: Pair


THUMB_WIDTH = 240
THUMB_MAX_HEIGHT = 720
CROP_PAD = 16
MAX_CROPS = 12
# Region crops are previews in the review page's side panel (shown at most ~300 x 160 CSS px;
# the main viewer shows the full-size screenshots). A crop larger than twice that is reduced
# by a whole factor (box average): a photo area that drifted is a megapixel crop, and
# encoding it at full size cost more than decoding the pair.
CROP_PREVIEW_W = 640
CROP_PREVIEW_H = 320



def pair_dir(folder: PairFolder) -> Path | None:
    if folder.images_dir is None:
        return None
    d = folder.images_dir / f"p{folder.pair.index:04d}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def rel_path(path: Path, folder: PairFolder) -> str:
    assert folder.images_dir is not None
    return path.relative_to(folder.images_dir.parent).as_posix()


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        if os.path.samefile(src, dst):  # already linked by an earlier run into this folder
            return
    except OSError:
        pass
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def copy_screenshots(folder: PairFolder) -> PairAssets:
    """Put the pair's own screenshots next to the page (hard links when possible)."""
    d = pair_dir(folder)
    if d is None:
        return PairAssets()
    out: dict[str, str] = {}
    for what, src in (("reference", folder.pair.reference), ("test", folder.pair.test)):
        if src is not None and src.is_file():
            dst = d / f"{what}.png"
            link_or_copy(src, dst)
            out[what] = rel_path(dst, folder)
    return PairAssets(reference=out.get("reference"), test=out.get("test"))


# zlib's run-length strategy: a fifth faster than level 1's default on photo crops, for files a
# fifth larger; screenshots' flat areas compress as well either way.
Z_RLE = 3


def preview_factor(w: int, h: int) -> int:
    """The whole factor that brings a w x h crop within the preview size (1: as it is)."""
    return max(1, -(-w // CROP_PREVIEW_W), -(-h // CROP_PREVIEW_H))


def _save_crop(arr: np.ndarray, path: Path) -> None:
    factor = preview_factor(arr.shape[1], arr.shape[0])
    im = Image.fromarray(np.ascontiguousarray(arr))
    if factor > 1:
        im = im.reduce(factor)
    tmp = path.with_name(path.name + ".part")
    im.save(tmp, format="PNG", compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)


def write_assets(folder: PairFolder, analysis: PairAnalysis, ref: np.ndarray, test: np.ndarray,
                  mask: np.ndarray | None) -> PairAssets:
    base = copy_screenshots(folder)
    d = pair_dir(folder)
    if d is None or mask is None:
        return base
    mask_rel = None
    if mask.any():
        mask_rel = _write_mask(mask, d / "mask.png", folder)
    thumb_rel = _write_thumb(test, d / "thumb.png", folder)
    # A crop that is the whole screenshot (a page that drifted all over) is the screenshot
    # already linked beside the page when its file holds exactly these pixels (plain RGB):
    # point to it instead of encoding a copy.
    whole_ref = base.reference if folder.pair.reference is not None and _plain_rgb(folder.pair.reference) else None
    whole_test = base.test if folder.pair.test is not None and _plain_rgb(folder.pair.test) else None
    crops: list[tuple[str | None, str | None]] = []
    for k, region in enumerate(analysis.regions[:MAX_CROPS]):
        rbox = region.box
        tbox = pad_box(rbox, CROP_PAD, test.shape[1], test.shape[0])
        ref_rel = test_rel = None
        if region.kind is not RegionKind.REMOVED:
            if whole_test is not None and (tbox.w, tbox.h) == (test.shape[1], test.shape[0]):
                test_rel = whole_test
            else:
                p = d / f"r{k}-test.png"
                _save_crop(test[tbox.y : tbox.y2, tbox.x : tbox.x2], p)
                test_rel = rel_path(p, folder)
        if region.kind is not RegionKind.INSERTED:
            if region.kind is RegionKind.REMOVED and region.ref_y is not None and region.ref_h:
                y0, y1 = max(0, region.ref_y - CROP_PAD), min(ref.shape[0], region.ref_y + region.ref_h + CROP_PAD)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            else:
                y0, y1 = tbox.y, min(ref.shape[0], tbox.y2)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            if whole_ref is not None and (y0, x0, y1, x1) == (0, 0, ref.shape[0], ref.shape[1]):
                ref_rel = whole_ref
            elif y1 > y0 and x1 > x0:
                p = d / f"r{k}-reference.png"
                _save_crop(ref[y0:y1, x0:x1], p)
                ref_rel = rel_path(p, folder)
        crops.append((ref_rel, test_rel))
    return PairAssets(reference=base.reference, test=base.test, mask=mask_rel, thumb=thumb_rel,
                      crops=tuple(crops))


def _plain_rgb(path: Path) -> bool:
    """True when the file decodes to exactly the RGB array the analysis saw (8-bit RGB PNG,
    no transparency to composite)."""
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.mode == "RGB" and "transparency" not in im.info
    except (OSError, ValueError, SyntaxError):
        return False


def _write_mask(mask: np.ndarray, path: Path, folder: PairFolder) -> str:
    # frombuffer shares the mask's memory: no two full-size copies while the pair's images are held.
    im = Image.frombuffer("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask), "raw", "P", 0, 1)
    im.putpalette(mask_palette())
    tmp = path.with_name(path.name + ".part")
    # Index 0 transparent, so the mask lies over the screenshot in the page. Four values fit
    # in 2 bits per pixel: a quarter of the bytes to filter and compress (4x faster to write).
    im.save(tmp, format="PNG", transparency=0, bits=2, compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)
    return rel_path(path, folder)


def repaint_mask(path: Path, boxes: Sequence[Box]) -> None:
    """Repaint the changed pixels inside `boxes` as dynamic in a pair's mask.png (re-capture
    found them differing between captures of one build), so the heat map agrees."""
    try:
        with Image.open(path) as im:
            if im.mode != "P":
                return
            arr = np.array(im)
    except OSError:
        return
    for b in boxes:
        sub = arr[b.y: b.y2, b.x: b.x2]
        sub[sub == MASK_CHANGED] = MASK_DYNAMIC
    out = Image.frombytes("P", (arr.shape[1], arr.shape[0]), np.ascontiguousarray(arr).tobytes())
    out.putpalette(mask_palette())
    tmp = path.with_name(path.name + ".part")
    out.save(tmp, format="PNG", transparency=0, compress_level=1)
    os.replace(tmp, path)


def _write_thumb(test: np.ndarray, path: Path, folder: PairFolder) -> str:
    h, w = test.shape[:2]
    scale = THUMB_WIDTH / w if w > THUMB_WIDTH else 1.0
    crop_h = min(h, int(THUMB_MAX_HEIGHT / scale))
    # Every k-th pixel first (k at most half the reduction, so the resampling below still
    # averages): converting the full-size rows into a Pillow image was most of the cost.
    k = max(1, int(1 / scale) // 2)
    im = Image.fromarray(np.ascontiguousarray(test[:crop_h:k, ::k]))
    if scale < 1.0:
        # reducing_gap: box-reduce by a whole factor first, then resample: twice as fast and
        # indistinguishable at thumbnail size.
        im = im.resize((THUMB_WIDTH, max(1, round(crop_h * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    tmp = path.with_name(path.name + ".part")
    im.save(tmp, format="PNG", compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)
    return rel_path(path, folder)


