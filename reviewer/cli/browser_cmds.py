"""Browser commands: `serve` (the review page with Approve/Hold/Reject) and `recapture`.

Exit codes: serve 0 when stopped with Ctrl-C; recapture 0 approve, 3 hold, 1 failed, 2 usage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from reviewer.cli.output import exit_with_decision, note, print_review, recapture_and_show, serve_until_stopped

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


def recapture(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="the BackstopJS report (as for `reviewer analyze`)")],
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
    """Analyse a report, then re-capture each changed pair N times to find dynamic content.

    Replays each changed pair's BackstopJS scenario with Chromium, captured exactly as
    BackstopJS captures, to find dynamic content (clocks, counters, carousels); a pair whose
    changes are all dynamic becomes noise. A page that cannot be reached leaves its pair as
    it was.

    Exit code: 0 approve, 3 hold, 1 the report could not be analysed, 2 bad usage.

    Example: reviewer recapture fixtures/report/backstop_data --runs 3 --out reports/fixture
    """
    from reviewer.analyze import run
    from reviewer.config import load_settings

    settings, _origin = load_settings(config)
    review, out_dir = run(source, out, settings)
    review = recapture_and_show(review, out_dir, settings, runs=runs, viewports=viewport,
                                backstop_config=backstop_config, timeout=timeout, browser=browser, parallel=parallel)
    print_review(review, out_dir)
    exit_with_decision(review)


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
    from reviewer.config import load_settings
    from reviewer.github import commit_lookup
    from reviewer.serve import make_server

    settings, _origin = load_settings(config)
    server = make_server(target, settings=settings, tag=tag, project=project, out=out, host=host, port=port,
                         allow_host=tuple(allow_host or ()), audit_log=audit_log, api_url=api_url,
                         commit_lookup=commit_lookup, log=note, say=note)
    if server.cfg.handler is None:
        note("buttons disabled: no CircleCI release to act on (pass --project and --tag)")
    serve_until_stopped(server, "review page", open_page)


COMMANDS: dict[str, Callable[..., None]] = {"serve": serve, "recapture": recapture}
