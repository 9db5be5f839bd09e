"""`reviewer ci`: the step inside Planet 4's visualtests-compare job, in place of the shell script.

    analyse SOURCE -> review page, summary.md, junit.xml next to the report (stored as artifacts)
    -> optionally (--recapture N) re-capture the changed pairs right here: same container, same
       Chromium and fonts as BackstopJS a minute ago, same staging site (reviewer.capture)
    -> commit message: local git, else CircleCI's pipeline data, else unknown (= hold)
    -> decision approve + production workflow of the tag + no [HOLD] -> approve hold-production
       (through reviewer.actions, the same checks as `reviewer approve`, with "compare finished"
       satisfied by being that job)
    -> otherwise hold-production stays on hold and the summary says why
    -> optionally the summary as one comment on the tagged commit (GitHub)

Exit code: 0 approved (or already approved); 3 hold decision or approval refused, so the job
goes red and a person looks, as today; 1 something failed (nothing was approved).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewer import actions
from reviewer.circleci import CircleCIClient, app_url
from reviewer.errors import Interrupted, ReviewerError
from reviewer.model import Review
from reviewer.redact import redact
from reviewer.release import COMPARE_JOB, HOLD_PRODUCTION, PRODUCTION, Release, find_release

if TYPE_CHECKING:
    from reviewer.config import Settings
    from reviewer.github import GitHubClient

DEFAULT_SOURCE = Path("/app/backstop_data")
OUT_NAME = "reviewer"  # SOURCE/reviewer/: inside the folder CircleCI stores as artifacts
ARTIFACT_HOST = "https://output.circle-artifacts.com"
EXIT_OK, EXIT_FAILED, EXIT_HOLD = 0, 1, 3


@dataclass(frozen=True)
class CIEnv:
    """CircleCI's built-in variables the step reads."""

    workflow_id: str | None
    username: str | None
    reponame: str | None
    sha1: str | None
    tag: str | None
    build_url: str | None
    workflow_job_id: str | None = None
    node_index: str = "0"
    vcs: str = "gh"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CIEnv:
        e = os.environ if env is None else env

        def get(name: str) -> str | None:
            return (e.get(name) or "").strip() or None

        repo_url = get("CIRCLE_REPOSITORY_URL") or ""
        return cls(get("CIRCLE_WORKFLOW_ID"), get("CIRCLE_PROJECT_USERNAME"), get("CIRCLE_PROJECT_REPONAME"),
                   get("CIRCLE_SHA1"), get("CIRCLE_TAG"), get("CIRCLE_BUILD_URL"), get("CIRCLE_WORKFLOW_JOB_ID"),
                   get("CIRCLE_NODE_INDEX") or "0", "bb" if "bitbucket" in repo_url else "gh")

    @property
    def slug(self) -> str | None:
        return f"{self.vcs}/{self.username}/{self.reponame}" if self.username and self.reponame else None


@dataclass(frozen=True)
class Recapture:
    """`reviewer ci --recapture N`: re-capture the changed pairs before deciding."""

    runs: int
    backstop_config: tuple[Path, ...] = ()
    browser: str | None = None
    parallel: int = 2
    timeout_s: float = 30.0
    progress: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class CIOutcome:
    review: Review
    out_dir: Path
    exit_code: int
    approval: str  # one line: what happened to hold-production
    checks: tuple[actions.Check, ...] = ()
    audit: dict[str, object] | None = None
    comment_url: str | None = None
    warnings: tuple[str, ...] = field(default=())


def artifact_url(env: CIEnv, path: Path) -> str | None:
    """The link to a file stored as an artifact of this job (CircleCI lists `/app/x` as `app/x`);
    the job's page when CIRCLE_WORKFLOW_JOB_ID is not set."""
    if env.workflow_job_id:
        rel = path.resolve().as_posix().lstrip("/")
        return f"{ARTIFACT_HOST}/output/job/{env.workflow_job_id}/artifacts/{env.node_index}/{rel}"
    return f"{env.build_url}" if env.build_url else None


def commit_message_from_git(sha: str, git_dir: Path | None = None) -> str | None:
    try:
        proc = subprocess.run(["git", "log", "-1", "--format=%B", sha], cwd=git_dir, capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 and proc.stdout.strip() else None


def ci_commit_message(env: CIEnv, release: Release | None, git_dir: Path | None) -> tuple[str | None, str]:
    if env.sha1:
        message = commit_message_from_git(env.sha1, git_dir)
        if message is not None:
            return message, f"from git ({env.sha1[:12]})"
    if release is not None and release.pipeline.commit_message is not None:
        if env.sha1 and release.pipeline.revision and release.pipeline.revision != env.sha1:
            return None, "CircleCI's pipeline is for another commit than CIRCLE_SHA1"
        return release.pipeline.commit_message, "from CircleCI's pipeline data"
    return None, "neither git nor CircleCI gave it"


def _summary(review: Review, env: CIEnv, outcome_line: str, checks: tuple[actions.Check, ...],
             links: dict[str, str | None], warnings: list[str], page_given: bool = False) -> str:
    from reviewer.render.markdown import render_markdown

    # The page is linked (and its pairs by fragment) only where the page itself is: an artifact
    # URL or --page-url, not the job's page that stands in for it without CIRCLE_WORKFLOW_JOB_ID.
    page = links.get("index.html") if (env.workflow_job_id or page_given) else None
    text = render_markdown(review, page_url=page).rstrip("\n")
    files = " · ".join(f"[{name}]({url})" for name, url in links.items() if url)
    lines = ["", f"Files stored with the job: {files}" if files else "", "", "### Production approval", "",
             outcome_line, ""]
    if checks:
        lines += [f"- {'✅' if c.ok else '⛔'} **{c.name}**: {c.detail}" for c in checks] + [""]
    if env.build_url:
        lines += [f"Job: {env.build_url}", ""]
    lines += [f"> ⚠️ {w}" for w in warnings]
    return redact(text + "\n" + "\n".join(lines).rstrip("\n") + "\n")


def run_ci(source: Path, *, env: CIEnv, settings: Settings, client: CircleCIClient | None,
           audit_log: Path | None = None, out: Path | None = None, approve: bool = True,
           github: GitHubClient | None = None, git_dir: Path | None = None,
           page_url: str | None = None, warnings: list[str] | None = None,
           recapture: Recapture | None = None) -> CIOutcome:
    """Analyse SOURCE, write the outputs next to it, re-capture the changed pairs when asked,
    approve hold-production when every check passes, comment on the commit when `github` is
    given. `warnings` (e.g. why no comment) go into the summary."""
    from reviewer.analyze import run, write_text_atomic

    review, out_dir = run(source, out or (source / OUT_NAME), settings, inside_report=True)
    log = audit_log or (out_dir / "audit.jsonl")
    warnings = list(warnings or [])
    if recapture is not None:
        review = _recapture(review, out_dir, settings, recapture, warnings)
    checks: tuple[actions.Check, ...] = ()
    audit_entry: dict[str, object] | None = None
    if review.decision.action != "approve":
        code, line = EXIT_HOLD, f"⛔ {HOLD_PRODUCTION} left on hold: the analysis decided hold."
    elif not approve:
        code, line = EXIT_OK, f"{HOLD_PRODUCTION} not touched (--no-approve)."
    else:
        code, line, checks, audit_entry = _approve(review, env, client, log, git_dir)
    # `reviewer fleet` trusts review.json only for the report file it names here (by sha256).
    from reviewer.fleet.gather import write_source_record
    write_source_record(review.digest, review.report.source_file, source, out_dir)
    links = {name: artifact_url(env, out_dir / name) for name in ("index.html", "summary.md", "junit.xml",
                                                                    "review.json")}
    if page_url:
        links["index.html"] = page_url
    if not env.workflow_job_id:  # no per-file links: point at the job page once
        links = {"index.html": links["index.html"]}
    summary = _summary(review, env, line, checks, links, warnings, bool(page_url))
    write_text_atomic(out_dir / "summary.md", summary)
    comment_url = None
    if github is not None:
        comment_url, problem = _comment(github, env, summary)
        if problem:
            warnings.append(problem)
            write_text_atomic(out_dir / "summary.md",
                              _summary(review, env, line, checks, links, warnings, bool(page_url)))
    return CIOutcome(review, out_dir, code, line, checks, audit_entry, comment_url, tuple(warnings))


def _recapture(review: Review, out_dir: Path, settings: Settings, opts: Recapture, warnings: list[str]) -> Review:
    """Re-capture in the compare job, where it is most faithful. A re-capture that cannot run at
    all (no browser) must not fail the release step: the analysis stands as it was (a change
    stays a change), and the summary says why."""
    from reviewer.capture import recapture_outputs

    try:
        new, _outcomes = recapture_outputs(review, out_dir, settings, runs=opts.runs,
                                           backstop_config=opts.backstop_config, browser=opts.browser,
                                           parallel=opts.parallel, timeout_s=opts.timeout_s, progress=opts.progress)
    except Interrupted:
        raise
    except Exception as exc:  # whatever broke in it, the release step goes on without it, fail-closed
        what = str(exc) if isinstance(exc, ReviewerError) else f"{type(exc).__name__}: {exc}"
        warnings.append(f"re-capture did not run ({redact(what)}); the analysis stands without it")
        return review
    return new


def _approve(review: Review, env: CIEnv, client: CircleCIClient | None, audit_log: Path,
             git_dir: Path | None) -> tuple[int, str, tuple[actions.Check, ...], dict[str, object] | None]:
    if client is None:
        return EXIT_HOLD, f"⛔ {HOLD_PRODUCTION} left on hold: no CircleCI token (set CIRCLE_TOKEN).", (), None
    if not (env.workflow_id and env.slug):
        return EXIT_HOLD, (f"⛔ {HOLD_PRODUCTION} left on hold: CIRCLE_WORKFLOW_ID / CIRCLE_PROJECT_* are not set "
                           "(not running in CircleCI?)."), (), None
    if not env.tag:
        return EXIT_HOLD, f"⛔ {HOLD_PRODUCTION} left on hold: not a tag build (CIRCLE_TAG is empty).", (), None
    try:
        release = find_release(client, env.slug, workflow_id=env.workflow_id, tag=env.tag, workflow_name=PRODUCTION)
    except ReviewerError as exc:
        return EXIT_HOLD, f"⛔ {HOLD_PRODUCTION} left on hold: {redact(str(exc))}", (), None
    message, source = ci_commit_message(env, release, git_dir)
    facts = actions.ApprovalFacts(env.tag, release.tag, release.workflow.name, release.job(HOLD_PRODUCTION),
                                  release.job(COMPARE_JOB), message, source, compare_is_self=True,
                                  report_problem=None, decision=review.decision)
    checks = tuple(actions.approval_checks(facts))
    approval = release.job(HOLD_PRODUCTION)
    if approval is not None and approval.status == "success":
        return EXIT_OK, f"✅ {HOLD_PRODUCTION} was already approved.", checks, None
    plan = actions.ApprovalPlan(release, checks, review=review)
    try:
        result = actions.execute_approval(client, plan, audit_log=audit_log, compare_is_self=True,
                                          reason="reviewer ci: all checks passed")
    except ReviewerError as exc:
        return EXIT_FAILED, f"⛔ approval failed, {HOLD_PRODUCTION} left as it was: {redact(str(exc))}", checks, None
    link = app_url(client.api_url, release.project_slug, release.pipeline.number)
    if result.ok:
        return EXIT_OK, f"✅ {result.message} ({link})", checks, result.audit
    code = EXIT_HOLD if result.refused else EXIT_FAILED
    return code, f"⛔ {HOLD_PRODUCTION} left on hold: {result.message}", checks, result.audit


def _comment(github: GitHubClient, env: CIEnv, summary: str) -> tuple[str | None, str | None]:
    if not (env.username and env.reponame and env.sha1):
        return None, "no GitHub comment: CIRCLE_PROJECT_USERNAME/REPONAME or CIRCLE_SHA1 not set"
    try:
        result = github.upsert_commit_comment(env.username, env.reponame, env.sha1, summary)
    except ReviewerError as exc:
        return None, f"the GitHub comment failed: {redact(str(exc))}"
    return result.url, None

