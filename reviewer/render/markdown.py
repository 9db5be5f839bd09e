"""summary.md: the CI comment. Short, scannable, explicit about why it held and where to look.

It is pasted into GitHub comments, so: no relative links (dead there), no local absolute
paths (meaningless there), and never more than GitHub accepts in one comment.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from reviewer.backstop import verdict_text
from reviewer.model import RankedPair, Region, RegionKind, Review, Verdict
from reviewer.render.text import shorten_middle

TOP = 10
RECAPTURE_ROWS = 30
# GitHub refuses a comment body over 65,536 characters; `reviewer ci` adds the approval
# section after this, so the summary itself keeps well under it.
MAX_CHARS = 60_000

_KIND_WORDS = {
    RegionKind.CONTENT: "content changed", RegionKind.COLOUR: "colour changed", RegionKind.SHIFT: "moved",
    RegionKind.INSERTED: "inserted", RegionKind.REMOVED: "removed", RegionKind.INVISIBLE: "invisible difference",
    RegionKind.DRIFT: "colour drift", RegionKind.IGNORED: "ignored area", RegionKind.DYNAMIC: "dynamic content",
}
# An absolute path into a BackstopJS report, as BackstopJS or this machine wrote it.
_REPORT_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"]*?[/\\]((?:bitmaps_reference|bitmaps_test|html_report|"
                          r"json_report|ci_report)[/\\][^\s'\"]*)")


def report_relative(text: str, root: str | None = None) -> str:
    """Absolute paths in report text (BackstopJS's "Reference file not found /app/…") made
    relative to the report, so a comment shows what a reader can find in the artifacts."""
    if root:
        for prefix in (root.rstrip("/") + "/", root.rstrip("/")):
            text = text.replace(prefix, "")
    return _REPORT_PATH.sub(lambda m: m.group(1).replace("\\", "/"), text)


def is_absolute_url(link: str | None) -> bool:
    return bool(link) and urlsplit(link or "").scheme in ("http", "https") and bool(urlsplit(link or "").netloc)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("s" if n != 1 else "")


def _band(r: Region) -> str:
    if r.kind is RegionKind.REMOVED:
        at = r.ref_y if r.ref_y is not None else r.box.y
        return f"{_rows(r.ref_h or r.box.h)} removed at y {at:,} of the reference"
    return f"{_rows(r.box.h)} inserted at y {r.box.y:,}"


def where(rp: RankedPair) -> str:
    """Where on the page the pair changed: the span of its significant regions and whether it
    reaches the first screen (what a visitor sees without scrolling)."""
    regions = [r for r in rp.analysis.regions if r.significant]
    if not regions:
        return ""
    top = min(r.box.y for r in regions)
    bottom = max(r.box.y + r.box.h for r in regions)
    span = f"y {top:,}" if bottom - top <= 1 else f"y {top:,}-{bottom:,}"
    screen = "first screen" if any(t.name == "first screen" for t in rp.terms) else "below the first screen"
    return f"{span}, {screen}"


def what(rp: RankedPair) -> str:
    """The kinds of change in words, bands with their size and place."""
    regions = [r for r in rp.analysis.regions if r.significant]
    parts: list[str] = [_band(r) for r in regions if r.kind in (RegionKind.INSERTED, RegionKind.REMOVED)][:2]
    counts: dict[RegionKind, int] = {}
    for r in regions:
        if r.kind not in (RegionKind.INSERTED, RegionKind.REMOVED):
            counts[r.kind] = counts.get(r.kind, 0) + 1
    for kind, n in counts.items():
        words = _KIND_WORDS.get(kind, kind.value)
        parts.append(f"{words} in {n} places" if n > 1 else words)
    return ", ".join(parts) or rp.analysis.reason


def cell(text: str, limit: int = 80) -> str:
    """Report text in a table cell: no markup, no line breaks, no table-breaking pipes."""
    clean = " ".join(text.split())
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return _escape(clean)


def _label(text: str, limit: int) -> str:
    """A pair label in a cell: shortened in the middle, so its distinctive end stays."""
    return _escape(shorten_middle(text, limit))


def _escape(text: str) -> str:
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text


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
    for rp, r in done[:RECAPTURE_ROWS]:
        dynamic = [g.box for g in rp.analysis.regions if g.kind is RegionKind.DYNAMIC]
        where = "; ".join(f"{b.w}×{b.h} at ({b.x}, {b.y})" for b in dynamic[:3]) + \
            (f" and {len(dynamic) - 3} more" if len(dynamic) > 3 else "")
        lines.append(f"| {_label(rp.pair.label, 50)} | {cell(rp.pair.viewport, 20)} | {cell(rp.pair.selector, 30)} | "
                     f"{RECAPTURE_ICON.get(r.status, '')} {cell(r.status + ': ' + r.message, 120)} | {r.captures} | "
                     f"{len(r.areas)} | {where or '–'} |")
    if len(done) > RECAPTURE_ROWS:
        lines.append(f"| … and {len(done) - RECAPTURE_ROWS:,} more | | | | | | |")
    lines.append("")
    if failed:
        lines += ["Not re-captured (left as they were):", ""]
        lines += [f"- {_label(rp.pair.label, 50)} [{cell(rp.pair.viewport, 20)}] {cell(rp.pair.selector, 30)}: "
                  f"{cell(r.message, 300)}" for rp, r in failed[:TOP]]
        if len(failed) > TOP:
            lines.append(f"- … and {len(failed) - TOP:,} more")
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
            lines.append(f"- {cell(n, 300)} ({cell(which, 200)})")
        lines.append("")
    return lines


def render_markdown(review: Review, page_url: str | None = None, max_chars: int = MAX_CHARS) -> str:
    """The summary. `page_url`: where the review page will be read (e.g. the CircleCI artifact
    URL); only an absolute http(s) URL is linked, and each top change links to its pair on it."""
    link = page_url if is_absolute_url(page_url) else None
    root = str(review.report.root)
    d = review.decision
    icon = "✅" if d.action == "approve" else "⛔"
    c = review.counts
    lines = [
        f"## {icon} Visual review: **{d.action.upper()}**",
        "",
        f"Report `{cell(review.report.id, 60)}`: {len(review.ranked):,} screenshot pairs: "
        f"**{c.get('changed', 0):,} changed**, {c.get('error', 0):,} error, "
        f"{c.get('noise', 0):,} noise, {c.get('unchanged', 0):,} unchanged.",
        "",
    ]
    if d.reasons:
        reasons = [f"- {cell(report_relative(r, root), 400)}" for r in d.reasons[:TOP]]
        if len(d.reasons) > TOP:
            reasons.append(f"- … and {len(d.reasons) - TOP:,} more")
        lines += ["### Why it held", "", *reasons, ""]
    changed = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.CHANGED]
    if changed:
        lines += [
            f"### Top changes ({min(TOP, len(changed))} of {len(changed):,})",
            "",
            "| # | Pair | Where | What changed | Score | BackstopJS |",
            "|---:|---|---|---|---:|---|",
        ]
        for rp in changed[:TOP]:
            rank = f"[{rp.rank}]({link}#pair={rp.rank})" if link else str(rp.rank)
            lines.append(
                f"| {rank} | {_label(f'{rp.pair.label} [{rp.pair.viewport}]', 60)} | {cell(where(rp), 40)} | "
                f"{cell(what(rp), 90)} | {rp.score:.1f} | {cell(verdict_text(rp.pair, short=True), 30)} |"
            )
        lines.append("")
    errors = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.ERROR]
    if errors:
        lines += ["### Could not compare", ""]
        lines += [f"- {_label(rp.pair.label, 60)} [{cell(rp.pair.viewport, 20)}]: "
                  f"{cell(report_relative(rp.analysis.reason, root), 200)}" for rp in errors[:TOP]]
        if len(errors) > TOP:
            lines.append(f"- … and {len(errors) - TOP:,} more")
        lines.append("")
    lines += _recapture_lines(review)
    if link:
        lines += [f"[Open the review page]({link})", ""]
    else:
        lines += ["The review page is `index.html` beside this file.", ""]
    footer = f"<sub>reviewer · settings {review.settings_digest} · {review.generated_at}</sub>"
    return _bounded(lines, footer, max_chars)


def _bounded(lines: list[str], footer: str, max_chars: int) -> str:
    """The lines and the footer in at most `max_chars`: whole lines are dropped from the end,
    and the cut says so (every section above is already bounded; this is the last guard)."""
    text = "\n".join([*lines, footer]) + "\n"
    if len(text) <= max_chars:
        return text
    note = "… summary cut to fit one comment: {} more line(s); see review.json or the review page"
    kept: list[str] = []
    size = len(footer) + len(note) + 40
    for line in lines:
        if size + len(line) + 1 > max_chars:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join([*kept, "", note.format(len(lines) - len(kept)), "", footer]) + "\n"
