"""What the commands print: the consoles, the ranked table, checks, audit lines, progress bars.

Every command module prints through here and imports no other command module. Everything
printed goes through `redact` first: the CircleCI token must never reach a terminal or a CI log.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reviewer.backstop import verdict_text
from reviewer.model import RankedPair, Review, Verdict
from reviewer.redact import redact
from reviewer.render.text import shorten_middle

if TYPE_CHECKING:
    from reviewer.actions import ActionResult, Check
    from reviewer.capture import Outcome
    from reviewer.config import Settings
    from reviewer.serve import ReviewServer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HOLD = 0, 1, 2, 3

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_STYLE = {"changed": "bold red", "error": "dark_orange", "noise": "yellow", "unchanged": "green"}


def say(text: str, style: str | None = None) -> None:
    out.print(escape(redact(text)), style=style)


def note(text: str) -> None:
    err.print(escape(redact(text)), style="dim")


@contextmanager
def progress_bar(label: str, with_bytes: bool = False, quiet: bool = False
                 ) -> Iterator[Callable[[int, int, int], None]]:
    """A transient bar on stderr (only on a terminal): update(done, total, bytes)."""
    cols: list[Any] = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    if with_bytes:
        cols.append(DownloadColumn())
    cols.append(TimeElapsedColumn())
    with Progress(*cols, console=err, transient=True, disable=quiet or not err.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, nbytes: int = 0) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# -- the ranked table -------------------------------------------------------------------------------


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


def _cut_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table_widths(total: int, labels: Sequence[str]) -> dict[str, int]:
    """Column widths for a terminal `total` columns wide. The pair column grows with the
    terminal up to its longest label, so labels are cut only when they must be; the
    explanation gets the rest (at least 20)."""
    fixed = {"#": 3, "verdict": 9, "score": 5, "BackstopJS": 18}
    spare = max(0, total - sum(fixed.values()) - 6 - 20)  # 6: gaps between the 6 columns
    longest = max((len(s) for s in labels), default=10)
    pair = max(22, min(longest, 22 + spare // 2, 80))
    what = max(20, total - sum(fixed.values()) - 6 - pair)
    return {"#": 3, "verdict": 9, "pair": pair, "score": 5, "what": what, "BackstopJS": 18}


def print_review(review: Review, out_dir: Path, console: Console = out, limit: int = 25) -> None:
    table = Table(title=f"Report {escape(review.report.id)}: ranked pairs", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 0))
    shown = [rp for rp in review.ranked if rp.analysis.verdict is not Verdict.UNCHANGED][:limit]
    names = [f"{rp.pair.label} [{rp.pair.viewport}]" for rp in shown]
    # Widths fixed by us, text cut by us: the table must stay readable at 80 columns (CI logs)
    # and use the width of a wider terminal for the labels.
    widths = table_widths(console.width, names)
    for name, width in widths.items():
        table.add_column(name, justify="right" if name in ("#", "score") else "left", no_wrap=True,
                         min_width=width, max_width=width)
    for rp, name in zip(shown, names, strict=True):
        v = rp.analysis.verdict.value
        score = f"{rp.score:.1f}" if v == "changed" else ""
        table.add_row(str(rp.rank), f"[{_STYLE[v]}]{v}[/]", escape(shorten_middle(name, widths["pair"])), score,
                      escape(_cut_end(short_why(rp), widths["what"])), verdict_text(rp.pair, short=True))
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


# -- actions --------------------------------------------------------------------------------------------


def print_checks(checks: Sequence[Check]) -> None:
    for c in checks:
        mark = "[green]✓[/]" if c.ok else ("[yellow]![/]" if c.forceable else "[red]✗[/]")
        out.print(f"  {mark} {escape(c.name)}: {escape(redact(c.detail))}")


def print_audit(entry: dict[str, Any] | None) -> None:
    if entry:
        out.print("audit: " + escape(redact(json.dumps(entry, ensure_ascii=False))))


def finish(result: ActionResult) -> None:
    """Print an action's outcome and exit with its code."""
    say(result.message, "bold green" if result.ok else "bold red")
    print_audit(result.audit)
    if result.link:
        say(f"pipeline: {result.link}")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_HOLD if result.refused else EXIT_FAILED)


def exit_with_decision(review: Review) -> None:
    sys.stdout.flush()
    raise typer.Exit(EXIT_OK if review.decision.action == "approve" else EXIT_HOLD)


# -- servers ------------------------------------------------------------------------------------------


def serve_until_stopped(server: ReviewServer, what: str, open_page: bool) -> None:
    """Announce the page, serve it until Ctrl-C, release the port; exit 0."""
    from reviewer.errors import Interrupted  # what Ctrl-C raises under `reviewer`'s main()

    say(f"{what}: {server.url}  (Ctrl-C to stop)", "bold")
    if open_page:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, Interrupted):
        say("stopped")
    finally:
        server.release()
    raise typer.Exit(EXIT_OK)


# -- re-capture -----------------------------------------------------------------------------------------


def recapture_and_show(review: Review, out_dir: Path, settings: Settings, *, runs: int,
                       viewports: list[str] | None = None, backstop_config: list[Path] | None = None,
                       timeout: float = 30.0, browser: str | None = None, parallel: int = 2) -> Review:
    """Re-capture the changed pairs of an analysis just written to OUT, print what happened per
    pair, rewrite OUT; returns the new review (`analyze --recapture`, `recapture`)."""
    from reviewer.capture import parse_viewport_option, recapture_outputs
    from reviewer.errors import UsageError
    from reviewer.render.markdown import RECAPTURE_NOTES

    for path in backstop_config or []:
        if not path.is_file():
            raise UsageError(f"--backstop-config {path}: no such file; pass the backstop.json BackstopJS ran with")
    sizes = dict(parse_viewport_option(v) for v in viewports or [])
    changed = sum(1 for rp in review.ranked if rp.analysis.verdict is Verdict.CHANGED)
    if not changed:
        say("re-capture: no changed pair to re-capture")
        return review
    note(f"re-capturing {changed} changed pair(s), {runs} times each…")
    selectors = {rp.pair.index: rp.pair.selector or "document" for rp in review.ranked}
    style = {"noise": "yellow", "dynamic": "yellow", "stable": "", "failed": "red", "skipped": "dim"}

    def show(o: Outcome) -> None:
        sel = selectors.get(o.index, "document")
        what = f"{o.label} [{o.viewport}]" + ("" if sel == "document" else f" {sel}")
        say(f"  {what}: {o.status}: {o.message}", style.get(o.status) or None)

    new, outcomes = recapture_outputs(review, out_dir, settings, runs=runs, viewports=sizes,
                                      backstop_config=backstop_config, timeout_s=timeout, browser=browser,
                                      parallel=parallel, progress=show)
    for line in dict.fromkeys(n for o in outcomes for n in o.result.notes if n.startswith(RECAPTURE_NOTES)):
        note(f"  note: {line}")
    return new
