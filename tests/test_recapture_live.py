"""Re-capture on a real BackstopJS report of live pages whose only changes are dynamic.

fixtures/recapture/serve.py serves pages that change on every load: a clock to the
millisecond, a signature counter the server increments, a carousel the server rotates (a
full-page pair and a viewport pair), and, on the same kind of page, a clock next to a button
whose text really changed between the releases. The real BackstopJS 6.3.25 takes the
reference (release v1) and the test (v2) with Planet 4-style scenario options (delay,
removeSelectors, hideSelectors, hoverSelector, a selector capture). Then the site is edited
(v3: a notice above the clock), so the clock page's re-captures are taller than its test image
and have to be lined up with it, and reviewer re-captures while the site is served.

- the report without the page that really changed: `analyze --recapture 2` turns every
  dynamic pair into noise and approves (without re-capture it holds);
- the whole report, in the compare job's place: `ci --recapture 2` holds it for the real
  change next to the clock alone; the review page and summary.md say what re-capture did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from backstop_tool import require_backstop, run, serving, workdir
from browser import file_url, launch_chromium, open_page
from typer.testing import CliRunner

from reviewer.cli import app

PORTS = range(47675, 47680)  # 47670-47674: tests/test_capture_geometry.py
DYNAMIC = {"Clock", "Counter", "Slides"}


@pytest.mark.slow
@pytest.mark.browser
def test_recapture_on_a_live_report(tmp_path, monkeypatch):
    """One test, so that BackstopJS runs once (pytest-xdist would run a module fixture once per
    worker)."""
    require_backstop()
    for name in ("CIRCLE_WORKFLOW_ID", "CIRCLE_TOKEN", "CIRCLECI_TOKEN", "CIRCLE_TAG", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with serving(PORTS) as (site, port):
        live = workdir(tmp_path / "live", "backstop-dynamic.json", port)
        run(live, "reference")
        site.release = "v2"
        run(live, "test", expected=(1,))  # the dynamic pairs and the real change fail
        site.release = "v3"  # edited since BackstopJS ran: a notice above the clock
        check_analyze_approves_the_dynamic_only_report(live, tmp_path / "dynamic-only")
        check_ci_holds_for_the_real_change_alone(live)
        check_page(live / "backstop_data" / "reviewer")


def pairs(out: Path) -> list[dict[str, Any]]:
    return list(json.loads((out / "review.json").read_text())["pairs"])


def check_dynamic_pair(p: dict[str, Any]) -> None:
    rc = p["recapture"]
    assert p["verdict"] == "noise", (p["label"], p["viewport"], p["selector"], rc, p["reason"])
    assert rc["status"] == "noise" and rc["captures"] == 2 and rc["areas"], rc
    assert [r["kind"] for r in p["regions"] if r["significant"]] == []
    assert "dynamic" in [r["kind"] for r in p["regions"]]


def check_analyze_approves_the_dynamic_only_report(live: Path, base: Path) -> None:
    """`analyze --recapture 2` on the report without the page that really changed: approve."""
    shutil.copytree(live / "backstop_data", base / "backstop_data")
    shutil.copy(live / "backstop.json", base / "backstop.json")  # found beside backstop_data
    config = base / "backstop_data" / "html_report" / "config.js"
    text = config.read_text()
    data = json.loads(text[text.index("(") + 1: text.rindex(")")])
    data["tests"] = [t for t in data["tests"] if t["pair"]["label"] != "Mixed"]
    config.write_text("report(" + json.dumps(data) + ");")
    out = base / "out"
    source = str(base / "backstop_data")
    before = CliRunner().invoke(app, ["analyze", source, "--out", str(out), "--quiet"])
    assert before.exit_code == 3, before.output  # to a pixel-exact review every dynamic pair is a change
    after = CliRunner().invoke(app, ["analyze", source, "--out", str(out), "--recapture", "2", "--parallel", "1"])
    assert after.exit_code == 0 and "Decision: APPROVE" in after.output, after.output
    got = pairs(out)
    assert len(got) == 10 and {p["label"] for p in got} == DYNAMIC
    assert {p["selector"] for p in got} == {"document", "viewport", "#signatures"}
    for p in got:
        check_dynamic_pair(p)
    clock = [p for p in got if p["label"] == "Clock"]
    assert all(any("lined up with the" in n for n in p["recapture"]["notes"]) for p in clock)  # v3 is taller
    counter = next(p for p in got if p["label"] == "Counter")
    assert any("removeSelectors" in n and "hideSelectors" in n and "hoverSelector" in n and "delay" in n
               for n in counter["recapture"]["notes"]), counter["recapture"]["notes"]
    summary = (out / "summary.md").read_text()
    assert "APPROVE" in summary and "### Re-capture (10 pair(s); 10 turned out dynamic only" in summary


def check_ci_holds_for_the_real_change_alone(live: Path) -> None:
    """`ci --recapture 2` on the whole report: the clock beside the changed button is dynamic,
    the button's new text still holds the release, and nothing else does."""
    result = CliRunner().invoke(app, ["ci", str(live / "backstop_data"), "--no-approve", "--recapture", "2",
                                      "--parallel", "1"])
    assert result.exit_code == 3, result.output
    out = live / "backstop_data" / "reviewer"
    got = pairs(out)
    assert len(got) == 12
    for p in got:
        if p["label"] in DYNAMIC:
            check_dynamic_pair(p)
        else:
            kinds = [r["kind"] for r in p["regions"]]
            assert p["verdict"] == "changed" and p["recapture"]["status"] == "dynamic", p["recapture"]
            assert "dynamic" in kinds and "content" in kinds
    decision = json.loads((out / "review.json").read_text())["decision"]
    assert decision["action"] == "hold" and "Mixed" in decision["reasons"][0]
    assert not any(label in decision["reasons"][0] for label in DYNAMIC)
    summary = (out / "summary.md").read_text()
    assert "### Re-capture (12 pair(s); 10 turned out dynamic only, 0 not re-captured)" in summary
    assert "re-capture: Clock [phone]: noise" in result.output


def check_page(out: Path) -> None:
    """The review page says what re-capture did and boxes the areas that moved."""
    clock = next(p for p in pairs(out) if p["label"] == "Clock")
    for browser in launch_chromium():
        page, w = open_page(browser, file_url(out / "index.html", f"pair={clock['rank']}"))
        note = page.text_content("#recapture summary") or ""
        assert note.startswith("Re-capture: noise") and "2 captures" in note
        assert "lined up with the" in (page.text_content("#recapture") or "")
        assert page.locator(".pane .box.recap").count() >= 1  # the area that moved, in its own colour
        assert w.page_errors == [] and w.console_errors == [] and w.network() == []
