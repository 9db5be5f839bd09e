"""summary.md: the CI comment. Short, scannable, and explicit about why it held."""

from __future__ import annotations

from reviewer.backstop import verdict_text
from reviewer.model import RankedPair, Review, Verdict

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
    if page_link:
        lines += [f"[Open the review page]({page_link})", ""]
    lines.append(f"<sub>reviewer · settings {review.settings_digest} · {review.generated_at}</sub>")
    return "\n".join(lines) + "\n"
