"""approve / hold / reject / rollback through CircleCI, with their safety checks.

Pure decisions are separate from I/O:

    gather facts (CircleCI, fetch + analysis)  ->  approval_checks(facts) -> [Check]   (pure)
                                               ->  approval_verdict(checks, force)      (pure)
    -> confirm (caller's callback)  ->  re-read the job  ->  POST  ->  confirm by reading  ->  audit line

`hold-production` is approved only when every check passes:
  release          the production workflow of exactly that tag
  approval         hold-production is an approval job and is on_hold
  compare          visualtests-compare has finished (success or failed)
  commit           the tagged commit's message (subject and body) is known and holds no [HOLD]
                   (matched case-insensitively: `[hold]` also blocks)
  report           the report analysed is that job's, fetched complete and unchanged since
  analysis         the analysis decides approve
`--force --reason` passes only `analysis`; nothing passes the others. Doubt never approves:
an unknown commit message, an unreadable report or an unknown job state all refuse.

A POST whose outcome is unknown (dropped connection, 5xx, timeout) is never re-sent: the job
is read again and the result says what CircleCI shows.

Public API (also used by `reviewer serve`):
    approve(client, project, tag, *, force=False, reason=None, audit_log, review=None) -> ActionResult
    hold(client, project, tag, *, reason, reject=False, audit_log) -> ActionResult
    rollback(client, project, *, to=None, audit_log) -> ActionResult
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewer import audit
from reviewer.circleci import CircleCIClient, CircleCIError, app_url, project_slug
from reviewer.errors import Interrupted, ReportError, UsageError
from reviewer.model import Decision, Review
from reviewer.release import (
    COMPARE_JOB,
    HOLD_PRODUCTION,
    HOLD_PRODUCTION_DB,
    PRODUCTION,
    ROLLBACK_STAGING,
    Job,
    Pipeline,
    Release,
    TagRelease,
    find_release,
    release_from_pipeline,
    release_tags,
)
from reviewer.sources.circleci_fetch import FetchError, FetchResult, JobRef, verify_fetched
from reviewer.webclient import OutcomeUnknown

if TYPE_CHECKING:
    from reviewer.config import Settings

HOLD_MARKER = "[HOLD]"
COMPARE_DONE = ("success", "failed")  # the script exits non-zero on diffs: `failed` is a normal end
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}$")

Confirm = Callable[[str], bool]  # shown what is about to happen; False cancels
CommitLookup = Callable[[Release], "tuple[str | None, str]"]  # -> (message or None, where from)
Progress = Callable[[str], None]


def has_hold_marker(message: str) -> bool:
    return HOLD_MARKER.lower() in message.lower()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    forceable: bool = False  # --force --reason may pass it (only the analysis decision)


@dataclass(frozen=True)
class ActionResult:
    """What an action did. `ok` False with `refused` True: a safety check said no (exit 3);
    `ok` False otherwise: it failed or could not be confirmed (exit 1)."""

    ok: bool
    action: str  # approve | hold | reject | rollback
    message: str
    audit: dict[str, Any] | None = None
    refused: bool = False
    checks: tuple[Check, ...] = ()
    release: Release | None = None
    link: str | None = None
    review: Review | None = None
    review_dir: Path | None = None
    notes: tuple[str, ...] = ()


# -- pure ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalFacts:
    tag: str
    release_tag: str | None
    workflow_name: str
    approval: Job | None
    compare: Job | None
    commit_message: str | None
    commit_source: str = "CircleCI"
    compare_is_self: bool = False  # `reviewer ci` runs inside visualtests-compare
    report_problem: str | None = "not checked"  # None: complete, this job's, unchanged
    decision: Decision | None = None  # None: not analysed


def approval_checks(f: ApprovalFacts) -> list[Check]:
    """Every check of the module docstring, in order, each with a reason a person can act on."""
    checks = [
        Check("release", f.release_tag == f.tag and f.workflow_name == PRODUCTION,
              f"the {f.workflow_name} workflow of tag {f.release_tag}" if f.release_tag == f.tag
              and f.workflow_name == PRODUCTION else
              f"found the {f.workflow_name!r} workflow of tag {f.release_tag!r}, not production of {f.tag!r}"),
        _approval_check(f.approval),
        _compare_check(f.compare, f.compare_is_self),
        _commit_check(f.commit_message, f.commit_source),
        Check("report", f.report_problem is None,
              "the report is that job's, complete and unchanged" if f.report_problem is None
              else f.report_problem),
        _analysis_check(f.decision),
    ]
    return checks


def _approval_check(job: Job | None) -> Check:
    if job is None:
        return Check("approval", False, f"the workflow has no {HOLD_PRODUCTION} job")
    if job.type != "approval":
        return Check("approval", False, f"{HOLD_PRODUCTION} is a {job.type!r} job, not an approval")
    if job.status != "on_hold" or not job.approval_request_id:
        return Check("approval", False, f"{HOLD_PRODUCTION} is {job.status}, not on_hold: nothing to approve")
    return Check("approval", True, f"{HOLD_PRODUCTION} is on hold")


def _compare_check(job: Job | None, is_self: bool) -> Check:
    if is_self:
        return Check("compare", True, f"running inside {COMPARE_JOB}; its report was read from disk")
    if job is None:
        return Check("compare", False, f"the workflow has no {COMPARE_JOB} job, so there is no report to trust")
    if job.status in COMPARE_DONE:
        return Check("compare", True, f"{COMPARE_JOB} has finished ({job.status})")
    if not job.finished:
        return Check("compare", False, f"{COMPARE_JOB} is {job.status}: wait until it has finished")
    return Check("compare", False, f"{COMPARE_JOB} ended {job.status}: its report may be partial")


def _commit_check(message: str | None, source: str) -> Check:
    if message is None:
        return Check("commit", False, "the tagged commit's message is unknown, so [HOLD] cannot be ruled out "
                                      f"({source}); check the commit and approve in CircleCI's web app")
    if has_hold_marker(message):
        where = "subject" if has_hold_marker(message.split("\n", 1)[0]) else "body"
        return Check("commit", False, f"the tagged commit's message contains {HOLD_MARKER} (in its {where}; "
                                      f"message {source})")
    return Check("commit", True, f"no {HOLD_MARKER} in the tagged commit's message ({source})")


def _analysis_check(decision: Decision | None) -> Check:
    if decision is None:
        return Check("analysis", False, "the report was not analysed")
    if decision.action == "approve":
        return Check("analysis", True, "the analysis decides approve")
    why = "; ".join(decision.reasons[:3]) or "no reason given"
    return Check("analysis", False, f"the analysis decides {decision.action}: {why}", forceable=True)


def approval_verdict(checks: list[Check], force: bool) -> list[Check]:
    """The checks that block approval (empty: approve). --force passes only forceable ones."""
    return [c for c in checks if not c.ok and not (force and c.forceable)]


# -- helpers --------------------------------------------------------------------------------------


def commit_message(release: Release, lookup: CommitLookup | None) -> tuple[str | None, str]:
    message = release.pipeline.commit_message
    if message is not None:
        return message, "from CircleCI's pipeline data"
    if lookup is not None:
        try:
            found, source = lookup(release)
        except Exception as exc:  # a failed fallback is doubt, not a crash
            return None, f"CircleCI did not give it and the fallback failed: {type(exc).__name__}"
        if found is not None:
            return found, source
        return None, f"CircleCI did not give it; {source}"
    return None, "CircleCI did not give it"


def _reread(client: CircleCIClient, release: Release) -> Release:
    jobs = tuple(Job.from_api(j) for j in client.workflow_jobs(release.workflow.id))
    return replace(release, jobs=jobs)


def _poll_job(client: CircleCIClient, release: Release, name: str, until: Callable[[Job], bool],
              tries: int = 4) -> Job | None:
    """Read the job again until `until` holds or `tries` reads were made; the last read job."""
    job = None
    for attempt in range(tries):
        job = _reread(client, release).job(name)
        if job is not None and until(job):
            return job
        if attempt + 1 < tries:
            client.web.retry.sleep(client.web.retry.backoff_for(attempt))
    return job


def _audit(client: CircleCIClient, path: Path, *, action: str, slug: str, tag: str | None,
           pipeline: int | None, workflow: str | None, job: str | None, digest: str | None,
           reason: str | None, outcome: str = "done", **extra: Any) -> dict[str, Any]:
    data = audit.entry(who=client.who(), project=slug, tag=tag, action=action, pipeline=pipeline,
                       workflow=workflow, job=job, digest=digest, reason=reason, outcome=outcome, **extra)
    return audit.append(path, data)


# -- approve ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalPlan:
    release: Release
    checks: tuple[Check, ...]
    already_approved: bool = False
    review: Review | None = None
    review_dir: Path | None = None
    fetch: FetchResult | None = None
    notes: tuple[str, ...] = field(default=())

    def blocking(self, force: bool) -> list[Check]:
        return approval_verdict(list(self.checks), force)


def plan_approval(client: CircleCIClient, project: str, tag: str, *, review: Review | None = None,
                  settings: Settings | None = None, work_dir: Path | None = None,
                  commit_lookup: CommitLookup | None = None, pipeline_number: int | None = None,
                  workflow_id: str | None = None, progress: Progress | None = None) -> ApprovalPlan:
    """Gather every fact and run the checks; no state is changed. Fetches and analyses the
    compare job's report unless `review` (an analysis of a report this module fetched) is given
    or a check that --force cannot pass already failed."""
    slug = project_slug(project)
    say = progress or (lambda _msg: None)
    say(f"finding {tag} in {slug}")
    release = find_release(client, slug, tag=tag, pipeline_number=pipeline_number, workflow_id=workflow_id)
    approval, compare = release.job(HOLD_PRODUCTION), release.job(COMPARE_JOB)
    if approval is not None and approval.type == "approval" and approval.status == "success":
        return ApprovalPlan(release, (Check("approval", True, f"{HOLD_PRODUCTION} is already approved"),),
                            already_approved=True)
    message, source = commit_message(release, commit_lookup)
    facts = ApprovalFacts(tag, release.tag, release.workflow.name, approval, compare, message, source)
    early = [c for c in approval_checks(facts) if not c.ok and c.name not in ("report", "analysis")]
    if early:  # no point fetching a report that cannot lead to an approval
        checks = [c if c.name not in ("report", "analysis") else replace(c, detail="not checked") for c in
                  approval_checks(facts)]
        return ApprovalPlan(release, tuple(checks))
    assert compare is not None  # the compare check passed
    if compare.job_number is None:
        facts = replace(facts, report_problem=f"CircleCI gives {COMPARE_JOB} no job number: cannot read its "
                                              "artifacts")
        return ApprovalPlan(release, tuple(approval_checks(facts)))
    job_ref = JobRef(slug, compare.job_number, release.workflow.id, release.tag)
    fetched: FetchResult | None = None
    review_dir: Path | None = None
    if review is not None:
        problem = verify_fetched(review.report.root, job_ref)
        facts = replace(facts, report_problem=problem and f"the analysis given is not usable: {problem}",
                        decision=review.decision)
    else:
        review, review_dir, fetched, problem = _fetch_and_analyse(client, release, job_ref, settings, work_dir,
                                                                   say)
        facts = replace(facts, report_problem=problem, decision=review.decision if review else None)
    return ApprovalPlan(release, tuple(approval_checks(facts)), review=review, review_dir=review_dir,
                        fetch=fetched)


def _fetch_and_analyse(client: CircleCIClient, release: Release, job: JobRef, settings: Settings | None,
                       work_dir: Path | None, say: Progress
                       ) -> tuple[Review | None, Path | None, FetchResult | None, str | None]:
    # Imported here: the analysis pulls in the imaging stack, which hold/rollback never need.
    from reviewer import release_review
    from reviewer.config import load_settings

    try:
        rr = release_review.review_release(client, release, settings or load_settings(None)[0], work_dir=work_dir,
                                           job=job, progress=release_review.Progress(say=say))
    except FetchError as exc:
        return None, None, None, f"the report cannot be fetched: {exc}"
    except ReportError as exc:
        return None, None, None, f"the report cannot be analysed: {exc}"
    return rr.review, rr.out_dir, rr.fetch, rr.incomplete


def approve(client: CircleCIClient, project: str, tag: str, *, force: bool = False, reason: str | None = None,
            audit_log: Path, review: Review | None = None, confirm: Confirm | None = None,
            settings: Settings | None = None, work_dir: Path | None = None,
            commit_lookup: CommitLookup | None = None, pipeline_number: int | None = None,
            workflow_id: str | None = None, progress: Progress | None = None) -> ActionResult:
    """Approve `hold-production` of the release `tag` when every check passes.

    `review`: an analysis the caller already made of a report fetched by
    `reviewer.sources.circleci_fetch.fetch_report` for this release (e.g. `reviewer serve`); it is
    used only if its fetch manifest proves it is this release's compare job's complete,
    unchanged report. Without it, the report is fetched and analysed now (into `work_dir`,
    default reports/<repo>/<tag>/job-<n>/).
    `force` + `reason`: approve although the analysis decided hold (nothing else is forced).
    `confirm`: called with a description just before the POST; returning False cancels.
    `commit_lookup`: where to read the commit message when CircleCI does not give it.
    Already approved: ok, no POST, no audit line.
    """
    if force and not (reason and reason.strip()):
        raise UsageError("--force needs --reason TEXT: say what you inspected and why it is fine")
    plan = plan_approval(client, project, tag, review=review, settings=settings, work_dir=work_dir,
                         commit_lookup=commit_lookup, pipeline_number=pipeline_number, workflow_id=workflow_id,
                         progress=progress)
    return execute_approval(client, plan, force=force, reason=reason, audit_log=audit_log, confirm=confirm)


def execute_approval(client: CircleCIClient, plan: ApprovalPlan, *, force: bool = False,
                     reason: str | None = None, audit_log: Path, confirm: Confirm | None = None,
                     compare_is_self: bool = False, analysis_digest: str | None = None,
                     audit_extra: dict[str, Any] | None = None) -> ActionResult:
    """POST the approval of a plan whose checks pass; re-reads the jobs first and after.
    `analysis_digest`/`audit_extra`: for an analysis not held as a Review (reviewer fleet)."""
    release = plan.release

    def result(ok: bool, message: str, *, refused: bool = False, entry: dict[str, Any] | None = None,
               current: Release | None = None) -> ActionResult:
        return ActionResult(ok=ok, action="approve", message=message, audit=entry, refused=refused,
                            checks=plan.checks, release=current or release, review=plan.review,
                            review_dir=plan.review_dir,
                            link=app_url(client.api_url, release.project_slug, release.pipeline.number))

    if plan.already_approved:
        return result(True, f"{HOLD_PRODUCTION} of {release.tag} is already approved; nothing sent")
    blocking = plan.blocking(force)
    if blocking:
        hint = (" After inspecting the review page, a person may approve with --force --reason TEXT."
                if all(c.forceable for c in blocking) else "")
        return result(False, "not approved: " + "; ".join(f"{c.name}: {c.detail}" for c in blocking) + hint,
                      refused=True)
    digest = plan.review.digest if plan.review else analysis_digest
    forced = force and any(not c.ok for c in plan.checks)
    if confirm is not None:
        what = f"Approve {HOLD_PRODUCTION} of {release.label()}" + (" (FORCED past a hold decision)"
                                                                     if forced else "") + "?"
        if not confirm(what):
            return result(False, "cancelled: nothing was sent", refused=True)
    audit.ensure_writable(audit_log)
    # State may have moved while the report was analysed or the person read the prompt.
    fresh = _reread(client, release)
    job = fresh.job(HOLD_PRODUCTION)
    if job is not None and job.status == "success":
        return result(True, f"{HOLD_PRODUCTION} was approved meanwhile; nothing sent", current=fresh)
    failing = [c for c in (_approval_check(job), _compare_check(fresh.job(COMPARE_JOB), compare_is_self))
               if not c.ok]
    if failing or job is None or job.approval_request_id is None:
        return result(False, "not approved (the state changed): " + "; ".join(
            f"{c.name}: {c.detail}" for c in failing), refused=True, current=fresh)
    audit_reason = reason if forced else (reason or "all checks passed")

    def record(outcome: str = "done") -> dict[str, Any]:
        return _audit(client, audit_log, action="approve", slug=release.project_slug, tag=release.tag,
                      pipeline=release.pipeline.number, workflow=release.workflow.id, job=HOLD_PRODUCTION,
                      digest=digest, reason=audit_reason, outcome=outcome, forced=forced, **(audit_extra or {}))

    try:
        client.approve_job(fresh.workflow.id, job.approval_request_id)
    except (KeyboardInterrupt, Interrupted):
        # Ctrl-C while the approval was on its way: CircleCI may have acted on it. Say so, keep
        # a trace in the audit log, and never guess: a rerun reads the job before sending.
        with contextlib.suppress(Exception):
            record("interrupted")
        raise Interrupted(
            f"interrupted while sending the approval of {HOLD_PRODUCTION} of {release.tag}: CircleCI may or may "
            f"not have received it. Run `reviewer status {release.project_slug} --tag {release.tag}`; running "
            "approve again is safe (it reads the job first and sends nothing if it is approved)") from None
    except CircleCIError as exc:  # refused, e.g. approved by someone else a moment ago
        after = _poll_job(client, fresh, HOLD_PRODUCTION, lambda j: j.status == "success", tries=1)
        if after is not None and after.status == "success":
            return result(True, f"{HOLD_PRODUCTION} was approved meanwhile (CircleCI: {exc})", current=fresh)
        return result(False, f"CircleCI refused the approval: {exc}")
    except OutcomeUnknown as exc:
        after = _poll_job(client, fresh, HOLD_PRODUCTION, lambda j: j.status == "success")
        if after is not None and after.status == "success":
            return result(True, f"approved {HOLD_PRODUCTION} of {release.tag} (CircleCI's answer was lost, "
                                "but it shows the job approved)", entry=record())
        status = after.status if after else "unknown"
        return result(False, f"could not confirm the approval: {exc}. CircleCI shows {HOLD_PRODUCTION} {status}. "
                             "Nothing was re-sent; run `reviewer status` and, if it is still on hold, run approve "
                             "again.", entry=record("unconfirmed"))
    after = _poll_job(client, fresh, HOLD_PRODUCTION, lambda j: j.status != "on_hold", tries=3)
    shown = after.status if after else "unknown"
    note = "" if shown == "success" else f" (CircleCI accepted it; the job showed {shown} when last read)"
    return result(True, f"approved {HOLD_PRODUCTION} of {release.tag}{note}", entry=record())


# -- hold / reject ---------------------------------------------------------------------------------


def hold(client: CircleCIClient, project: str, tag: str, *, reason: str, reject: bool = False,
         audit_log: Path, confirm: Confirm | None = None, digest: str | None = None,
         pipeline_number: int | None = None, workflow_id: str | None = None) -> ActionResult:
    """Record a hold of release `tag` (hold-production stays waiting) with `reason`.

    With `reject`, also cancel the hold-production approval job: CircleCI's way to refuse an
    approval (deploy-production will not run; approving rollback-staging then lets
    finish-staging roll staging back). Refused when production was already approved.
    """
    if not reason or not reason.strip():
        raise UsageError("--reason TEXT is required: say why the release is held")
    action = "reject" if reject else "hold"
    slug = project_slug(project)
    release = find_release(client, slug, tag=tag, pipeline_number=pipeline_number, workflow_id=workflow_id)
    job = release.job(HOLD_PRODUCTION)
    base: dict[str, Any] = {"action": action, "release": release,
                            "link": app_url(client.api_url, slug, release.pipeline.number)}
    if job is None or job.type != "approval":
        return ActionResult(ok=False, refused=True, message=f"{release.label()} has no {HOLD_PRODUCTION} approval "
                                                            "job", **base)
    if job.status == "success":
        return ActionResult(ok=False, refused=True, message=(
            f"{HOLD_PRODUCTION} of {tag} is already approved: production is being or was deployed. "
            f"To undo it, use `reviewer rollback {project}`."), **base)
    if job.status == "canceled":
        return ActionResult(ok=True, message=f"{HOLD_PRODUCTION} of {tag} was already rejected (canceled); "
                                             "nothing sent", **base)
    if not reject and job.status not in ("on_hold", "blocked"):
        return ActionResult(ok=False, refused=True, message=f"{HOLD_PRODUCTION} is {job.status}; nothing to hold",
                            **base)
    if confirm is not None and not confirm(
            f"{'Reject (cancel)' if reject else 'Record a hold of'} {HOLD_PRODUCTION} of {release.label()}?"):
        return ActionResult(ok=False, refused=True, message="cancelled: nothing was sent", **base)
    audit.ensure_writable(audit_log)
    where: dict[str, Any] = {"slug": slug, "tag": tag, "pipeline": release.pipeline.number,
                             "workflow": release.workflow.id, "job": HOLD_PRODUCTION, "digest": digest,
                             "reason": reason}
    waiting = ", ".join(j.name for j in release.approvals_waiting if j.name != HOLD_PRODUCTION)
    if not reject:
        entry = _audit(client, audit_log, action="hold", **where)
        return ActionResult(ok=True, audit=entry, message=(
            f"hold recorded: {HOLD_PRODUCTION} of {tag} stays {job.status}; nobody should approve it. "
            f"Use --reject to refuse it in CircleCI."), **base)
    try:
        client.cancel_job(job.id)
    except (KeyboardInterrupt, Interrupted):
        # As for an approval: CircleCI may have acted on it; say so, log it, never guess.
        with contextlib.suppress(Exception):
            _audit(client, audit_log, action="reject", outcome="interrupted", **where)
        raise Interrupted(
            f"interrupted while cancelling {HOLD_PRODUCTION} of {tag}: CircleCI may or may not have received it. "
            f"Run `reviewer status {slug} --tag {tag}`; running the same command again is safe (it reads the "
            "job first and sends nothing if it is already canceled)") from None
    except CircleCIError as exc:
        return ActionResult(ok=False, message=f"CircleCI refused to cancel {HOLD_PRODUCTION}: {exc}", **base)
    except OutcomeUnknown as exc:
        after = _poll_job(client, release, HOLD_PRODUCTION, lambda j: j.status == "canceled")
        if after is None or after.status != "canceled":
            entry = _audit(client, audit_log, action="reject", outcome="unconfirmed", **where)
            return ActionResult(ok=False, audit=entry, message=(
                f"could not confirm the rejection: {exc}; CircleCI shows {HOLD_PRODUCTION} "
                f"{after.status if after else 'unknown'}. Nothing was re-sent; check `reviewer status`."), **base)
    entry = _audit(client, audit_log, action="reject", **where)
    next_step = (f" To roll staging back, approve {ROLLBACK_STAGING} (finish-staging then runs the rollback)."
                 if ROLLBACK_STAGING in waiting else "")
    return ActionResult(ok=True, audit=entry, message=f"rejected: {HOLD_PRODUCTION} of {tag} was canceled; "
                                                      f"deploy-production will not run.{next_step}", **base)


# -- rollback ---------------------------------------------------------------------------------------

ROLLBACK_WAITS = (f"{ROLLBACK_STAGING} redeploys the tag to staging; then two approvals wait: "
                  f"{HOLD_PRODUCTION} (redeploy production) and {HOLD_PRODUCTION_DB} (restore the database)")


def choose_rollback_tag(deployed: list[str], to: str | None, known: list[str] | None = None,
                        skipped: list[str] | None = None) -> tuple[str | None, str]:
    """(tag to roll back to, why) (pure). None: cannot choose.

    `deployed`: tags newest first whose production approval went through; `known`: every tag
    CircleCI lists; `skipped`: newer tags that never reached production, for the explanation.
    """
    known = deployed if known is None else known
    if to is not None:
        if not _TAG.match(to):
            return None, f"{to!r} is not a valid tag name"
        if to not in known:
            return to, f"{to} (not among the releases CircleCI lists recently: check it is the tag you mean)"
        if deployed and to == deployed[0]:
            return to, f"{to} (the latest release in production itself: this redeploys it)"
        return to, f"{to} as asked"
    if len(deployed) < 2:
        return None, ("fewer than two releases that reached production were found in CircleCI's tag pipelines; "
                      "pass --to TAG")
    note = f"; not counting {', '.join(skipped)}, which never reached production" if skipped else ""
    return deployed[1], f"{deployed[1]}, the release before the latest one in production ({deployed[0]}){note}"


def _deployed(client: CircleCIClient, slug: str, releases: list[TagRelease],
              look_at: int = 15) -> tuple[list[str], list[str]]:
    """Tags newest first whose hold-production was approved (they reached production), and the
    newer tags that did not, until two deployed ones are found."""
    deployed: list[str] = []
    skipped: list[str] = []
    for tr in releases[:look_at]:
        rel = release_from_pipeline(client, slug, tr.first_pipeline)
        job = rel.job(HOLD_PRODUCTION) if rel else None
        if job is not None and job.status == "success":
            deployed.append(tr.tag)
            if len(deployed) == 2:
                break
        elif not deployed:
            skipped.append(f"{tr.tag} ({HOLD_PRODUCTION} {job.status if job else 'missing'})")
    return deployed, skipped


def rollback(client: CircleCIClient, project: str, *, to: str | None = None, audit_log: Path,
             reason: str | None = None, confirm: Confirm | None = None) -> ActionResult:
    """Trigger a rollback pipeline like Planet 4's rollback.sh: {"tag": TAG, "parameters": {"rollback": true}}.

    Without `to`: the release before the latest one that reached production (its
    hold-production was approved), from CircleCI's tag pipelines; a tag is dated by its first
    pipeline, so earlier rollbacks do not reorder releases, and a held or rejected tag is not
    a release to go back to. The result's `link` is the new pipeline's page; its message says
    which approvals will wait.
    """
    slug = project_slug(project)
    releases = release_tags(client, slug)
    tags = [r.tag for r in releases]
    deployed, skipped = _deployed(client, slug, releases) if to is None else ([], [])
    target, why = choose_rollback_tag(deployed, to, tags, skipped)
    if target is None:
        return ActionResult(ok=False, refused=True, action="rollback", message=f"no rollback: {why}")
    if confirm is not None and not confirm(f"Roll {slug} back to {why}? This triggers a rollback pipeline."):
        return ActionResult(ok=False, refused=True, action="rollback", message="cancelled: nothing was sent")
    audit.ensure_writable(audit_log)
    newest = next(iter(client.pipelines(slug)), None)
    newest_number = Pipeline.from_api(newest).number if newest else 0
    why_line = reason or f"rollback to {why}"
    try:
        created = client.trigger_pipeline(slug, tag=target, parameters={"rollback": True})
        number = created.get("number")
    except OutcomeUnknown as exc:
        number = _find_new_pipeline(client, slug, target, newest_number)
        if number is None:
            entry = _audit(client, audit_log, action="rollback", slug=slug, tag=target, pipeline=None,
                           workflow=None, job=None, digest=None, reason=why_line, outcome="unconfirmed")
            return ActionResult(ok=False, action="rollback", audit=entry, message=(
                f"could not confirm the rollback pipeline: {exc}. No new pipeline for {target} is listed yet. "
                f"Nothing was re-sent (that could start two rollbacks); check {app_url(client.api_url, slug)}"))
    entry = _audit(client, audit_log, action="rollback", slug=slug, tag=target,
                   pipeline=number if isinstance(number, int) else None, workflow=None, job=None, digest=None,
                   reason=why_line)
    link = app_url(client.api_url, slug, number if isinstance(number, int) else None)
    return ActionResult(ok=True, action="rollback", audit=entry, link=link, message=(
        f"rollback pipeline {number} triggered for {why}\n{ROLLBACK_WAITS}"))


def _find_new_pipeline(client: CircleCIClient, slug: str, tag: str, newer_than: int) -> int | None:
    for item in client.paged(f"/project/{slug}/pipeline", what=f"list pipelines of {slug}", slug=slug,
                             max_pages=3):
        p = Pipeline.from_api(item)
        if p.number <= newer_than:
            return None
        if p.tag == tag:
            return p.number
    return None
