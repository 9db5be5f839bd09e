"""The approve/hold decision (pure). Fails closed: anything but certainty holds."""

from __future__ import annotations

from collections.abc import Sequence

from reviewer.model import Decision, RankedPair, Verdict

APPROVE = "approve"
HOLD = "hold"
_LISTED = 5


def _names(pairs: Sequence[RankedPair]) -> str:
    # Names only: each pair's own reason is in the outputs next to it; repeating it here made
    # the decision unreadable.
    shown = []
    for rp in pairs[:_LISTED]:
        name = f"{rp.pair.label} [{rp.pair.viewport}]"
        if rp.pair.selector not in ("document", "viewport", ""):
            name += f" {rp.pair.selector}"
        shown.append(name)
    more = len(pairs) - _LISTED
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def decide(ranked: Sequence[RankedPair], report_problems: Sequence[str] = ()) -> Decision:
    """Approve only when there is at least one pair and every pair is unchanged or noise,
    and nothing else went wrong. Otherwise hold, with one reason per cause."""
    reasons: list[str] = [f"report problem: {p}" for p in report_problems]
    if not ranked:
        reasons.append("the report has no tests: nothing was compared, so nothing can be vouched for")
    changed = [rp for rp in ranked if rp.analysis.verdict is Verdict.CHANGED]
    errors = [rp for rp in ranked if rp.analysis.verdict is Verdict.ERROR]
    if changed:
        reasons.append(f"{len(changed)} pair(s) changed: {_names(changed)}")
    if errors:
        reasons.append(f"{len(errors)} pair(s) could not be compared: {_names(errors)}")
    known = {Verdict.CHANGED, Verdict.ERROR, Verdict.NOISE, Verdict.UNCHANGED}
    odd = [rp for rp in ranked if rp.analysis.verdict not in known]
    if odd:
        reasons.append(f"{len(odd)} pair(s) have no verdict")
    return Decision(action=HOLD if reasons else APPROVE, reasons=tuple(reasons))
