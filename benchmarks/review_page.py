"""Benchmark: how fast the review page opens with 1,000 pairs, in Debian's Chromium.

    .venv/bin/python benchmarks/review_page.py [--pairs 1000] [--runs 3]

Builds a synthetic review of N pairs with real screenshots (hard links to the fixture
report's images, so every pair has its own files), writes index.html, opens it from disk
and prints, as the median of the runs:

  render        time for render_html() in Python, and the page's size
  ready         navigation start -> the page's script has built the list and shown pair #1
  first images  navigation start -> pair #1's two screenshots are decoded
  requests      files the page loaded by then (the other pairs' images must not be among them)
  expand        opening the collapsed "unchanged" group (building its rows)
  filter        typing a label filter until the list is updated
  heap          JS heap in use once ready

It measures; it asserts nothing (tests/test_review_page.py checks the lazy loading).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import ARGS, CHROMIUM, large_review  # noqa: E402

from reviewer.render.html import render_html  # noqa: E402


def measure(page_file: Path, browser: object) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(page_file.as_uri())
    page.wait_for_selector("html[data-ready=true]")
    ready = page.evaluate("performance.getEntriesByName('review-ready')[0].startTime")
    page.wait_for_function("() => [...document.querySelectorAll('#viewer img.layer')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    images = page.evaluate("performance.now()")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    n_requests = len(requests)
    t0 = page.evaluate("performance.now()")
    page.keyboard.press("u")
    page.wait_for_function("() => document.querySelectorAll('#list .row').length >= 1000")
    expand = page.evaluate("performance.now()") - t0
    t0 = page.evaluate("performance.now()")
    page.fill("#f-text", "page 0999")
    page.wait_for_function("() => [...document.querySelectorAll('#list .row')].filter(e => !e.hidden).length === 1")
    filt = page.evaluate("performance.now()") - t0 - 120  # minus the input debounce
    context.close()
    return {"ready_ms": ready, "images_ms": images, "requests": n_requests, "expand_ms": expand,
            "filter_ms": filt, "heap_mb": metrics.get("JSHeapUsedSize", 0) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="review-page-bench-") as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        review = large_review(args.pairs, out)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = render_html(review)
        render = time.perf_counter() - t0
        page_file = out / "index.html"
        page_file.write_text(html, encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            measure(page_file, browser)  # warm-up: the first launch pays for disk caches
            runs = [measure(page_file, browser) for _ in range(args.runs)]
            version = browser.version
            browser.close()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    c = review.counts
    print(f"review page benchmark: {args.pairs} pairs ({c['changed']} changed, {c['error']} error, {c['noise']} noise, "
          f"{c['unchanged']} unchanged), Chromium {version}, median of {args.runs} runs")
    print(f"  build synthetic review  {build * 1000:8.0f} ms")
    print(f"  render_html             {render * 1000:8.0f} ms   index.html {len(html.encode()) / 1e6:.2f} MB")
    print(f"  ready (list + pair #1)  {med['ready_ms']:8.0f} ms")
    print(f"  first images decoded    {med['images_ms']:8.0f} ms")
    print(f"  files loaded by then    {med['requests']:8.0f}      (index.html + pair #1's images and crops)")
    print(f"  expand 'unchanged'      {med['expand_ms']:8.0f} ms   ({c['unchanged']} rows built)")
    print(f"  filter by label         {med['filter_ms']:8.0f} ms   (after the 120 ms typing debounce)")
    print(f"  JS heap when ready      {med['heap_mb']:8.1f} MB")


if __name__ == "__main__":
    main()
