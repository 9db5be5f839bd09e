"""The values that flow between the pipeline's stages.

    sources  ->  backstop (Report of Pairs)  ->  imaging (PairAnalysis)  ->  rank  ->  policy (Decision)
                                                                              \\->  render (html, md, json, junit)

Everything here is a frozen dataclass: stages never mutate what an earlier stage produced,
so a cached analysis can be reused safely and tests can compare whole values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Verdict(StrEnum):
    """What a pair of screenshots amounts to. Order matters: see VERDICT_ORDER."""

    CHANGED = "changed"
    ERROR = "error"
    NOISE = "noise"
    UNCHANGED = "unchanged"


# Ranking tiers, most important first: a person must look at changes before errors,
# errors before noise, and never needs to look at unchanged pairs.
VERDICT_ORDER: dict[Verdict, int] = {
    Verdict.CHANGED: 0,
    Verdict.ERROR: 1,
    Verdict.NOISE: 2,
    Verdict.UNCHANGED: 3,
}


class RegionKind(StrEnum):
    """What a region's difference is. Whether it counts is the judge's call (Region.significant):
    a shift of two pixels or a blank band at the end of a page is discounted, a shift of forty is not."""

    CONTENT = "content"  # pixels that changed in structure: text, images, layout
    COLOUR = "colour"  # same shapes, visibly different colour
    SHIFT = "shift"  # the same content moved by whole pixels
    INSERTED = "inserted"  # rows that exist only in the test image
    REMOVED = "removed"  # rows that exist only in the reference image
    INVISIBLE = "invisible"  # differences below what a person sees (re-rasterised edges, re-encoding)
    DRIFT = "drift"  # every pixel's colour changed by less than the drift threshold
    IGNORED = "ignored"  # inside a configured ignore region
    DYNAMIC = "dynamic"  # differs between two captures of the same build


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h


@dataclass(frozen=True)
class Region:
    """One area of difference, in pixels of the test image, with the judge's decision.

    For REMOVED regions the test-image box is a 1-pixel line where the band was cut out;
    `ref_y`/`ref_h` give the band in the reference image.
    """

    box: Box
    kind: RegionKind
    pixels: int  # differing pixels: the visible ones of a significant region, all of a discounted one
    contrast: float  # the pixels' own colour difference (CIEDE2000, 95th percentile), before any blur
    ssim: float | None  # structural similarity of the region's crops; None when not computed
    significant: bool  # the judge's call: a person would see this change (see imaging/judge.py)
    visibility: float | None = None  # largest visible difference the judge measured; None: decided by an exact rule
    ref_y: int | None = None
    ref_h: int | None = None
    why: str = ""  # one line: why the judge decided as it did


@dataclass(frozen=True)
class Pair:
    """One reference/test screenshot pair as BackstopJS reported it."""

    index: int  # position in the report, for stable ordering
    file: str  # the test image's fileName as BackstopJS names it
    label: str
    viewport: str
    selector: str
    url: str
    reference_url: str
    reference: Path | None  # resolved image paths; None when the report names none
    test: Path | None
    backstop_diff_image: Path | None
    backstop_status: str  # "pass" or "fail"
    backstop_mismatch: float | None  # BackstopJS's misMatchPercentage, when it computed one
    backstop_error: str | None  # engine error / missing reference text from BackstopJS
    mismatch_threshold: float
    same_dimensions: bool | None
    path_problem: str | None = None  # an image path the report named that we refused to follow


@dataclass(frozen=True)
class Report:
    id: str
    root: Path  # the backstop_data folder (or the html_report's parent)
    source_file: Path  # the file the tests were read from (config.js or a json report)
    pairs: tuple[Pair, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreTerm:
    name: str
    value: float
    why: str


@dataclass(frozen=True)
class PairAnalysis:
    """The result of recomputing one pair's diff. Pure data, cacheable by image digests."""

    verdict: Verdict
    reason: str  # one line a person can read: why this verdict
    regions: tuple[Region, ...] = ()
    ref_size: tuple[int, int] | None = None  # (width, height)
    test_size: tuple[int, int] | None = None
    changed_pixels: int = 0  # pixels of significant regions
    noise_pixels: dict[str, int] = field(default_factory=dict)  # discounted kind -> pixels
    ssim: float | None = None  # lowest region SSIM; None for identical pairs
    seconds: float = 0.0


@dataclass(frozen=True)
class PairAssets:
    """Files written for the review page, relative to the output folder."""

    reference: str | None = None
    test: str | None = None
    mask: str | None = None  # transparent PNG, test-image size: red significant, amber noise
    thumb: str | None = None
    crops: tuple[tuple[str | None, str | None], ...] = ()  # per shown region: (reference, test)


@dataclass(frozen=True)
class RankedPair:
    pair: Pair
    analysis: PairAnalysis
    score: float
    terms: tuple[ScoreTerm, ...]
    rank: int  # 1 = most important
    assets: PairAssets = PairAssets()  # the page's images of this pair (none when nothing was written)


@dataclass(frozen=True)
class Decision:
    action: str  # "approve" or "hold"
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Recapture:
    """What re-capture did to one pair (reviewer.capture): shown on the page and in summary.md."""

    status: str  # "noise" (now noise), "dynamic" (some regions), "stable", "failed", "skipped"
    message: str  # one line: what happened, or why the pair was left as it was
    captures: int = 0  # captures taken of this pair
    areas: tuple[Box, ...] = ()  # areas that differed between the captures, in test-image pixels
    notes: tuple[str, ...] = ()  # what could not be replayed, how captures were lined up


@dataclass(frozen=True)
class Review:
    report: Report
    ranked: tuple[RankedPair, ...]
    decision: Decision
    settings_digest: str
    counts: dict[str, int]
    generated_at: str  # ISO 8601 UTC
    thresholds: dict[str, float | int | bool] = field(default_factory=dict)  # the settings that decided
    digest: str = ""  # sha256 over review.json's content: identifies this analysis in audits
    recapture: dict[int, Recapture] = field(default_factory=dict)  # by Pair.index, when re-captured
