"""`reviewer analyze SOURCE`: recompute, rank, report and decide on a local report."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reviewer.backstop import verdict_text
from reviewer.model import RankedPair, Review, Verdict

EXIT_OK, EXIT_HOLD = 0, 3
_STYLE = {"changed": "bold red", "error": "dark_orange", "noise": "yellow", "unchanged": "green"}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def short_why(rp: RankedPair) -> str:
    """What a person needs in one table cell: the kinds of change, or the noise, or the error."""
    a = rp.analysis
    if a.verdict is Verdict.CHANGED:
        significant = [r for r in a.regions if r.significant]
        kinds = Counter(r.kind.value for r in significant)
        what = ", ".join(f"{n} {k}" if n > 1 else k for k, n in kinds.most_common())
        seen = [r for r in significant if r.visibility is not None]
        if seen:
            top = max(seen, key=lambda r: (r.visibility or 0.0, r.pixels))
            what += f": {top.visibility:.1f}x noticeable over {top.pixels:,} px"
        return what
    if a.verdict is Verdict.NOISE:
        noise = ", ".join(f"{k} {n:,} px" for k, n in sorted(a.noise_pixels.items(), key=lambda kv: -kv[1])[:2])
        levels = [r.visibility for r in a.regions if r.visibility is not None]
        return f"{noise} (at most {max(levels):.2f} of noticeable)" if levels else noise
    return a.reason


def print_review(review: Review, out_dir: Path, console: Console, limit: int = 25) -> None:
    table = Table(title=f"Report {escape(review.report.id)}: ranked pairs", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 0))
    # Fixed widths and text cut by us: the table must stay readable at 80 columns (CI logs).
    widths = {"#": 3, "verdict": 9, "pair": 22, "score": 5, "what": max(20, console.width - 63), "BackstopJS": 18}
    for name, width in widths.items():
        table.add_column(name, justify="right" if name in ("#", "score") else "left", no_wrap=True,
                         min_width=width, max_width=width)
    what_width = widths["what"]
    shown = [rp for rp in review.ranked if rp.analysis.verdict is not Verdict.UNCHANGED][:limit]
    for rp in shown:
        v = rp.analysis.verdict.value
        bs = verdict_text(rp.pair, short=True)
        pair = escape(_cut(f"{rp.pair.label} [{rp.pair.viewport}]", widths["pair"]))
        score = f"{rp.score:.1f}" if v == "changed" else ""
        table.add_row(str(rp.rank), f"[{_STYLE[v]}]{v}[/]", pair, score, escape(_cut(short_why(rp), what_width)), bs)
    hidden = len([rp for rp in review.ranked if rp.analysis.verdict is not Verdict.UNCHANGED]) - len(shown)
    if hidden > 0:
        table.caption = f"and {hidden} more: see review.json or index.html"
    if shown:
        console.print(table)
    c = review.counts
    console.print(f"{len(review.ranked)} pairs: [bold red]{c['changed']} changed[/], {c['error']} error, "
                  f"{c['noise']} noise, {c['unchanged']} unchanged")
    if review.decision.action == "approve":
        console.print("[bold green]Decision: APPROVE[/]")
    else:
        console.print("[bold red]Decision: HOLD[/]")
        for r in review.decision.reasons:
            console.print(f"  - {escape(r)}")
    console.print(f"Outputs: {escape(str(out_dir))}/ (index.html, review.json, summary.md, junit.xml)")


def analyze(
    source: Annotated[Path, typer.Argument(help="backstop_data folder, a folder containing one, the html_report "
                                                "folder, or a .zip of any of these")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: reports/<report id>]")]
    = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="reviewer.toml or pyproject.toml to read "
                                                "settings from [default: ./reviewer.toml, ./pyproject.toml]")]
    = None,
    workers: Annotated[int, typer.Option(help="parallel processes (0 = one per core)", min=0)] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the decision line")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="analyse every pair again; neither read nor "
                                           "write the result cache in OUT/.reviewer-cache")] = False,
    recapture: Annotated[int, typer.Option("--recapture", metavar="N", help="re-capture each changed pair N times "
                                           "with Chromium to find dynamic content (0 = off; see `reviewer "
                                           "recapture`)", min=0, max=20)] = 0,
    backstop_config: Annotated[list[Path] | None, typer.Option(
        "--backstop-config", help="with --recapture: the backstop.json BackstopJS ran with (scenarios, viewports, "
                                  "browser flags; repeatable) [default: backstop.json beside the report]")] = None,
    browser: Annotated[str | None, typer.Option(
        "--browser", envvar="REVIEWER_CHROMIUM", help="with --recapture: the Chromium to capture with, best the one "
                                                      "BackstopJS ran [default: Debian's chromium]")]
    = None,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=8, help="with --recapture: browsers replaying "
                                          "scenarios at once")] = 2,
) -> None:
    """Recompute every diff of a BackstopJS report, rank the changes, write the review, decide.

    Exit code: 0 approve, 3 hold, 1 the report could not be analysed, 2 bad usage.

    Example: reviewer analyze fixtures/report/backstop_data --out reports/fixture
    """
    from dataclasses import replace

    from reviewer.analyze import run
    from reviewer.config import load_settings

    settings, _origin = load_settings(config)
    if workers:
        settings = replace(settings, workers=workers)
    console = Console(stderr=False, highlight=False)
    err = Console(stderr=True)
    show_bar = not quiet and err.is_terminal
    with Progress(TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not show_bar) as bar:
        task = bar.add_task("pairs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        review, out_dir = run(source, out, settings, progress, use_cache=not no_cache)
    if recapture:
        from reviewer.cli.browser_cmds import run_recapture

        review = run_recapture(review, out_dir, settings, runs=max(2, recapture), backstop_config=backstop_config,
                               browser=browser, parallel=parallel)
    if quiet:
        console.print(f"{review.decision.action} ({out_dir}/review.json)")
    else:
        print_review(review, out_dir, console)
    sys.stdout.flush()
    raise typer.Exit(EXIT_OK if review.decision.action == "approve" else EXIT_HOLD)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
