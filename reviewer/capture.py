"""Re-capture changed pairs with Playwright to tell dynamic content from real changes.

A clock, a visitor counter, a carousel or a random banner differs between any two captures,
so BackstopJS reports it as a change on every release. For each *changed* pair we capture the
pair's test URL again, N times, at the pair's viewport and with the same selector BackstopJS
shot, each time in a fresh browser context. What differs between those captures of one build
is dynamic. Each dynamic area is widened to the page element that holds it (the whole clock,
not just the digits that happened to change between our captures) when that element is not
much larger. A changed region of the original analysis becomes kind `dynamic` (a noise kind)
when nearly all of its changed pixels lie in dynamic areas; a pair whose significant regions
are all dynamic becomes noise. Then the review is re-ranked and re-decided.

Fails closed: a page that cannot be reached, a selector that is not found, or a capture whose
size does not match the report's test image leaves the pair exactly as it was, and says why.

    recapture_review(review, settings, runs=3)   ->  (Review, outcomes)     (no files written)
    recapture_outputs(review, out_dir, settings)  ->  (Review, outcomes)     (rewrites the outputs)
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from reviewer.config import Settings
from reviewer.errors import ReviewerError, UsageError
from reviewer.imaging.compare import MASK_CHANGED, compare_images
from reviewer.imaging.decode import to_rgb
from reviewer.imaging.verdict import noise_counts, verdict_of
from reviewer.model import Box, Pair, PairAnalysis, Region, RegionKind, Review, Verdict

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
)
DEFAULT_RUNS = 3
DEFAULT_TIMEOUT_S = 30.0
# A dynamic area grows to the element that holds it only when that element is at most this
# many times larger: a clock's digits grow to the clock, never to the whole page.
MAX_GROW = 25
# ...or when the element is small whatever the ratio: between two captures a second apart only
# a clock's milliseconds may differ (a box 51x smaller than the clock), yet the whole clock is
# dynamic. 40,000 px² is a 200x200 widget.
SMALL_ELEMENT_AREA = 40_000
# A region is dynamic when at least this share of its changed pixels lies in dynamic areas.
DYNAMIC_SHARE = 0.9
DYNAMIC_PAD = 2
MASK_DYNAMIC = 4  # extra palette entry in mask.png for regions found dynamic (violet)

Img = NDArray[np.uint8]


class CaptureError(ReviewerError):
    """One capture failed (page unreachable, selector missing, ...): the pair stays as it was."""


@dataclass(frozen=True)
class Outcome:
    """What re-capture did to one pair."""

    index: int  # Pair.index
    label: str
    viewport: str
    status: str  # "dynamic" (some regions), "noise" (pair re-classified), "stable", "failed", "skipped"
    message: str
    dynamic: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """The BackstopJS scenario options we can replay (from backstop.json, when it is found)."""

    ready_selector: str | None = None
    ready_timeout_ms: int = 30_000
    delay_ms: int = 0
    hide_selectors: tuple[str, ...] = ()
    remove_selectors: tuple[str, ...] = ()
    not_replayed: tuple[str, ...] = ()  # options we cannot reproduce (scripts), named in the message


@dataclass(frozen=True)
class BackstopConfig:
    viewports: dict[str, tuple[int, int]]
    scenarios: dict[str, Scenario]
    path: Path | None = None


# ---------------------------------------------------------------- backstop.json

def find_backstop_config(root: Path) -> Path | None:
    """backstop.json next to the report: in backstop_data's folder or up to two levels above."""
    for d in (root, root.parent, root.parent.parent):
        p = d / "backstop.json"
        if p.is_file():
            return p
    return None


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else default


def parse_backstop_config(data: Any, path: Path | None = None) -> BackstopConfig:
    """Viewports and scenario options from a parsed backstop.json; anything odd is skipped."""
    viewports: dict[str, tuple[int, int]] = {}
    scenarios: dict[str, Scenario] = {}
    if not isinstance(data, dict):
        return BackstopConfig(viewports, scenarios, path)
    for vp in data.get("viewports") or []:
        if isinstance(vp, dict):
            label = vp.get("label") or vp.get("name")
            w, h = _int(vp.get("width"), 0), _int(vp.get("height"), 0)
            if isinstance(label, str) and w > 0 and h > 0:
                viewports[label] = (w, h)
    for sc in data.get("scenarios") or []:
        if not isinstance(sc, dict) or not isinstance(sc.get("label"), str):
            continue
        ready = sc.get("readySelector")
        scenarios[sc["label"]] = Scenario(
            ready_selector=ready if isinstance(ready, str) and ready else None,
            ready_timeout_ms=_int(sc.get("readyTimeout"), 30_000),
            delay_ms=min(_int(sc.get("delay"), 0), 60_000),
            hide_selectors=_strs(sc.get("hideSelectors")),
            remove_selectors=_strs(sc.get("removeSelectors")),
            not_replayed=tuple(k for k in ("onReadyScript", "onBeforeScript", "clickSelector", "clickSelectors",
                                           "hoverSelector", "hoverSelectors", "keyPressSelectors", "cookiePath")
                               if sc.get(k)),
        )
    return BackstopConfig(viewports, scenarios, path)


def load_backstop_config(path: Path | None) -> BackstopConfig:
    if path is None:
        return BackstopConfig({}, {})
    try:
        return parse_backstop_config(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}; pass --viewport LABEL=WxH instead") from None


def parse_viewport_option(text: str) -> tuple[str, tuple[int, int]]:
    """'phone=320x480' -> ('phone', (320, 480))."""
    label, sep, size = text.partition("=")
    w, x, h = size.lower().partition("x")
    if not sep or not x or not label or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise UsageError(f"--viewport {text!r}: expected LABEL=WIDTHxHEIGHT, e.g. phone=320x480")
    return label, (int(w), int(h))


def viewport_size(pair: Pair, analysis: PairAnalysis, config: BackstopConfig,
                  overrides: dict[str, tuple[int, int]], settings: Settings) -> tuple[int, int, str]:
    """(width, height, where it came from) for a pair's viewport label."""
    if pair.viewport in overrides:
        w, h = overrides[pair.viewport]
        return w, h, "--viewport"
    if pair.viewport in config.viewports:
        w, h = config.viewports[pair.viewport]
        return w, h, "backstop.json"
    if analysis.test_size and pair.selector in ("document", "viewport"):
        # A full-page screenshot is as wide as the viewport; the height only matters for
        # layouts in vh units, and the first-screen height is the best guess there is.
        return analysis.test_size[0], settings.first_screen(pair.viewport), "test image width"
    raise UsageError(f"the size of viewport {pair.viewport!r} is unknown (no backstop.json next to the report); "
                     f"pass --viewport {pair.viewport}=WIDTHxHEIGHT")


# ---------------------------------------------------------------- the browser

def chromium_path() -> str | None:
    """Playwright's own Chromium when it is installed, else Debian's (`REVIEWER_CHROMIUM` wins)."""
    env = os.environ.get("REVIEWER_CHROMIUM")
    if env:
        return env
    return CHROMIUM if Path(CHROMIUM).exists() else None


def capturable_url(url: str) -> bool:
    """Only http(s) pages are re-captured: a report's URL is untrusted (no file:, javascript:, chrome:)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_ELEMENT_BOXES_JS = """
([boxes, origin, maxGrow, smallArea]) => {
  const sx = window.scrollX, sy = window.scrollY;
  const rects = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) rects.push([r.left + sx, r.top + sy, r.width, r.height]);
  }
  return boxes.map(([x, y, w, h]) => {
    const bx = x + origin[0], by = y + origin[1];
    let best = null, bestArea = Infinity;
    for (const r of rects) {
      if (r[0] <= bx + 1 && r[1] <= by + 1 && r[0] + r[2] >= bx + w - 1 && r[1] + r[3] >= by + h - 1) {
        const a = r[2] * r[3];
        if (a < bestArea) { best = r; bestArea = a; }
      }
    }
    if (!best || (bestArea > maxGrow * Math.max(1, w * h) && bestArea > smallArea)) return [x, y, w, h];
    return [Math.floor(best[0] - origin[0]), Math.floor(best[1] - origin[1]), Math.ceil(best[2]), Math.ceil(best[3])];
  });
}
"""


class Capturer:
    """One headless Chromium for a whole re-capture run; a fresh context for every capture."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_ms = int(timeout_s * 1000)
        self._pw: Any = None
        self._browser: Any = None

    def __enter__(self) -> Capturer:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        except PlaywrightError as exc:
            self._pw.stop()
            raise ReviewerError(
                f"cannot start Chromium for re-capture ({str(exc).splitlines()[0]}); install Debian's chromium "
                f"(apt-get install chromium) or set REVIEWER_CHROMIUM to a Chromium binary"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._pw is not None:
                self._pw.stop()

    @contextmanager
    def _page(self, width: int, height: int) -> Iterator[Any]:
        context = self._browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1,
                                            service_workers="block", accept_downloads=False)
        try:
            page = context.new_page()
            page.set_default_timeout(self.timeout_ms)
            yield page
        finally:
            context.close()

    def capture(self, url: str, size: tuple[int, int], selector: str, scenario: Scenario, runs: int,
                settings: Settings) -> tuple[list[Img], list[Box]]:
        """Capture `runs` times; return the captures and the dynamic areas between them, each
        widened to the page element that holds it (evaluated on the last page loaded)."""
        from playwright.sync_api import Error as PlaywrightError

        if not capturable_url(url):
            raise CaptureError(f"the report's URL {url!r} is not an http(s) address")
        shots: list[Img] = []
        for run in range(runs):
            with self._page(*size) as page:
                try:
                    img, origin = self._capture(page, url, selector, scenario)
                    shots.append(img)
                    if run < runs - 1:
                        continue
                    boxes = dynamic_boxes(shots, settings)
                    grown = self._grow(page, boxes, origin) if boxes else []
                    return shots, list(dict.fromkeys(grown))
                except PlaywrightError as exc:
                    raise CaptureError(_first_line(exc)) from None
        return shots, []

    def _capture(self, page: Any, url: str, selector: str, scenario: Scenario) -> tuple[Img, tuple[int, int]]:
        response = page.goto(url, wait_until="load")
        if response is not None and response.status >= 400:
            raise CaptureError(f"{url} answered HTTP {response.status}")
        if scenario.ready_selector:
            page.wait_for_selector(scenario.ready_selector, timeout=scenario.ready_timeout_ms)
        for sel, prop in [(s, "visibility:hidden") for s in scenario.hide_selectors] + \
                         [(s, "display:none") for s in scenario.remove_selectors]:
            page.evaluate("([s, p]) => document.querySelectorAll(s).forEach(e => e.style.cssText += ';' + p + "
                          "' !important')", [sel, prop])
        if scenario.delay_ms:
            page.wait_for_timeout(scenario.delay_ms)
        if selector in ("document", ""):
            png, origin = page.screenshot(full_page=True, animations="allow"), (0, 0)
        elif selector == "viewport":
            sx, sy = page.evaluate("[window.scrollX, window.scrollY]")
            png, origin = page.screenshot(animations="allow"), (int(sx), int(sy))
        else:
            loc = page.locator(selector).first
            if loc.count() == 0:
                raise CaptureError(f"selector {selector!r} is not on the page")
            loc.scroll_into_view_if_needed()
            box = page.evaluate("(e) => { const r = e.getBoundingClientRect(); "
                                "return [r.left + window.scrollX, r.top + window.scrollY]; }", loc.element_handle())
            png, origin = loc.screenshot(animations="allow"), (int(box[0]), int(box[1]))
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            return to_rgb(im), origin

    @staticmethod
    def _grow(page: Any, boxes: list[Box], origin: tuple[int, int]) -> list[Box]:
        raw = page.evaluate(_ELEMENT_BOXES_JS, [[[b.x, b.y, b.w, b.h] for b in boxes], list(origin), MAX_GROW,
                                                SMALL_ELEMENT_AREA])
        return [Box(max(0, int(x)), max(0, int(y)), max(1, int(w)), max(1, int(h))) for x, y, w, h in raw]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    for prefix in ("Page.goto: ", "Locator.screenshot: ", "Page.wait_for_selector: "):
        msg = msg.removeprefix(prefix)
    return msg


# ---------------------------------------------------------------- pure parts

def dynamic_boxes(captures: Sequence[Img], settings: Settings) -> list[Box]:
    """Areas that differ visibly between captures of the same build, as the analysis's own judge
    sees them. Rows only some captures have are dynamic too."""
    if len(captures) < 2:
        return []
    first = captures[0]
    out: list[Box] = []
    for other in captures[1:]:
        h, w = min(first.shape[0], other.shape[0]), min(first.shape[1], other.shape[1])
        a, b = np.ascontiguousarray(first[:h, :w]), np.ascontiguousarray(other[:h, :w])
        out += [r.box for r in compare_images(a, b, settings).regions if r.significant]
        tall = max(first.shape[0], other.shape[0])
        if tall > h:
            out.append(Box(0, h, max(first.shape[1], other.shape[1]), tall - h))
    return out


def dynamic_mask(boxes: Sequence[Box], shape: tuple[int, int], pad: int = DYNAMIC_PAD) -> NDArray[np.bool_]:
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for b in boxes:
        mask[max(0, b.y - pad): min(h, b.y2 + pad), max(0, b.x - pad): min(w, b.x2 + pad)] = True
    return mask


def region_is_dynamic(region: Region, dyn: NDArray[np.bool_], changed: NDArray[np.bool_] | None) -> bool:
    """Nearly all of the region's changed pixels (its whole box when the mask is unknown) are dynamic."""
    b = region.box
    if b.area == 0 or region.kind in (RegionKind.INSERTED, RegionKind.REMOVED):
        return False  # a band that appeared or vanished is layout, and re-captures cannot vouch for it
    inside = dyn[b.y: b.y2, b.x: b.x2]
    if inside.size < b.area:
        return False  # the region lies (partly) outside the captures
    if changed is not None:
        pix = changed[b.y: b.y2, b.x: b.x2]
        if pix.any():
            return float(inside[pix].mean()) >= DYNAMIC_SHARE
    return float(inside.mean()) >= DYNAMIC_SHARE


def apply_dynamic(analysis: PairAnalysis, dyn: NDArray[np.bool_], changed: NDArray[np.bool_] | None,
                  runs: int) -> PairAnalysis:
    """Mark dynamic regions and re-judge the pair (noise when no significant region is left)."""
    regions: list[Region] = []
    dynamic: list[Region] = []
    for r in analysis.regions:
        if r.significant and region_is_dynamic(r, dyn, changed):
            r = replace(r, kind=RegionKind.DYNAMIC, significant=False,
                        why=f"also differs between {runs} captures of the same build (was {r.kind.value}: {r.why})")
            dynamic.append(r)
        regions.append(r)
    if not dynamic:
        return analysis
    noise = noise_counts(dynamic, analysis.noise_pixels)
    verdict, reason = verdict_of(regions, noise)
    significant = [r for r in regions if r.significant]
    ssims = [r.ssim for r in significant if r.ssim is not None]
    return replace(analysis, verdict=verdict, reason=reason, regions=tuple(regions),
                   changed_pixels=sum(r.pixels for r in significant), noise_pixels=noise,
                   ssim=min(ssims) if ssims else None)


def read_changed_mask(path: Path | None, shape: tuple[int, int]) -> NDArray[np.bool_] | None:
    """The analysis's own changed pixels (mask.png written by analyze), when present and the right size."""
    if path is None or not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            if im.mode != "P" or (im.size[1], im.size[0]) != shape:
                return None
            changed: NDArray[np.bool_] = np.asarray(im) == MASK_CHANGED
            return changed
    except OSError:
        return None


def repaint_mask(path: Path, regions: Sequence[Region]) -> None:
    """Paint dynamic regions' changed pixels violet in mask.png, so the heat map agrees."""
    try:
        with Image.open(path) as im:
            if im.mode != "P":
                return
            arr = np.array(im)
            palette = im.getpalette() or []
    except OSError:
        return
    for r in regions:
        if r.kind is RegionKind.DYNAMIC:
            b = r.box
            sub = arr[b.y: b.y2, b.x: b.x2]
            sub[sub == MASK_CHANGED] = MASK_DYNAMIC
    palette = (palette + [0] * 768)[:768]
    palette[MASK_DYNAMIC * 3: MASK_DYNAMIC * 3 + 3] = [123, 31, 162]
    out = Image.frombytes("P", (arr.shape[1], arr.shape[0]), np.ascontiguousarray(arr).tobytes())
    out.putpalette(palette)
    tmp = path.with_name(path.name + ".part")
    out.save(tmp, format="PNG", transparency=0, compress_level=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the run

Progress = Callable[[Outcome], None]


def recapture_review(review: Review, settings: Settings, *, runs: int = DEFAULT_RUNS,
                     viewports: dict[str, tuple[int, int]] | None = None, backstop_config: Path | None = None,
                     out_dir: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                     progress: Progress | None = None) -> tuple[Review, list[Outcome]]:
    """Re-capture every changed pair; return the re-ranked, re-decided review and what happened
    to each pair. `out_dir` (the analysis's output folder) gives access to the masks."""
    from reviewer.analyze import build_review

    if runs < 2:
        raise UsageError("re-capture needs at least 2 runs to compare captures with each other")
    config = load_backstop_config(backstop_config or find_backstop_config(review.report.root))
    overrides = viewports or {}
    outcomes: list[Outcome] = []
    changed = [rp for rp in review.ranked if rp.analysis.verdict is Verdict.CHANGED]
    new: dict[int, PairAnalysis] = {}

    def capture_all() -> None:
        with Capturer(timeout_s) as cap:
            for rp in changed:
                outcome, analysis = _recapture_pair(cap, rp.pair, rp.analysis, review, settings, config,
                                                    overrides, runs, out_dir)
                outcomes.append(outcome)
                if analysis is not rp.analysis:
                    new[rp.pair.index] = analysis
                if progress:
                    progress(outcome)

    if changed:
        # Playwright's sync API refuses to run where an asyncio loop is running (a notebook, a
        # test that drives a browser itself); a thread of its own always works.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recapture") as pool:
            pool.submit(capture_all).result()
    failed = [o for o in outcomes if o.status == "failed"]
    warnings = tuple(f"re-capture: {o.label} [{o.viewport}]: {o.message}" for o in failed)
    report = replace(review.report, warnings=review.report.warnings + warnings)
    items = [(rp.pair, new.get(rp.pair.index, rp.analysis)) for rp in sorted(review.ranked, key=lambda r: r.pair.index)]
    rebuilt = build_review(report, items, settings, review.assets)
    return rebuilt, outcomes


def _recapture_pair(cap: Capturer, pair: Pair, analysis: PairAnalysis, review: Review, settings: Settings,
                    config: BackstopConfig, overrides: dict[str, tuple[int, int]], runs: int,
                    out_dir: Path | None) -> tuple[Outcome, PairAnalysis]:
    def outcome(status: str, message: str, boxes: Sequence[Box] = ()) -> Outcome:
        return Outcome(pair.index, pair.label, pair.viewport, status, message, tuple(boxes))

    if not pair.url:
        return outcome("skipped", "the report gives no URL for this pair; left as it was"), analysis
    if not analysis.test_size:
        return outcome("skipped", "no test image size to line captures up with; left as it was"), analysis
    try:
        w, h, _how = viewport_size(pair, analysis, config, overrides, settings)
    except UsageError as exc:
        return outcome("failed", f"{exc}; left as it was"), analysis
    scenario = config.scenarios.get(pair.label, Scenario())
    started = time.perf_counter()
    try:
        shots, boxes = cap.capture(pair.url, (w, h), pair.selector, scenario, runs, settings)
    except CaptureError as exc:
        return outcome("failed", f"{pair.url} could not be captured ({exc}); left as it was"), analysis
    seconds = time.perf_counter() - started
    tw, th = analysis.test_size
    sizes = {(s.shape[1], s.shape[0]) for s in shots}
    if sizes != {(tw, th)}:
        got = ", ".join(f"{a}x{b}" for a, b in sorted(sizes))
        return outcome("failed", f"the page now renders at {got}, the report's test image is {tw}x{th}: "
                                 "captures cannot be lined up with it; left as it was"), analysis
    note = f" (not replayed: {', '.join(scenario.not_replayed)})" if scenario.not_replayed else ""
    if not boxes:
        return outcome("stable", f"{runs} captures in {seconds:.1f}s are identical: the change is not dynamic{note}"), \
            analysis
    dyn = dynamic_mask(boxes, (th, tw))
    assets = review.assets.get(pair.index)
    mask_path = out_dir / assets.mask if out_dir is not None and assets is not None and assets.mask else None
    result = apply_dynamic(analysis, dyn, read_changed_mask(mask_path, (th, tw)), runs)
    if result is analysis:
        return outcome("stable", f"{len(boxes)} dynamic area(s) found, none covers a changed region{note}", boxes), \
            analysis
    if mask_path is not None:
        repaint_mask(mask_path, result.regions)
    n = sum(1 for r in result.regions if r.kind is RegionKind.DYNAMIC)
    if result.verdict is Verdict.NOISE:
        return outcome("noise", f"{n} changed region(s) are dynamic content: now noise{note}", boxes), result
    return outcome("dynamic", f"{n} region(s) are dynamic content; real changes remain{note}", boxes), result


def recapture_outputs(review: Review, out_dir: Path, settings: Settings, **kw: Any) -> tuple[Review, list[Outcome]]:
    """Re-capture, then rewrite review.json, summary.md, junit.xml and index.html in OUT."""
    from reviewer.outdir import output_lock

    with output_lock(out_dir):
        rebuilt, outcomes = recapture_review(review, settings, out_dir=out_dir, **kw)
        rebuilt = write_outputs(rebuilt, out_dir)
    return rebuilt, outcomes


def write_outputs(review: Review, out_dir: Path) -> Review:
    """The same files `reviewer analyze` writes (one implementation, in reviewer.analyze)."""
    from reviewer.analyze import write_outputs as write_all

    return write_all(review, out_dir)
