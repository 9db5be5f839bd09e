"""Re-capture with Playwright: dynamic content becomes noise, real changes stay changed.

The fixture site's v2 is served on 127.0.0.1 and a copy of the fixture report points at it.
`Clock` shows a clock and a random number (identical HTML in both versions): re-capturing it
finds the dynamic area and turns the pair into noise, while Article (one word) and Signup
(a button colour) stay changed, and a page that cannot be reached is left as it was.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import FIXTURE, ROOT, file_url, launch_chromium, needs_chromium, open_page
from PIL import Image
from typer.testing import CliRunner

from reviewer.capture import (
    MASK_DYNAMIC,
    apply_dynamic,
    dynamic_boxes,
    dynamic_mask,
    parse_backstop_config,
    parse_viewport_option,
)
from reviewer.cli import app
from reviewer.config import Settings
from reviewer.errors import UsageError
from reviewer.model import Box, PairAnalysis, Region, RegionKind, Verdict

SITE = ROOT / "fixtures" / "site" / "v2"
FIXTURE_PORT = "127.0.0.1:47650"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch_chromium()



@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """fixtures/site/v2 on 127.0.0.1 (any free port); yields 'host:port'."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(SITE)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report_copy(dest: Path, site: str, labels: set[str], unreachable: set[tuple[str, str]] = frozenset()) -> Path:
    """A copy of the fixture report with only `labels`, URLs pointing at `site`, and the
    (label, viewport) pairs in `unreachable` pointing at a port nobody listens on."""
    root = dest / "backstop_data"
    shutil.copytree(FIXTURE, root)
    config = root / "html_report" / "config.js"
    text = config.read_text()
    data = json.loads(text[text.index("(") + 1: text.rindex(")")])
    dead = closed_port()
    kept = []
    for t in data["tests"]:
        pair = t["pair"]
        if pair["label"] not in labels:
            continue
        where = f"127.0.0.1:{dead}" if (pair["label"], pair["viewportLabel"]) in unreachable else site
        pair["url"] = pair["url"].replace(FIXTURE_PORT, where)
        kept.append(t)
    data["tests"] = kept
    config.write_text("report(" + json.dumps(data) + ");")
    shutil.copy(ROOT / "fixtures" / "backstop.json", dest / "backstop.json")  # the viewports' sizes
    return root


@pytest.fixture(scope="module")
def recaptured(site: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """`reviewer recapture` on Clock, Article and Signup, with Article [desktop] unreachable."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed")
    base = tmp_path_factory.mktemp("recapture")
    source = report_copy(base, site, {"Clock", "Article", "Signup"}, {("Article", "desktop")})
    out = base / "out"
    result = CliRunner().invoke(app, ["recapture", str(source), "--runs", "2", "--out", str(out), "--parallel", "1"])
    return out, result.output, result.exit_code


def pairs_by_name(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads((out / "review.json").read_text())
    return {(p["label"], p["viewport"]): p for p in data["pairs"]}


@pytest.mark.slow
@pytest.mark.browser
def test_dynamic_content_becomes_noise_and_real_changes_stay_changed(recaptured):
    out, output, code = recaptured
    pairs = pairs_by_name(out)
    for vp in ("phone", "desktop"):
        clock = pairs[("Clock", vp)]
        assert clock["verdict"] == "noise", clock["reason"]
        assert {r["kind"] for r in clock["regions"]} == {"dynamic"}  # the clock's digits, one or more
        assert all("captures of the same build" in r["why"] for r in clock["regions"])
        assert f"Clock [{vp}]: noise" in output
    for key in (("Signup", "phone"), ("Signup", "desktop"), ("Article", "phone")):
        assert pairs[key]["verdict"] == "changed"
        assert all(r["kind"] != "dynamic" for r in pairs[key]["regions"])
    data = json.loads((out / "review.json").read_text())
    assert data["counts"] == {"changed": 4, "error": 0, "noise": 2, "unchanged": 0}
    assert data["decision"]["action"] == "hold" and "Clock" not in data["decision"]["reasons"][0]
    assert [p["label"] for p in data["pairs"]][-2:] == ["Clock", "Clock"]  # re-ranked below the changes
    assert code == 3


@pytest.mark.slow
@pytest.mark.browser
def test_an_unreachable_page_leaves_its_pair_as_it_was_and_says_so(recaptured, fixture_review):
    out, output, _code = recaptured
    article = pairs_by_name(out)[("Article", "desktop")]
    original = next(rp for rp in fixture_review[0].ranked if rp.pair.label == "Article" and
                    rp.pair.viewport == "desktop")
    assert article["verdict"] == "changed" and article["reason"] == original.analysis.reason
    assert [(r["x"], r["y"], r["kind"]) for r in article["regions"]] == \
        [(r.box.x, r.box.y, r.kind.value) for r in original.analysis.regions]
    warnings = json.loads((out / "review.json").read_text())["report"]["warnings"]
    assert any(w.startswith("re-capture: Article [desktop]") and "could not be captured" in w and "left as it was" in w
               for w in warnings), warnings
    assert "Article [desktop]: failed" in output


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_and_the_heat_map_show_the_dynamic_region(recaptured, chromium):
    out, _output, _code = recaptured
    data = json.loads((out / "review.json").read_text())
    clock = next(p for p in data["pairs"] if p["label"] == "Clock")
    mask = np.asarray(Image.open(out / clock["images"]["mask"]))
    assert (mask == MASK_DYNAMIC).any()  # painted violet, no longer red
    page, w = open_page(chromium, file_url(out / "index.html", f"pair={clock['rank']}&view=heat"))
    assert page.text_content("#pair-title") == "Clock"
    assert "dynamic" in page.text_content('.region[data-k="0"]')
    assert page.eval_on_selector('.pane .box[data-k="0"]', "e => e.classList.contains('dynamic')")
    assert "only dynamic content" in page.text_content("#our-verdict")
    assert w.page_errors == [] and w.console_errors == [] and w.network() == []


@pytest.mark.slow
@pytest.mark.browser
def test_analyze_recapture_turns_a_dynamic_only_report_into_approve(site, tmp_path):
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed")
    source = report_copy(tmp_path, site, {"Clock", "Home"})
    out = tmp_path / "out"
    before = CliRunner().invoke(app, ["analyze", str(source), "--out", str(out), "--quiet"])
    assert before.exit_code == 3  # BackstopJS passed it, a pixel-exact review holds it
    after = CliRunner().invoke(app, ["analyze", str(source), "--out", str(out), "--recapture", "2", "--parallel", "1"])
    assert after.exit_code == 0, after.output
    assert "Decision: APPROVE" in after.output


# -- the pure parts -----------------------------------------------------------------------------------

def _region(x: int, y: int, w: int, h: int, kind: RegionKind = RegionKind.CONTENT) -> Region:
    return Region(Box(x, y, w, h), kind, w * h // 4, 40.0, 0.5, significant=True, why="outlines differ")


def _analysis(*regions: Region) -> PairAnalysis:
    return PairAnalysis(Verdict.CHANGED, f"{len(regions)} changed region(s)", regions, (200, 300), (200, 300),
                        sum(r.pixels for r in regions), {"invisible": 7})


def test_a_pair_whose_changes_are_all_dynamic_becomes_noise():
    dyn = dynamic_mask([Box(10, 10, 60, 30)], (300, 200))
    result = apply_dynamic(_analysis(_region(20, 15, 30, 10)), dyn, None, 3)
    assert result.verdict is Verdict.NOISE and result.regions[0].kind is RegionKind.DYNAMIC
    assert result.changed_pixels == 0 and result.noise_pixels["dynamic"] == 75
    assert result.noise_pixels["invisible"] == 7 and "dynamic" in result.reason


def test_a_real_change_beside_a_dynamic_one_stays_changed():
    dyn = dynamic_mask([Box(10, 10, 60, 30)], (300, 200))
    mixed = _region(20, 15, 100, 10)  # only partly inside the dynamic area
    other = _region(20, 200, 30, 10)
    result = apply_dynamic(_analysis(_region(20, 15, 30, 10), mixed, other), dyn, None, 3)
    assert [r.kind for r in result.regions] == [RegionKind.DYNAMIC, RegionKind.CONTENT, RegionKind.CONTENT]
    assert result.verdict is Verdict.CHANGED and "1 dynamic region(s) discounted" in result.reason
    # inserted content is layout, never discounted as dynamic
    band = _region(0, 10, 200, 20, RegionKind.INSERTED)
    assert apply_dynamic(_analysis(band), dynamic_mask([Box(0, 0, 200, 300)], (300, 200)), None, 3).verdict \
        is Verdict.CHANGED


def test_changed_pixels_decide_not_the_box():
    dyn = dynamic_mask([Box(0, 0, 50, 20)], (300, 200))
    region = _region(0, 0, 100, 20)  # the box is half outside the dynamic area...
    changed = np.zeros((300, 200), bool)
    changed[5:15, 10:40] = True  # ...but every changed pixel is inside it
    assert apply_dynamic(_analysis(region), dyn, changed, 2).verdict is Verdict.NOISE
    changed[5:15, 80:90] = True  # one changed patch outside: a real change
    assert apply_dynamic(_analysis(region), dyn, changed, 2).verdict is Verdict.CHANGED


def test_dynamic_boxes_between_captures():
    a = np.full((120, 100, 3), 255, np.uint8)
    b = a.copy()
    b[40:52, 30:70] = 0  # a counter changed between two captures of the same build
    assert dynamic_boxes([a, a.copy()], Settings()) == []
    (box,) = dynamic_boxes([a, b], Settings())
    assert (box.x, box.y, box.w, box.h) == (30, 40, 40, 12)
    taller = np.full((150, 100, 3), 255, np.uint8)  # a capture with more rows: those rows are dynamic
    assert Box(0, 120, 100, 30) in dynamic_boxes([a, taller], Settings())


def test_viewport_options_and_the_fixture_config():
    assert parse_viewport_option("phone=320x480") == ("phone", (320, 480))
    for bad in ("phone", "phone=320", "=320x480", "phone=0x480", "phone=axb"):
        with pytest.raises(UsageError):
            parse_viewport_option(bad)
    config = parse_backstop_config(json.loads((ROOT / "fixtures" / "backstop.json").read_text()))
    assert config.viewports == {"phone": (320, 480), "desktop": (800, 600)}
    assert config.scenarios["Search"].ready_selector == ".results-ready"
    assert config.scenarios["Search"].ready_timeout_ms == 2000
    assert config.engine.args[:2] == ("--no-sandbox", "--headless")


def test_only_http_urls_are_captured():
    from reviewer.capture import capturable_url

    assert capturable_url("https://www-dev.greenpeace.org/africa/") and capturable_url("http://127.0.0.1:8080/a")
    for url in ("file:///etc/passwd", "javascript:alert(1)", "chrome://settings", "data:text/html,x", "http://",
                "ftp://example.org/"):
        assert not capturable_url(url), url


@pytest.mark.browser
@needs_chromium
def test_pairs_whose_url_is_not_http_are_left_as_they_were(fixture_review):
    from dataclasses import replace

    from reviewer.capture import recapture_review

    review, _out = fixture_review
    ranked = tuple(replace(rp, pair=replace(rp.pair, url="file:///etc/passwd")) for rp in review.ranked)
    hostile = replace(review, ranked=ranked, report=replace(review.report, pairs=tuple(rp.pair for rp in ranked)))
    new, outcomes = recapture_review(hostile, Settings(), runs=2, viewports={"phone": (320, 480),
                                                                             "desktop": (800, 600)})
    assert len(outcomes) == 12 and {o.status for o in outcomes} == {"failed"}
    assert all("not an http(s) address" in o.message for o in outcomes)
    assert new.counts == review.counts and new.decision == review.decision


def test_a_browser_that_cannot_start_leaves_every_pair_as_it_was(fixture_review):
    from reviewer.capture import recapture_review

    review, _out = fixture_review
    new, outcomes = recapture_review(review, Settings(), runs=2, browser="/nonexistent/chromium",
                                     backstop_config=ROOT / "fixtures" / "backstop.json")
    changed = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.CHANGED]
    assert len(outcomes) == len(changed) and {o.status for o in outcomes} == {"failed"}
    assert all("/nonexistent/chromium does not exist" in o.message and "--browser" in o.message for o in outcomes)
    assert new.counts == review.counts and new.decision == review.decision
    assert set(new.recapture) == {rp.pair.index for rp in changed}


def test_ci_without_a_browser_decides_on_the_analysis_and_says_why(fixture_review, tmp_path, monkeypatch):
    from reviewer.ci import CIEnv, Recapture, run_ci

    source = tmp_path / "backstop_data"
    shutil.copytree(FIXTURE, source)
    outcome = run_ci(source, env=CIEnv.from_env({}), settings=Settings(), client=None, approve=False,
                     recapture=Recapture(2, (ROOT / "fixtures" / "backstop.json",), "/nonexistent/chromium"))
    assert outcome.exit_code == 3 and outcome.review.decision.action == "hold"
    summary = (outcome.out_dir / "summary.md").read_text()
    assert "### Re-capture (12 pair(s); 0 turned out dynamic only, 12 not re-captured)" in summary
    assert "does not exist" in summary


def test_planet4s_config_with_its_sites_pages_is_read_as_backstop_reads_it(tmp_path):
    """Planet 4's real backstop.json, with a site's backstop-pages.json beside it (found and
    merged): the options of its scenarios, and what cannot be replayed, are named."""
    from reviewer.scenarios import find_backstop_config, load_backstop_config

    for name in ("backstop.json", "backstop-pages.json"):
        shutil.copy(ROOT / "fixtures" / "recapture" / "planet4" / name, tmp_path / name)
    (tmp_path / "backstop_data").mkdir()
    files = find_backstop_config(tmp_path / "backstop_data")
    assert [f.name for f in files] == ["backstop.json", "backstop-pages.json"]
    config = load_backstop_config(files)
    assert config.viewports["mobile"] == (350, 490) and len(config.viewports) == 6
    home, explore = config.scenario("Home"), config.scenario("Planet4 GPCH Explore (DE)")
    assert home.remove_selectors == (".page-content",) and home.selectors == ("#header", "#footer")
    assert home.delay_ms == 0  # the top-level "delay": 4000 is not read by BackstopJS
    assert explore.delay_ms == 5000 and explore.hide_selectors == ("#_hj_feedback_container", ".wp-block-embed-youtube")
    assert explore.hover_selectors[0].endswith(".yellow-cta") and "hoverSelector" in explore.replayed()
    notes = explore.script_notes()
    assert any(n.startswith("onBeforeScript planet4/onBefore.js: only its standard step") for n in notes)
    assert any(n.startswith("onReadyScript planet4/onReady.js: only its standard steps") for n in notes)
    assert config.engine.offscreen_fix is False  # set under engineOptions, where BackstopJS 6.3 never reads it
    assert config.engine.args == ("--no-sandbox",) and config.engine.navigation_timeout_ms == 120_000
