"""BackstopJS's puppeteer engine, replayed through Playwright: screenshots that line up with the report's.

BackstopJS 6.3 (`core/util/runPuppet.js`, puppeteer 22) launches Chromium with puppeteer's
flags, sets the viewport with `Emulation.setDeviceMetricsOverride`, opens the URL, waits
(readyEvent, readySelector, delay), removes elements, runs the onReady script (hover, click,
scroll), hides elements, then captures: the full page, the viewport, then each selector after
enlarging the viewport to the body. This module does the same steps in the same order, and
sends Chromium the same DevTools commands for everything that decides pixels: emulation,
mouse events, scrolling and `Page.captureScreenshot` (with puppeteer's clip, rounded and cut
as `reviewer.geometry` says). Playwright only launches the browser, navigates and waits.

Why not Playwright's own screenshots: they size full pages and round element boxes
differently (see reviewer.geometry), and a Playwright-launched browser differs from
puppeteer's: other default flags (a no-hover pointer emulation, a different screenshot
surface), a context viewport with a landscape screen. So Chromium is launched with
puppeteer's flags (`puppeteer_args`), the page gets no Playwright viewport, and the emulation
comes from the same DevTools session that takes the screenshots, as in puppeteer.

I/O lives here; every decision about geometry is a pure function in reviewer.geometry.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from reviewer.errors import ReviewerError
from reviewer.geometry import Rect, clickable_point, intersect, round_clip, selector_viewport
from reviewer.imaging.decode import to_rgb
from reviewer.scenarios import EXPANDED, EngineSettings, Scenario, expansion_bases

Img = NDArray[np.uint8]

DEFAULT_BROWSER = "/usr/bin/chromium"
PAGE_SELECTORS = ("document", "viewport", "body")
WAIT_FOR_SELECTOR_MS = 30_000  # puppeteer's default timeout for waitForSelector (hover, click, scroll)

# Puppeteer 22.15's default Chromium flags (ChromeLauncher.defaultArgs), which BackstopJS
# 6.3.25 launches with; `engineOptions.args` are added after them.
PUPPETEER_FLAGS = (
    "--allow-pre-commit-input", "--disable-background-networking", "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows", "--disable-breakpad", "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages", "--disable-component-update",
    "--disable-default-apps", "--disable-dev-shm-usage", "--disable-extensions", "--disable-hang-monitor",
    "--disable-infobars", "--disable-ipc-flooding-protection", "--disable-popup-blocking",
    "--disable-prompt-on-repost", "--disable-renderer-backgrounding", "--disable-search-engine-choice-screen",
    "--disable-sync", "--enable-automation", "--export-tagged-pdf", "--generate-pdf-document-outline",
    "--force-color-profile=srgb", "--metrics-recording-only", "--no-first-run", "--password-store=basic",
    "--use-mock-keychain",
)
PUPPETEER_DISABLED_FEATURES = ("Translate", "AcceptCHFrame", "MediaRouter", "OptimizationHints",
                               "ProcessPerSiteUpToMainFrameThreshold", "IsolateSandboxedIframes")
PUPPETEER_ENABLED_FEATURES = ("PdfOopif",)
# Flags a config may carry that would take the browser away from us (Playwright drives it over
# a pipe, with a profile of its own)...
_MANAGED = ("--remote-debugging-", "--user-data-dir", "--no-startup-window")
# ...or that make Chromium run another program or load code: backstop.json is data here, and a
# report's folder is not trusted to start programs (BackstopJS would; re-capture does not).
_UNSAFE = ("--renderer-cmd-prefix", "--utility-cmd-prefix", "--gpu-launcher", "--browser-subprocess-path",
           "--plugin-launcher", "--ppapi-plugin-launcher", "--zygote-cmd-prefix", "--load-extension",
           "--disable-extensions-except", "--register-pepper-plugins", "--ppapi-flash-path")


def split_flags(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(flags replayed, flags left out) of engineOptions.args: only `--switch` flags that
    neither take the browser from Playwright nor start other programs."""
    keep: list[str] = []
    drop: list[str] = []
    for a in args:
        name = a.split("=", 1)[0]
        ok = a.startswith("-") and not a.startswith(_MANAGED) and name not in _UNSAFE
        (keep if ok else drop).append(a)
    return keep, drop


class CaptureError(ReviewerError):
    """One scenario could not be replayed (page unreachable, selector missing, ...)."""


def puppeteer_args(settings: EngineSettings, user_data_dir: Path) -> list[str]:
    """Chromium's command line as puppeteer builds it for BackstopJS: its defaults, the headless
    flags, then the config's own flags, with --disable-features/--enable-features merged into
    puppeteer's lists as puppeteer merges them. Plus what Playwright needs to drive it."""
    user, _dropped = split_flags(settings.args)
    disabled = list(PUPPETEER_DISABLED_FEATURES) + _features(user, "--disable-features")
    enabled = list(PUPPETEER_ENABLED_FEATURES) + _features(user, "--enable-features")
    user = [a for a in user if not a.startswith(("--disable-features", "--enable-features"))]
    headless = "--headless" if settings.headless == "shell" else "--headless=new"
    # As root Chromium does not start without --no-sandbox, so BackstopJS had it if it ran as
    # root; without a backstop.json to say so it is added here (the sandbox changes no pixel).
    root = ["--no-sandbox"] if _is_root() and "--no-sandbox" not in user else []
    return [*PUPPETEER_FLAGS, f"--disable-features={','.join(disabled)}", f"--enable-features={','.join(enabled)}",
            headless, "--hide-scrollbars", "--mute-audio", *user, *root,
            "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}", "--no-startup-window"]


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _features(args: Sequence[str], flag: str) -> list[str]:
    out: list[str] = []
    for a in args:
        if a.startswith(flag + "="):
            out += [f.strip() for f in a.split("=", 1)[1].split(",") if f.strip()]
    return out


@dataclass(frozen=True)
class Job:
    """One scenario at one viewport, as BackstopJS captured it: every selector of the scenario
    (in the report's order: a capture can change the viewport for the ones after it)."""

    url: str
    viewport: tuple[int, int]
    scenario: Scenario
    selectors: tuple[str, ...]
    cookies: tuple[dict[str, Any], ...] = ()  # from cookiePath, already read


@dataclass(frozen=True)
class Shot:
    """One selector's capture: the image and where its top-left lies on the page (document
    coordinates), or why there is none."""

    selector: str
    image: Img | None = None
    origin: tuple[int, int] = (0, 0)
    problem: str | None = None


@dataclass
class Replay:
    """The captures of one replay of a scenario, with its page still open for questions."""

    shots: dict[str, Shot]
    page: Any
    cdp: Any
    notes: list[str] = field(default_factory=list)

    def evaluate(self, js: str, arg: Any) -> Any:
        return _evaluate(self.cdp, js, arg)


# ---------------------------------------------------------------- JavaScript run in the page

# Element geometry as puppeteer's ElementHandle.boundingBox() reads it: null when the element
# does not exist, "hidden" when it has no layout box (display: none), "invalid" for a selector
# querySelector refuses, else the client rect.
_BOX_JS = """(sel) => {
  let e;
  try { e = sel === 'body' ? document.body : document.querySelector(sel); } catch (err) { return 'invalid'; }
  if (!e) return null;
  if (e.getClientRects().length === 0) return 'hidden';
  const r = e.getBoundingClientRect();
  return [r.x, r.y, r.width, r.height];
}"""
_CLIENT_RECTS_JS = """(sel) => {
  const e = document.querySelector(sel);
  if (!e) return null;
  return {rects: [...e.getClientRects()].map(r => [r.x, r.y, r.width, r.height]),
          doc: [document.documentElement.clientWidth, document.documentElement.clientHeight]};
}"""
# Fully inside the viewport? Asked the way puppeteer asks before scrolling (an intersection
# observer's ratio; an SVG child is judged by its <svg>).
_FULLY_VISIBLE_JS = """(sel) => new Promise(resolve => {
  let e = document.querySelector(sel);
  if (e instanceof SVGElement && !(e instanceof SVGSVGElement) && e.ownerSVGElement) e = e.ownerSVGElement;
  const o = new IntersectionObserver(entries => { resolve(entries[0].intersectionRatio === 1); o.disconnect(); });
  o.observe(e);
})"""
_VISUAL_VIEWPORT_JS = """() => { const v = window.visualViewport;
  return [v.pageLeft, v.pageTop, v.width, v.height]; }"""
_SCROLL_JS = "() => [window.scrollX, window.scrollY]"
# BackstopJS's removeSelectors and hideSelectors, with exactly its styles: removal replaces the
# inline style (and tags the element, which selector expansion skips); hiding sets one property
# without !important, so a stylesheet rule with !important still wins, as it did for BackstopJS.
_REMOVE_JS = """(sel) => document.querySelectorAll(sel).forEach(e => {
  e.style.cssText = 'display: none !important;'; e.classList.add('__86d'); })"""
_HIDE_JS = "(sel) => document.querySelectorAll(sel).forEach(e => { e.style.visibility = 'hidden'; })"
_SCROLL_TO_JS = "(sel) => document.querySelector(sel).scrollIntoView()"
_FOCUS_JS = "(sel) => document.querySelector(sel).focus()"
# BackstopJS's selectorExpansion: the 2nd, 3rd... match of a selector get a class `__n<k>` so that
# `sel.__n<k>` names them; removed elements are skipped.
_EXPAND_JS = """(sels) => { for (const sel of sels) {
  let k = 0;
  for (const e of document.querySelectorAll(sel)) {
    if (k > 0 && !e.classList.contains('__86d')) e.classList.add('__n' + k);
    k++;
  } } }"""


def _evaluate(cdp: Any, js: str, arg: Any = None) -> Any:
    """Run `js` (a function of one JSON argument) in the page's main world through the DevTools
    session; a thrown error becomes a CaptureError with the page's message."""
    expression = f"({js})({json.dumps(arg)})"
    res = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
    if res.get("exceptionDetails"):
        details = res["exceptionDetails"]
        text = (details.get("exception") or {}).get("description") or details.get("text") or "error"
        raise CaptureError(f"the page's script failed: {str(text).splitlines()[0]}")
    return (res.get("result") or {}).get("value")


def _object_id(cdp: Any, sel: str) -> str:
    res = cdp.send("Runtime.evaluate", {"expression": f"document.querySelector({json.dumps(sel)})"})
    oid = (res.get("result") or {}).get("objectId")
    if not oid:
        raise CaptureError(f"selector {sel!r} is not on the page")
    return str(oid)


# ---------------------------------------------------------------- the browser

class Engine:
    """One Chromium, launched as puppeteer launches it, for a whole re-capture run; every
    replay gets a fresh browser context (no cookies, cache or storage from the one before)."""

    def __init__(self, browser: str, settings: EngineSettings, timeout_s: float = 30.0) -> None:
        self.browser_path = browser
        self.settings = settings
        self.timeout_ms = int(timeout_s * 1000)
        self._pw: Any = None
        self._browser: Any = None
        self._profile: Path | None = None

    def __enter__(self) -> Engine:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        if not Path(self.browser_path).exists():
            raise ReviewerError(f"the browser {self.browser_path} does not exist; install Debian's chromium "
                                "(apt-get install chromium) or pass --browser PATH (or set REVIEWER_CHROMIUM)")
        self._profile = Path(tempfile.mkdtemp(prefix="reviewer-chromium-"))
        self._pw = sync_playwright().start()
        try:
            # ignore_default_args=True: none of Playwright's own flags, only puppeteer's.
            self._browser = self._pw.chromium.launch(
                executable_path=self.browser_path, ignore_default_args=True,
                args=puppeteer_args(self.settings, self._profile), timeout=self.timeout_ms)
        except PlaywrightError as exc:
            self.__exit__()
            raise ReviewerError(f"cannot start {self.browser_path} for re-capture ({first_line(exc)}); "
                                "check that it is a Chromium that runs here, or pass another with --browser PATH") \
                from None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
            if self._pw is not None:
                self._pw.stop()
        finally:
            self._browser = self._pw = None
            if self._profile is not None:
                shutil.rmtree(self._profile, ignore_errors=True)

    @property
    def version(self) -> str:
        """The browser's name and version as Chromium reports it, e.g. "Chromium 156.0.8078.114"."""
        return f"Chromium {self._browser.version}" if self._browser is not None else "not started"

    @contextmanager
    def replay(self, job: Job) -> Iterator[Replay]:
        """Replay the scenario once and capture every selector of `job`; the page stays open
        inside the `with` block."""
        from playwright.sync_api import Error as PlaywrightError

        context = self._browser.new_context(no_viewport=True, ignore_https_errors=True)
        try:
            page = context.new_page()
            page.set_default_timeout(self.timeout_ms)
            cdp = context.new_cdp_session(page)
            try:
                shots, notes = _Puppet(page, cdp, self.settings, job, self.timeout_ms).run()
            except PlaywrightError as exc:
                raise CaptureError(first_line(exc)) from None
            yield Replay(shots, page, cdp, notes)
        finally:
            context.close()


def first_line(exc: BaseException) -> str:
    """A Playwright error's first line, without the API call's name."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return re.sub(r"^[A-Za-z]+\.[a-z_]+: ", "", msg)


class _Puppet:
    """The steps of runPuppet.js for one scenario and viewport, on one page."""

    def __init__(self, page: Any, cdp: Any, settings: EngineSettings, job: Job, timeout_ms: int) -> None:
        self.page, self.cdp, self.settings, self.job = page, cdp, settings, job
        self.sc = job.scenario
        self.timeout_ms = timeout_ms
        self.notes: list[str] = []
        self._ready = False

    # -- the steps, in BackstopJS's order
    def run(self) -> tuple[dict[str, Shot], list[str]]:
        self.set_viewport(*self.job.viewport)
        ready = self._ready_matcher()
        if ready is not None:
            self.page.on("console", lambda msg: self._on_console(msg, ready))
        if self.sc.on_before_script and self.job.cookies:
            self.cdp.send("Network.setCookies", {"cookies": list(self.job.cookies)})
        self.navigate()
        if ready is not None:
            self.wait_ready_event()
        if self.sc.ready_selector:
            self.wait_for(self.sc.ready_selector, self.sc.ready_timeout_ms, "readySelector")
        if self.sc.delay_ms:
            self.page.wait_for_timeout(self.sc.delay_ms)
        for sel in self.sc.remove_selectors:
            _evaluate(self.cdp, _REMOVE_JS, sel)
        if self.sc.on_ready_script:
            self.interact()
        for sel in self.sc.hide_selectors:
            _evaluate(self.cdp, _HIDE_JS, sel)
        if self.sc.selector_expansion or any(EXPANDED.search(s) for s in self.job.selectors):
            _evaluate(self.cdp, _EXPAND_JS, list(expansion_bases(self.job.selectors)))
        return self.capture_all(), self.notes

    def set_viewport(self, w: int, h: int) -> None:
        """puppeteer's page.setViewport: the device metrics BackstopJS's Chromium had."""
        self.cdp.send("Emulation.setDeviceMetricsOverride", {
            "mobile": False, "width": w, "height": h, "deviceScaleFactor": 1,
            "screenOrientation": {"angle": 0, "type": "portraitPrimary"}})
        self.cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": False})

    def navigate(self) -> None:
        response = self.page.goto(self.job.url, wait_until=self.sc.wait_until,
                                  timeout=max(self.settings.navigation_timeout_ms, self.timeout_ms))
        if response is not None and response.status >= 400:
            raise CaptureError(f"{self.job.url} answered HTTP {response.status}")

    def _ready_matcher(self) -> re.Pattern[str] | None:
        if not self.sc.ready_event:
            return None
        try:
            return re.compile(self.sc.ready_event)
        except re.error:
            return re.compile(re.escape(self.sc.ready_event))

    def _on_console(self, msg: Any, pattern: re.Pattern[str]) -> None:
        # BackstopJS tests the regex against each console argument's handle as a string,
        # "JSHandle:<value>"; the message's text is that value for the usual one-string log.
        if pattern.search("JSHandle:" + msg.text):
            self._ready = True

    def wait_ready_event(self) -> None:
        """Wait for the readyEvent message up to readyTimeout; like BackstopJS, go on without it."""
        deadline = time.monotonic() + self.sc.ready_timeout_ms / 1000
        while not self._ready and time.monotonic() < deadline:
            self.page.wait_for_timeout(25)
        if not self._ready:
            self.notes.append(f"readyEvent {self.sc.ready_event!r} did not come within {self.sc.ready_timeout_ms} ms "
                              "(BackstopJS goes on without it too)")

    def wait_for(self, sel: str, timeout_ms: int, what: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_selector("css=" + sel, state="attached", timeout=timeout_ms)
        except PlaywrightTimeout:
            raise CaptureError(f"{what} {sel!r} did not appear within {timeout_ms} ms") from None

    def interact(self) -> None:
        """BackstopJS's clickAndHoverHelper, which its default onReady script runs."""
        for sel, text in self.sc.key_presses:
            self.wait_for(sel, WAIT_FOR_SELECTOR_MS, "keyPressSelector")
            _evaluate(self.cdp, _FOCUS_JS, sel)
            self.page.keyboard.type(text)
        for sel in self.sc.hover_selectors:
            self.wait_for(sel, WAIT_FOR_SELECTOR_MS, "hoverSelector")
            self.mouse_move(*self.point(sel))
        for sel in self.sc.click_selectors:
            self.wait_for(sel, WAIT_FOR_SELECTOR_MS, "clickSelector")
            x, y = self.point(sel)
            self.mouse_move(x, y)
            self.mouse_button("mousePressed", x, y, 1)
            self.mouse_button("mouseReleased", x, y, 0)
        if self.sc.post_interaction_wait_ms:
            self.page.wait_for_timeout(self.sc.post_interaction_wait_ms)
        if self.sc.scroll_to_selector:
            self.wait_for(self.sc.scroll_to_selector, WAIT_FOR_SELECTOR_MS, "scrollToSelector")
            _evaluate(self.cdp, _SCROLL_TO_JS, self.sc.scroll_to_selector)

    def scroll_into_view_if_needed(self, sel: str) -> None:
        if not _evaluate(self.cdp, _FULLY_VISIBLE_JS, sel):
            self.cdp.send("DOM.scrollIntoViewIfNeeded", {"objectId": _object_id(self.cdp, sel)})

    def point(self, sel: str) -> tuple[float, float]:
        """puppeteer's hover/click target: scroll the element into view, then its clickable centre."""
        self.scroll_into_view_if_needed(sel)
        got = _evaluate(self.cdp, _CLIENT_RECTS_JS, sel)
        where = clickable_point([Rect(*r) for r in got["rects"]], *got["doc"]) if got else None
        if where is None:
            raise CaptureError(f"{sel!r} cannot be hovered or clicked: it has no visible box")
        return where

    def mouse_move(self, x: float, y: float) -> None:
        self.cdp.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "modifiers": 0, "buttons": 0,
                                                   "button": "none", "x": x, "y": y})

    def mouse_button(self, kind: str, x: float, y: float, buttons: int) -> None:
        self.cdp.send("Input.dispatchMouseEvent", {"type": kind, "modifiers": 0, "clickCount": 1,
                                                   "buttons": buttons, "button": "left", "x": x, "y": y})

    # -- captures
    def capture_all(self) -> dict[str, Shot]:
        """BackstopJS's order: the document (or `body`), the viewport, then the elements."""
        sels = self.job.selectors or ("document",)
        page_sel = [s for s in sels if s in ("document", "body")]
        shots: dict[str, Shot] = {}
        if page_sel:
            sel = page_sel[-1]  # BackstopJS keeps the last of them
            shots[sel] = self.capture_page(sel, full=sel == "document")
        if "viewport" in sels:
            shots["viewport"] = self.capture_page("viewport", full=False)
        for sel in sels:
            if sel not in PAGE_SELECTORS:
                shots[sel] = self.capture_element(sel)
        return shots

    def screenshot(self, clip: Rect | None, beyond: bool) -> Img:
        self.cdp.send("Page.bringToFront")
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": beyond}
        if clip is not None:
            params["clip"] = {"x": clip.x, "y": clip.y, "width": clip.w, "height": clip.h, "scale": 1}
        data = self.cdp.send("Page.captureScreenshot", params)["data"]
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.load()
            return to_rgb(im)

    def capture_page(self, sel: str, *, full: bool) -> Shot:
        """`document`: the full page, sized by Chromium (captureBeyondViewport, no clip), as
        puppeteer 22 does; `viewport` (and `body`): what the viewport shows."""
        sx, sy = _evaluate(self.cdp, _SCROLL_JS)
        img = self.screenshot(None, beyond=full)
        return Shot(sel, img, (0, 0) if full else (int(sx), int(sy)))

    def capture_element(self, sel: str) -> Shot:
        box = _evaluate(self.cdp, _BOX_JS, sel)
        if box is None:
            return Shot(sel, problem=f"selector {sel!r} is not on the page")
        if box == "hidden":
            return Shot(sel, problem=f"selector {sel!r} is not visible on the page")
        if box == "invalid":  # BackstopJS fails on it too (its error image): only this selector
            return Shot(sel, problem=f"selector {sel!r} is not a valid CSS selector")
        first = Rect(*box)
        if self.settings.bounding_box_viewport:
            body = _evaluate(self.cdp, _BOX_JS, "body")
            if not isinstance(body, list):
                raise CaptureError("the page has no visible body to size the viewport by")
            self.set_viewport(*selector_viewport(self.job.viewport, Rect(*body)))
        if self.settings.offscreen_fix:
            # page.screenshot({clip: box}): the box measured before the viewport changed, in
            # viewport coordinates, used as a page clip (as BackstopJS does).
            clip = first
        else:
            # element.screenshot(): scroll it into view, measure again, move to page coordinates.
            self.scroll_into_view_if_needed(sel)
            again = _evaluate(self.cdp, _BOX_JS, sel)
            if not isinstance(again, list) or again[2] == 0 or again[3] == 0:
                return Shot(sel, problem=f"selector {sel!r} has no visible box to capture")
            vx, vy, _vw, _vh = _evaluate(self.cdp, _VISUAL_VIEWPORT_JS)
            clip = Rect(again[0] + vx, again[1] + vy, again[2], again[3])
        if clip.w <= 0 or clip.h <= 0:
            return Shot(sel, problem=f"selector {sel!r} has an empty box")
        clip = intersect(round_clip(clip), Rect(*_evaluate(self.cdp, _VISUAL_VIEWPORT_JS)))
        if clip.w <= 0 or clip.h <= 0:
            return Shot(sel, problem=f"selector {sel!r} lies outside the viewport")
        return Shot(sel, self.screenshot(clip, beyond=False), (int(clip.x), int(clip.y)))
