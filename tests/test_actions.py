"""approve / hold / reject / rollback: the checks (pure) and the actions against the local CircleCI.

The promise under test: no approval ever follows partial data, [HOLD] (also only in the commit
body), a running compare job, or a hold decision; a lost answer is never re-sent; every action
leaves one audit line.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from circleci_env import PROJECT, SLUG
from fake_circleci import FakeCircleCI, FakeStorage, FakeWorkflow

from reviewer import actions, audit
from reviewer.actions import ApprovalFacts, approval_checks, approval_verdict, choose_rollback_tag
from reviewer.circleci import CircleCIClient
from reviewer.errors import UsageError
from reviewer.model import Decision
from reviewer.release import Job, Release
from reviewer.sources.circleci_fetch import JobRef, fetch_report

pytest_plugins = ["circleci_fixtures"]

# -- the checks (pure) -------------------------------------------------------------------------------

ON_HOLD = Job("a1", "hold-production", "approval", "on_hold", approval_request_id="a1")
COMPARED = Job("c1", "visualtests-compare", "build", "failed", job_number=7)
GOOD = ApprovalFacts(tag="v1.2.0", release_tag="v1.2.0", workflow_name="production", approval=ON_HOLD,
                     compare=COMPARED, commit_message="Release v1.2.0\n\nNew footer", report_problem=None,
                     decision=Decision("approve", ()))
HOLD_DECISION = Decision("hold", ("1 pair(s) changed: Home [mobile]",))


def failing(facts: ApprovalFacts, force: bool = False) -> list[str]:
    return [c.name for c in approval_verdict(approval_checks(facts), force)]


def test_all_good_approves() -> None:
    assert failing(GOOD) == []
    assert [c.name for c in approval_checks(GOOD)] == ["release", "approval", "compare", "commit", "report",
                                                       "analysis"]


@pytest.mark.parametrize(("change", "check"), [
    ({"release_tag": "v1.2.1"}, "release"),
    ({"workflow_name": "rollback"}, "release"),
    ({"approval": None}, "approval"),
    ({"approval": replace(ON_HOLD, status="success")}, "approval"),
    ({"approval": replace(ON_HOLD, status="blocked")}, "approval"),
    ({"approval": replace(ON_HOLD, type="build")}, "approval"),
    ({"compare": None}, "compare"),
    ({"compare": replace(COMPARED, status="running")}, "compare"),
    ({"compare": replace(COMPARED, status="queued")}, "compare"),
    ({"compare": replace(COMPARED, status="canceled")}, "compare"),
    ({"compare": replace(COMPARED, status="infrastructure_fail")}, "compare"),
    ({"commit_message": "[HOLD] Release"}, "commit"),
    ({"commit_message": "Release v1.2.0\n\nWait for the campaign launch [HOLD]"}, "commit"),
    ({"commit_message": "Release [hold] until Monday"}, "commit"),
    ({"commit_message": None}, "commit"),
    ({"report_problem": "the report is incomplete: download failed"}, "report"),
    ({"decision": None}, "analysis"),
    ({"decision": HOLD_DECISION}, "analysis"),
])
def test_each_condition_blocks_and_says_which(change: dict[str, Any], check: str) -> None:
    facts = replace(GOOD, **change)
    assert failing(facts) == [check]


@pytest.mark.parametrize("change", [
    {"commit_message": "Release\n\n[HOLD]"},
    {"compare": replace(COMPARED, status="running")},
    {"approval": replace(ON_HOLD, status="blocked")},
    {"report_problem": "incomplete"},
    {"commit_message": None},
])
def test_force_never_passes_anything_but_the_analysis(change: dict[str, Any]) -> None:
    facts = replace(GOOD, decision=HOLD_DECISION, **change)
    assert "analysis" not in failing(facts, force=True)
    assert failing(facts, force=True)  # still refused
    assert failing(replace(GOOD, decision=HOLD_DECISION), force=True) == []


def test_hold_marker_in_the_body_is_named_as_such() -> None:
    checks = approval_checks(replace(GOOD, commit_message="Release v1.2.0\n\nNot yet [HOLD]"))
    assert "in its body" in next(c for c in checks if c.name == "commit").detail


def test_being_the_compare_job_satisfies_the_compare_check() -> None:
    facts = replace(GOOD, compare=replace(COMPARED, status="running"), compare_is_self=True)
    assert failing(facts) == []


@pytest.mark.parametrize(("tags", "to", "want"), [
    (["v3", "v2", "v1"], None, "v2"),
    (["v3"], None, None),
    (["v3", "v2", "v1"], "v1", "v1"),
    (["v3", "v2"], "v0.9", "v0.9"),  # allowed, with a warning in the reason
    (["v3", "v2"], "v1; rm -rf /", None),
])
def test_choose_rollback_tag(tags: list[str], to: str | None, want: str | None) -> None:
    assert choose_rollback_tag(tags, to)[0] == want


# -- against the local CircleCI ------------------------------------------------------------------------


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    return {"audit_log": tmp_path / "audit" / "audit.jsonl", "work_dir": tmp_path / "work"}


def release(cci: FakeCircleCI, report: Path | None, tag: str = "v1.2.0", **kw: Any) -> FakeWorkflow:
    _p, wf = cci.add_release(SLUG, tag, report=report, **kw)
    return wf


def approve(client: CircleCIClient, paths: dict[str, Path], tag: str = "v1.2.0", **kw: Any) -> actions.ActionResult:
    return actions.approve(client, PROJECT, tag, audit_log=paths["audit_log"], work_dir=paths["work_dir"], **kw)


def approvals(cci: FakeCircleCI) -> int:
    return len(cci.find("POST", r"/approve/"))


def test_approve_when_every_check_passes(cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient,
                                         approving_report: Path, paths: dict[str, Path], token: str) -> None:
    wf = release(cci, approving_report, body="Adds the new donation block")
    result = approve(client, paths)
    assert result.ok, result.message
    assert cci.job(wf, "hold-production").status == "success" and approvals(cci) == 1
    assert all(c.ok for c in result.checks)
    (line,) = audit.read(paths["audit_log"])
    assert line == result.audit
    assert line["who"] == "p4-release-bot" and line["project"] == SLUG and line["tag"] == "v1.2.0"
    assert line["workflow"] == wf.id and line["job"] == "hold-production" and line["action"] == "approve"
    assert line["digest"] == result.review.digest != "" and line["outcome"] == "done"  # type: ignore[union-attr]
    assert storage.saw(token) == [] and token not in paths["audit_log"].read_text()


def test_already_approved_sends_nothing(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                                       paths: dict[str, Path]) -> None:
    release(cci, approving_report, hold="success")
    result = approve(client, paths)
    assert result.ok and "already approved" in result.message
    assert approvals(cci) == 0 and not paths["audit_log"].exists()
    assert cci.find("GET", r"/artifacts") == []  # no need to look at the report


@pytest.mark.parametrize(("subject", "body"), [("[HOLD] Release", ""), ("Release", "Launch on Monday\n[HOLD]")])
def test_hold_marker_anywhere_in_the_message_refuses(cci: FakeCircleCI, client: CircleCIClient,
                                                     approving_report: Path, paths: dict[str, Path],
                                                     subject: str, body: str) -> None:
    wf = release(cci, approving_report, subject=subject, body=body)
    result = approve(client, paths)
    assert not result.ok and result.refused and "[HOLD]" in result.message
    assert approvals(cci) == 0 and cci.job(wf, "hold-production").status == "on_hold"
    assert not paths["audit_log"].exists()


def test_a_running_compare_job_refuses_even_with_force(cci: FakeCircleCI, client: CircleCIClient,
                                                       approving_report: Path, paths: dict[str, Path]) -> None:
    release(cci, approving_report, compare="running")
    result = approve(client, paths, force=True, reason="looked at it")
    assert result.refused and "visualtests-compare is running" in result.message
    assert approvals(cci) == 0


def test_a_hold_decision_refuses_and_force_with_a_reason_approves(
        cci: FakeCircleCI, client: CircleCIClient, holding_report: Path, paths: dict[str, Path]) -> None:
    wf = release(cci, holding_report)
    refused = approve(client, paths)
    assert refused.refused and "analysis decides hold" in refused.message and approvals(cci) == 0
    assert refused.review_dir is not None and (refused.review_dir / "index.html").is_file()
    with pytest.raises(UsageError, match="--reason"):
        approve(client, paths, force=True)
    forced = approve(client, paths, force=True, reason="the new banner is intended (checked with the NRO)")
    assert forced.ok and cci.job(wf, "hold-production").status == "success" and approvals(cci) == 1
    (line,) = audit.read(paths["audit_log"])
    assert line["forced"] is True and line["reason"].startswith("the new banner")


def test_partial_data_never_approves(cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient,
                                     approving_report: Path, paths: dict[str, Path]) -> None:
    wf = release(cci, approving_report)
    number = cci.job(wf, "visualtests-compare").job_number
    victim = next(a for a in cci.artifacts[(SLUG, number or 0)] if a.path.endswith("config.js"))
    storage.inject("GET", rf"^/blob/{victim.key}$", "truncate", times=100)
    result = approve(client, paths, force=True, reason="trust me")
    assert result.refused and "config.js could not be downloaded" in result.message
    assert approvals(cci) == 0


def test_a_missing_image_never_approves(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                                        paths: dict[str, Path]) -> None:
    (approving_report / "bitmaps_reference" / "planet4_Home_0_document_1_desktop.png").unlink()
    release(cci, approving_report)
    result = approve(client, paths, force=True, reason="trust me")
    assert result.refused and "not among the job's artifacts" in result.message and approvals(cci) == 0


def test_an_unknown_commit_message_refuses_unless_it_can_be_read_elsewhere(
        cci: FakeCircleCI, client: CircleCIClient, approving_report: Path, paths: dict[str, Path]) -> None:
    wf = release(cci, approving_report, commit_known=False)
    result = approve(client, paths)
    assert result.refused and "cannot be ruled out" in result.message and approvals(cci) == 0

    def from_hold(rel: Release) -> tuple[str | None, str]:
        return "Release\n\n[HOLD] wait", "from a test double"

    assert approve(client, paths, commit_lookup=from_hold).refused

    def broken(rel: Release) -> tuple[str | None, str]:
        raise RuntimeError("GitHub is down")

    assert approve(client, paths, commit_lookup=broken).refused

    def clean(rel: Release) -> tuple[str | None, str]:
        return f"Release {rel.tag}\n\nAll good", "from a test double"

    assert approve(client, paths, commit_lookup=clean).ok
    assert cci.job(wf, "hold-production").status == "success" and approvals(cci) == 1


def test_a_lost_answer_is_checked_not_resent(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                                            paths: dict[str, Path]) -> None:
    wf = release(cci, approving_report)
    cci.inject("POST", r"/approve/", "drop")  # lost before CircleCI acted
    result = approve(client, paths)
    assert not result.ok and not result.refused and "Nothing was re-sent" in result.message
    assert approvals(cci) == 1 and cci.job(wf, "hold-production").status == "on_hold"
    assert audit.read(paths["audit_log"])[-1]["outcome"] == "unconfirmed"

    cci.inject("POST", r"/approve/", "drop_after")  # CircleCI acted, the answer was lost
    result = approve(client, paths)
    assert result.ok and "shows the job approved" in result.message
    assert approvals(cci) == 2 and cci.job(wf, "hold-production").status == "success"
    assert audit.read(paths["audit_log"])[-1]["outcome"] == "done"


def test_a_refused_approval_is_reported_not_retried(cci: FakeCircleCI, client: CircleCIClient,
                                                    approving_report: Path, paths: dict[str, Path]) -> None:
    wf = release(cci, approving_report)
    cci.inject("POST", r"/approve/", "status", status=403)
    result = approve(client, paths)
    assert not result.ok and not result.refused and "CircleCI refused the approval" in result.message
    assert approvals(cci) == 1 and cci.job(wf, "hold-production").status == "on_hold"
    assert not paths["audit_log"].exists() or audit.read(paths["audit_log"]) == []


def test_the_state_is_read_again_just_before_the_post(cci: FakeCircleCI, client: CircleCIClient,
                                                      approving_report: Path, paths: dict[str, Path]) -> None:
    wf = release(cci, approving_report)

    def someone_else_approves(question: str) -> bool:
        cci.job(wf, "hold-production").status = "success"
        return True

    result = approve(client, paths, confirm=someone_else_approves)
    assert result.ok and "meanwhile" in result.message and approvals(cci) == 0


def test_declining_the_confirmation_sends_nothing(cci: FakeCircleCI, client: CircleCIClient,
                                                 approving_report: Path, paths: dict[str, Path]) -> None:
    release(cci, approving_report)
    asked: list[str] = []
    result = approve(client, paths, confirm=lambda q: bool(asked.append(q)))
    assert result.refused and "cancelled" in result.message and approvals(cci) == 0
    assert asked and "v1.2.0" in asked[0]


def test_a_review_made_elsewhere_counts_only_if_it_is_this_jobs_complete_fetch(
        cci: FakeCircleCI, client: CircleCIClient, approving_report: Path, paths: dict[str, Path],
        tmp_path: Path) -> None:
    from reviewer.analyze import run
    from reviewer.config import Settings

    wf = release(cci, approving_report)
    local_review, _ = run(approving_report, tmp_path / "local-review", Settings())
    result = approve(client, paths, review=local_review)
    assert result.refused and "not fetched by reviewer" in result.message and approvals(cci) == 0

    job = JobRef(SLUG, cci.job(wf, "visualtests-compare").job_number or 0, wf.id, "v1.2.0")
    fetched = fetch_report(client, job, tmp_path / "served")
    served_review, _ = run(fetched.out, tmp_path / "served-review", Settings())
    listings = len(cci.find("GET", r"/artifacts$"))
    result = approve(client, paths, review=served_review)
    assert result.ok and approvals(cci) == 1
    assert len(cci.find("GET", r"/artifacts$")) == listings  # used as given: no second fetch


def test_exactly_that_tag(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                          paths: dict[str, Path]) -> None:
    wf_old = release(cci, approving_report, tag="v1.1.0", hold="success")
    wf_new = release(cci, approving_report, tag="v1.2.0")
    assert approve(client, paths, tag="v1.2.0").ok
    assert cci.job(wf_new, "hold-production").status == "success"
    assert cci.job(wf_old, "hold-production").approved_by is None


# -- hold / reject ---------------------------------------------------------------------------------------


def test_hold_records_and_sends_nothing(cci: FakeCircleCI, client: CircleCIClient, paths: dict[str, Path]) -> None:
    wf = release(cci, None)
    result = actions.hold(client, PROJECT, "v1.2.0", reason="hero image broken on mobile",
                          audit_log=paths["audit_log"])
    assert result.ok and cci.job(wf, "hold-production").status == "on_hold"
    assert cci.find("POST", r".") == []
    (line,) = audit.read(paths["audit_log"])
    assert line["action"] == "hold" and line["reason"] == "hero image broken on mobile"


def test_reject_cancels_the_approval_job(cci: FakeCircleCI, client: CircleCIClient, paths: dict[str, Path]) -> None:
    wf = release(cci, None)
    result = actions.hold(client, PROJECT, "v1.2.0", reason="broken", reject=True, audit_log=paths["audit_log"])
    assert result.ok and cci.job(wf, "hold-production").status == "canceled"
    assert "approve rollback-staging" in result.message
    (req,) = cci.find("POST", r"/cancel$")
    assert cci.job(wf, "hold-production").id in req.path
    assert audit.read(paths["audit_log"])[0]["action"] == "reject"
    again = actions.hold(client, PROJECT, "v1.2.0", reason="broken", reject=True, audit_log=paths["audit_log"])
    assert again.ok and "already rejected" in again.message and len(cci.find("POST", r"/cancel$")) == 1


def test_too_late_to_hold(cci: FakeCircleCI, client: CircleCIClient, paths: dict[str, Path]) -> None:
    release(cci, None, hold="success")
    result = actions.hold(client, PROJECT, "v1.2.0", reason="x", reject=True, audit_log=paths["audit_log"])
    assert result.refused and "reviewer rollback" in result.message and cci.find("POST", r".") == []


def test_a_lost_cancel_answer_is_checked(cci: FakeCircleCI, client: CircleCIClient, paths: dict[str, Path]) -> None:
    wf = release(cci, None)
    cci.inject("POST", r"/cancel$", "drop_after")
    result = actions.hold(client, PROJECT, "v1.2.0", reason="x", reject=True, audit_log=paths["audit_log"])
    assert result.ok and cci.job(wf, "hold-production").status == "canceled"
    assert len(cci.find("POST", r"/cancel$")) == 1


# -- rollback ----------------------------------------------------------------------------------------------


def _releases(cci: FakeCircleCI, *tags: str) -> None:
    for tag in tags:
        cci.add_release(SLUG, tag, hold="success", compare="success")


def test_rollback_to_a_tag_sends_rollback_sh_s_body(cci: FakeCircleCI, client: CircleCIClient,
                                                    paths: dict[str, Path]) -> None:
    _releases(cci, "v1.0.0", "v1.1.0", "v1.2.0")
    result = actions.rollback(client, PROJECT, to="v1.0.0", audit_log=paths["audit_log"])
    assert result.ok
    (req,) = cci.find("POST", r"/pipeline$")
    assert json.loads(req.body) == {"tag": "v1.0.0", "parameters": {"rollback": True}}
    new = cci.pipelines[-1]
    assert result.link and result.link.endswith(f"/pipelines/github/greenpeace/planet4-testland/{new.number}")
    assert "hold-production" in result.message and "hold-production-db" in result.message
    (line,) = audit.read(paths["audit_log"])
    assert line["action"] == "rollback" and line["tag"] == "v1.0.0" and line["pipeline"] == new.number
    assert [w.name for w in new.workflows] == ["rollback"]


def test_rollback_without_a_tag_takes_the_release_before_the_latest(cci: FakeCircleCI, client: CircleCIClient,
                                                                    paths: dict[str, Path]) -> None:
    _releases(cci, "v1.0.0", "v1.1.0", "v1.2.0")
    assert actions.rollback(client, PROJECT, audit_log=paths["audit_log"]).ok
    assert json.loads(cci.find("POST", r"/pipeline$")[0].body)["tag"] == "v1.1.0"
    # Running it again does not take the rollback pipeline just made for the newest release.
    assert actions.rollback(client, PROJECT, audit_log=paths["audit_log"]).ok
    assert json.loads(cci.find("POST", r"/pipeline$")[1].body)["tag"] == "v1.1.0"


def test_rollback_skips_tags_that_never_reached_production(cci: FakeCircleCI, client: CircleCIClient,
                                                          paths: dict[str, Path]) -> None:
    _releases(cci, "v1.0.0", "v1.1.0")
    cci.add_release(SLUG, "v1.2.0", hold="canceled")  # rejected
    cci.add_release(SLUG, "v1.3.0")  # still waiting
    result = actions.rollback(client, PROJECT, audit_log=paths["audit_log"])
    assert result.ok and json.loads(cci.find("POST", r"/pipeline$")[0].body)["tag"] == "v1.0.0"
    assert "latest one in production (v1.1.0)" in result.message
    assert "v1.3.0 (hold-production on_hold), v1.2.0 (hold-production canceled)" in result.message


def test_rollback_needs_two_releases(cci: FakeCircleCI, client: CircleCIClient, paths: dict[str, Path]) -> None:
    _releases(cci, "v1.0.0")
    result = actions.rollback(client, PROJECT, audit_log=paths["audit_log"])
    assert result.refused and "--to" in result.message and cci.find("POST", r".") == []


def test_a_lost_trigger_answer_is_never_resent(cci: FakeCircleCI, client: CircleCIClient,
                                               paths: dict[str, Path]) -> None:
    _releases(cci, "v1.0.0", "v1.1.0")
    cci.inject("POST", r"/pipeline$", "drop")
    result = actions.rollback(client, PROJECT, to="v1.0.0", audit_log=paths["audit_log"])
    assert not result.ok and "Nothing was re-sent" in result.message
    assert len(cci.find("POST", r"/pipeline$")) == 1 and len(cci.pipelines) == 2
    cci.inject("POST", r"/pipeline$", "drop_after")
    result = actions.rollback(client, PROJECT, to="v1.0.0", audit_log=paths["audit_log"])
    assert result.ok and len(cci.pipelines) == 3 and str(cci.pipelines[-1].number) in (result.link or "")


def test_the_audit_log_must_be_writable_before_anything_is_sent(cci: FakeCircleCI, client: CircleCIClient,
                                                                tmp_path: Path) -> None:
    _releases(cci, "v1.0.0", "v1.1.0")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(audit.AuditError):
        actions.rollback(client, PROJECT, audit_log=blocker / "audit.jsonl")
    assert cci.find("POST", r".") == []
