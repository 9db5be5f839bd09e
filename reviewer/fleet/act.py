"""`reviewer fleet approve`: each site of a fleet.json through the same checks as `reviewer approve`.

    fleet.json (what the release manager inspected)
      -> per site, pure: which mode applies (--clean: every check passed; --accept: its only
         changes are in accepted groups) or why the site is skipped          choose_mode
      -> re-read the release in CircleCI: the same workflow, the same compare job, and the
         checks again on the live state (approval on hold, compare finished, no [HOLD])
      -> actions.execute_approval: re-read, POST, confirm, one audit line naming the groups

An accepted group passes only the `analysis` check, as `approve --force --reason` does for one
site; nothing passes the others. A site already approved is reported, never approved again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewer.actions import (
    ApprovalFacts,
    ApprovalPlan,
    Check,
    CommitLookup,
    approval_checks,
    commit_message,  # the same commit-message rules as `reviewer approve`
    execute_approval,
)
from reviewer.circleci import CircleCIClient
from reviewer.errors import Interrupted, ReviewerError, UsageError
from reviewer.fleet.group import Group, RegionItem, SiteFacts, acceptable
from reviewer.model import Decision
from reviewer.redact import redact
from reviewer.release import COMPARE_JOB, HOLD_PRODUCTION, find_release


@dataclass(frozen=True)
class SiteAction:
    name: str
    outcome: str  # approved | would approve | already approved | refused | skipped | failed
    message: str
    groups: tuple[str, ...] = ()
    audit: dict[str, Any] | None = None
    checks: tuple[Check, ...] = ()


def load_fleet(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist: run `reviewer fleet` first (or pass --from DIR)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}; run `reviewer fleet` again") from None
    if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("sites"), list):
        raise UsageError(f"{path} is not a fleet.json of schema 1; run `reviewer fleet` again")
    return data


def groups_of(data: dict[str, Any]) -> list[Group]:
    return [Group(g["id"], g["kind"], tuple(RegionItem(i["site"], i["page"], 0, int(i["region"]), i["kind"],
                                                       float(i["score"]), None) for i in g["items"]))
            for g in data.get("groups", [])]


def facts_of(site: dict[str, Any]) -> SiteFacts:
    return SiteFacts(site["name"], site["slug"], error=site.get("error"), tag=site.get("tag"),
                     already_approved=bool(site.get("already_approved")), decision=site.get("analysis"),
                     reasons=tuple(site.get("reasons") or ()), counts=dict(site.get("counts") or {}),
                     changed_pairs=tuple(site.get("changed_pages") or ()),
                     unmatched_pages=tuple(site.get("unmatched_pages") or ()))


def choose_mode(site: dict[str, Any], groups: Sequence[Group], *, clean: bool,
                accepted: Sequence[str]) -> tuple[str, str]:
    """("clean" | "accept" | "skip", why). Pure: decided on what fleet.json recorded."""
    if site.get("error"):
        return "skip", site["error"]
    if site.get("already_approved"):
        return "skip", f"{HOLD_PRODUCTION} was already approved when fleet ran"
    if site.get("approvable_clean"):
        return ("clean", "every check passed") if clean else ("skip", "clean: pass --clean to approve it")
    failing = [c for c in site.get("checks", []) if not c["ok"]]
    if any(c["name"] != "analysis" for c in failing):
        return "skip", "; ".join(f"{c['name']}: {c['detail']}" for c in failing if c["name"] != "analysis")
    if not accepted:
        return "skip", f"{site.get('status')}: changes to inspect (accept their groups with --accept)"
    ok, why = acceptable(facts_of(site), groups, accepted)
    return ("accept", why) if ok else ("skip", why)


def approve_fleet(client: CircleCIClient, data: dict[str, Any], *, clean: bool, accept: Sequence[str],
                  reason: str | None, dry_run: bool, audit_log: Path, commit_lookup: CommitLookup | None = None,
                  only: Sequence[str] = (), progress: Callable[[SiteAction], None] | None = None) -> list[SiteAction]:
    groups = groups_of(data)
    known = {g.id for g in groups}
    unknown = [g for g in accept if g not in known]
    if unknown:
        raise UsageError(f"--accept {', '.join(unknown)}: no such group in this fleet.json; known: "
                         f"{', '.join(sorted(known)) or 'none'}")
    if not clean and not accept:
        raise UsageError("say what to approve: --clean (sites that pass every check) and/or --accept GROUP... "
                         "--reason TEXT (sites whose only changes are in those groups)")
    if accept and not (reason and reason.strip()):
        raise UsageError("--accept needs --reason TEXT: say what you inspected and why the change is intended")
    out: list[SiteAction] = []
    for site in data["sites"]:
        if only and site["name"] not in only:
            continue
        mode, why = choose_mode(site, groups, clean=clean, accepted=accept)
        if mode == "skip":
            action = SiteAction(site["name"], "skipped", why)
        else:
            try:
                action = _approve_site(client, site, mode, why, accept, reason, dry_run, audit_log, commit_lookup)
            except (KeyboardInterrupt, Interrupted):
                raise
            except ReviewerError as exc:
                action = SiteAction(site["name"], "failed", redact(str(exc)))
        out.append(action)
        if progress:
            progress(action)
    return out


def _approve_site(client: CircleCIClient, site: dict[str, Any], mode: str, why: str, accept: Sequence[str],
                  reason: str | None, dry_run: bool, audit_log: Path,
                  commit_lookup: CommitLookup | None) -> SiteAction:
    rel = site.get("release") or {}
    release = find_release(client, site["slug"], tag=site["tag"], workflow_id=rel.get("workflow_id"))
    groups = tuple(g for g in site.get("groups", []) if mode == "accept" and g in accept)
    approval, compare = release.job(HOLD_PRODUCTION), release.job(COMPARE_JOB)
    if approval is not None and approval.type == "approval" and approval.status == "success":
        return SiteAction(site["name"], "already approved", f"{HOLD_PRODUCTION} of {release.tag} is already "
                                                            "approved; nothing sent", groups)
    if compare is None or compare.job_number != rel.get("compare_job"):
        return SiteAction(site["name"], "refused", f"{COMPARE_JOB} is not the job fleet analysed (job "
                                                   f"{rel.get('compare_job')}); run `reviewer fleet` again", groups)
    message, source = commit_message(release, commit_lookup)
    decision = Decision(site["analysis"], tuple(site.get("reasons") or ())) if site.get("analysis") else None
    facts = ApprovalFacts(site["tag"], release.tag, release.workflow.name, approval, compare, message, source,
                          report_problem=site.get("report_problem"), decision=decision)
    plan = ApprovalPlan(release, tuple(approval_checks(facts)))
    force = mode == "accept"
    blocking = plan.blocking(force)
    if blocking:
        return SiteAction(site["name"], "refused", "not approved: " + "; ".join(f"{c.name}: {c.detail}"
                                                                                for c in blocking),
                          groups, checks=plan.checks)
    if dry_run:
        return SiteAction(site["name"], "would approve", f"would approve {HOLD_PRODUCTION} of {release.tag} ({why})",
                          groups, checks=plan.checks)
    audit_reason = (f"fleet: accepted group(s) {', '.join(groups)}: {reason}" if force
                    else "fleet --clean: all checks passed")
    result = execute_approval(client, plan, force=force, reason=audit_reason, audit_log=audit_log,
                              analysis_digest=site.get("digest"),
                              audit_extra={"fleet": True, "groups": list(groups)})
    outcome = "approved" if result.ok and result.audit else "already approved" if result.ok else (
        "refused" if result.refused else "failed")
    return SiteAction(site["name"], outcome, result.message, groups, result.audit, plan.checks)
