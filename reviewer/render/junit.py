"""junit.xml: one testcase per pair, for CircleCI's test summary.

changed -> <failure>, error -> <error>, noise/unchanged -> pass (noise says so in system-out).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reviewer.model import Review, Verdict


def _xml_text(text: str) -> str:
    # XML 1.0 cannot carry most control characters, even escaped.
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def render_junit(review: Review) -> str:
    c = review.counts
    suite = ET.Element(
        "testsuite",
        name=_xml_text(f"reviewer {review.report.id}"),
        tests=str(len(review.ranked)),
        failures=str(c.get("changed", 0)),
        errors=str(c.get("error", 0)),
        skipped="0",
        time=f"{sum(rp.analysis.seconds for rp in review.ranked):.3f}",
        timestamp=review.generated_at,
    )
    for rp in sorted(review.ranked, key=lambda r: r.pair.index):
        p, a = rp.pair, rp.analysis
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_xml_text(f"{p.label}"),
            name=_xml_text(f"{p.label} [{p.viewport}] {p.selector}"),
            file=_xml_text(p.file),
            time=f"{a.seconds:.3f}",
        )
        if a.verdict is Verdict.CHANGED:
            body = "\n".join(f"{r.kind.value} at x={r.box.x} y={r.box.y} {r.box.w}x{r.box.h}: {r.why}"
                             for r in a.regions if r.significant)
            fail = ET.SubElement(case, "failure", message=_xml_text(f"rank {rp.rank}, score {rp.score}: {a.reason}"),
                                 type="changed")
            fail.text = _xml_text(body)
        elif a.verdict is Verdict.ERROR:
            ET.SubElement(case, "error", message=_xml_text(a.reason), type="error")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _xml_text(f"{a.verdict.value}: {a.reason}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
