"""Compare one reference/test pair: align, classify pixels, form regions, give a verdict.

Pure: arrays and settings in, PairAnalysis out. File handling lives in reviewer.analyze.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from skimage.measure import label

from reviewer.config import Settings
from reviewer.imaging.align import Segment, align_rows, realign_same_height
from reviewer.imaging.drift_table import proven_drift
from reviewer.imaging.pixels import (
    CLASS_NAMES,
    SIGNIFICANT,
    SUBPIXEL,
    DeltaECache,
    classify_at,
    colour_delta_e,
    differing_pixels_in_rows,
    differing_rows,
    gather,
    row_chunks,
)
from reviewer.imaging.regions import (
    crop,
    group_pixels,
    kind_of,
    merge_overlapping,
    pad_box,
    region_ssim,
    subpixel_offset,
)
from reviewer.model import Box, PairAnalysis, Region, RegionKind, Verdict

Img = NDArray[np.uint8]

_NOISE_KIND = {
    "drift": RegionKind.DRIFT,
    "antialias": RegionKind.ANTIALIAS,
    "subpixel": RegionKind.SUBPIXEL,
    "ignored": RegionKind.IGNORED,
}
MAX_NOISE_REGIONS = 20
# An inserted/removed band this thin and without visible content is layout rounding
# (a page 1 px taller because of a fractional height), not a change.
ROUNDING_ROWS = 2


# Values of the mask that compare_images can fill, one per test-image pixel.
MASK_NONE, MASK_NOISE, MASK_CHANGED, MASK_INSERTED = 0, 1, 2, 3


def compare_images(
    ref: Img, test: Img, settings: Settings, ignore: tuple[Box, ...] = (), mask: Img | None = None
) -> PairAnalysis:
    """Compare two screenshots. When `mask` (uint8, test-image height x width) is given it is
    filled with MASK_* values so the review page can paint where the differences are."""
    if mask is not None and (mask.shape != test.shape[:2] or not mask.flags.c_contiguous):
        # It is written through flat views: a strided mask would silently stay empty.
        raise ValueError("mask must be a C-contiguous array of the test image's height x width")
    ref_size = (int(ref.shape[1]), int(ref.shape[0]))
    test_size = (int(test.shape[1]), int(test.shape[0]))
    same_shape = ref.shape == test.shape
    rows = differing_rows(ref, test) if same_shape else None
    if rows is not None and not rows.any():
        return PairAnalysis(Verdict.UNCHANGED, "pixel-identical", (), ref_size, test_size)

    regions: list[Region] = []
    noise: Counter[str] = Counter()
    # Noise regions are only shown when nothing significant is found; each entry is a band
    # region or a deferred computation over one segment's scan, kept in page order.
    noise_regions: list[Region | Callable[[], list[Region]]] = []
    w = min(ref.shape[1], test.shape[1])
    if ref.shape[1] != test.shape[1]:
        regions.append(_width_region(ref, test, w))
        if mask is not None and test.shape[1] > w:
            mask[:, w:] = MASK_INSERTED
    ref_c, test_c = ref[:, :w], test[:, :w]

    segments = (realign_same_height(ref_c, test_c, rows) if rows is not None else None) or align_rows(ref_c, test_c)
    for seg in segments:
        seg_rows = rows if (rows is not None and seg.kind == "compare" and seg.r0 == 0
                            and seg.r1 == ref.shape[0]) else None
        if seg.kind == "equal":
            seg_rows = differing_rows(ref_c[seg.r0 : seg.r1], test_c[seg.t0 : seg.t1])
            if not seg_rows.any():
                continue
        if seg.kind in ("inserted", "removed"):
            band = _band_region(ref_c, test_c, seg, settings)
            if mask is not None and seg.kind == "inserted":
                mask[seg.t0 : seg.t1, :w] = MASK_INSERTED if band.significant else MASK_NOISE
            if band.significant:
                regions.append(band)
            else:
                noise[band.kind.value] += band.box.area
                noise_regions.append(band)
            continue
        found, noisy, counts = _compare_segment(ref_c, test_c, seg, settings, ignore, mask, seg_rows)
        regions += found
        if noisy is not None:
            noise_regions.append(noisy)
        noise.update(counts)

    significant = [r for r in regions if r.significant]
    changed_pixels = sum(r.pixels for r in significant)
    ssims = [r.ssim for r in significant if r.ssim is not None]
    if significant:
        kinds = Counter(r.kind.value for r in significant)
        what = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        verdict, reason = Verdict.CHANGED, f"{len(significant)} changed region(s): {what}"
    else:
        total = sum(noise.values())
        parts = ", ".join(f"{k} {n} px" for k, n in noise.most_common())
        verdict, reason = Verdict.NOISE, f"only rendering noise ({total} px: {parts})"
    shown = significant if significant else _top_noise(_expand(noise_regions))
    return PairAnalysis(
        verdict=verdict,
        reason=reason,
        regions=tuple(sorted(shown, key=lambda r: (r.box.y, r.box.x))),
        ref_size=ref_size,
        test_size=test_size,
        changed_pixels=changed_pixels,
        noise_pixels=dict(noise),
        ssim=min(ssims) if ssims else None,
    )


def _expand(items: list[Region | Callable[[], list[Region]]]) -> list[Region]:
    out: list[Region] = []
    for item in items:
        out += [item] if isinstance(item, Region) else item()
    return out


def _top_noise(regions: list[Region]) -> list[Region]:
    return sorted(regions, key=lambda r: -r.pixels)[:MAX_NOISE_REGIONS]


# The delta E of colour pairs already seen, kept for the life of the process (a worker
# analyses many pairs of the same site: the same colours come back).
_DELTA_E = DeltaECache()


# The colour difference of a pixel the drift bound proved below the threshold is not computed
# (the pixel is drift whatever its value), except at every SAMPLE_STRIDE-th position of a
# segment's scan. A noise region's contrast (95th percentile of its pixels' values) is exact
# when it lies above the threshold (the unknown values are all below it: their order is all
# that matters); otherwise it comes from that even sample when the region has at least
# SAMPLE_STRIDE * MIN_SAMPLE pixels, and from every pixel's value, computed then, when smaller.
UNKNOWN_DE = np.float32(-1.0)
SAMPLE_STRIDE = 32
MIN_SAMPLE = 512


def _delta_e(ca: Img, cb: Img, drift_threshold: float, first: int) -> NDArray[np.float32]:
    """CIEDE2000 of each colour pair (scan positions first, first + 1, ...), or UNKNOWN_DE where
    drift_table proves the pair is drift and the position is not a sample position."""
    proven = proven_drift(ca, cb, drift_threshold)
    proven[(-first) % SAMPLE_STRIDE :: SAMPLE_STRIDE] = False
    if not proven.any():
        return _DELTA_E.lookup(ca, cb)
    de = np.full(ca.shape[0], UNKNOWN_DE, dtype=np.float32)
    rest = np.flatnonzero(~proven)
    if rest.size:
        de[rest] = _DELTA_E.lookup(ca[rest], cb[rest])
    return de


def cell_index(ys: NDArray[np.intp], xs: NDArray[np.intp], cell: int, cells_per_row: int) -> NDArray[np.intp]:
    """Flat index, in a grid of cell x cell px cells, of the cell holding each pixel: one 1-D
    scatter or gather instead of a 2-D one (about 5 times faster on a chunk of a page)."""
    return (ys // cell) * cells_per_row + xs // cell


@dataclass
class _Scan:
    """Every differing pixel of one segment, classified, in row-major order.

    The coordinates are not kept: a chunk's are found again from its rows when needed, so a
    page where every pixel differs costs 5 bytes per pixel here (delta E and class), plus
    12 per significant pixel.
    """

    n: int
    delta_e: NDArray[np.float32]
    cls: NDArray[np.uint8]
    chunks: list[tuple[NDArray[np.intp], int, int]]  # rows, [start, stop) in delta_e/cls
    sig_pos: NDArray[np.int32]  # positions of the significant pixels in delta_e/cls
    sig_ys: NDArray[np.int32]
    sig_xs: NDArray[np.int32]
    occupied: NDArray[np.bool_]  # merge_distance_px cells holding a differing pixel


def _scan_segment(
    a: Img, b: Img, rows: NDArray[np.bool_], settings: Settings, ignore: tuple[Box, ...],
    mask: Img | None, t0: int,
) -> _Scan:
    """Classify the differing pixels a bounded band of rows at a time (rows that did not change
    are never looked at pixel by pixel). Same result as classifying the whole segment at once:
    a pixel's class depends only on the images around it."""
    h, w = b.shape[:2]
    cell = max(1, settings.merge_distance_px)
    chunks = row_chunks(rows, w)
    cap = int(rows.sum()) * w  # upper bound; np.empty pages are only committed when written
    delta_e = np.empty(cap, dtype=np.float32)
    cls = np.empty(cap, dtype=np.uint8)
    sig_pos = np.empty(cap, dtype=np.int32)
    sig_ys = np.empty(cap, dtype=np.int32)
    sig_xs = np.empty(cap, dtype=np.int32)
    occupied = np.zeros((h // cell + 1, w // cell + 1), dtype=bool)
    records: list[tuple[NDArray[np.intp], int, int]] = []
    n = m = 0
    for chunk in chunks:
        ys, xs = differing_pixels_in_rows(a, b, chunk)
        k = ys.size
        de = _delta_e(gather(a, ys, xs), gather(b, ys, xs), settings.drift_delta_e, n)
        c = classify_at(a, b, ys, xs, de, drift_delta_e=settings.drift_delta_e,
                        detect_antialiasing=settings.detect_antialiasing,
                        subpixel_tolerance_px=settings.subpixel_tolerance_px, ignore=ignore)
        delta_e[n : n + k] = de
        cls[n : n + k] = c
        if mask is not None:
            mask.reshape(-1)[(ys + t0) * mask.shape[1] + xs] = MASK_NOISE
        occupied.reshape(-1)[cell_index(ys, xs, cell, occupied.shape[1])] = True
        sig = np.flatnonzero(c == SIGNIFICANT)
        j = sig.size
        sig_pos[m : m + j] = sig + n
        sig_ys[m : m + j] = ys[sig]
        sig_xs[m : m + j] = xs[sig]
        records.append((chunk, n, n + k))
        n += k
        m += j
    return _Scan(n, delta_e[:n], cls[:n], records, sig_pos[:m], sig_ys[:m], sig_xs[:m], occupied)


def _compare_segment(
    ref: Img, test: Img, seg: Segment, settings: Settings, ignore: tuple[Box, ...], mask: Img | None,
    rows: NDArray[np.bool_] | None = None,
) -> tuple[list[Region], Callable[[], list[Region]] | None, Counter[str]]:
    """Regions of one segment, a deferred computation of its noise regions (None when it found
    a significant region), and its noise pixel counts."""
    a, b = ref[seg.r0 : seg.r1], test[seg.t0 : seg.t1]
    local_ignore = tuple(Box(i.x, i.y - seg.t0, i.w, i.h) for i in ignore)
    if rows is None:
        rows = differing_rows(a, b)
    scan = _scan_segment(a, b, rows, settings, local_ignore, mask, seg.t0)
    counts: Counter[str] = Counter()
    binc = _class_counts(scan.cls)
    for c in range(5):
        if binc[c] and c != SIGNIFICANT:
            counts[CLASS_NAMES[c]] += int(binc[c])
    found: list[Region] = []
    shape = (b.shape[0], b.shape[1])
    for box, idx in group_pixels(scan.sig_ys, scan.sig_xs, shape, settings.merge_distance_px):
        ys, xs = scan.sig_ys[idx], scan.sig_xs[idx]
        if idx.size < settings.min_region_pixels:
            counts["stray"] += int(idx.size)
            continue
        offset = _subpixel_move(a, b, box) if settings.subpixel_tolerance_px else None
        if offset is not None:
            counts["subpixel"] += int(idx.size)
            scan.cls[scan.sig_pos[idx]] = SUBPIXEL
            continue
        if mask is not None:
            mask[ys + seg.t0, xs] = MASK_CHANGED
        kind, why = kind_of(a, b, ys, xs, box, settings.max_shift_px)
        found.append(
            Region(
                box=Box(box.x, box.y + seg.t0, box.w, box.h),
                kind=kind,
                pixels=int(idx.size),
                contrast=round(float(np.percentile(scan.delta_e[scan.sig_pos[idx]], 95)), 2),
                ssim=region_ssim(crop(a, pad_box(box, 3, b.shape[1], b.shape[0])),
                                 crop(b, pad_box(box, 3, b.shape[1], b.shape[0]))),
                why=why,
            )
        )
    if found or scan.n == 0:
        return found, None, counts
    return found, lambda: _noise_regions(a, b, scan, seg.t0, settings), counts


def _class_counts(cls: NDArray[np.uint8]) -> NDArray[np.int64]:
    """np.bincount(cls, minlength=5) a million at a time (bincount widens its input to 8 bytes
    per item: 48 MB for a page of 6 Mpx that differs everywhere)."""
    out = np.zeros(5, dtype=np.int64)
    for i in range(0, cls.size, 1 << 20):
        out += np.bincount(cls[i : i + (1 << 20)], minlength=5)[:5]
    return out


def _subpixel_move(a: Img, b: Img, box: Box) -> tuple[float, float] | None:
    """Try a tight margin, then a wider one: a margin wider than the anti-aliasing keeps whole
    glyph strokes inside the crop, but a line of text moved down a quarter pixel carries its
    ink across a 4 px margin (measured: 3.5 % ink lost at 4 px, none at 8 px)."""
    for pad in (4, 8):
        padded = pad_box(box, pad, b.shape[1], b.shape[0])
        offset = subpixel_offset(crop(a, padded), crop(b, padded))
        if offset is not None:
            return offset
    return None


def _noise_regions(a: Img, b: Img, scan: _Scan, t0: int, settings: Settings) -> list[Region]:
    """Where the discounted differences are, so a reviewer can check the call.

    The same regions as grouping every differing pixel with group_pixels, computed from
    per-cluster sums a chunk of rows at a time instead of from full coordinate lists.
    """
    cell = max(1, settings.merge_distance_px)
    labels = label(scan.occupied, connectivity=2)
    nl = int(labels.max()) + 1
    big = np.iinfo(np.int64).max
    count = np.zeros(nl, dtype=np.int64)
    ymin, ymax = np.full(nl, big, dtype=np.int64), np.full(nl, -1, dtype=np.int64)
    xmin, xmax = np.full(nl, big, dtype=np.int64), np.full(nl, -1, dtype=np.int64)
    per_class = np.zeros(nl * 5, dtype=np.int64)
    first = np.full(nl * 5, big, dtype=np.int64)  # first position of each class in each cluster
    parts: list[list[NDArray[np.float32]]] = [[] for _ in range(nl)]
    # The values at every SAMPLE_STRIDE-th scan position (always computed: see _delta_e).
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
            in_chunk = np.bincount(cls, minlength=5)[:5]
            per_class[lo * 5 : lo * 5 + 5] += in_chunk
            for present in np.flatnonzero(in_chunk).tolist():
                k = lo * 5 + present
                first[k] = min(int(first[k]), start + int(np.argmax(cls == present)))
            parts[lo].append(de)
            sample[lo].append(de[(-start) % SAMPLE_STRIDE :: SAMPLE_STRIDE])
        else:
            count += np.bincount(lab, minlength=nl)
            np.minimum.at(ymin, lab, ys)
            np.maximum.at(ymax, lab, ys)
            np.minimum.at(xmin, lab, xs)
            np.maximum.at(xmax, lab, xs)
            key = lab * 5 + cls
            per_class += np.bincount(key, minlength=nl * 5)
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
        # Class counts in the order each class first appears among the group's pixels (the
        # clusters' pixels in merge order): Counter keeps that order for its ties.
        seen: dict[int, int] = {}
        for k in members:
            for c in sorted(range(5), key=lambda c: first[k * 5 + c]):
                if per_class[k * 5 + c] and c not in seen:
                    seen[c] = 0
        for c in seen:
            seen[c] = int(sum(per_class[k * 5 + c] for k in members))
        classes = Counter({CLASS_NAMES[c]: n for c, n in seen.items()})
        top = classes.most_common(1)[0][0]
        kind = _NOISE_KIND.get(top, RegionKind.SUBPIXEL)
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
        if values.size and float(values.min()) < 0 and not _percentile_above(values, settings.drift_delta_e):
            # Values the drift bound left unknown decide the percentile.
            if pixels >= SAMPLE_STRIDE * MIN_SAMPLE:
                contrast = round(float(np.percentile(np.concatenate([v for k in members for v in sample[k]]), 95)), 2)
            else:
                exact.append(len(out))
        else:
            contrast = round(float(np.percentile(values, 95, overwrite_input=in_place)), 2)
        out.append(Region(
            box=Box(box.x, box.y + t0, box.w, box.h), kind=kind, pixels=pixels, contrast=contrast,
            ssim=None, why="discounted as " + ", ".join(f"{k} {n} px" for k, n in classes.most_common()),
        ))
        region_of[members] = len(out) - 1
    if exact:
        spans = [(r.box.y - t0, r.box.y2 - t0) for r in out]
        found = _exact_contrasts(a, b, scan, labels, cell, region_of, spans, exact)
        out = [replace(r, contrast=found[i]) if i in found else r for i, r in enumerate(out)]
    return out


def _percentile_above(values: NDArray[np.float32], threshold: float) -> bool:
    """True when the 95th percentile of `values` (numpy's linear interpolation between the two
    order statistics around rank 0.95 (n - 1)) falls among the values at or above `threshold`:
    it then does not depend on the values below it, such as the unknown ones (all below)."""
    below = int(np.count_nonzero(values < threshold))
    return int(np.floor(0.95 * (values.size - 1))) >= below


def _exact_contrasts(a: Img, b: Img, scan: _Scan, labels: NDArray[np.int32], cell: int, region_of: NDArray[np.intp],
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
            de[unknown] = _DELTA_E.lookup(gather(a, ys[at], xs[at]), gather(b, ys[at], xs[at]))
        owner = reg[pick]
        for r in np.unique(owner).tolist():
            values[r].append(de[owner == r])
    return {r: round(float(np.percentile(np.concatenate(values[r]), 95)), 2) for r in wanted}


def _band_region(ref: Img, test: Img, seg: Segment, settings: Settings) -> Region:
    w = test.shape[1]
    if seg.kind == "inserted":
        band = test[seg.t0 : seg.t1]
        box = Box(0, seg.t0, w, seg.t1 - seg.t0)
        ref_y, ref_h = seg.r0, 0
        context = _neighbour_row(test, seg.t0, seg.t1)
    else:
        band = ref[seg.r0 : seg.r1]
        box = Box(0, min(seg.t0, max(test.shape[0] - 1, 0)), w, 1)
        ref_y, ref_h = seg.r0, seg.r1 - seg.r0
        context = _neighbour_row(ref, seg.r0, seg.r1)
    contrast = band_contrast(band, context)
    rows = band.shape[0]
    kind = RegionKind.INSERTED if seg.kind == "inserted" else RegionKind.REMOVED
    why = f"{rows} row(s) {'only in the test image' if kind is RegionKind.INSERTED else 'only in the reference'}"
    if rows <= ROUNDING_ROWS and _blends_in(band, ref if seg.kind == "removed" else test,
                                            (seg.r0, seg.r1) if seg.kind == "removed" else (seg.t0, seg.t1),
                                            settings.drift_delta_e):
        kind, why = RegionKind.SUBPIXEL, f"{rows} blank row(s) {seg.kind}: layout rounding"
    return Region(box=box, kind=kind, pixels=int(band.shape[0] * band.shape[1]), contrast=contrast,
                  ssim=None, ref_y=ref_y, ref_h=ref_h, why=why)


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


def _width_region(ref: Img, test: Img, w: int) -> Region:
    if test.shape[1] > w:
        extra = test[:, w:]
        return Region(Box(w, 0, test.shape[1] - w, test.shape[0]), RegionKind.INSERTED,
                      int(extra.shape[0] * extra.shape[1]), band_contrast(extra), None,
                      why=f"test image is {test.shape[1] - w} px wider")
    extra = ref[:, w:]
    return Region(Box(max(w - 1, 0), 0, 1, test.shape[0]), RegionKind.REMOVED,
                  int(extra.shape[0] * extra.shape[1]), band_contrast(extra), None,
                  ref_y=0, ref_h=int(ref.shape[0]), why=f"reference is {ref.shape[1] - w} px wider")

