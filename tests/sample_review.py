"""A small, fixed Review built by hand: input for the renderer golden tests."""

from __future__ import annotations

from pathlib import Path

from reviewer.config import Settings
from reviewer.model import Box, Pair, PairAnalysis, Region, RegionKind, Report, Review, Verdict
from reviewer.policy import decide
from reviewer.rank import rank


def make_pair(index: int, label: str, viewport: str = "desktop", **kw) -> Pair:
    base = dict(index=index, file=f"site_{label}_0_document_{index}_{viewport}.png", label=label, viewport=viewport,
                selector="document", url=f"https://example.org/{label.lower()}", reference_url="",
                reference=Path(f"/r/{index}.png"), test=Path(f"/t/{index}.png"), backstop_diff_image=None,
                backstop_status="pass", backstop_mismatch=0.0, backstop_error=None, mismatch_threshold=3.0,
                same_dimensions=True)
    base.update(kw)
    return Pair(**base)  # type: ignore[arg-type]


def sample_review() -> Review:
    word = Region(Box(40, 300, 60, 14), RegionKind.CONTENT, 210, 61.5, 0.41, significant=True, visibility=6.2,
                  why="visible: 6.2x what a person notices over 210 px; outlines differ")
    button = Region(Box(40, 1050, 120, 40), RegionKind.COLOUR, 4800, 58.2, 0.93, significant=True, visibility=5.4,
                    why="visible: 5.4x what a person notices over 4,800 px; same outlines")
    banner = Region(Box(0, 100, 400, 81), RegionKind.INSERTED, 32400, 45.0, None, significant=True, ref_y=100,
                    ref_h=0, why="81 row(s) only in the test image")
    aa = Region(Box(10, 10, 5, 5), RegionKind.INVISIBLE, 12, 8.0, None, significant=False, visibility=0.31,
                why="invisible: at most 0.31 of what a person notices")
    items = [
        (make_pair(0, "Home"), PairAnalysis(Verdict.UNCHANGED, "byte-identical files")),
        (make_pair(1, "Article", backstop_mismatch=0.03),
         PairAnalysis(Verdict.CHANGED, "1 changed region(s): 1 content", (word,), (400, 1200), (400, 1200), 210)),
        (make_pair(2, "Donate | <b>now</b>", "mobile", backstop_mismatch=0.71),
         PairAnalysis(Verdict.CHANGED, "1 changed region(s): 1 colour", (button,), (400, 1200), (400, 1200), 4800)),
        (make_pair(3, "News", backstop_status="fail", backstop_mismatch=23.85),
         PairAnalysis(Verdict.CHANGED, "1 changed region(s): 1 inserted", (banner,), (400, 1200), (400, 1281), 32400)),
        (make_pair(4, "Badge"), PairAnalysis(Verdict.NOISE, "only rendering noise (12 px: invisible 12 px)", (aa,),
                                            (400, 600), (400, 600), 0, {"invisible": 12})),
        (make_pair(5, "Contact", backstop_status="fail", backstop_mismatch=None,
                   backstop_error="Reference file not found"),
         PairAnalysis(Verdict.ERROR, "BackstopJS: Reference file not found")),
    ]
    ranked = rank(items, Settings())
    report = Report(id="sample", root=Path("/r"), source_file=Path("/r/html_report/config.js"),
                    pairs=tuple(p for p, _ in items))
    return Review(report=report, ranked=ranked, decision=decide(ranked), settings_digest=Settings().digest(),
                  counts={"changed": 3, "error": 1, "noise": 1, "unchanged": 1}, generated_at="2026-01-01T00:00:00Z",
                  thresholds=Settings().thresholds())
