"""Re-captures are cut exactly as BackstopJS cuts its screenshots.

The end-to-end test runs the real BackstopJS 6.3.25 (puppeteer 22, Debian's Chromium) on pages
built to trip screenshot geometry (fixtures/recapture/site: a body pulled up by a negative
margin with the hero pulled under the menu, a body with `overflow: clip`, fractional heights
and boxes at fractional positions, a fixed header over a body sized in vh with a footer hanging
below it, a hideSelectors + removeSelectors + cookie + delay scenario, hover, click and
scrollToSelector scenarios, readySelector and readyEvent), at two viewports, once as Planet 4
configures it and once with `puppeteerOffscreenCaptureFix` at the top level. Then reviewer
replays every scenario with Playwright and Chromium, and every capture must be pixel-identical
to BackstopJS's own test image: `document`, `viewport` and selector captures alike. The test
also checks that Playwright's own measurements would have got these pages wrong.

The rest are the pure parts: puppeteer's rounding, the scenario options as BackstopJS reads
them, and lining captures up with a test image of another height.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pytest
from backstop_tool import finish, require_backstop, serving, start, workdir

from reviewer.capture import SizesSeen, browser_notes, browser_path, cookie_params, plan, viewport_size
from reviewer.config import Settings
from reviewer.engine import Engine, puppeteer_args, split_flags
from reviewer.errors import UsageError
from reviewer.geometry import Rect, clickable_point, intersect, js_round, round_clip, selector_viewport
from reviewer.imaging.decode import BACKSTOP_PLACEHOLDERS, load_rgb
from reviewer.lineup import MIN_EQUAL_SHARE, moving_areas, to_capture, to_test, warp
from reviewer.model import Box
from reviewer.scenarios import EngineSettings, parse_backstop_config, timeout_ms

PORTS = range(47670, 47675)  # 47675-47679: tests/test_recapture_live.py
OFFSCREEN_SCENARIOS = ("Menu pulled up", "Fractional", "Fixed header", "Hover")

# -- the real thing ------------------------------------------------------------------------------

# Playwright's full-page height and element box, to show that the pages do trip them.
_PLAYWRIGHT_JS = """(sel) => {
  const b = document.body, d = document.documentElement;
  const full = Math.max(b.scrollHeight, d.scrollHeight, b.offsetHeight, d.offsetHeight, b.clientHeight, d.clientHeight);
  const e = document.querySelector(sel);
  if (!e) return [full, null];
  const r = e.getBoundingClientRect();
  return [full, [Math.floor(r.x + 1e-3), Math.floor(r.y + 1e-3), Math.ceil(r.right - 1e-3),
                 Math.ceil(r.bottom - 1e-3)]];
}"""


@pytest.fixture(scope="module", params=["planet4", "offscreen-fix"])
def replayed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Any]]:
    """`backstop test` on the geometry pages (as Planet 4 configures it, or with the offscreen
    fix at the top level), then every scenario replayed once as `reviewer recapture` replays it.
    No reference run: the test images are what re-captures must equal."""
    from reviewer.analyze import run

    require_backstop()
    variant = request.param
    # The fix changes element captures only: its run needs just the scenarios whose elements sit
    # at fractional positions, under a pulled-up menu, below the body, or far down after a hover.
    fix = variant == "offscreen-fix"
    edit, labels = ({"puppeteerOffscreenCaptureFix": True}, OFFSCREEN_SCENARIOS) if fix else ({}, None)
    settings = Settings()
    with serving(PORTS) as (_site, port):
        folder = workdir(tmp_path_factory.mktemp(variant), "backstop.json", port, edit, labels)
        finish(start(folder, "test"), (1,), f"test ({variant})")  # exit 1: no pair has a reference
        review, _out = run(folder / "backstop_data", folder / "out", settings, use_cache=False)
        config = parse_backstop_config(json.loads((folder / "backstop.json").read_text()), folder / "backstop.json")
        groups = plan(review, config, {}, settings, wanted=lambda rp: True)
        assert groups and [g.problem for g in groups if g.problem] == []
        rows: list[Any] = []
        with Engine("/usr/bin/chromium", config.engine) as engine:
            for g in groups:
                assert g.job is not None
                with engine.replay(g.job) as replay:
                    for rp in g.pairs:
                        sel = rp.pair.selector
                        measured = replay.evaluate(_PLAYWRIGHT_JS, "body" if sel in ("document", "viewport") else sel)
                        rows.append((rp.pair, replay.shots[sel], measured))
    return variant, rows


@pytest.mark.slow
@pytest.mark.browser
def test_every_recapture_is_pixel_identical_to_backstops_test_image(replayed):
    variant, rows = replayed
    assert len(rows) == (46 if variant == "planet4" else 32)
    assert {pair.viewport for pair, _s, _m in rows} == {"phone", "desktop"}
    kinds = {"document": 0, "viewport": 0, "element": 0}
    mismatches, taller, wider = [], [], []
    for pair, shot, (playwright_full, playwright_box) in rows:
        assert pair.test is not None
        placeholder = BACKSTOP_PLACEHOLDERS.get(hashlib.sha256(pair.test.read_bytes()).hexdigest())
        if placeholder or shot.image is None:
            # BackstopJS could not capture it either (the offscreen fix crops the footer hanging
            # below the body to nothing): both must say so, neither may invent an image.
            assert placeholder and shot.image is None and shot.problem, (pair.file, placeholder, shot.problem)
            continue
        test = load_rgb(pair.test)
        h, w = shot.image.shape[:2]
        if shot.image.shape != test.shape or not np.array_equal(shot.image, test):
            mismatches.append(f"{pair.file}: reviewer {w}x{h}, BackstopJS {test.shape[1]}x{test.shape[0]}")
        kind = pair.selector if pair.selector in ("document", "viewport") else "element"
        kinds[kind] += 1
        if kind == "document" and playwright_full != h:
            taller.append(pair.file)
        if kind == "element" and playwright_box and \
                (playwright_box[2] - playwright_box[0], playwright_box[3] - playwright_box[1]) != (w, h):
            wider.append(pair.file)
    assert mismatches == []
    assert kinds == ({"document": 14, "viewport": 10, "element": 22} if variant == "planet4" else
                     {"document": 8, "viewport": 8, "element": 14}), kinds
    # ...and Playwright's own measurements would have missed: the body's negative margin adds 37
    # rows to its full-page height, the body's clipped child 498, and its enclosing boxes are a
    # pixel larger.
    assert any("Menu_pulled_up" in f for f in taller), taller
    assert variant == "offscreen-fix" or any("Overflow_clip" in f for f in taller), taller
    assert any("badge" in f for f in wider) and any("card" in f for f in wider), (variant, wider)


# -- puppeteer's rounding and the viewport for selectors -----------------------------------------

def test_js_round_sends_halves_up_like_math_round():
    assert [js_round(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 136.6, 0.49999999999999994)] == \
        [1, 2, 3, 0, -1, -2, 137, 0]


def test_element_boxes_are_rounded_as_puppeteer_rounds_them():
    # The fixture's badge: 160.4 x 136.6 at (17.5, 61.35). Puppeteer: 160 x 137; Playwright's
    # enclosing box (floor the start, ceil the end) would be 161 x 137.
    assert round_clip(Rect(17.5, 61.35, 160.4, 136.6)) == Rect(18, 61, 160, 137)
    # The box: 160 x 137.4 at y 10.8 -> puppeteer 137 rows, Playwright ceil(148.2) - 10 = 139.
    r = round_clip(Rect(0, 10.8, 160, 137.4))
    assert (r.w, r.h) == (160, 137) and math.ceil(10.8 + 137.4) - math.floor(10.8) == 139
    # the size is rounded from the rounded start: the far edge lands where rounding it would
    assert round_clip(Rect(0.4, 0.4, 10.2, 10.2)) == Rect(0, 0, 11, 11)
    assert round_clip(Rect(10, 10, -4, -6)) == Rect(6, 4, 4, 6)  # negative sizes are flipped first


def test_clips_are_cut_to_the_visual_viewport():
    vv = Rect(0, 300, 360, 600)
    assert intersect(Rect(10, 250, 100, 100), vv) == Rect(10, 300, 100, 50)
    assert intersect(Rect(10, 1000, 100, 100), vv).h == 0  # below it: nothing (BackstopJS errors out)


def test_selector_captures_enlarge_the_viewport_to_the_body():
    assert selector_viewport((360, 600), Rect(0, -37, 360, 1033.2)) == (360, 1034)
    assert selector_viewport((1000, 700), Rect(0, 0, 984, 300)) == (1000, 700)


def test_the_mouse_goes_where_puppeteer_puts_it():
    assert clickable_point([Rect(10, 20, 100, 40)], 360, 600) == (60, 40)
    # a box hanging off the left edge: cut to the client area, centred on what remains
    assert clickable_point([Rect(-20, 20, 100, 40)], 360, 600) == (-20 + 40, 40)
    assert clickable_point([Rect(10, 20, 0.5, 40), Rect(10, 80, 30, 30)], 360, 600) == (25, 95)
    assert clickable_point([Rect(400, 20, 100, 40)], 360, 600) is None


# -- what is replayed: Chromium's flags and the scenario's options --------------------------------

def test_chromium_gets_puppeteers_flags_and_the_configs_own(tmp_path):
    args = puppeteer_args(EngineSettings(args=("--no-sandbox", "--disable-features=Foo", "--remote-debugging-port=9",
                                               "--user-data-dir=/x", "about:blank")), tmp_path)
    assert "--no-sandbox" in args and "--headless=new" in args and "--hide-scrollbars" in args
    disabled = [a for a in args if a.startswith("--disable-features=")]
    assert disabled == ["--disable-features=Translate,AcceptCHFrame,MediaRouter,OptimizationHints,"
                        "ProcessPerSiteUpToMainFrameThreshold,IsolateSandboxedIframes,Foo"]
    assert not any(a.startswith("--blink-settings") for a in args)  # Playwright's no-hover emulation is not there
    assert "--remote-debugging-port=9" not in args and f"--user-data-dir={tmp_path}" in args
    assert "about:blank" not in args and "--remote-debugging-pipe" in args
    assert "--headless" in puppeteer_args(EngineSettings(headless="shell"), tmp_path)


def test_flags_and_files_a_config_could_abuse_are_left_out(tmp_path):
    """backstop.json beside a report is data: it may not make re-capture start another program,
    load an extension, or send a file from elsewhere on this machine to the site as a cookie."""
    kept, dropped = split_flags(["--no-sandbox", "--renderer-cmd-prefix=/bin/sh -c x", "--load-extension=/x",
                                 "--window-size=800,600", "about:blank"])
    assert kept == ["--no-sandbox", "--window-size=800,600"]
    assert dropped == ["--renderer-cmd-prefix=/bin/sh -c x", "--load-extension=/x", "about:blank"]
    assert not any("cmd-prefix" in a for a in puppeteer_args(EngineSettings(args=tuple(dropped)), tmp_path))
    config = parse_backstop_config({"onBeforeScript": "onBefore.js", "scenarios": [
        {"label": "In", "cookiePath": "cookies/c.json"}, {"label": "Out", "cookiePath": "../../etc/c.json"}]},
        tmp_path / "backstop.json")
    assert config.cookie_file(config.scenario("In")) == tmp_path.resolve() / "cookies" / "c.json"
    with pytest.raises(UsageError, match="outside"):
        config.cookie_file(config.scenario("Out"))
    notes = browser_notes("/usr/bin/chromium", parse_backstop_config(
        {"engineOptions": {"executablePath": "/opt/chrome/chrome", "args": ["--gpu-launcher=x"]}}))
    assert "pass --browser /opt/chrome/chrome" in notes[0] and "--gpu-launcher=x" in notes[1]
    assert browser_path(None, {})[1] == "the default"  # never backstop.json's executablePath
    assert browser_path(None, {"REVIEWER_CHROMIUM": "/x/chrome"}) == ("/x/chrome", "$REVIEWER_CHROMIUM")


def test_scenario_options_are_read_with_backstops_precedence(tmp_path):
    config = parse_backstop_config({
        "delay": 4000,  # ignored by BackstopJS at the top level (Planet 4 sets it there)
        "readyEvent": "ready", "onReadyScript": "planet4/onReady.js",
        "scenarioDefaults": {"hideSelectors": [".hj"], "delay": 100},
        "engineOptions": {"puppeteerOffscreenCaptureFix": True, "args": ["--no-sandbox"], "waitTimeout": 240000},
        "viewports": [{"label": "mobile", "width": 350, "height": 490},
                      {"name": "wide", "width": 1500, "height": 1100}],
        "paths": {"engine_scripts": "backstop_data/engine_scripts"},
        "scenarios": [
            {"label": "Explore", "url": "https://x/", "delay": 5000, "hoverSelector": ".cta",
             "removeSelectors": ".page-content", "postInteractionWait": "250", "cookiePath": "c.json",
             "viewports": [{"label": "mobile", "width": 320, "height": 480}]},
            {"label": "Search", "url": "https://x/?s=", "readyEvent": "search ready", "onReadyScript": "",
             "postInteractionWait": ".done", "clickSelectors": [".a", ".b"]},
            {"url": "https://x/no-label"},
        ]}, tmp_path / "backstop.json")
    explore, search = config.scenario("Explore"), config.scenario("Search")
    assert explore.delay_ms == 5000 and search.delay_ms == 100  # scenarioDefaults, never the top level
    assert explore.hide_selectors == (".hj",) and explore.remove_selectors == (".page-content",)
    assert explore.hover_selectors == (".cta",) and explore.post_interaction_wait_ms == 250
    assert explore.ready_event == "ready" and search.ready_event == "search ready"
    assert explore.on_ready_script == "planet4/onReady.js" == search.on_ready_script  # "" falls back, as in JS
    assert search.click_selectors == (".a", ".b") and search.post_interaction_wait_ms == 0
    assert explore.viewports == {"mobile": (320, 480)} and config.viewports == {"mobile": (350, 490),
                                                                                "wide": (1500, 1100)}
    assert config.cookie_file(explore) == tmp_path.resolve() / "c.json"
    assert config.engine.offscreen_fix is False  # BackstopJS 6.3 reads it at the top level only
    assert config.engine.args == ("--no-sandbox",) and config.engine.navigation_timeout_ms == 120_000
    assert config.problems == ("scenario 3 has no label: skipped",)
    assert "hoverSelector" in explore.replayed() and "cookiePath" not in explore.replayed()  # no onBeforeScript
    assert any("only its standard steps" in n for n in explore.script_notes())
    assert timeout_ms("500") == 500 and timeout_ms(".selector") == 0 and timeout_ms(-3) == 0
    assert parse_backstop_config({"puppeteerOffscreenCaptureFix": True}).engine.offscreen_fix


def test_cookies_become_devtools_cookie_params_as_backstop_sets_them():
    params = cookie_params([
        {"domain": ".www.example.org", "path": "/", "name": "consent", "value": "yes", "expirationDate": 1798790400,
         "hostOnly": False, "sameSite": "Lax"},
        {"domain": "http://127.0.0.1:8080", "name": "n", "value": 1},
        {"name": "no domain"}, "junk"])
    assert params == ({"url": "https://.www.example.org", "name": "consent", "value": "yes", "path": "/",
                       "sameSite": "Lax"},
                      {"url": "http://127.0.0.1:8080", "name": "n", "value": "1"})


def test_the_viewport_comes_from_the_option_the_report_or_backstop_json():
    config = parse_backstop_config({"viewports": [{"label": "phone", "width": 320, "height": 480}],
                                    "scenarios": [{"label": "Own", "viewports": [
                                        {"label": "phone", "width": 300, "height": 400}]}]})
    s = Settings()
    assert viewport_size("Home", "phone", config, {"phone": (1, 2)}, SizesSeen((360, 600)), s)[:2] == (1, 2)
    assert viewport_size("Home", "phone", config, {}, SizesSeen((360, 600)), s)[:2] == (360, 600)
    assert viewport_size("Own", "phone", config, {}, SizesSeen(), s)[:2] == (300, 400)
    assert viewport_size("Home", "phone", config, {}, SizesSeen(), s)[:2] == (320, 480)
    w, h, how = viewport_size("Home", "tablet", config, {}, SizesSeen(page_width=768), s)
    assert (w, h) == (768, s.first_screen("tablet")) and "guess" in how
    with pytest.raises(UsageError, match="--viewport tablet="):
        viewport_size("Home", "tablet", config, {}, SizesSeen(), s)


# -- lining captures up with a test image of another height ----------------------------------------

def _page(rows: list[int], width: int = 40) -> np.ndarray:
    """An image whose row i is a flat grey `rows[i]` with a distinctive pattern (rows hash apart)."""
    img = np.zeros((len(rows), width, 3), np.uint8)
    for i, v in enumerate(rows):
        img[i] = v
        img[i, v % width] = 255 - v
    return img


def test_a_capture_of_the_test_images_size_lines_up_in_place():
    test = _page(list(range(100)))
    w = warp(test.copy(), test)
    assert not isinstance(w, str) and w.same_size and w.valid.all() and w.equal_share == 1.0


def test_a_taller_capture_is_lined_up_row_by_row():
    test = _page(list(range(100)))
    capture = _page(list(range(30)) + [200 + i for i in range(12)] + list(range(30, 100)))  # a banner added
    w = warp(capture, test)
    assert not isinstance(w, str) and not w.same_size
    assert w.valid.all() and np.array_equal(w.image, test)  # every test row found, the banner left out
    box, seg = to_capture(Box(5, 50, 10, 4), w)  # below the banner: 12 rows further down in the capture
    assert box == Box(5, 62, 10, 4) and to_test(Box(0, 60, 40, 8), seg) == Box(0, 48, 40, 8)
    assert to_capture(Box(0, 25, 10, 10), w) is None or to_capture(Box(0, 25, 10, 10), w)[0].y == 25


def test_areas_that_moved_between_captures_are_placed_on_the_test_image():
    base = list(range(100))
    test = _page(base)
    a = _page(base[:40] + [150] * 6 + base[40:])  # a slide 6 rows tall above row 40...
    b = _page(base[:40] + [160] * 9 + base[40:])  # ...and 9 rows tall in the next capture
    b[80 + 9, 5:9] = 255  # a counter further down (test row 80) that differs between them
    wa, wb = warp(a, test), warp(b, test)
    assert not isinstance(wa, str) and not isinstance(wb, str)
    areas = moving_areas([wa, wb], Settings())
    # the counter, at its test-image row; the slides have no rows in the test image at all
    assert any(box.y <= 80 < box.y2 and box.x <= 5 for box in areas), areas


def test_a_page_that_no_longer_looks_like_its_test_image_is_refused():
    test = _page(list(range(100)))
    other = _page([(i * 7 + 3) % 256 for i in range(130)])
    why = warp(other, test)
    assert isinstance(why, str) and f"at least {MIN_EQUAL_SHARE:.0%}" in why and "130" in why
    narrow = warp(_page(list(range(100)), width=30), test)
    assert isinstance(narrow, str) and "30 px wide" in narrow


def test_a_capture_of_the_same_size_whose_content_was_pushed_is_not_compared_in_place():
    """A banner added above since BackstopJS ran, the end cut off: same size, every row moved.
    Placing areas found in it at the same rows of the test image would put them on other content."""
    test = _page(list(range(200)))
    capture = _page([230 + i % 20 for i in range(20)] + list(range(180)))
    w = warp(capture, test)
    assert not isinstance(w, str) and not w.same_size
    assert w.valid[:180].all() and not w.valid[180:].any() and round(w.equal_share, 2) == 0.9
    placed = to_capture(Box(3, 100, 10, 5), w)
    assert placed is not None and placed[0] == Box(3, 120, 10, 5)
