"""Stage 5: decide the pair from its judged regions.

`changed` when any region is significant, else `noise`. (`unchanged` is decided before any
region exists: identical bytes or pixels; `error` by whoever could not compare.) The same
function decides after the analysis and after re-capture has marked regions dynamic, so the
verdict and its wording are written once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from reviewer.model import Region, RegionKind, Verdict


def verdict_of(regions: Sequence[Region], noise_pixels: Mapping[str, int]) -> tuple[Verdict, str]:
    """The verdict and its one-line reason. `noise_pixels`: discounted pixels per kind."""
    significant = [r for r in regions if r.significant]
    dynamic = sum(1 for r in regions if r.kind is RegionKind.DYNAMIC)
    if significant:
        kinds = Counter(r.kind.value for r in significant)
        what = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
        reason = f"{len(significant)} changed region(s): {what}"
        if dynamic:
            reason += f"; {dynamic} dynamic region(s) discounted"
        return Verdict.CHANGED, reason
    counts = Counter({k: n for k, n in noise_pixels.items() if n})
    total = sum(counts.values())
    parts = ", ".join(f"{k} {n:,} px" for k, n in counts.most_common())
    what = "dynamic content and rendering noise" if dynamic else "rendering noise"
    return Verdict.NOISE, f"only {what} ({total:,} px: {parts})" if parts else f"only {what}"


def noise_counts(regions: Sequence[Region], exact: Mapping[str, int]) -> dict[str, int]:
    """Discounted pixels per kind: the exact rules' counts plus the judged regions'."""
    counts: Counter[str] = Counter({k: n for k, n in exact.items() if n})
    for r in regions:
        if not r.significant:
            counts[r.kind.value] += r.pixels
    return dict(counts)
