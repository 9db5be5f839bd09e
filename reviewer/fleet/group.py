"""Pure fleet logic: each site's status, changes grouped across sites, what may be approved.

Nothing here reads a file or the network: gather.py hands in what it found, render.py and
act.py use what comes out, and the tests can state every rule on plain values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reviewer.actions import Check, approval_verdict
from reviewer.fleet.fingerprint import Fingerprint, same_change

# A site's status, in the order a release manager deals with them.
STATUSES = ("changes", "held", "waiting", "blocked", "error", "no-release", "clean", "noise", "approved")


@dataclass(frozen=True)
class RegionItem:
    """One significant region of one changed pair of one site."""

    site: str
    page: str  # "label [viewport]"
    pair_rank: int
    region: int  # index in the pair's regions
    kind: str
    score: float
    fingerprint: Fingerprint | None  # None: no crops to compare (more regions than crops, or unreadable)
    reference: str | None = None  # crop files, relative to the fleet's output folder
    test: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.site, self.page, self.region


@dataclass(frozen=True)
class Group:
    id: str
    kind: str
    items: tuple[RegionItem, ...]

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(sorted({i.site for i in self.items}))

    @property
    def pages(self) -> tuple[str, ...]:
        return tuple(sorted({i.page for i in self.items}))

    @property
    def score(self) -> float:
        return max((i.score for i in self.items), default=0.0)

    def examples(self, limit: int = 6) -> tuple[RegionItem, ...]:
        """One region per site first, so the examples show the change in as many places as possible."""
        firsts: dict[str, RegionItem] = {}
        for i in self.items:
            firsts.setdefault(i.site, i)
        return tuple(list(firsts.values())[:limit])


@dataclass(frozen=True)
class SiteFacts:
    """What gather found for one site; the input of every decision here."""

    name: str
    slug: str
    error: str | None = None  # the site could not be reviewed: why
    tag: str | None = None
    checks: tuple[Check, ...] = ()
    already_approved: bool = False
    decision: str | None = None  # the analysis' action, None when not analysed
    reasons: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    changed_pairs: tuple[str, ...] = ()  # pages whose verdict is changed
    unmatched_pages: tuple[str, ...] = ()  # changed pages with a change no fingerprint covers
    compare_running: bool = False  # visualtests-compare has not ended yet (it will store the report)


def site_status(s: SiteFacts) -> str:
    """One word for the site's line (see STATUSES)."""
    if s.error is not None:
        return "no-release" if s.tag is None and s.error.startswith("no release") else "error"
    if s.already_approved:
        return "approved"
    failed = {c.name for c in s.checks if not c.ok}
    if "compare" in failed:  # running: wait; ended canceled/timed out: its report cannot be trusted
        return "waiting" if s.compare_running else "blocked"
    if "commit" in failed:
        return "held"
    if failed - {"analysis"}:
        return "blocked"
    if s.decision == "approve":
        return "noise" if s.counts.get("noise", 0) else "clean"
    return "changes"


def first_blocker(checks: Sequence[Check]) -> Check | None:
    """The failed check a person acts on first: the release's state before the report, the
    report before the analysis (a report not checked because the release blocks says nothing)."""
    failed = [c for c in checks if not c.ok]
    for names in (("release", "approval", "compare", "commit"), ("report",), ("analysis",)):
        found = next((c for c in failed if c.name in names), None)
        if found is not None:
            return found
    return None


def approvable_clean(s: SiteFacts) -> bool:
    """Every check passes as it is: what `fleet approve --clean` approves."""
    return s.error is None and not s.already_approved and bool(s.checks) and not approval_verdict(list(s.checks),
                                                                                                   False)


def site_groups(site: str, groups: Sequence[Group]) -> tuple[str, ...]:
    return tuple(g.id for g in groups if any(i.site == site for i in g.items))


def acceptable(s: SiteFacts, groups: Sequence[Group], accepted: Iterable[str]) -> tuple[bool, str]:
    """May `--accept` pass this site's analysis check? (and why not). Only when the analysis held
    for changed pairs alone, and every change of every changed pair is in an accepted group."""
    accepted = set(accepted)
    if s.error is not None or s.decision is None:
        return False, "not analysed"
    if s.decision == "approve":
        return False, "the analysis approves: nothing to accept"
    if s.counts.get("error", 0):
        return False, f"{s.counts['error']} pair(s) could not be compared: look at them"
    if s.unmatched_pages:
        return False, "changes not in any group: " + ", ".join(s.unmatched_pages[:3])
    mine = [g for g in groups if any(i.site == s.name for i in g.items)]
    if not mine:
        return False, "no grouped change"
    outside = [g.id for g in mine if g.id not in accepted]
    if outside:
        return False, "changes in groups not accepted: " + ", ".join(outside)
    return True, "every change is in an accepted group: " + ", ".join(g.id for g in mine)


def _group_id(kind: str, fp: Fingerprint | None, fallback: str) -> str:
    # From the representative's appearance, quantised, so the same change keeps its id between
    # runs over the same releases; never from the order of sites.
    blob = kind.encode() + (bytes(b >> 4 for b in fp.reference + fp.test) if fp else fallback.encode())
    return f"{kind}-{hashlib.sha256(blob).hexdigest()[:8]}"


def group_regions(items: Sequence[RegionItem]) -> list[Group]:
    """Regions of the same change (kind and appearance, see fingerprint.same_change) in one group;
    ranked by sites touched, then pages touched, then the highest score. Deterministic: items
    are considered in (site, page, region) order, each joins the first group whose first item
    matches it. A region without a fingerprint is a group of its own."""
    ordered = sorted(items, key=lambda i: (i.site, i.page, i.region))
    buckets: list[list[RegionItem]] = []
    for item in ordered:
        for bucket in buckets:
            head = bucket[0]
            if (item.fingerprint is not None and head.fingerprint is not None
                    and same_change(head.fingerprint, item.fingerprint)):
                bucket.append(item)
                break
        else:
            buckets.append([item])
    groups = []
    used: set[str] = set()
    for bucket in buckets:
        head = bucket[0]
        gid = _group_id(head.kind, head.fingerprint, f"{head.site}|{head.page}|{head.region}")
        n = 2
        base = gid
        while gid in used:  # two different changes whose quantised prints collide
            gid, n = f"{base}-{n}", n + 1
        used.add(gid)
        groups.append(Group(gid, head.kind, tuple(bucket)))
    groups.sort(key=lambda g: (-len(g.sites), -len(g.pages), -g.score, g.id))
    return groups
