"""summary.md as a GitHub comment and labels as a reviewer reads them (issue 13, points 4, 5, 7):
where each change is, links that work in a comment, report-relative paths, a bounded size, and
labels that keep their distinctive end in the summary and the terminal table."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from sample_review import make_pair, sample_review

from reviewer.cli.output import print_review
from reviewer.config import Settings
from reviewer.model import Box, PairAnalysis, Region, RegionKind, Report, Review, Verdict
from reviewer.policy import decide
from reviewer.rank import rank
from reviewer.render.markdown import render_markdown, report_relative, what, where
from reviewer.render.text import shorten_middle

PAGE = "https://output.circle-artifacts.com/output/job/1f/artifacts/0/app/backstop_data/reviewer/index.html"
GITHUB_COMMENT_MAX = 65_536


def test_shorten_middle_keeps_both_ends() -> None:
    label = "/components/textarea/example-textarea-error"
    for width in (12, 22, 30, 40):
        short = shorten_middle(label, width)
        assert len(short) <= width and short.startswith("/co") and short.endswith("error") and "…" in short
    assert shorten_middle(label, 200) == label
    assert shorten_middle("a   b", 10) == "a b"


def big_review(n: int, root: str = "/home/qa/reports/backstop_data") -> Review:
    items = []
    for i in range(n):
        label = f"/components/textarea/example-textarea-variant-{i:05d}"
        if i % 10 == 9:
            items.append((make_pair(i, label, backstop_status="fail", backstop_error="Reference file not found"),
                          PairAnalysis(Verdict.ERROR, f"BackstopJS: Reference file not found {root}/"
                                                      f"bitmaps_reference/site_{i}_document_0_desktop.png")))
            continue
        region = Region(Box(0, 300 + i % 50, 360, 1), RegionKind.REMOVED, 30_600, 40.0, None, significant=True,
                        ref_y=300, ref_h=85, why="85 row(s) only in the reference")
        items.append((make_pair(i, label),
                      PairAnalysis(Verdict.CHANGED, "1 changed region(s): 1 removed", (region,), (360, 2000),
                                   (360, 1915), 30_600)))
    ranked = rank(items, Settings())
    report = Report(id="big", root=Path(root), source_file=Path(root) / "html_report" / "config.js",
                    pairs=tuple(p for p, _ in items))
    counts = {v.value: sum(1 for rp in ranked if rp.analysis.verdict is v) for v in Verdict}
    return Review(report=report, ranked=ranked, decision=decide(ranked), settings_digest="x", counts=counts,
                  generated_at="2026-01-01T00:00:00Z")


def test_each_top_change_says_where_what_and_links_to_its_pair() -> None:
    md = render_markdown(sample_review(), page_url=PAGE)
    assert "| y 300-314, first screen | content changed |" in md
    assert "y 1,050-1,090, below the first screen | colour changed" in md
    assert "81 rows inserted at y 100" in md
    for n in (1, 2, 3):
        assert f"[{n}]({PAGE}#pair={n})" in md
    assert f"[Open the review page]({PAGE})" in md


def test_a_removed_band_is_described_in_the_reference() -> None:
    rp = big_review(1).ranked[0]
    assert what(rp) == "85 rows removed at y 300 of the reference"
    assert where(rp) == "y 300, first screen"


def test_no_link_that_would_be_dead_in_a_comment() -> None:
    for page in (None, "index.html", "reports/x/index.html", "file:///tmp/index.html"):
        md = render_markdown(sample_review(), page_url=page)
        assert not re.search(r"\]\((?!https?://)", md), page
        assert "index.html` beside this file" in md


def test_five_thousand_pairs_fit_one_github_comment_and_say_what_was_left_out() -> None:
    md = render_markdown(big_review(5000), page_url=PAGE)
    assert len(md) < GITHUB_COMMENT_MAX - 5_000  # room for `reviewer ci`'s approval section
    assert "Top changes (10 of 4,500)" in md and "… and 490 more" in md
    md = render_markdown(big_review(5000), page_url=PAGE, max_chars=2_000)
    assert len(md) <= 2_000 and "summary cut to fit one comment" in md and md.rstrip().endswith("</sub>")


def test_error_lines_show_report_relative_paths() -> None:
    md = render_markdown(big_review(20))
    assert "/home/qa" not in md
    assert "Reference file not found bitmaps\\_reference/site\\_9\\_document\\_0\\_desktop.png" in md
    # BackstopJS's own absolute path from the CI container, analysed on a laptop:
    assert report_relative("Reference file not found /app/backstop_data/bitmaps_reference/a.png") == \
        "Reference file not found bitmaps_reference/a.png"


def test_summary_labels_keep_their_end() -> None:
    md = render_markdown(big_review(30), page_url=PAGE)
    row = next(line for line in md.splitlines() if "#pair=1)" in line)
    assert "…" in row and "variant-00000 \\[desktop\\]" in row, row


def test_terminal_table_uses_the_width_and_keeps_label_ends() -> None:
    for width, full in ((80, False), (200, True)):
        buf = io.StringIO()
        print_review(big_review(12), Path("/out"), Console(file=buf, width=width, highlight=False), limit=12)
        text = buf.getvalue()
        assert max(len(line) for line in text.splitlines()) <= width
        row = next(line for line in text.splitlines() if re.match(r"\s*\d+ changed", line) and "00003" in line)
        assert "00003 [desktop]" in row, row
        assert ("/components/textarea/example-textarea-variant-00003 [desktop]" in row) is full, row
