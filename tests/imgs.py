"""Synthetic screenshots for the imaging tests: drawn at 4x and downsampled, so edges are
anti-aliased like a browser's, and a 1-hi-res-pixel offset is a quarter-pixel shift."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SCALE = 4
WHITE = (255, 255, 255)


def render(w: int, h: int, shapes: list[tuple], offset: tuple[int, int] = (0, 0), bg: tuple = WHITE) -> np.ndarray:
    """shapes: ("rect"|"ellipse"|"text", (x0, y0, x1, y1) in page px, colour[, text]); offset in 1/4 px."""
    im = Image.new("RGB", (w * SCALE, h * SCALE), bg)
    d = ImageDraw.Draw(im)
    ox, oy = offset
    for shape in shapes:
        kind, (x0, y0, x1, y1), colour = shape[:3]
        box = [x0 * SCALE + ox, y0 * SCALE + oy, x1 * SCALE + ox, y1 * SCALE + oy]
        if kind == "rect":
            d.rectangle(box, fill=colour)
        elif kind == "ellipse":
            d.ellipse(box, fill=colour)
        elif kind == "text":
            d.text((box[0], box[1]), shape[3], fill=colour, font_size=(y1 - y0) * SCALE)
    return np.asarray(im.resize((w, h), Image.Resampling.BOX))


def page(words: str = "the quick brown fox", *, button: tuple = (46, 125, 50), banner: bool = False,
         offset: tuple[int, int] = (0, 0), bg: tuple = WHITE, height: int = 1200) -> np.ndarray:
    shapes: list[tuple] = [("rect", (20, 20, 380, 60), (30, 30, 30))]
    y = 100
    if banner:
        shapes.append(("rect", (0, y, 400, y + 80), (250, 200, 0)))
        shapes.append(("text", (20, y + 20, 300, y + 44), (0, 0, 0), "BREAKING NEWS"))
        y += 80
    for i in range(20):
        text = words if i == 5 else f"line {i} lorem ipsum dolor sit"
        shapes.append(("text", (20, y + i * 40, 380, y + i * 40 + 18), (20, 20, 20), text))
    shapes.append(("ellipse", (300, y + 850, 360, y + 910), (0, 90, 200)))
    shapes.append(("rect", (40, y + 950, 160, y + 990), button))
    return render(400, height + (80 if banner else 0), shapes, offset, bg)
