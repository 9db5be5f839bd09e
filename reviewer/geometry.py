"""Where BackstopJS's puppeteer engine cuts its screenshots: the geometry, as pure functions.

Re-captures are compared pixel for pixel with BackstopJS's own test images, so they must be cut
exactly as BackstopJS 6.3 (puppeteer 22) cuts them, and that differs from Playwright's own
screenshots in three ways:

- **Full pages.** Playwright measures the page itself, from the larger of `document.body`'s and
  `document.documentElement`'s scroll, offset and client sizes. Puppeteer leaves it to Chromium
  (`Page.captureScreenshot` with `captureBeyondViewport` and no clip), which uses the document's
  own content size. A body pulled up by a negative margin or clipped by `overflow: clip` is
  taller than what the page shows, and the two disagree by tens of pixels. Nothing to compute
  here: the engine sends Chromium the same command puppeteer sends.
- **Element boxes.** Playwright widens a box to whole pixels (floor of the start, ceil of the
  end: 160.4 x 136.6 at y 61.35 becomes 139 rows); puppeteer rounds the start and the size
  (`round_clip`: 137 rows), then cuts the box down to the visual viewport (`intersect`).
- **The viewport for selector captures.** Before each element screenshot BackstopJS enlarges
  the viewport to the body's bounding box (`selector_viewport`), which can re-lay-out the page.

Coordinates are CSS pixels (device scale factor 1, as BackstopJS uses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    """A rectangle in CSS pixels; not necessarily whole pixels."""

    x: float
    y: float
    w: float
    h: float


def js_round(v: float) -> int:
    """JavaScript's Math.round: halves go up (towards +infinity), -2.5 -> -2, 2.5 -> 3.

    Python's round() sends halves to the even neighbour and floor(v + 0.5) is off for
    0.49999999999999994 (the addition rounds up to 1.0); v - floor(v) is exact, so this is not."""
    f = math.floor(v)
    return int(f) + 1 if v - f >= 0.5 else int(f)


def normalize(r: Rect) -> Rect:
    """A rectangle given with a negative width or height, flipped to positive (as puppeteer does)."""
    x, w = (r.x + r.w, -r.w) if r.w < 0 else (r.x, r.w)
    y, h = (r.y + r.h, -r.h) if r.h < 0 else (r.y, r.h)
    return Rect(x, y, w, h)


def round_clip(r: Rect) -> Rect:
    """Puppeteer's clip rounding: round the start, then round the size *measured from the rounded
    start*, so the far edge lands where rounding the true far edge would put it, give or take one."""
    r = normalize(r)
    x, y = js_round(r.x), js_round(r.y)
    return Rect(x, y, js_round(r.w + r.x - x), js_round(r.h + r.y - y))


def intersect(clip: Rect, viewport: Rect) -> Rect:
    """The part of `clip` inside the visual viewport (puppeteer cuts element captures to it when
    `captureBeyondViewport` is false); an empty result has width or height 0."""
    x, y = max(clip.x, viewport.x), max(clip.y, viewport.y)
    return Rect(x, y, max(min(clip.x + clip.w, viewport.x + viewport.w) - x, 0),
                max(min(clip.y + clip.h, viewport.y + viewport.h) - y, 0))


def selector_viewport(viewport: tuple[int, int], body: Rect) -> tuple[int, int]:
    """The viewport BackstopJS sets before each element capture: at least the configured one,
    and at least the body's bounding box (rounded up), so elements below the fold are inside it."""
    return max(viewport[0], math.ceil(body.w)), max(viewport[1], math.ceil(body.h))


def clickable_point(rects: Sequence[Rect], doc_w: float, doc_h: float) -> tuple[float, float] | None:
    """Where puppeteer's hover and click put the mouse: the centre of the element's first client
    rect that keeps at least 1 x 1 px once cut to the document's client area (`doc_w` x `doc_h`,
    i.e. documentElement.clientWidth/Height); None when there is none (not clickable)."""
    for r in rects:
        w = max(min(doc_w - r.x, r.w) if r.x >= 0 else min(doc_w, r.w + r.x), 0)
        h = max(min(doc_h - r.y, r.h) if r.y >= 0 else min(doc_h, r.h + r.y), 0)
        if w >= 1 and h >= 1:
            return r.x + w / 2, r.y + h / 2
    return None


def clip_size(r: Rect) -> tuple[int, int]:
    """The image size Chromium returns for a clip at scale 1 (whole pixels after round_clip and an
    intersection with a whole-pixel viewport)."""
    return math.ceil(r.w - 1e-9), math.ceil(r.h - 1e-9)
