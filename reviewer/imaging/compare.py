"""Compare one reference/test pair: align, classify pixels, form regions, give a verdict.

Pure: arrays and settings in, PairAnalysis out. File handling lives in reviewer.analyze.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from numpy.typing import NDArray

from reviewer.config import Settings
from reviewer.imaging.align import Segment, align_rows
from reviewer.imaging.pixels import CLASS_NAMES, SIGNIFICANT, SUBPIXEL, classify_pixels, colour_delta_e
from reviewer.imaging.regions import crop, group_pixels, kind_of, pad_box, region_ssim, subpixel_offset
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
    ref_size = (int(ref.shape[1]), int(ref.shape[0]))
    test_size = (int(test.shape[1]), int(test.shape[0]))
    if ref.shape == test.shape and np.array_equal(ref, test):
        return PairAnalysis(Verdict.UNCHANGED, "pixel-identical", (), ref_size, test_size)

    regions: list[Region] = []
    noise: Counter[str] = Counter()
    noise_regions: list[Region] = []
    w = min(ref.shape[1], test.shape[1])
    if ref.shape[1] != test.shape[1]:
        regions.append(_width_region(ref, test, w))
        if mask is not None and test.shape[1] > w:
            mask[:, w:] = MASK_INSERTED
    ref_c, test_c = ref[:, :w], test[:, :w]

    for seg in align_rows(ref_c, test_c):
        if seg.kind == "equal" and np.array_equal(ref_c[seg.r0 : seg.r1], test_c[seg.t0 : seg.t1]):
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
        found, noisy, counts = _compare_segment(ref_c, test_c, seg, settings, ignore, mask)
        regions += found
        noise_regions += noisy
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
    shown = significant if significant else _top_noise(noise_regions)
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


def _top_noise(regions: list[Region]) -> list[Region]:
    return sorted(regions, key=lambda r: -r.pixels)[:MAX_NOISE_REGIONS]


def _compare_segment(
    ref: Img, test: Img, seg: Segment, settings: Settings, ignore: tuple[Box, ...], mask: Img | None
) -> tuple[list[Region], list[Region], Counter[str]]:
    a, b = ref[seg.r0 : seg.r1], test[seg.t0 : seg.t1]
    local_ignore = tuple(Box(i.x, i.y - seg.t0, i.w, i.h) for i in ignore)
    diff = classify_pixels(
        a,
        b,
        drift_delta_e=settings.drift_delta_e,
        detect_antialiasing=settings.detect_antialiasing,
        subpixel_tolerance_px=settings.subpixel_tolerance_px,
        subpixel_match_threshold=settings.subpixel_match_threshold,
        ignore=local_ignore,
    )
    counts: Counter[str] = Counter()
    for cls, n in diff.counts().items():
        if cls != CLASS_NAMES[SIGNIFICANT]:
            counts[cls] += n
    sig = np.flatnonzero(diff.significant)
    if mask is not None:
        mask[diff.ys + seg.t0, diff.xs] = MASK_NOISE
    found: list[Region] = []
    shape = (b.shape[0], b.shape[1])
    for box, members in group_pixels(diff.ys[sig], diff.xs[sig], shape, settings.merge_distance_px):
        idx = sig[members]
        ys, xs = diff.ys[idx], diff.xs[idx]
        if idx.size < settings.min_region_pixels:
            counts["stray"] += int(idx.size)
            continue
        # A margin wider than the anti-aliasing keeps whole glyph strokes inside the crop.
        padded = pad_box(box, 4, b.shape[1], b.shape[0])
        offset = subpixel_offset(crop(a, padded), crop(b, padded)) if settings.subpixel_tolerance_px else None
        if offset is not None:
            counts["subpixel"] += int(idx.size)
            diff.cls[idx] = SUBPIXEL
            continue
        if mask is not None:
            mask[ys + seg.t0, xs] = MASK_CHANGED
        kind, why = kind_of(a, b, ys, xs, box, settings.max_shift_px)
        found.append(
            Region(
                box=Box(box.x, box.y + seg.t0, box.w, box.h),
                kind=kind,
                pixels=int(idx.size),
                contrast=round(float(np.percentile(diff.delta_e[idx], 95)), 2),
                ssim=region_ssim(crop(a, pad_box(box, 3, b.shape[1], b.shape[0])),
                                 crop(b, pad_box(box, 3, b.shape[1], b.shape[0]))),
                why=why,
            )
        )
    noisy = _noise_regions(diff.ys, diff.xs, diff.cls, diff.delta_e, shape, seg.t0, settings) if not found else []
    return found, noisy, counts


def _noise_regions(
    ys: NDArray[np.intp], xs: NDArray[np.intp], cls: NDArray[np.uint8], de: NDArray[np.float32],
    shape: tuple[int, int], t0: int, settings: Settings,
) -> list[Region]:
    """Where the discounted differences are, so a reviewer can check the call."""
    out: list[Region] = []
    for box, idx in group_pixels(ys, xs, shape, settings.merge_distance_px):
        classes = Counter(CLASS_NAMES[int(c)] for c in cls[idx])
        top = classes.most_common(1)[0][0]
        kind = _NOISE_KIND.get(top, RegionKind.SUBPIXEL)
        out.append(Region(
            box=Box(box.x, box.y + t0, box.w, box.h), kind=kind, pixels=int(idx.size),
            contrast=round(float(np.percentile(de[idx], 95)), 2), ssim=None,
            why="discounted as " + ", ".join(f"{k} {n} px" for k, n in classes.most_common()),
        ))
    return out


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
    if rows <= ROUNDING_ROWS and contrast < settings.drift_delta_e:
        kind, why = RegionKind.SUBPIXEL, f"{rows} blank row(s) {seg.kind}: layout rounding"
    return Region(box=box, kind=kind, pixels=int(band.shape[0] * band.shape[1]), contrast=contrast,
                  ssim=None, ref_y=ref_y, ref_h=ref_h, why=why)


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
