"""Stage 3: form regions, the areas a person would look at as one change.

Candidate pixels (candidates.py) closer than `merge_distance_px` are one candidate region: the
glyphs of a changed word, the edges of a re-rasterised paragraph, the pixels of a re-encoded
photo. Each is judged as a whole (judge.py). Pixels that are all drift or ignored form the
discounted regions shown when a pair has nothing else to show (`exact_noise_regions`),
computed from per-cluster sums a chunk of rows at a time, without coordinate lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

# label() imports skimage.morphology (and with it scipy.spatial) on its first call on a
# boolean image. Imported here, before `analyze` forks its workers, so they share it instead
# of each paying ~60 ms and its memory on its first pair.
import skimage.morphology  # noqa: F401
from numpy.typing import NDArray
from skimage.measure import label

from reviewer.imaging.candidates import (
    CANDIDATE,
    CLASS_NAMES,
    MIN_SAMPLE,
    N_CLASSES,
    SAMPLE_STRIDE,
    Scan,
    cell_index,
    colour_difference,
    differing_pixels_in_rows,
    gather,
)
from reviewer.model import Box, Region, RegionKind

Img = NDArray[np.uint8]
Idx = NDArray[np.intp]
Ints = NDArray[np.signedinteger[Any]]  # coordinates: intp, or int32 where lists are long
T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """One candidate region of a segment: its box and its pixels (segment coordinates)."""

    box: Box
    ys: Ints
    xs: Ints
    delta_e: NDArray[np.float32]  # the pixels' own colour differences (CIEDE2000, unblurred)


def candidate_regions(scan: Scan, shape: tuple[int, int], merge_px: int) -> list[Candidate]:
    """The scan's candidate pixels grouped into regions, top to bottom."""
    out = []
    for box, idx in group_pixels(scan.cand_ys, scan.cand_xs, shape, merge_px):
        out.append(Candidate(box, scan.cand_ys[idx], scan.cand_xs[idx], scan.delta_e[scan.cand_pos[idx]]))
    return out


def isolated(boxes: list[Box], distance: int) -> list[bool]:
    """For each box: no other box comes within `distance` px of it."""
    out = []
    for i, a in enumerate(boxes):
        out.append(not any(j != i and a.x - distance < b.x2 and b.x < a.x2 + distance
                           and a.y - distance < b.y2 and b.y < a.y2 + distance for j, b in enumerate(boxes)))
    return out


def group_pixels(ys: Ints, xs: Ints, shape: tuple[int, int], merge_px: int) -> list[tuple[Box, Idx]]:
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
    # A stable sort keeps each cluster's indices in ascending order already.
    clusters = np.split(order, bounds)
    boxes = [(_bbox(ys[idx], xs[idx]), idx) for idx in clusters]
    return sorted(_merge_overlapping(boxes), key=lambda item: (item[0].y, item[0].x))


def _bbox(ys: Ints, xs: Ints) -> Box:
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    return Box(x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x2 and b.x < a.x2 and a.y < b.y2 and b.y < a.y2


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    return Box(x0, y0, max(a.x2, b.x2) - x0, max(a.y2, b.y2) - y0)


def _merge_overlapping(items: list[tuple[Box, Idx]]) -> list[tuple[Box, Idx]]:
    return merge_overlapping(items, lambda first, then: np.concatenate([first, then]))


def merge_overlapping(items: list[tuple[Box, T]], combine: Callable[[T, T], T]) -> list[tuple[Box, T]]:
    """Merge boxes that overlap until none do, combining their payloads (earlier one first)."""
    merged = list(items)
    changed = True
    while changed:
        changed = False
        out: list[tuple[Box, T]] = []
        for box, payload in merged:
            for k, (obox, opayload) in enumerate(out):
                if _overlap(box, obox):
                    out[k] = (_union(box, obox), combine(opayload, payload))
                    changed = True
                    break
            else:
                out.append((box, payload))
        merged = out
    return merged


def pad_box(box: Box, pad: int, w: int, h: int) -> Box:
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(w, box.x2 + pad), min(h, box.y2 + pad)
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop(img: Img, box: Box) -> Img:
    return img[box.y : box.y2, box.x : box.x2]


_EXACT_KIND = {"drift": RegionKind.DRIFT, "ignored": RegionKind.IGNORED}


def exact_noise_regions(a: Img, b: Img, scan: Scan, t0: int, cell: int, drift_delta_e: float) -> list[Region]:
    """Where the differences discounted by the exact rules are (drift, ignored), so a reviewer
    can check the call: clusters of differing pixels (grouped as group_pixels would) that hold
    no candidate pixel. Clusters with candidates are the candidate regions' business.

    Computed from per-cluster sums a chunk of rows at a time instead of from coordinate lists:
    a page that drifted all over has millions of differing pixels.
    """
    nc = N_CLASSES
    cell = max(1, cell)
    labels = label(scan.occupied, connectivity=2)
    nl = int(labels.max()) + 1
    big = np.iinfo(np.int64).max
    count = np.zeros(nl, dtype=np.int64)
    ymin, ymax = np.full(nl, big, dtype=np.int64), np.full(nl, -1, dtype=np.int64)
    xmin, xmax = np.full(nl, big, dtype=np.int64), np.full(nl, -1, dtype=np.int64)
    per_class = np.zeros(nl * nc, dtype=np.int64)
    first = np.full(nl * nc, big, dtype=np.int64)  # first position of each class in each cluster
    parts: list[list[NDArray[np.float32]]] = [[] for _ in range(nl)]
    # The values at every SAMPLE_STRIDE-th scan position (always computed: see pixel_delta_e).
    sample: list[list[NDArray[np.float32]]] = [[] for _ in range(nl)]
    for chunk, start, stop in scan.chunks:
        ys, xs = differing_pixels_in_rows(a, b, chunk)
        lab = labels.reshape(-1)[cell_index(ys, xs, cell, labels.shape[1])].astype(np.intp)
        de = scan.delta_e[start:stop]
        cls = scan.cls[start:stop]
        lo, hi = int(lab.min()), int(lab.max())
        if lo == hi:
            # One cluster (a page that drifted all over is one): scalar updates instead of
            # scattered ones. ys ascends (row-major order), so its ends are its extremes.
            count[lo] += ys.size
            ymin[lo], ymax[lo] = min(ymin[lo], int(ys[0])), max(ymax[lo], int(ys[-1]))
            xmin[lo], xmax[lo] = min(xmin[lo], int(xs.min())), max(xmax[lo], int(xs.max()))
            in_chunk = np.bincount(cls, minlength=nc)[:nc]
            per_class[lo * nc : lo * nc + nc] += in_chunk
            for present in np.flatnonzero(in_chunk).tolist():
                k = lo * nc + present
                first[k] = min(int(first[k]), start + int(np.argmax(cls == present)))
            parts[lo].append(de)
            sample[lo].append(de[(-start) % SAMPLE_STRIDE :: SAMPLE_STRIDE])
        else:
            count += np.bincount(lab, minlength=nl)
            np.minimum.at(ymin, lab, ys)
            np.maximum.at(ymax, lab, ys)
            np.minimum.at(xmin, lab, xs)
            np.maximum.at(xmax, lab, xs)
            key = lab * nc + cls
            per_class += np.bincount(key, minlength=nl * nc)
            np.minimum.at(first, key, np.arange(start, stop, dtype=np.int64))
            order = np.argsort(lab.astype(np.uint16) if hi < 1 << 16 else lab, kind="stable")
            bounds = np.flatnonzero(np.diff(lab[order])) + 1
            for group in np.split(order, bounds):
                parts[int(lab[group[0]])].append(de[group])
                sample[int(lab[group[0]])].append(de[group[(start + group) % SAMPLE_STRIDE == 0]])
    clusters = [(Box(int(xmin[k]), int(ymin[k]), int(xmax[k] - xmin[k] + 1), int(ymax[k] - ymin[k] + 1)), [k])
                for k in range(1, nl)]
    merged = sorted(merge_overlapping(clusters, lambda p, q: p + q), key=lambda item: (item[0].y, item[0].x))
    out: list[Region] = []
    region_of = np.full(nl, -1, dtype=np.intp)  # cluster -> its region in `out`
    exact: list[int] = []  # small regions whose contrast needs values the drift bound left unknown
    for box, members in merged:
        if any(per_class[k * nc + CANDIDATE] for k in members):
            continue
        # Class counts in the order each class first appears among the group's pixels (the
        # clusters' pixels in merge order): Counter keeps that order for its ties.
        seen: dict[int, int] = {}
        for k in members:
            for c in sorted(range(nc), key=lambda c: first[k * nc + c]):
                if per_class[k * nc + c] and c not in seen:
                    seen[c] = 0
        for c in seen:
            seen[c] = int(sum(per_class[k * nc + c] for k in members))
        classes = Counter({CLASS_NAMES[c]: n for c, n in seen.items()})
        kind = _EXACT_KIND[classes.most_common(1)[0][0]]
        pixels = int(sum(count[k] for k in members))
        if pixels == scan.n:
            # Every differing pixel (a page that drifted all over): the scan's own array, no
            # copy. This is its last use, so the percentile may reorder it in place (it is the
            # only region, and a region with unknown values never takes the in-place path).
            values, in_place = scan.delta_e, True
        else:
            parts_of = [v for k in members for v in parts[k]]
            values = parts_of[0] if len(parts_of) == 1 else np.concatenate(parts_of)
            in_place = len(parts_of) > 1  # a fresh concatenation is ours to reorder
        contrast = 0.0
        if values.size and float(values.min()) < 0 and not _percentile_above(values, drift_delta_e):
            # Values the drift bound left unknown decide the percentile.
            if pixels >= SAMPLE_STRIDE * MIN_SAMPLE:
                contrast = round(float(np.percentile(np.concatenate([v for k in members for v in sample[k]]), 95)), 2)
            else:
                exact.append(len(out))
        else:
            contrast = round(float(np.percentile(values, 95, overwrite_input=in_place)), 2)
        out.append(Region(
            box=Box(box.x, box.y + t0, box.w, box.h), kind=kind, pixels=pixels, contrast=contrast,
            ssim=None, significant=False, why=_exact_why(classes, drift_delta_e),
        ))
        region_of[members] = len(out) - 1
    if exact:
        spans = [(r.box.y - t0, r.box.y2 - t0) for r in out]
        found = _exact_contrasts(a, b, scan, labels, cell, region_of, spans, exact)
        out = [replace(r, contrast=found[i]) if i in found else r for i, r in enumerate(out)]
    return out


def _exact_why(classes: Counter[str], drift_delta_e: float) -> str:
    parts = []
    for name, n in classes.most_common():
        if name == "drift":
            parts.append(f"{n:,} px of colour drift below ΔE {drift_delta_e:g}, invisible")
        else:
            parts.append(f"{n:,} px inside an ignore region")
    return "; ".join(parts)


def _percentile_above(values: NDArray[np.float32], threshold: float) -> bool:
    """True when the 95th percentile of `values` (numpy's linear interpolation between the two
    order statistics around rank 0.95 (n - 1)) falls among the values at or above `threshold`:
    it then does not depend on the values below it, such as the unknown ones (all below)."""
    below = int(np.count_nonzero(values < threshold))
    return int(np.floor(0.95 * (values.size - 1))) >= below


def _exact_contrasts(a: Img, b: Img, scan: Scan, labels: NDArray[np.int32], cell: int, region_of: NDArray[np.intp],
                     spans: list[tuple[int, int]], wanted: list[int]) -> dict[int, float]:
    """The contrast of regions with fewer than SAMPLE_STRIDE * MIN_SAMPLE pixels whose values
    the drift bound left unknown: computed for all their pixels, reading only their rows."""
    n = len(spans)
    take = np.zeros(n + 1, dtype=bool)  # slot n: clusters of no wanted region
    take[wanted] = True
    region_of = np.where(region_of < 0, n, region_of)
    rows = [spans[r] for r in wanted]
    values: dict[int, list[NDArray[np.float32]]] = {r: [] for r in wanted}
    for chunk, start, stop in scan.chunks:
        if not any(y0 <= int(chunk[-1]) and int(chunk[0]) < y1 for y0, y1 in rows):
            continue
        ys, xs = differing_pixels_in_rows(a, b, chunk)
        reg = region_of[labels.reshape(-1)[cell_index(ys, xs, cell, labels.shape[1])]]
        pick = np.flatnonzero(take[reg])
        if pick.size == 0:
            continue
        de = scan.delta_e[start:stop][pick]
        unknown = np.flatnonzero(de < 0)
        if unknown.size:
            at = pick[unknown]
            de[unknown] = colour_difference(gather(a, ys[at], xs[at]), gather(b, ys[at], xs[at]))
        owner = reg[pick]
        for r in np.unique(owner).tolist():
            values[r].append(de[owner == r])
    return {r: round(float(np.percentile(np.concatenate(values[r]), 95)), 2) for r in wanted}


