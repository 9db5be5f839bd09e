"""Browser commands: `serve` (the review page with Approve/Hold/Reject) and `recapture`.

Exit codes: serve 0 when stopped with Ctrl-C; recapture 0 approve, 3 hold, 1 failed, 2 usage.
"""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_HOLD = 0, 3

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

RunsOpt = Annotated[int, typer.Option("--runs", "-n", min=2, max=20,
                                      help="captures per changed pair (at least 2: they are compared with each "
                                           "other)")]
ViewportOpt = Annotated[list[str] | None, typer.Option(
    "--viewport", help="LABEL=WIDTHxHEIGHT for a viewport label the report uses (repeatable); default: the size "
                       "of the report's own viewport capture, else backstop.json's, else the full page's width")]
BackstopOpt = Annotated[list[Path] | None, typer.Option(
    "--backstop-config", help="the backstop.json BackstopJS ran with (viewports, scenarios, browser flags); repeat it "
    "to add the scenarios of another file [default: backstop.json beside the report, with backstop-pages.json]")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="seconds to wait for a page")]
BrowserOpt = Annotated[str | None, typer.Option(
    "--browser", envvar="REVIEWER_CHROMIUM", help="the Chromium to re-capture with: best the one BackstopJS ran "
    "[default: Debian's chromium]")]
ParallelOpt = Annotated[int, typer.Option("--parallel", min=1, max=8, help="browsers replaying scenarios at once")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="reviewer.toml or pyproject.toml with settings")]


def _say(text: str, style: str | None = None) -> None:
    from reviewer.redact import redact

    _out.print(escape(redact(text)), style=style)


# -- recapture ---------------------------------------------------------------------------------------

def run_recapture(review: Any, out_dir: Path, settings: Any, *, runs: int, viewports: list[str] | None = None,
                  backstop_config: list[Path] | None = None, timeout: float = 30.0, browser: str | None = None,
                  parallel: int = 2) -> Any:
    """Re-capture the changed pairs of an analysis just written to OUT, print what happened,
    rewrite OUT; returns the new review. (Also used by `reviewer analyze --recapture N` and
    `reviewer ci --recapture N`.)"""
    from reviewer.capture import parse_viewport_option, recapture_outputs

    for path in backstop_config or []:
        if not path.is_file():
            from reviewer.errors import UsageError

            raise UsageError(f"--backstop-config {path}: no such file; pass the backstop.json BackstopJS ran with")
    sizes = dict(parse_viewport_option(v) for v in viewports or [])
    changed = sum(1 for rp in review.ranked if rp.analysis.verdict.value == "changed")
    if not changed:
        _say("re-capture: no changed pair to re-capture")
        return review
    _err.print(f"re-capturing {changed} changed pair(s), {runs} times each…", style="dim")
    review_selectors = {rp.pair.index: rp.pair.selector or "document" for rp in review.ranked}
    style = {"noise": "yellow", "dynamic": "yellow", "stable": "", "failed": "red", "skipped": "dim"}

    def show(o: Any) -> None:
        sel = review_selectors.get(o.index, "document")
        what = f"{o.label} [{o.viewport}]" + ("" if sel == "document" else f" {sel}")
        _say(f"  {what}: {o.status}: {o.message}", style.get(o.status) or None)

    new, outcomes = recapture_outputs(review, out_dir, settings, runs=runs, viewports=sizes,
                                      backstop_config=backstop_config, timeout_s=timeout, browser=browser,
                                      parallel=parallel, progress=show)
    from reviewer.render.markdown import RECAPTURE_NOTES

    for note in dict.fromkeys(n for o in outcomes for n in o.result.notes if n.startswith(RECAPTURE_NOTES)):
        _err.print(escape(f"  note: {note}"), style="dim")
    return new


def recapture(
    source: Annotated[Path, typer.Argument(help="the BackstopJS report (as for `reviewer analyze`)")],
    runs: RunsOpt = 3,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: reports/<report id>]")]
    = None,
    viewport: ViewportOpt = None,
    backstop_config: BackstopOpt = None,
    timeout: TimeoutOpt = 30.0,
    browser: BrowserOpt = None,
    parallel: ParallelOpt = 2,
    config: ConfigOpt = None,
) -> None:
    """Analyse a report, then replay each changed pair's BackstopJS scenario N times with
    Chromium, captured exactly as BackstopJS captures, to find dynamic content (clocks,
    counters, carousels); a pair whose changes are all dynamic becomes noise. A page that
    cannot be reached leaves its pair as it was.

    Exit code: 0 approve, 3 hold, 1 the report could not be analysed, 2 bad usage.

    Example: reviewer recapture fixtures/report/backstop_data --runs 3 --out reports/fixture
    """
    from reviewer.analyze import run
    from reviewer.cli.analyze_cmd import print_review
    from reviewer.config import load_settings

    settings, _origin = load_settings(config)
    review, out_dir = run(source, out, settings)
    review = run_recapture(review, out_dir, settings, runs=runs, viewports=viewport, backstop_config=backstop_config,
                           timeout=timeout, browser=browser, parallel=parallel)
    print_review(review, out_dir, _out)
    sys.stdout.flush()
    raise typer.Exit(EXIT_OK if review.decision.action == "approve" else EXIT_HOLD)


# -- serve -------------------------------------------------------------------------------------------


def serve(
    target: Annotated[str, typer.Argument(metavar="PROJECT|SOURCE",
                                          help="a CircleCI project (planet4-<nro> or a slug) with --tag, or a local "
                                               "report / zip / `reviewer analyze` output folder")],
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="the release tag to review and act on")] = None,
    project: Annotated[str | None, typer.Option("--project", help="with a local SOURCE: the CircleCI project "
                                                "whose release --tag the buttons act on")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="where to write the analysis (and the download)")]
    = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="port (0: any free port)")] = 0,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="also answer requests for this host name (repeatable); needed to listen beyond "
                             "this machine")] = None,
    audit_log: Annotated[Path, typer.Option("--audit-log", help="JSON-lines audit log to append to")]
    = Path("reports/audit.jsonl"),
    open_page: Annotated[bool, typer.Option("--open", help="open the page in the default browser")] = False,
    api_url: Annotated[str | None, typer.Option("--api-url", envvar="CIRCLECI_API_URL",
                                                help="CircleCI API v2 base URL")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the review page on 127.0.0.1 with Approve, Hold and Reject buttons.

    The buttons run the same code as `reviewer approve` / `reviewer hold [--reject]`, with the
    same safety checks and audit line; the CircleCI token stays in this process. A local
    SOURCE without --project/--tag shows the page with the buttons disabled.

    Example: reviewer serve planet4-africa --tag v1.234.0
    """
    from reviewer.cli.circleci_cmds import github_commit_lookup
    from reviewer.config import load_settings
    from reviewer.serve import make_server

    settings, _origin = load_settings(config)
    server = make_server(target, settings=settings, tag=tag, project=project, out=out, host=host, port=port,
                         allow_host=tuple(allow_host or ()), audit_log=audit_log, api_url=api_url,
                         commit_lookup=github_commit_lookup,
                         log=lambda line: _err.print(escape(line), style="dim"),
                         say=lambda line: _err.print(escape(line), style="dim"))
    _say(f"review page: {server.url}  (Ctrl-C to stop)", "bold")
    if server.cfg.handler is None:
        _say("buttons disabled: no CircleCI release to act on (pass --project and --tag)")
    if open_page:
        webbrowser.open(server.url)
    from reviewer.errors import Interrupted  # what Ctrl-C raises under `reviewer`'s main()

    try:
        server.serve_forever()
    except (KeyboardInterrupt, Interrupted):
        _say("stopped")
    finally:
        server.release()
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("recapture")(recapture)
