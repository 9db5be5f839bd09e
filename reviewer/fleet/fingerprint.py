"""A perceptual fingerprint of one changed region: what it looked like before and after.

The review's crops are the region padded by assets.CROP_PAD pixels (clipped at the image's
edges) and, when large, reduced by a whole factor. The padding shows whatever surrounds the
region, which differs from site to site, so the region is cut back out of each crop first.
Each side is then reduced to a THUMB x THUMB colour thumbnail: that forgets where the region
was and small differences of size, and keeps its colours and coarse shape, which is what
makes "the same change" (a button that turned from green to blue) the same on every site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from reviewer.assets import CROP_PAD
from reviewer.model import Box

THUMB = 12
SIDE = THUMB * THUMB * 3
# Mean absolute difference (0..1) of two fingerprints' thumbnails within which two regions are
# one change: a flat colour that differs by about 20 levels in one channel, or the same
# button with a few pixels of different surroundings. A different colour or shape is far above.
MATCH_DISTANCE = 0.06
# |log(w1/h1) - log(w2/h2)|: a 120x40 and a 132x40 button match, a button and a banner do not.
MATCH_ASPECT = 0.35


# The colours of the changed pixels, before and after, must match within this CIEDE2000
# distance (2.3 is a just-noticeable difference): a button that turned a slightly different
# blue is another change, however alike the thumbnails are; the same blue under a label in
# another language is the same change.
MATCH_DELTA_E = 4.0
CHANGED_LEVELS = 24  # summed |RGB| difference from which a pixel counts as changed for the colours


@dataclass(frozen=True)
class Fingerprint:
    kind: str
    aspect: float  # log(width / height) of the region
    reference: bytes  # SIDE bytes (THUMB x THUMB RGB), or b"" when the side does not exist
    test: bytes
    colours: bytes = b""  # median RGB of the changed pixels before, then after (6 bytes); b"": unknown

    def hex(self) -> str:
        return (self.reference + b"|" + self.test + b"|" + self.colours).hex()


def _thumb(region: np.ndarray) -> bytes:
    im = Image.fromarray(np.ascontiguousarray(region)).convert("RGB")
    return im.resize((THUMB, THUMB), Image.Resampling.BOX).tobytes()


def changed_colours(ref: np.ndarray | None, test: np.ndarray | None) -> bytes:
    """Median colour of the changed pixels in each side (all of a side's pixels when the two
    cannot be laid over each other: one side missing, or cut to different sizes at an edge)."""
    if ref is None and test is None:
        return b""
    if ref is not None and test is not None and ref.shape == test.shape:
        changed = np.abs(ref.astype(np.int16) - test.astype(np.int16)).sum(axis=2) > CHANGED_LEVELS
        if changed.any():
            return bytes(np.median(ref[changed], axis=0).astype(np.uint8).tolist()
                         + np.median(test[changed], axis=0).astype(np.uint8).tolist())
    sides = [np.median(side.reshape(-1, 3), axis=0) if side is not None else np.zeros(3) for side in (ref, test)]
    return bytes(np.concatenate(sides).astype(np.uint8).tolist())


def cut_region(crop: np.ndarray, box: Box, origin: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """The region `box` inside a crop whose top-left is `origin` in the image and whose size
    before any preview reduction was `full` (w, h)."""
    h, w = crop.shape[:2]
    fx = max(1, round(full[0] / w)) if w else 1
    fy = max(1, round(full[1] / h)) if h else 1
    x0 = max(0, (box.x - origin[0]) // fx)
    y0 = max(0, (box.y - origin[1]) // fy)
    x1 = min(w, max(x0 + 1, -(-(box.x2 - origin[0]) // fx)))
    y1 = min(h, max(y0 + 1, -(-(box.y2 - origin[1]) // fy)))
    return crop[y0:y1, x0:x1]


def crop_geometry(box: Box, image_size: tuple[int, int] | None, whole: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """(origin, full size) of the crop analyze wrote for `box` (see assets.py)."""
    if whole and image_size:
        return (0, 0), image_size
    w, h = image_size or (box.x2 + CROP_PAD, box.y2 + CROP_PAD)
    x0, y0 = max(0, box.x - CROP_PAD), max(0, box.y - CROP_PAD)
    x1, y1 = min(w, box.x2 + CROP_PAD), min(h, box.y2 + CROP_PAD)
    return (x0, y0), (max(1, x1 - x0), max(1, y1 - y0))


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def side_region(path: Path | None, box: Box, image_size: tuple[int, int] | None, whole: bool) -> np.ndarray | None:
    if path is None:
        return None
    crop = load_rgb(path)
    origin, full = crop_geometry(box, image_size, whole)
    return cut_region(crop, box, origin, full)


def fingerprint(kind: str, box: Box, ref_box: Box, ref_crop: Path | None, test_crop: Path | None,
                ref_size: tuple[int, int] | None, test_size: tuple[int, int] | None,
                whole_ref: bool = False, whole_test: bool = False) -> Fingerprint:
    aspect = math.log(max(1, box.w) / max(1, box.h))
    ref = side_region(ref_crop, ref_box, ref_size, whole_ref)
    test = side_region(test_crop, box, test_size, whole_test)
    return Fingerprint(kind, aspect, _thumb(ref) if ref is not None else b"",
                       _thumb(test) if test is not None else b"", changed_colours(ref, test))


def colours_match(a: Fingerprint, b: Fingerprint) -> bool:
    if not a.colours or not b.colours:
        return a.colours == b.colours
    from reviewer.imaging.colour import colour_delta_e

    ca = np.frombuffer(a.colours, np.uint8).reshape(2, 3)
    cb = np.frombuffer(b.colours, np.uint8).reshape(2, 3)
    return bool((colour_delta_e(ca, cb) <= MATCH_DELTA_E).all())


def distance(a: Fingerprint, b: Fingerprint) -> float:
    """0 (the same change) .. 1; inf when they cannot be the same change (kind, sides, shape)."""
    if a.kind != b.kind or abs(a.aspect - b.aspect) > MATCH_ASPECT:
        return math.inf
    if (not a.reference) != (not b.reference) or (not a.test) != (not b.test):
        return math.inf
    total = 0.0
    count = 0
    for x, y in ((a.reference, b.reference), (a.test, b.test)):
        if x:
            total += float(np.abs(np.frombuffer(x, np.uint8).astype(np.int16)
                                  - np.frombuffer(y, np.uint8).astype(np.int16)).sum())
            count += len(x)
    return total / (255.0 * count) if count else math.inf


def same_change(a: Fingerprint, b: Fingerprint) -> bool:
    return distance(a, b) <= MATCH_DISTANCE and colours_match(a, b)
