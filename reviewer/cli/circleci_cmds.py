"""CircleCI commands: fetch, review, status, approve, hold, rollback, ci.

Each parses its options, calls the library once (reviewer.sources.circleci_fetch,
reviewer.actions, reviewer.ci) and prints. The token comes from CIRCLECI_TOKEN or
CIRCLE_TOKEN and is never printed. Exit codes: 0 ok/approved, 1 failed, 2 usage,
3 hold/refused.
"""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from reviewer.cli.output import (
    EXIT_FAILED,
    EXIT_HOLD,
    EXIT_OK,
    finish,
    note,
    out,
    print_audit,
    print_checks,
    print_review,
    progress_bar,
    say,
)
from reviewer.errors import UsageError
from reviewer.redact import redact

if TYPE_CHECKING:
    from reviewer.capture import Outcome
    from reviewer.circleci import CircleCIClient
    from reviewer.release import Release
    from reviewer.sources.circleci_fetch import FetchResult

ProjectArg = Annotated[str, typer.Argument(
    metavar="PROJECT", show_default=False,
    help="planet4-<nro> (= gh/greenpeace/planet4-<nro>) or a full slug such as gh/org/repo or github/org/repo")]
TagOpt = Annotated[str | None, typer.Option("--tag", "-t", help="the release tag, e.g. v1.234.0")]
TagReq = Annotated[str, typer.Option("--tag", "-t", help="the release tag, e.g. v1.234.0", show_default=False)]
PipelineOpt = Annotated[int | None, typer.Option("--pipeline", help="the pipeline number (instead of or with --tag)")]
WorkflowOpt = Annotated[str | None, typer.Option("--workflow", help="the workflow ID (instead of or with --tag)")]
ApiUrlOpt = Annotated[str | None, typer.Option("--api-url", envvar="CIRCLECI_API_URL",
                                               help="CircleCI API v2 base URL [default: https://circleci.com/api/v2]")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]
AuditOpt = Annotated[Path, typer.Option("--audit-log", help="JSON-lines audit log to append to")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="reviewer.toml or pyproject.toml with settings")]

def _client(api_url: str | None) -> CircleCIClient:
    from reviewer.circleci import client_from_env

    return client_from_env(api_url)


def _confirm(yes: bool) -> Callable[[str], bool] | None:
    if yes:
        return None
    if not sys.stdin.isatty():
        def refuse(question: str) -> bool:
            raise UsageError(f"{question} Needs confirmation, but there is no terminal to ask: pass --yes")
        return refuse
    return lambda question: typer.confirm(redact(question), default=False)


def _release(client: CircleCIClient, project: str, tag: str | None, pipeline: int | None,
             workflow: str | None) -> Release:
    from reviewer.circleci import project_slug
    from reviewer.release import find_release

    if not (tag or pipeline is not None or workflow):
        raise UsageError("say which release: --tag TAG, --pipeline N or --workflow ID")
    return find_release(client, project_slug(project), tag=tag, pipeline_number=pipeline, workflow_id=workflow)


def _print_fetch(result: FetchResult) -> None:
    say(f"{result.downloaded} file(s) downloaded ({result.bytes / 1e6:.1f} MB), {result.skipped} already complete")
    for problem in result.problems():
        say(f"  - {problem}", "red")


# -- commands -------------------------------------------------------------------------------------


def fetch(project: ProjectArg, tag: TagOpt = None, pipeline: PipelineOpt = None, workflow: WorkflowOpt = None,
          out: Annotated[Path | None, typer.Option("--out", "-o", help="folder to download into [default: "
                                                   "reports/<repo>/<tag>/job-<n>/report]")] = None,
          api_url: ApiUrlOpt = None) -> None:
    """Download the BackstopJS report of a release's visualtests-compare job.

    Downloads config.js, every image it names and the report page's assets, in parallel,
    resumably (complete files are skipped) and atomically. Exit code 0 only when the report is
    complete; then `reviewer analyze DIR` works.

    Example: reviewer fetch planet4-africa --tag v1.234.0 --out reports/africa
    """
    from reviewer.release_review import Progress, compare_job, fetch_release, work_dir_for

    with _client(api_url) as client:
        release = _release(client, project, tag, pipeline, workflow)
        job = compare_job(release)
        with progress_bar("downloading", with_bytes=True) as update:
            result = fetch_release(client, job, out or work_dir_for(release, job) / "report",
                                   Progress(say=note, download=update))
    _print_fetch(result)
    if not result.complete:
        say("incomplete: run the same command again to resume", "bold red")
        raise typer.Exit(EXIT_FAILED)
    say(f"complete: reviewer analyze {result.out}", "bold green")


def review(project: ProjectArg, tag: TagOpt = None, pipeline: PipelineOpt = None, workflow: WorkflowOpt = None,
           out: Annotated[Path | None, typer.Option("--out", "-o", help="work folder [default: "
                                                    "reports/<repo>/<tag>/job-<n>]")] = None,
           open_page: Annotated[bool, typer.Option("--open", help="open the review page in the browser")] = False,
           config: ConfigOpt = None, api_url: ApiUrlOpt = None) -> None:
    """Fetch a release's report from CircleCI and analyse it (fetch + analyze).

    Writes DIR/report (the download) and DIR/review (index.html, review.json, summary.md,
    junit.xml). Exit code: 0 approve, 3 hold, 1 the report could not be fetched or analysed.

    Example: reviewer review planet4-africa --tag v1.234.0 --open
    """
    from reviewer.config import load_settings
    from reviewer.release_review import Progress, review_release

    settings, _origin = load_settings(config)
    with _client(api_url) as client, progress_bar("downloading", with_bytes=True) as download, \
            progress_bar("analysing") as analysis:
        release = _release(client, project, tag, pipeline, workflow)
        rr = review_release(client, release, settings, work_dir=out,
                            progress=Progress(say=note, download=download,
                                              analysis=lambda d, t: analysis(d, t, 0)))
    _print_fetch(rr.fetch)
    if rr.incomplete:
        say(f"{rr.incomplete}: those pairs count as errors, so the decision holds", "yellow")
    print_review(rr.review, rr.out_dir)
    if open_page:
        webbrowser.open((rr.out_dir / "index.html").resolve().as_uri())
    if rr.review.decision.action == "approve":
        say(f"to approve: reviewer approve {project} --tag {release.tag}")
    raise typer.Exit(EXIT_OK if rr.review.decision.action == "approve" else EXIT_HOLD)


def status(project: ProjectArg, tag: TagOpt = None, pipeline: PipelineOpt = None, workflow: WorkflowOpt = None,
           latest: Annotated[int, typer.Option("--latest", "-n", help="releases to list without --tag", min=1)] = 5,
           api_url: ApiUrlOpt = None) -> None:
    """Show a release's pipeline, production workflow, every job's state and the approvals waiting.

    Without --tag/--pipeline/--workflow: the latest releases and where each stands.

    Example: reviewer status planet4-africa --tag v1.234.0
    """
    from reviewer.circleci import app_url, project_slug
    from reviewer.release import (
        HOLD_PRODUCTION,
        ROLLBACK,
        ReleaseNotFound,
        find_release,
        iter_tag_pipelines,
        release_from_pipeline,
        release_tags,
    )

    slug = project_slug(project)
    with _client(api_url) as client:
        if tag or pipeline is not None or workflow:
            try:
                rel = find_release(client, slug, tag=tag, pipeline_number=pipeline, workflow_id=workflow)
            except ReleaseNotFound:
                if pipeline is None and not workflow:
                    raise
                # A rollback pipeline: its `rollback` workflow (hold-production, hold-production-db).
                rel = find_release(client, slug, tag=tag, pipeline_number=pipeline, workflow_id=workflow,
                                   workflow_name=ROLLBACK)
            _print_release(rel, app_url(client.api_url, slug, rel.pipeline.number))
            if tag:  # later pipelines for the same tag, e.g. rollbacks to it
                for other in iter_tag_pipelines(client, slug, tag):
                    if other.number == rel.pipeline.number:
                        break
                    later = release_from_pipeline(client, slug, other, ROLLBACK)
                    if later is not None:
                        waiting = ", ".join(j.name for j in later.approvals_waiting) or "none"
                        say(f"later: pipeline {other.number} ({ROLLBACK} workflow {later.workflow.status}; "
                            f"approvals waiting: {waiting}) {app_url(client.api_url, slug, other.number)}")
            return
        table = Table(title=f"latest releases of {slug}")
        for col in ("tag", "pipeline", "created", "production", HOLD_PRODUCTION, "waiting"):
            table.add_column(col)
        for tr in release_tags(client, slug)[:latest]:
            found = release_from_pipeline(client, slug, tr.first_pipeline)
            if found is None:
                table.add_row(escape(tr.tag), str(tr.first_pipeline.number), tr.first_pipeline.created_at[:16],
                              "(no production workflow)", "", "")
                continue
            hp = found.job(HOLD_PRODUCTION)
            table.add_row(escape(tr.tag), str(found.pipeline.number), found.pipeline.created_at[:16],
                          found.workflow.status, hp.status if hp else "-",
                          ", ".join(j.name for j in found.approvals_waiting))
        out.print(table)


def _print_release(rel: Release, link: str) -> None:
    p = rel.pipeline
    say(f"{rel.project_slug} {p.tag or p.branch or ''}: pipeline {p.number} ({p.state}, {p.created_at}) {link}")
    if p.commit_subject is not None:
        say(f"commit {(p.revision or '')[:12]}: {p.commit_subject}")
    say(f"workflow {rel.workflow.name}: {rel.workflow.status}")
    table = Table(show_header=True)
    for col in ("job", "type", "status", "number"):
        table.add_column(col)
    for j in rel.jobs:
        style = {"success": "green", "failed": "red", "on_hold": "yellow", "running": "cyan"}.get(j.status, "")
        table.add_row(escape(j.name), j.type, f"[{style}]{j.status}[/]" if style else j.status,
                      str(j.job_number or ""))
    out.print(table)
    waiting = [j.name for j in rel.approvals_waiting]
    say("approvals waiting: " + (", ".join(waiting) if waiting else "none"))


def approve(project: ProjectArg, tag: TagReq, force: Annotated[bool, typer.Option(
                "--force", help="approve although the analysis decided hold (needs --reason; never passes [HOLD], "
                "a running compare job or an approval that is not on hold)")] = False,
            reason: Annotated[str | None, typer.Option("--reason", help="why (required with --force)")] = None,
            yes: YesOpt = False, pipeline: PipelineOpt = None, workflow: WorkflowOpt = None,
            out: Annotated[Path | None, typer.Option("--out", "-o", help="work folder for the report and its "
                                                     "analysis [default: reports/<repo>/<tag>/job-<n>]")] = None,
            audit_log: AuditOpt = Path("reports/audit.jsonl"), config: ConfigOpt = None,
            api_url: ApiUrlOpt = None) -> None:
    """Approve hold-production of a release, only when every safety check passes.

    Checks: hold-production is on hold in the production workflow of exactly that tag;
    visualtests-compare has finished; the tagged commit's message has no [HOLD]; the report
    of that job was fetched complete and its analysis decides approve (--force --reason
    passes only this last one). Already approved: says so, exit 0, nothing sent.
    Exit code: 0 approved, 3 refused, 1 failed.

    Example: reviewer approve planet4-africa --tag v1.234.0
    """
    from reviewer.actions import approve as do_approve
    from reviewer.config import load_settings
    from reviewer.github import commit_lookup

    settings, _origin = load_settings(config)
    with _client(api_url) as client:
        result = do_approve(client, project, tag, force=force, reason=reason, audit_log=audit_log,
                            confirm=_confirm(yes), settings=settings, work_dir=out,
                            commit_lookup=commit_lookup, pipeline_number=pipeline, workflow_id=workflow,
                            progress=note)
    print_checks(result.checks)
    if result.review_dir:
        say(f"review page: {result.review_dir / 'index.html'}")
    finish(result)


def hold(project: ProjectArg, tag: TagReq,
         reason: Annotated[str, typer.Option("--reason", help="why the release is held", show_default=False)],
         reject: Annotated[bool, typer.Option("--reject", help="also cancel hold-production (refuse it in "
                                              "CircleCI); finish-staging can then roll staging back")] = False,
         yes: YesOpt = False, pipeline: PipelineOpt = None, workflow: WorkflowOpt = None,
         audit_log: AuditOpt = Path("reports/audit.jsonl"), api_url: ApiUrlOpt = None) -> None:
    """Record a hold on a release (hold-production stays waiting); --reject cancels the approval.

    Exit code: 0 recorded/rejected, 3 refused (e.g. already approved), 1 failed.

    Example: reviewer hold planet4-africa --tag v1.234.0 --reason "hero image broken on mobile" --reject
    """
    from reviewer.actions import hold as do_hold

    with _client(api_url) as client:
        result = do_hold(client, project, tag, reason=reason, reject=reject, audit_log=audit_log,
                         confirm=_confirm(yes), pipeline_number=pipeline, workflow_id=workflow)
    finish(result)


def rollback(project: ProjectArg,
             to: Annotated[str | None, typer.Option("--to", help="tag to roll back to [default: the release "
                                                    "before the latest]")] = None,
             reason: Annotated[str | None, typer.Option("--reason", help="why (goes into the audit log)")] = None,
             yes: YesOpt = False, audit_log: AuditOpt = Path("reports/audit.jsonl"),
             api_url: ApiUrlOpt = None) -> None:
    """Trigger Planet 4's rollback pipeline: {"tag": TAG, "parameters": {"rollback": true}}.

    Like rollback.sh; without --to, the release before the latest one, from CircleCI's tag
    pipelines. Prints the new pipeline's link and the approvals that will wait
    (hold-production, hold-production-db).

    Example: reviewer rollback planet4-africa --to v1.233.0
    """
    from reviewer.actions import rollback as do_rollback

    with _client(api_url) as client:
        result = do_rollback(client, project, to=to, audit_log=audit_log, reason=reason, confirm=_confirm(yes))
    finish(result)


def ci(source: Annotated[Path, typer.Argument(metavar="SOURCE", help="the BackstopJS report folder")]
       = Path("/app/backstop_data"),
       out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder [default: SOURCE/reviewer, "
                                                "stored with the report as artifacts]")] = None,
       comment: Annotated[str | None, typer.Option("--comment", help="also post the summary as a comment on the "
                                                   "tagged commit: `github` (needs GITHUB_TOKEN)")] = None,
       no_approve: Annotated[bool, typer.Option("--no-approve", help="analyse and report only; never touch "
                                                "hold-production")] = False,
       audit_log: Annotated[Path | None, typer.Option("--audit-log", help="[default: OUT/audit.jsonl]")] = None,
       page_url: Annotated[str | None, typer.Option("--page-url", help="link to the review page in the summary "
                                                    "[default: derived from CIRCLE_WORKFLOW_JOB_ID]")] = None,
       git_dir: Annotated[Path | None, typer.Option("--git-dir", help="the checkout to read the commit message "
                                                    "from [default: the current folder]")] = None,
       recapture: Annotated[int, typer.Option(
           "--recapture", metavar="N", min=0, max=20, help="re-capture each changed pair N times (at least 2) "
           "right here, against the same staging site, to find dynamic content (0 = off)")] = 0,
       backstop_config: Annotated[list[Path] | None, typer.Option(
           "--backstop-config", help="with --recapture: the backstop.json BackstopJS ran with (repeatable: the "
                                     "scenarios of further files are added) [default: backstop.json beside "
                                     "SOURCE, with backstop-pages.json]")] = None,
       browser: Annotated[str | None, typer.Option(
           "--browser", envvar="REVIEWER_CHROMIUM", help="with --recapture: the Chromium BackstopJS ran "
           "[default: Debian's chromium]")] = None,
       parallel: Annotated[int, typer.Option("--parallel", min=1, max=8, help="with --recapture: browsers "
                                             "replaying scenarios at once")] = 2,
       config: ConfigOpt = None, api_url: ApiUrlOpt = None) -> None:
    """The CI step for visualtests-compare: analyse, report, approve hold-production when safe.

    Reads CIRCLE_WORKFLOW_ID, CIRCLE_PROJECT_USERNAME, CIRCLE_PROJECT_REPONAME, CIRCLE_SHA1,
    CIRCLE_TAG, CIRCLE_BUILD_URL and CIRCLE_TOKEN; writes summary.md, junit.xml and the review
    page into SOURCE/reviewer; approves hold-production through the API when the decision is
    approve and the commit has no [HOLD]; otherwise leaves it on hold and says why.
    Exit code: 0 approved, 3 held (the job goes red for a person to look), 1 failed.

    Example: reviewer ci /app/backstop_data --comment github
    """
    from reviewer.ci import CIEnv, run_ci
    from reviewer.circleci import TokenMissing, client_from_env
    from reviewer.config import load_settings

    if comment not in (None, "github"):
        raise UsageError(f"--comment {comment!r}: only `github` is supported")
    settings, _origin = load_settings(config)
    client = None
    if not no_approve:
        try:
            client = client_from_env(api_url)
        except TokenMissing:
            note("no CIRCLE_TOKEN/CIRCLECI_TOKEN: hold-production cannot be approved from here")
    github = None
    problems: list[str] = []
    if comment == "github":
        from reviewer.github import github_from_env

        try:
            github = github_from_env()
        except UsageError as exc:  # a missing comment must not block a release: warn instead
            problems.append(f"no GitHub comment: {exc}")
    again = None
    if recapture:
        from reviewer.ci import Recapture

        def progress(o: Outcome) -> None:
            note(f"re-capture: {o.label} [{o.viewport}]: {o.status}: {o.message}")

        again = Recapture(max(2, recapture), tuple(backstop_config or ()), browser, parallel, progress=progress)
    try:
        outcome = run_ci(source, env=CIEnv.from_env(), settings=settings, client=client, audit_log=audit_log,
                         out=out, approve=not no_approve, github=github, git_dir=git_dir, page_url=page_url,
                         warnings=problems, recapture=again)
    finally:
        if client is not None:
            client.close()
        if github is not None:
            github.close()
    print_review(outcome.review, outcome.out_dir)
    print_checks(outcome.checks)
    say(outcome.approval, "bold green" if outcome.exit_code == EXIT_OK else "bold red")
    print_audit(outcome.audit)
    say(f"summary: {outcome.out_dir / 'summary.md'}")
    if outcome.comment_url:
        say(f"GitHub comment: {outcome.comment_url}")
    for w in outcome.warnings:
        say(f"warning: {w}", "yellow")
    raise typer.Exit(outcome.exit_code)



COMMANDS: dict[str, Callable[..., None]] = {
    "fetch": fetch, "review": review, "status": status, "approve": approve, "hold": hold,
    "rollback": rollback, "ci": ci,
}
