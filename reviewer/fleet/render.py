"""fleet.json, fleet.md and fleet.html from the gathered sites and their groups (pure).

fleet.json is the record `fleet approve` acts on: what the release manager saw is what is
approved. fleet.md fits a GitHub comment (65,536 characters) and a chat message; fleet.html
works from disk, like the review page, with the crops next to it (sites/<repo>/...).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from reviewer.actions import Check
from reviewer.fleet.gather import SiteResult
from reviewer.fleet.group import STATUSES, Group, approvable_clean, first_blocker, site_groups, site_status
from reviewer.redact import redact
from reviewer.render.html import content_security_policy, safe_json, static_text
from reviewer.render.markdown import cell

_env = Environment(loader=PackageLoader("reviewer", "render/templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)

SCHEMA = 1
MD_LIMIT = 60_000  # GitHub's comment limit is 65,536 characters: keep a margin for a footer
DECISION = {"clean": "approve", "noise": "approve", "changes": "hold", "held": "hold", "blocked": "hold",
            "waiting": "wait", "error": "error", "no-release": "none", "approved": "approved"}
ICON = {"approve": "✅", "hold": "⛔", "wait": "⏳", "error": "⚠️", "none": "–", "approved": "✔️"}


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def safe_link(link: str | None) -> str | None:
    """A link the page may show: http(s), or a relative path (never javascript: or data:)."""
    if not link:
        return None
    head = link.split("/", 1)[0]
    if link.startswith(("https://", "http://")) or (":" not in head and not link.startswith("//")):
        return link
    return None


def site_dict(s: SiteResult, groups: Sequence[Group]) -> dict[str, Any]:
    status = site_status(s.facts)
    f = s.facts
    return {
        "name": f.name, "slug": f.slug, "status": status, "decision": DECISION[status], "error": f.error,
        "tag": f.tag, "release": s.release, "source": s.source, "digest": s.digest,
        "report_problem": s.report_problem, "page": safe_link(s.page), "already_approved": f.already_approved,
        "analysis": f.decision, "reasons": list(f.reasons), "counts": f.counts,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "forceable": c.forceable} for c in f.checks],
        "approvable_clean": approvable_clean(f), "groups": list(site_groups(f.name, groups)),
        "changed_pages": list(f.changed_pairs), "unmatched_pages": list(f.unmatched_pages),
        "top": list(s.top), "notes": list(s.notes), "seconds": s.seconds,
        "blocker": blocker_text([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in f.checks]),
    }


def group_dict(g: Group) -> dict[str, Any]:
    return {
        "id": g.id, "kind": g.kind, "sites": list(g.sites), "pages": list(g.pages), "score": round(g.score, 3),
        "regions": len(g.items),
        "fingerprint": g.items[0].fingerprint.hex() if g.items[0].fingerprint else None,
        "items": [{"site": i.site, "page": i.page, "region": i.region, "kind": i.kind, "score": round(i.score, 3),
                   "reference": i.reference, "test": i.test} for i in g.items],
        "examples": [{"site": i.site, "page": i.page, "reference": i.reference, "test": i.test}
                     for i in g.examples()],
    }


def fleet_dict(sites: Sequence[SiteResult], groups: Sequence[Group], *, tag: str | None, since: str | None,
               rate_limit: dict[str, Any] | None = None, generated_at: str | None = None) -> dict[str, Any]:
    rows = [site_dict(s, groups) for s in sites]
    counts = Counter(r["status"] for r in rows)
    return {
        "schema": SCHEMA, "generated_at": generated_at or now(), "tag": tag, "since": since,
        "summary": {st: counts.get(st, 0) for st in STATUSES}, "rate_limit": rate_limit or {},
        "sites": rows, "groups": [group_dict(g) for g in groups],
    }


# -- fleet.md ---------------------------------------------------------------------------------------


def render_markdown(fleet: dict[str, Any], *, page_link: str | None = None, limit: int = MD_LIMIT) -> str:
    """The summary: counts, the groups (most sites first), then one line per site; rows that
    would pass `limit` are left out and counted."""
    summary = fleet["summary"]
    sites = fleet["sites"]
    head = [f"## Fleet review{' of ' + cell(fleet['tag']) if fleet.get('tag') else ''}: {len(sites)} sites", ""]
    head.append(" · ".join(f"**{n}** {st}" for st, n in summary.items() if n))
    approvable = [s["name"] for s in sites if s["approvable_clean"]]
    head += ["", f"{len(approvable)} site(s) pass every check: `reviewer fleet approve --clean`"]
    if page_link:
        head += ["", f"Fleet page: {page_link}"]
    lines = [*head, "", "### Changes, grouped across sites", ""]
    if fleet["groups"]:
        lines += ["| group | kind | sites | pages | score |", "|---|---|---|---|---|"]
    else:
        lines.append("No changes.")
    body: list[str] = []
    left: dict[str, int] = {"groups": 0, "sites": 0}
    for g in fleet["groups"]:
        names = ", ".join(g["sites"][:8]) + (f" +{len(g['sites']) - 8}" if len(g["sites"]) > 8 else "")
        body.append(f"| `{g['id']}` | {g['kind']} | {len(g['sites'])}: {cell(names, 200)} | "
                    f"{cell(', '.join(g['pages'][:4]), 120)} | {g['score']:.2f} |")
    out = "\n".join(lines)
    out, left["groups"] = _fill(out, body, limit // 2)
    if fleet["groups"]:
        out += ("\n\nAfter inspecting a group on the fleet page, approve the sites whose only changes are in it: "
                "`reviewer fleet approve --accept GROUP --reason TEXT`")
    site_lines = ["", "", "### Sites", "", "| site | status | tag | changed | noise | error | top change / why |",
                  "|---|---|---|---|---|---|---|"]
    out += "\n".join(site_lines)
    rows = []
    order = {st: n for n, st in enumerate(STATUSES)}
    for s in sorted(sites, key=lambda s: order.get(s["status"], len(order))):  # what needs a person first
        c = s["counts"]
        why = s["error"] or (s["top"][0]["page"] + (f" ({', '.join(s['groups'])})" if s["groups"] else "")
                             if s["top"] else blocker_text(s["checks"]))
        rows.append(f"| {cell(s['name'], 40)} | {ICON[s['decision']]} {s['status']} | {cell(s['tag'] or '', 24)} | "
                    f"{c.get('changed', '')} | {c.get('noise', '')} | {c.get('error', '')} | {cell(why or '', 160)} |")
    out, left["sites"] = _fill(out, rows, limit - 400)
    if left["groups"] or left["sites"]:
        out += (f"\n\n…and {left['groups']} more group(s), {left['sites']} more site(s): see fleet.html or "
                "fleet.json")
    return redact(out + "\n")


def blocker_text(checks: list[dict[str, Any]]) -> str:
    found = first_blocker([Check(c["name"], c["ok"], c["detail"]) for c in checks])
    return f"{found.name}: {found.detail}" if found else ""


def _fill(text: str, rows: list[str], limit: int) -> tuple[str, int]:
    for n, row in enumerate(rows):
        if len(text) + len(row) + 1 > limit:
            return text, len(rows) - n
        text += "\n" + row
    return text, 0


# -- fleet.html -------------------------------------------------------------------------------------


def render_html(fleet: dict[str, Any], *, actions: dict[str, Any] | None = None, image_prefix: str = "") -> str:
    """`actions` ({"endpoint", "secret"}, from `reviewer fleet serve`) adds the Approve clean
    sites and Accept group buttons; without it the page makes no request."""
    css, js = static_text("fleet.css"), static_text("fleet.js")
    clean = sum(1 for s in fleet["sites"] if s.get("approvable_clean"))
    return redact(_env.get_template("fleet.html.j2").render(
        fleet=fleet, actions=actions, clean=clean, img=image_prefix,
        actions_json=safe_json(actions or {}), css=css, js=js,
        csp=content_security_policy(css, js, connect=actions is not None)))
