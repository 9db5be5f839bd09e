"""`reviewer analyze SOURCE`: recompute, rank, report and decide on a local report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from reviewer.cli.output import exit_with_decision, note, out, print_review, progress_bar, recapture_and_show
from reviewer.model import Report


def found_below(source: Path) -> Callable[[Report], None]:
    """Say which report is analysed when SOURCE is a folder above it (e.g. CircleCI's `app/`)."""
    def tell(report: Report) -> None:
        here = source.resolve()
        root = report.root.resolve()
        if root != here and root != here.parent and root.is_relative_to(here):
            note(f"reading the report in {root.relative_to(here)} (id {report.id}, {len(report.pairs)} tests), "
                 f"the only one below {source}")
    return tell


def analyze(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE", help="backstop_data folder, a folder containing one, the html_report folder or its "
                               "index.html, or a .zip of any of these")],
    out_folder: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: "
                                                    "reports/<report id>]")] = None,
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
    force: Annotated[bool, typer.Option("--force", help="write into --out although it holds files reviewer did "
                                        "not write")] = False,
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
    with progress_bar("analysing", quiet=quiet) as update:
        review, out_dir = run(source, out_folder, settings, lambda d, t: update(d, t, 0), use_cache=not no_cache,
                              force=force, on_report=None if quiet else found_below(source))
    if recapture:
        review = recapture_and_show(review, out_dir, settings, runs=max(2, recapture),
                                    backstop_config=backstop_config, browser=browser, parallel=parallel)
    if quiet:
        out.print(f"{review.decision.action} ({out_dir}/review.json)", markup=False)
    else:
        print_review(review, out_dir)
    exit_with_decision(review)


COMMANDS: dict[str, Callable[..., None]] = {"analyze": analyze}
