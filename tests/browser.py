"""Helpers for the browser tests: Debian's Chromium through Playwright, a page watcher, and
synthetic reviews (a large one for the 1,000-pair test and benchmark, a hostile one).

Playwright's own browser download cannot work here, so Chromium is always launched from
/usr/bin/chromium; tests that need it are skipped when it is missing.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reviewer.config import Settings
from reviewer.model import Box, Pair, PairAnalysis, PairAssets, Region, RegionKind, Report, Review, Verdict

CHROMIUM = os.environ.get("REVIEWER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "report" / "backstop_data"

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")


def launch_chromium() -> Iterator[Any]:
    """Yields a headless Chromium (for a module-scoped `chromium` fixture: `yield from launch_chromium()`)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@dataclass
class Watch:
    """Everything a page did that a test may want to refuse: errors, requests, dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def network(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:"))]


# Records CSP violations, which Chromium does not always report as console errors.
_CSP_HOOK = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def open_page(browser: Any, url: str, *, width: int = 1400, height: int = 900) -> tuple[Any, Watch]:
    """A new page at `url`, waited until the review page says it is ready."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(_CSP_HOOK)
    page = context.new_page()
    w = Watch()
    page.on("console", lambda m: w.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.page_errors.append(str(e)))
    page.on("request", lambda r: w.requests.append(r.url))

    def dialog(d: Any) -> None:
        w.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(url)
    page.wait_for_selector("html[data-ready=true]", timeout=10_000)
    return page, w


def file_url(path: Path, fragment: str = "") -> str:
    return path.resolve().as_uri() + (f"#{fragment}" if fragment else "")


# -- synthetic reviews ---------------------------------------------------------------------------------

def _pairs_of_the_fixture() -> list[tuple[Path, Path]]:
    run = next((FIXTURE / "bitmaps_test").iterdir())
    out = []
    for ref in sorted((FIXTURE / "bitmaps_reference").glob("fixture_*.png")):
        test = run / ref.name
        if test.is_file():
            out.append((ref, test))
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def large_review(n: int, out: Path, seed: int = 4) -> Review:
    """A review of `n` pairs with real screenshots (hard links to the fixture's), a thumbnail
    and region crops per pair; about 12% changed, 3% error, 15% noise, the rest unchanged."""
    rng = random.Random(seed)
    sources = _pairs_of_the_fixture()
    small = out / "_src"
    small.mkdir(parents=True, exist_ok=True)
    thumb_src, crop_src = small / "thumb.png", small / "crop.png"
    Image.new("RGB", (240, 400), (230, 240, 230)).save(thumb_src)
    Image.new("RGB", (120, 40), (250, 220, 220)).save(crop_src)
    items: list[tuple[Pair, PairAnalysis]] = []
    assets: dict[int, PairAssets] = {}
    for i in range(n):
        ref, test = sources[i % len(sources)]
        with Image.open(test) as im:
            w, h = im.size
        roll = i % 100
        verdict = (Verdict.CHANGED if roll < 12 else Verdict.ERROR if roll < 15 else
                   Verdict.NOISE if roll < 30 else Verdict.UNCHANGED)
        label = f"Page {i:04d} {ref.name.split('_')[1]}"
        viewport = "phone" if "phone" in ref.name else "desktop"
        pair = Pair(index=i, file=f"big_{i:04d}_{viewport}.png", label=label, viewport=viewport, selector="document",
                    url=f"https://www-dev.greenpeace.org/big/{i}", reference_url="", reference=ref, test=test,
                    backstop_diff_image=None, backstop_status="fail" if roll < 8 else "pass",
                    backstop_mismatch=round(rng.random() * 10, 2), backstop_error=None, mismatch_threshold=3.0,
                    same_dimensions=True)
        regions: tuple[Region, ...] = ()
        if verdict in (Verdict.CHANGED, Verdict.NOISE):
            kinds = [RegionKind.CONTENT, RegionKind.COLOUR, RegionKind.SHIFT] if verdict is Verdict.CHANGED \
                else [RegionKind.INVISIBLE, RegionKind.DRIFT]
            regions = tuple(sorted((Region(Box(rng.randrange(0, max(1, w - 60)), rng.randrange(0, max(1, h - 30)),
                                               rng.randrange(8, 60), rng.randrange(6, 30)),
                                           rng.choice(kinds), rng.randrange(10, 900), round(rng.random() * 60, 2),
                                           round(rng.random(), 3), significant=verdict is Verdict.CHANGED,
                                           why="synthetic")
                                    for _ in range(rng.randrange(1, 5))), key=lambda r: (r.box.y, r.box.x)))
        reason = {Verdict.CHANGED: f"{len(regions)} changed region(s)", Verdict.ERROR: "reference image is missing",
                  Verdict.NOISE: "only rendering noise", Verdict.UNCHANGED: "byte-identical files"}[verdict]
        items.append((pair, PairAnalysis(verdict, reason, regions, (w, h), (w, h), sum(r.pixels for r in regions))))
        d = out / "images" / f"p{i:04d}"
        _link(ref, d / "reference.png")
        _link(test, d / "test.png")
        _link(thumb_src, d / "thumb.png")
        crops = []
        for k in range(len(regions)):
            _link(crop_src, d / f"r{k}-reference.png")
            _link(crop_src, d / f"r{k}-test.png")
            crops.append((f"images/p{i:04d}/r{k}-reference.png", f"images/p{i:04d}/r{k}-test.png"))
        assets[i] = PairAssets(f"images/p{i:04d}/reference.png", f"images/p{i:04d}/test.png", None,
                               f"images/p{i:04d}/thumb.png", tuple(crops))
    from reviewer.analyze import build_review

    report = Report(id="big", root=out, source_file=out / "config.js", pairs=tuple(p for p, _ in items))
    return build_review(report, [(p, a, assets.get(p.index, PairAssets())) for p, a in items], Settings())


def write_page(review: Review, out: Path) -> Path:
    from reviewer.render.html import render_html

    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(render_html(review), encoding="utf-8")
    return page
