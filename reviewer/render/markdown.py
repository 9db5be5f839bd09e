"""summary.md: the CI comment. Short, scannable, and explicit about why it held."""

from __future__ import annotations

from reviewer.backstop import verdict_text
from reviewer.model import RankedPair, RegionKind, Review, Verdict

TOP = 10


def _cell(text: str, limit: int = 80) -> str:
    """Report text in a table cell: no markup, no line breaks, no table-breaking pipes."""
    clean = " ".join(text.split())
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    for ch in "\\`*_[]<>|#!":
        clean = clean.replace(ch, "\\" + ch)
    return clean


def _what(rp: RankedPair) -> str:
    kinds: dict[str, int] = {}
    for r in rp.analysis.regions:
        if r.significant:
            kinds[r.kind.value] = kinds.get(r.kind.value, 0) + 1
    parts = [f"{n} {k}" if n > 1 else k for k, n in kinds.items()]
    return ", ".join(parts) or rp.analysis.reason


RECAPTURE_NOTES = ("onReadyScript", "onBeforeScript", "no onReadyScript", "no backstop.json", "scenario ", "browser:",
                   "BackstopJS ran", "engineOptions.args", "backstop.json's engine")
RECAPTURE_ICON = {"noise": "🔁", "dynamic": "🔁", "stable": "=", "failed": "⚠️", "skipped": "–"}


def _recapture_lines(review: Review) -> list[str]:
    """Per re-captured pair: what became of it, how many captures, how many dynamic areas, and
    for the pairs left as they were, why."""
    done = [(rp, review.recapture[rp.pair.index]) for rp in review.ranked if rp.pair.index in review.recapture]
    if not done:
        return []
    turned = sum(1 for _rp, r in done if r.status == "noise")
    failed = [(rp, r) for rp, r in done if r.status in ("failed", "skipped")]
    lines = [f"### Re-capture ({len(done)} pair(s); {turned} turned out dynamic only, {len(failed)} not re-captured)",
             "", "| Label | Viewport | Selector | Result | Captures | Areas that differed | Regions now dynamic |",
             "|---|---|---|---|---:|---:|---|"]
    for rp, r in done:
        dynamic = [g.box for g in rp.analysis.regions if g.kind is RegionKind.DYNAMIC]
        where = "; ".join(f"{b.w}×{b.h} at ({b.x}, {b.y})" for b in dynamic[:3]) + \
            (f" and {len(dynamic) - 3} more" if len(dynamic) > 3 else "")
        lines.append(f"| {_cell(rp.pair.label, 50)} | {_cell(rp.pair.viewport, 20)} | {_cell(rp.pair.selector, 30)} | "
                     f"{RECAPTURE_ICON.get(r.status, '')} {_cell(r.status + ': ' + r.message, 120)} | {r.captures} | "
                     f"{len(r.areas)} | {where or '–'} |")
    lines.append("")
    if failed:
        lines += ["Not re-captured (left as they were):", ""]
        lines += [f"- {_cell(rp.pair.label, 50)} [{_cell(rp.pair.viewport, 20)}] {_cell(rp.pair.selector, 30)}: "
                  f"{_cell(r.message, 300)}" for rp, r in failed]
        lines.append("")
    # What was not replayed (engine scripts, no backstop.json) and with which browser: the same
    # note for many pairs, so once, with the pairs it applies to.
    notes: dict[str, list[str]] = {}
    for rp, r in done:
        for n in r.notes:
            if n.startswith(RECAPTURE_NOTES):
                pairs = notes.setdefault(n, [])
                name = f"{rp.pair.label} [{rp.pair.viewport}]"
                if name not in pairs:
                    pairs.append(name)
    if notes:
        lines += ["Re-capture notes:", ""]
        for n, names in notes.items():
            which = "every pair above" if len(names) == len({(rp.pair.label, rp.pair.viewport) for rp, _r in done}) \
                else ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            lines.append(f"- {_cell(n, 300)} ({_cell(which, 200)})")
        lines.append("")
    return lines


def render_markdown(review: Review, page_link: str | None = None) -> str:
    d = review.decision
    icon = "✅" if d.action == "approve" else "⛔"
    c = review.counts
    lines = [
        f"## {icon} Visual review: **{d.action.upper()}**",
        "",
        f"Report `{_cell(review.report.id, 60)}`: {len(review.ranked)} screenshot pairs: "
        f"**{c.get('changed', 0)} changed**, {c.get('error', 0)} error, "
        f"{c.get('noise', 0)} noise, {c.get('unchanged', 0)} unchanged.",
        "",
    ]
    if d.reasons:
        lines += ["### Why it held", ""] + [f"- {_cell(r, 400)}" for r in d.reasons] + [""]
    changed = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.CHANGED]
    if changed:
        lines += [
            f"### Top changes ({min(TOP, len(changed))} of {len(changed)})",
            "",
            "| # | Label | Viewport | What changed | Score | BackstopJS |",
            "|---:|---|---|---|---:|---|",
        ]
        for rp in changed[:TOP]:
            lines.append(
                f"| {rp.rank} | {_cell(rp.pair.label, 50)} | {_cell(rp.pair.viewport, 20)} | "
                f"{_cell(_what(rp), 60)} | {rp.score:.1f} | {_cell(verdict_text(rp.pair, short=True), 30)} |"
            )
        lines.append("")
    errors = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.ERROR]
    if errors:
        lines += ["### Could not compare", ""]
        lines += [f"- {_cell(rp.pair.label, 50)} [{_cell(rp.pair.viewport, 20)}]: {_cell(rp.analysis.reason, 200)}"
                  for rp in errors[:TOP]]
        if len(errors) > TOP:
            lines.append(f"- … and {len(errors) - TOP} more")
        lines.append("")
    lines += _recapture_lines(review)
    if page_link:
        lines += [f"[Open the review page]({page_link})", ""]
    lines.append(f"<sub>reviewer · settings {review.settings_digest} · {review.generated_at}</sub>")
    return "\n".join(lines) + "\n"
