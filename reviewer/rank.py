"""Scoring and ordering (pure).

Pairs are ordered by verdict tier first (changed, error, noise, unchanged), then by score.
So every changed pair ranks above every error, noise and unchanged pair whatever its score.

A changed pair's score (0-100) is the sum of terms a person can check on the page:

  strongest region   up to 50: 50 x area x (0.3 + 0.7 x strength), where
                     area     = log10(1 + pixels) / 5, capped at 1 (10 px -> 0.2, 100k px -> 1)
                     strength = visibility / 5, capped at 1: the judge's measure (1 is where a
                                change counts, 5 and more is plain to see); a band or a move,
                                which the judge does not measure, uses the contrast of its pixels
                                (CIEDE2000 / 50, capped at 1) instead
  regions            up to 10: 5 x log2(1 + number of significant regions), capped
  inserted/removed   15 when content appeared or disappeared (the page layout changed)
  first screen       15 when a change is visible without scrolling
  only shifts        -10 when every change is content that moved by a few pixels
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reviewer.config import Settings
from reviewer.model import (
    VERDICT_ORDER,
    Pair,
    PairAnalysis,
    RankedPair,
    Region,
    RegionKind,
    ScoreTerm,
    Verdict,
)


def strength(region: Region) -> float:
    """How strongly a region shows, 0-1: the judge's visibility when it measured one."""
    if region.visibility is not None:
        return min(1.0, region.visibility / 5)
    return min(1.0, region.contrast / 50)


def region_impact(region: Region) -> float:
    area = min(1.0, math.log10(1 + region.pixels) / 5)
    return 50 * area * (0.3 + 0.7 * strength(region))


def score_terms(pair: Pair, analysis: PairAnalysis, settings: Settings) -> tuple[ScoreTerm, ...]:
    if analysis.verdict is not Verdict.CHANGED:
        return ()
    significant = [r for r in analysis.regions if r.significant]
    if not significant:
        return ()
    strongest = max(significant, key=region_impact)
    terms = [
        ScoreTerm(
            "strongest region",
            round(region_impact(strongest), 2),
            f"{strongest.kind.value} at ({strongest.box.x},{strongest.box.y}) {strongest.box.w}x{strongest.box.h}: "
            f"{strongest.pixels:,} px differ, "
            + (f"{strongest.visibility:.1f}x noticeable" if strongest.visibility is not None
               else f"contrast ΔE {strongest.contrast:.1f}"),
        ),
        ScoreTerm(
            "regions",
            round(min(10.0, 5 * math.log2(1 + len(significant))), 2),
            f"{len(significant)} changed region(s)",
        ),
    ]
    moved = [r for r in significant if r.kind in (RegionKind.INSERTED, RegionKind.REMOVED)]
    if moved:
        rows = sum((r.ref_h if r.kind is RegionKind.REMOVED and r.ref_h else r.box.h) for r in moved)
        why = f"{len(moved)} band(s), {rows} px of rows appeared or vanished"
        terms.append(ScoreTerm("inserted/removed", 15.0, why))
    fold = settings.first_screen(pair.viewport)
    above = [r for r in significant if r.box.y < fold]
    if above:
        terms.append(ScoreTerm("first screen", 15.0, f"{len(above)} region(s) above {fold} px, seen without scrolling"))
    if all(r.kind is RegionKind.SHIFT for r in significant):
        terms.append(ScoreTerm("only shifts", -10.0, "every change is content moved by a few pixels"))
    return tuple(terms)


def rank(items: Sequence[tuple[Pair, PairAnalysis]], settings: Settings) -> tuple[RankedPair, ...]:
    scored = []
    for pair, analysis in items:
        terms = score_terms(pair, analysis, settings)
        score = round(max(0.0, sum(t.value for t in terms)), 2)
        scored.append((pair, analysis, score, terms))
    scored.sort(key=lambda s: (VERDICT_ORDER[s[1].verdict], -s[2], s[0].index))
    return tuple(
        RankedPair(pair=p, analysis=a, score=sc, terms=t, rank=i + 1) for i, (p, a, sc, t) in enumerate(scored)
    )
