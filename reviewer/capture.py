"""Re-capture changed pairs to tell dynamic content from real changes.

A clock, a visitor counter, a carousel or a random banner differs between any two captures,
so BackstopJS reports it as a change on every release. For each *changed* pair we replay its
BackstopJS scenario N times, each time in a fresh browser context, and capture it exactly as
BackstopJS's puppeteer engine did (reviewer.engine: same Chromium flags, viewport, waits,
removed/hidden elements, hovers, clicks, cookies, and the same screenshot geometry), so the
captures line up pixel for pixel with the report's test image. What differs between those
captures of one build is dynamic. Each dynamic area is widened to the page element that holds
it (the whole clock, not just the digits that happened to change between our captures) when
that element is not much larger. A changed region of the original analysis becomes kind
`dynamic` (a noise kind) when nearly all of its changed pixels lie in dynamic areas; a pair
whose significant regions are all dynamic becomes noise. Then the review is re-ranked and
re-decided.

Captures whose height still differs from the test image are lined up with it row by row
(reviewer.lineup), as `analyze` lines up pages whose height changed. Fails closed: a page that
cannot be reached, a selector that is not found, or captures that cannot be lined up leave the
pair exactly as it was, and say why.

    recapture_review(review, settings, runs=3)   ->  (Review, outcomes)     (no files written)
    recapture_outputs(review, out_dir, settings)  ->  (Review, outcomes)     (rewrites the outputs)
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from reviewer import assets
from reviewer.assets import MASK_DYNAMIC
from reviewer.config import Settings
from reviewer.engine import DEFAULT_BROWSER, CaptureError, Engine, Job, Replay, Shot, first_line, split_flags
from reviewer.errors import ImageError, ReviewerError, UsageError
from reviewer.imaging.candidates import differing_rows, scan_segment
from reviewer.imaging.compare import MASK_CHANGED
from reviewer.imaging.decode import load_rgb
from reviewer.imaging.regions import candidate_regions
from reviewer.imaging.verdict import noise_counts, verdict_of
from reviewer.lineup import Warp, moving_areas, to_capture, to_test, warp
from reviewer.model import Box, PairAnalysis, RankedPair, Recapture, Region, RegionKind, Review, Verdict
from reviewer.scenarios import (
    BackstopConfig,
    Scenario,
    find_backstop_config,
    load_backstop_config,
    parse_backstop_config,
    parse_viewport_option,
)

__all__ = [
    "MASK_DYNAMIC", "BackstopConfig", "CaptureError", "Outcome", "Scenario", "apply_dynamic", "browser_path",
    "capturable_url", "dynamic_boxes", "dynamic_mask", "find_backstop_config", "load_backstop_config",
    "parse_backstop_config", "parse_viewport_option", "recapture_outputs", "recapture_review", "viewport_size",
]

DEFAULT_RUNS = 3
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_PARALLEL = 2  # browsers replaying scenarios at once (BackstopJS itself runs asyncCaptureLimit)
BROWSER_ENV = "REVIEWER_CHROMIUM"
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

Img = NDArray[np.uint8]


@dataclass(frozen=True)
class Outcome:
    """What re-capture did to one pair (Pair.index), as printed and as shown on the page."""

    index: int
    label: str
    viewport: str
    result: Recapture

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def message(self) -> str:
        return self.result.message

    @property
    def dynamic(self) -> tuple[Box, ...]:
        return self.result.areas


# ---------------------------------------------------------------- choices (pure)

def browser_path(option: str | None, env: dict[str, str] | None = None) -> tuple[str, str]:
    """The Chromium to re-capture with, and why that one: --browser, else $REVIEWER_CHROMIUM,
    else Debian's chromium. Never backstop.json's executablePath on its own: a config beside a
    report is data, not a program to run (notes say when it names another browser)."""
    e = os.environ if env is None else env
    if option:
        return option, "--browser"
    if e.get(BROWSER_ENV):
        return e[BROWSER_ENV], f"${BROWSER_ENV}"
    return shutil.which("chromium") or DEFAULT_BROWSER, "the default"


def browser_notes(exe: str, config: BackstopConfig) -> tuple[str, ...]:
    """What the run should know about the browser and its flags compared with BackstopJS's."""
    notes = []
    named = config.engine.executable_path
    if named and Path(named).resolve() != Path(exe).resolve():
        notes.append(f"BackstopJS ran {named}; re-captured with {exe}: if they differ in version or fonts, "
                     f"captures do not line up (pass --browser {named})")
    _kept, dropped = split_flags(config.engine.args)
    if dropped:
        notes.append("engineOptions.args not passed on (they start other programs or take the browser from "
                     f"re-capture): {' '.join(dropped)}")
    return tuple(notes)


def capturable_url(url: str) -> bool:
    """Only http(s) pages are re-captured: a report's URL is untrusted (no file:, javascript:, chrome:)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True)
class SizesSeen:
    """What the report's own images say about a scenario's viewport at one label."""

    viewport: tuple[int, int] | None = None  # a `viewport` capture is exactly the viewport
    page_width: int | None = None  # a `document` capture is as wide as the viewport (usually)


def viewport_size(label: str, viewport: str, config: BackstopConfig, overrides: dict[str, tuple[int, int]],
                  seen: SizesSeen, settings: Settings) -> tuple[int, int, str]:
    """(width, height, where it came from) for a scenario at a viewport label."""
    if viewport in overrides:
        return (*overrides[viewport], "--viewport")
    if seen.viewport:
        return (*seen.viewport, "the report's viewport capture")
    own = config.scenario(label).viewports
    if viewport in own:
        return (*own[viewport], "the scenario's viewports in backstop.json")
    if viewport in config.viewports:
        return (*config.viewports[viewport], "backstop.json")
    if seen.page_width:
        # The height only matters for layouts in vh units; the first-screen height is the best
        # guess there is, and said so.
        return seen.page_width, settings.first_screen(viewport), "a guess: the full page's width, the first-screen " \
            "height"
    raise UsageError(f"the size of viewport {viewport!r} is unknown (no backstop.json next to the report); "
                     f"pass --backstop-config FILE or --viewport {viewport}=WIDTHxHEIGHT")


def cookie_params(data: Any) -> tuple[dict[str, Any], ...]:
    """BackstopJS's loadCookies: each cookie's domain becomes a URL (https:// unless it is one),
    and goes to Chromium as a DevTools CookieParam (other fields, such as expirationDate, are
    not part of one)."""
    keep = ("name", "value", "path", "secure", "httpOnly", "sameSite", "expires", "priority")
    out = []
    for c in data if isinstance(data, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("domain"), str):
            continue
        domain = c["domain"]
        url = domain if domain.startswith(("http://", "https://")) else "https://" + domain
        out.append({"url": url, **{k: c[k] for k in keep if k in c}, "value": str(c.get("value", ""))})
    return tuple(out)


def read_cookies(path: Path | None) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """Cookies from a scenario's cookiePath, and a note when there are none to set."""
    if path is None:
        return (), None
    if not path.is_file():
        return (), f"cookiePath {path} is not there: no cookies set (BackstopJS sets none either without the file)"
    try:
        return cookie_params(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, ValueError) as exc:
        raise CaptureError(f"cookiePath {path} cannot be read ({exc}); BackstopJS would have failed on it too") \
            from None


# ---------------------------------------------------------------- pure parts

def dynamic_boxes(captures: Sequence[Img], settings: Settings) -> list[Box]:
    """Areas that differ between captures of the same build. Any difference counts, visible or
    not (only drift below `drift_delta_e` is left out): the question is whether the area changes
    from one load to the next, and a clock whose milliseconds changed little between two loads
    is as dynamic as one whose seconds changed. Rows only some captures have are dynamic too."""
    if len(captures) < 2:
        return []
    first = captures[0]
    out: list[Box] = []
    for other in captures[1:]:
        h, w = min(first.shape[0], other.shape[0]), min(first.shape[1], other.shape[1])
        a, b = np.ascontiguousarray(first[:h, :w]), np.ascontiguousarray(other[:h, :w])
        rows = differing_rows(a, b)
        if rows.any():
            scan = scan_segment(a, b, rows, settings.drift_delta_e, (), settings.merge_distance_px)
            out += [c.box for c in candidate_regions(scan, (h, w), settings.merge_distance_px)]
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
    assets.repaint_mask(path, [r.box for r in regions if r.kind is RegionKind.DYNAMIC])


# ---------------------------------------------------------------- the run
# ---------------------------------------------------------------- the run

Progress = Callable[[Outcome], None]


@dataclass
class Group:
    """The changed pairs of one scenario at one viewport: one replay captures them all."""

    label: str
    viewport: str
    job: Job | None = None
    pairs: list[RankedPair] = field(default_factory=list)  # the changed ones
    notes: tuple[str, ...] = ()
    problem: str | None = None  # why it cannot be replayed at all


def is_changed(rp: RankedPair) -> bool:
    return rp.analysis.verdict is Verdict.CHANGED


def plan(review: Review, config: BackstopConfig, overrides: dict[str, tuple[int, int]], settings: Settings,
         wanted: Callable[[RankedPair], bool] = is_changed) -> list[Group]:
    """One group per scenario and viewport that has `wanted` (changed) pairs, with everything
    its replay needs."""
    all_pairs = sorted(review.ranked, key=lambda rp: rp.pair.index)
    by_key: dict[tuple[str, str], list[RankedPair]] = {}
    for rp in all_pairs:
        by_key.setdefault((rp.pair.label, rp.pair.viewport), []).append(rp)
    groups: list[Group] = []
    for (label, vp), members in by_key.items():
        changed = [rp for rp in members if wanted(rp)]
        if not changed:
            continue
        group = Group(label, vp, pairs=changed)
        groups.append(group)
        url = changed[0].pair.url
        if not url:
            group.problem = "the report gives no URL for this pair"
            continue
        if not capturable_url(url):
            group.problem = f"the report's URL {url!r} is not an http(s) address"
            continue
        seen = _sizes_seen(members)
        try:
            w, h, how = viewport_size(label, vp, config, overrides, seen, settings)
        except UsageError as exc:
            group.problem = str(exc)
            continue
        scenario = config.scenario(label)
        try:
            cookies, cookie_note = read_cookies(config.cookie_file(scenario)) if scenario.on_before_script \
                else ((), None)
        except (CaptureError, UsageError) as exc:
            group.problem = str(exc)
            continue
        # Every selector of the scenario, in BackstopJS's order: each element capture enlarges
        # the viewport for the ones after it, so the unchanged ones are replayed too.
        selectors = tuple(dict.fromkeys(rp.pair.selector or "document" for rp in members))
        group.job = Job(url, (w, h), scenario, selectors, cookies)
        notes = [f"viewport {w}x{h} from {how}"]
        if config.path is None:
            notes.append("no backstop.json found (pass --backstop-config FILE): only the URL, selector and viewport "
                         "were replayed, none of the scenario's waits, hidden elements or interactions")
        elif label not in config.scenarios:
            notes.append(f"scenario {label!r} is not in {config.path.name}: replayed without its options")
        else:
            replayed = scenario.replayed()
            notes.append("replayed: " + (", ".join(replayed) if replayed else "the URL only (no options to replay)"))
        notes += scenario.script_notes()
        if config.engine.engine != "puppeteer":
            notes.append(f"backstop.json's engine is {config.engine.engine!r}: captured as the puppeteer engine "
                         "captures, so the geometry may differ")
        if cookie_note:
            notes.append(cookie_note)
        group.notes = tuple(notes)
    return groups


def _sizes_seen(members: Sequence[RankedPair]) -> SizesSeen:
    """The viewport as the report's own images show it (never from an error pair, whose image
    may be BackstopJS's placeholder)."""
    real = [rp for rp in members if rp.analysis.verdict is not Verdict.ERROR and rp.analysis.test_size]
    vp = next((rp.analysis.test_size for rp in real if rp.pair.selector == "viewport"), None)
    doc = next((rp.analysis.test_size[0] for rp in real if rp.pair.selector in ("document", "")
                and rp.analysis.test_size), None)
    return SizesSeen(vp, doc)


def recapture_review(review: Review, settings: Settings, *, runs: int = DEFAULT_RUNS,
                     viewports: dict[str, tuple[int, int]] | None = None,
                     backstop_config: Path | Sequence[Path] | None = None,
                     out_dir: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, browser: str | None = None,
                     parallel: int = DEFAULT_PARALLEL,
                     progress: Progress | None = None) -> tuple[Review, list[Outcome]]:
    """Re-capture every changed pair; return the re-ranked, re-decided review and what happened
    to each pair. `out_dir` (the analysis's output folder) gives access to the masks."""
    from reviewer.analyze import build_review

    if runs < 2:
        raise UsageError("re-capture needs at least 2 runs to compare captures with each other")
    given = [backstop_config] if isinstance(backstop_config, Path) else list(backstop_config or [])
    config = load_backstop_config(given or find_backstop_config(review.report.root))
    groups = plan(review, config, viewports or {}, settings)
    outcomes: list[Outcome] = []
    new: dict[int, PairAnalysis] = {}
    lock = threading.Lock()

    def record(rp: RankedPair, result: Recapture, analysis: PairAnalysis | None = None) -> None:
        outcome = Outcome(rp.pair.index, rp.pair.label, rp.pair.viewport, result)
        with lock:
            outcomes.append(outcome)
            if analysis is not None and analysis is not rp.analysis:
                new[rp.pair.index] = analysis
            if progress:
                progress(outcome)

    for g in groups:
        if g.problem:
            for rp in g.pairs:
                record(rp, Recapture("failed" if rp.pair.url else "skipped", f"{g.problem}; left as it was"))
    todo = [g for g in groups if g.job is not None and not g.problem]
    if todo:
        exe, why = browser_path(browser)
        extra = browser_notes(exe, config)
        for g in todo:
            g.notes = (*g.notes, *extra)
        _run_groups(todo, exe, why, config, settings, runs, timeout_s, max(1, min(parallel, len(todo))),
                    review, out_dir, record)
    failed = [o for o in outcomes if o.status == "failed"]
    warnings = tuple(f"re-capture: {o.label} [{o.viewport}]: {o.message}" for o in failed)
    report = replace(review.report, warnings=review.report.warnings + warnings)
    items = [(rp.pair, new.get(rp.pair.index, rp.analysis), rp.assets)
             for rp in sorted(review.ranked, key=lambda r: r.pair.index)]
    rebuilt = build_review(report, items, settings)
    outcomes.sort(key=lambda o: o.index)
    rebuilt = replace(rebuilt, recapture={**review.recapture, **{o.index: o.result for o in outcomes}})
    return rebuilt, outcomes


Record = Callable[[RankedPair, Recapture, "PairAnalysis | None"], None]


def _run_groups(groups: list[Group], exe: str, why: str, config: BackstopConfig, settings: Settings, runs: int,
                timeout_s: float, workers: int, review: Review, out_dir: Path | None, record: Record) -> None:
    """Replay the groups on `workers` browsers. Playwright's sync API belongs to the thread
    that started it (and refuses to run where an asyncio loop runs, e.g. in a notebook), so
    each worker is a thread with a Playwright and a Chromium of its own."""
    work: queue.Queue[Group] = queue.Queue()
    for g in groups:
        work.put(g)
    errors: list[BaseException] = []

    def worker() -> None:
        current: Group | None = None
        try:
            with Engine(exe, config.engine, timeout_s) as engine:
                note = f"browser: {exe} ({why}), {engine.version}"
                while True:
                    try:
                        current = work.get_nowait()
                    except queue.Empty:
                        return
                    _replay_group(engine, current, note, settings, runs, review, out_dir, record)
                    current = None
        except BaseException as exc:
            # The browser did not start, or died: this group and every one left are left as
            # they were, each saying why (an unexpected error is raised again afterwards).
            errors.append(exc)
            left = [current] if current is not None else []
            while True:
                try:
                    left.append(work.get_nowait())
                except queue.Empty:
                    break
            what = str(exc) if isinstance(exc, ReviewerError) else f"re-capture failed ({type(exc).__name__}: {exc})"
            for g in left:
                for rp in g.pairs:
                    record(rp, Recapture("failed", f"{what}; left as it was", notes=g.notes), None)

    threads = [threading.Thread(target=worker, name=f"recapture-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors and not isinstance(errors[0], ReviewerError):
        raise errors[0]


def _replay_group(engine: Engine, g: Group, browser_note: str, settings: Settings, runs: int, review: Review,
                  out_dir: Path | None, record: Record) -> None:
    """Replay one scenario `runs` times and judge each of its changed pairs on the last replay's
    page (still open, for widening dynamic areas to page elements)."""
    from playwright.sync_api import Error as PlaywrightError

    assert g.job is not None
    notes = (*g.notes, browser_note)
    shots: dict[int, list[Shot]] = {rp.pair.index: [] for rp in g.pairs}
    started = time.perf_counter()
    try:
        for run in range(runs):
            with engine.replay(g.job) as replay:
                for rp in g.pairs:
                    shots[rp.pair.index].append(replay.shots.get(rp.pair.selector or "document") or
                                                Shot(rp.pair.selector, problem="not captured"))
                if run < runs - 1:
                    continue
                seconds = time.perf_counter() - started
                extra = tuple(replay.notes)
                for rp in g.pairs:
                    analysis, result = _judge(rp, shots[rp.pair.index], replay, settings, runs, review, out_dir,
                                              seconds)
                    record(rp, replace(result, notes=(*notes, *extra, *result.notes)), analysis)
    except (CaptureError, PlaywrightError) as exc:
        reason = str(exc) if isinstance(exc, CaptureError) else first_line(exc)
        for rp in g.pairs:
            record(rp, Recapture("failed", f"{g.job.url} could not be captured ({reason}); left as it was",
                                 notes=notes), None)


def _judge(rp: RankedPair, shots: list[Shot], replay: Replay, settings: Settings, runs: int, review: Review,
           out_dir: Path | None, seconds: float) -> tuple[PairAnalysis, Recapture]:
    """The pair's captures lined up with its test image, the areas that moved between them, and
    the analysis with the regions they explain turned dynamic."""
    pair, analysis = rp.pair, rp.analysis

    def left(message: str, n: int = 0, areas: Sequence[Box] = (), notes: tuple[str, ...] = ()) -> tuple[
            PairAnalysis, Recapture]:
        return analysis, Recapture("failed", f"{message}; left as it was", n, tuple(areas), notes)

    problem = next((s.problem for s in shots if s.problem), None)
    if problem:
        return left(problem)
    if pair.test is None:
        return left("the report names no test image to line the captures up with")
    try:
        test = load_rgb(pair.test)
    except ImageError as exc:
        return left(f"the test image cannot be read ({exc})")
    th, tw = test.shape[:2]
    images = [s.image for s in shots if s.image is not None]
    warps: list[Warp] = []
    for img in images:
        w = warp(img, test)
        if isinstance(w, str):
            return left(f"captures cannot be lined up with the test image: {w}", len(images))
        warps.append(w)
    notes: tuple[str, ...] = ()
    if not all(w.same_size for w in warps):
        sizes = ", ".join(sorted({f"{i.shape[1]}x{i.shape[0]}" for i in images}))
        notes = (f"captures ({sizes}) lined up with the {tw}x{th} test image row by row "
                 f"({min(w.equal_share for w in warps):.0%} of its rows found in every capture)",)
    areas = moving_areas(warps, settings)
    grown = list(dict.fromkeys(_grow(replay, areas, warps[-1], shots[-1].origin))) if areas else []
    label = f"{len(images)} captures in {seconds:.1f}s"
    if not grown:
        return analysis, Recapture("stable", f"{label} are identical: the change is not dynamic", len(images),
                                   notes=notes)
    dyn = dynamic_mask(grown, (th, tw))
    mask = next((r.assets.mask for r in review.ranked if r.pair.index == pair.index), None)
    mask_path = out_dir / mask if out_dir is not None and mask else None
    result = apply_dynamic(analysis, dyn, read_changed_mask(mask_path, (th, tw)), runs)
    if result is analysis:
        return analysis, Recapture("stable", f"{label}: {len(grown)} dynamic area(s) found, none covers a changed "
                                   "region", len(images), tuple(grown), notes)
    if mask_path is not None:
        repaint_mask(mask_path, result.regions)
    n = sum(1 for r in result.regions if r.kind is RegionKind.DYNAMIC)
    if result.verdict is Verdict.NOISE:
        return result, Recapture("noise", f"{label}: {n} changed region(s) are dynamic content: now noise",
                                 len(images), tuple(grown), notes)
    return result, Recapture("dynamic", f"{label}: {n} region(s) are dynamic content; real changes remain",
                             len(images), tuple(grown), notes)


_ELEMENT_BOXES_JS = """
([boxes, maxGrow, smallArea]) => {
  const sx = window.scrollX, sy = window.scrollY;
  const rects = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) rects.push([r.left + sx, r.top + sy, r.width, r.height]);
  }
  return boxes.map(([x, y, w, h]) => {
    let best = null, bestArea = Infinity;
    for (const r of rects) {
      if (r[0] <= x + 1 && r[1] <= y + 1 && r[0] + r[2] >= x + w - 1 && r[1] + r[3] >= y + h - 1) {
        const a = r[2] * r[3];
        if (a < bestArea) { best = r; bestArea = a; }
      }
    }
    if (!best || (bestArea > maxGrow * Math.max(1, w * h) && bestArea > smallArea)) return null;
    return [Math.floor(best[0]), Math.floor(best[1]), Math.ceil(best[2]), Math.ceil(best[3])];
  });
}
"""


def _grow(replay: Replay, areas: Sequence[Box], last: Warp, origin: tuple[int, int]) -> list[Box]:
    """Each area widened to the smallest page element holding it (on the last replay's page),
    when that element is not much larger; in test-image pixels, cut to the test image."""
    th, tw = last.image.shape[:2]
    placed = [to_capture(b, last) for b in areas]
    page_boxes = [[b.x + origin[0], b.y + origin[1], b.w, b.h] for b, _s in (p for p in placed if p)]
    grown_raw = replay.evaluate(_ELEMENT_BOXES_JS, [page_boxes, MAX_GROW, SMALL_ELEMENT_AREA]) if page_boxes else []
    out: list[Box] = []
    raw = iter(grown_raw or [])
    for area, p in zip(areas, placed, strict=True):
        got = next(raw) if p else None
        if p is None or got is None:
            out.append(area)
            continue
        x, y, w, h = got
        box = to_test(Box(int(x) - origin[0], int(y) - origin[1], int(w), int(h)), p[1])
        x0, y0 = max(0, min(box.x, area.x)), max(0, min(box.y, area.y))
        x1, y1 = min(tw, max(box.x2, area.x2)), min(th, max(box.y2, area.y2))
        out.append(Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)))
    return out


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
