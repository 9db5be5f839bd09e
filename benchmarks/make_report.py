"""Build the benchmark report: a BackstopJS-shaped `backstop_data` folder of ~100 pairs.

    .venv/bin/python benchmarks/make_report.py [--out benchmarks/work/report] [--force]

It holds the real BackstopJS fixture (fixtures/report/backstop_data, 34 tests) plus generated
full pages shaped like Planet 4's: six viewports (350, 500, 700, 900, 1100, 1500 px wide),
header, photo hero, text sections, card grids, colour bands and footer, up to ~15,000 px tall
at the narrowest viewport. Text is rasterised at 4x and box-filtered down, like a browser's
anti-aliased text, so a quarter-pixel move re-rasterises edges the way Chromium does.

Every generated page gets one variant, the same at its six viewports:

    identical    the test file is a byte copy of the reference
    reencoded    same pixels, different PNG bytes (another zlib level)
    subpixel     three paragraphs re-rasterised a quarter pixel lower (anti-aliasing noise)
    photonoise   photo pixels off by one level (GPU decode noise: drift)
    drift        every pixel's green and blue off by one level (colour management)
    word         one word of one paragraph changed
    recolour     a button recoloured and a card photo replaced
    banner       a 240 px band inserted in the middle of the page (taller test image)
    reflow       a heading rewritten and a paragraph rewrapped
    pushed       everything below the hero 6 px lower, same height (the footer's end cut off):
                 most of the page is one large moved region

Output (git-ignored): <out>/backstop_data/{html_report/config.js, bitmaps_reference/,
bitmaps_test/<timestamp>/}. Generation is deterministic; an existing report is kept unless
--force is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "report" / "backstop_data"
TIMESTAMP = "20261126-061418"  # the fixture's run folder, so its tests keep their paths
VIEWPORTS = [("mobile", 350), ("small", 500), ("medium", 700), ("large", 900), ("xlarge", 1100), ("xxlarge", 1500)]
SCALE = 4  # text is drawn at 4x and box-filtered down: browser-like anti-aliasing

WHITE = (255, 255, 255)
INK = (26, 26, 26)
GREEN = (102, 204, 0)
DARK = (7, 59, 42)
NAVY = (22, 39, 63)
SAND = (244, 239, 226)

WORDS = (
    "ocean", "forest", "climate", "people", "power", "plastic", "future", "action", "energy", "justice",
    "water", "renewable", "community", "campaign", "petition", "protect", "together", "nature", "wildlife",
    "river", "coal", "oil", "solar", "wind", "government", "change", "planet", "green", "peace", "future",
    "local", "global", "voice", "support", "donate",
)


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def sentence(rng: np.random.Generator, n: int) -> str:
    words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), n)]
    return " ".join(words).capitalize() + "."


def wrap(text: str, size: int, width: int) -> list[str]:
    f = font(size)
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if f.getlength(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def text_line(text: str, size: int, width: int, colour: tuple[int, int, int], bg: tuple[int, int, int],
              dy: int = 0) -> np.ndarray:
    """One line of text, (line height x width), drawn at 4x and box-filtered; dy in 1/4 px."""
    lh = int(size * 1.6)
    im = Image.new("RGB", (width * SCALE, lh * SCALE), bg)
    ImageDraw.Draw(im).text((0, int(size * 0.3) * SCALE + dy), text, fill=colour, font=font(size * SCALE))
    return np.asarray(im.resize((width, lh), Image.Resampling.BOX))


def photo(w: int, h: int, seed: int, noise: bool = False) -> np.ndarray:
    """A photo-like block: smooth colour field plus grain, so it compresses like a photo."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(20, 235, (4, 6, 3), dtype=np.uint8))
    base = np.asarray(low.resize((w, h), Image.Resampling.BICUBIC)).astype(np.int16)
    grain = rng.normal(0, 5, (h, w, 1)).astype(np.int16)
    img = np.clip(base + grain, 0, 255).astype(np.uint8)
    if noise:  # a GPU decoding the same JPEG a little differently: one level, a third of pixels
        flip = np.random.default_rng(seed + 1).random((h, w)) < 0.33
        img[flip] = np.clip(img[flip].astype(np.int16) + 1, 0, 255).astype(np.uint8)
    return np.asarray(img, dtype=np.uint8)


@dataclass
class Variant:
    subpixel_paragraphs: frozenset[int] = frozenset()
    photo_noise: bool = False
    word_at: tuple[int, int] | None = None  # (section, paragraph) whose text changes one word
    button: tuple[int, int, int] = GREEN
    swapped_card: int | None = None
    banner_after: int | None = None
    heading_change: int | None = None
    reflow: int | None = None
    push_px: int = 0  # blank rows after the hero; the page keeps its height
    extra: dict[str, object] = field(default_factory=dict)


class Page:
    """Lays blocks out top to bottom at one viewport width."""

    def __init__(self, width: int, variant: Variant) -> None:
        self.w = width
        self.v = variant
        self.blocks: list[np.ndarray] = []
        self.margin = 20 if width < 700 else max(40, (width - 960) // 2)
        self.paragraph = 0

    def solid(self, h: int, colour: tuple[int, int, int]) -> np.ndarray:
        return np.full((h, self.w, 3), colour, dtype=np.uint8)

    def header(self) -> None:
        h = 64 if self.w < 900 else 88
        b = self.solid(h, DARK)
        self._text_at(b, "GREENPEACE", 22 if self.w < 900 else 28, WHITE, DARK, 20, (h - 40) // 2)
        if self.w >= 900:
            x = self.w - 560
            for item in ("Act", "Explore", "About", "News", "Press"):
                self._text_at(b, item, 18, WHITE, DARK, x, (h - 28) // 2)
                x += 90
        self.blocks.append(b)

    def hero(self, seed: int, title: str) -> None:
        h = int(self.w * (0.9 if self.w < 700 else 0.5))
        b = photo(self.w, h, seed, self.v.photo_noise).copy()
        y = h - 150
        for line in wrap(title, 30 if self.w < 700 else 44, self.w - 2 * self.margin)[:2]:
            size = 30 if self.w < 700 else 44
            strip = text_line(line, size, self.w - 2 * self.margin, WHITE, (40, 40, 40))
            b[y : y + strip.shape[0], self.margin : self.margin + strip.shape[1]] = strip
            y += strip.shape[0]
        self.blocks.append(b)

    def _text_at(self, block: np.ndarray, text: str, size: int, colour: tuple[int, int, int],
                 bg: tuple[int, int, int], x: int, y: int) -> None:
        width = min(int(font(size).getlength(text)) + 8, block.shape[1] - x)
        strip = text_line(text, size, width, colour, bg)
        h = min(strip.shape[0], block.shape[0] - y)
        block[y : y + h, x : x + width] = strip[:h]

    def text_section(self, section: int, seed: int, paragraphs: int) -> None:
        rng = np.random.default_rng(seed)
        pad = 48
        inner = self.w - 2 * self.margin
        heading = sentence(rng, 5)
        if self.v.heading_change == section:
            heading = "Our new campaign starts today"
        parts: list[np.ndarray] = [self.solid(pad, WHITE)]
        for line in wrap(heading, 30, inner):
            parts.append(self._line(line, 30, INK, WHITE, 0))
        parts.append(self.solid(16, WHITE))
        for p in range(paragraphs):
            text = " ".join(sentence(rng, int(rng.integers(8, 16))) for _ in range(int(rng.integers(3, 6))))
            if self.v.word_at == (section, p):
                words = text.split()
                words[len(words) // 2] = "tomorrow"
                text = " ".join(words)
            width = inner
            if self.v.reflow == section and p == 0:
                width = int(inner * 0.8)
            dy = 1 if self.paragraph in self.v.subpixel_paragraphs else 0
            self.paragraph += 1
            for line in wrap(text, 18, width):
                parts.append(self._line(line, 18, INK, WHITE, dy))
            parts.append(self.solid(18, WHITE))
        parts.append(self.solid(pad, WHITE))
        self.blocks.append(np.concatenate(parts))

    def _line(self, text: str, size: int, colour: tuple[int, int, int], bg: tuple[int, int, int],
              dy: int) -> np.ndarray:
        strip = text_line(text, size, self.w - 2 * self.margin, colour, bg, dy)
        row = self.solid(strip.shape[0], bg)
        row[:, self.margin : self.margin + strip.shape[1]] = strip
        return row

    def cards(self, seed: int, n: int) -> None:
        cols = 1 if self.w < 700 else 2 if self.w < 1100 else 3
        gap = 24
        inner = self.w - 2 * self.margin
        cw = (inner - gap * (cols - 1)) // cols
        ph = int(cw * 0.6)
        rng = np.random.default_rng(seed)
        rows: list[np.ndarray] = [self.solid(32, SAND)]
        for r in range((n + cols - 1) // cols):
            title_lines = 2
            text_lines = 3
            ch = ph + 16 + title_lines * 35 + text_lines * 28 + 24
            row = self.solid(ch + gap, SAND)
            for c in range(cols):
                k = r * cols + c
                if k >= n:
                    break
                x = self.margin + c * (cw + gap)
                card = np.full((ch, cw, 3), WHITE, dtype=np.uint8)
                pseed = seed * 100 + k + (7777 if self.v.swapped_card == k else 0)
                card[:ph] = photo(cw, ph, pseed, self.v.photo_noise)
                y = ph + 16
                for line in wrap(sentence(rng, 7), 22, cw - 32)[:title_lines]:
                    s = text_line(line, 22, cw - 32, INK, WHITE)
                    card[y : y + s.shape[0], 16 : 16 + s.shape[1]] = s
                    y += s.shape[0]
                y = ph + 16 + title_lines * 35
                for line in wrap(sentence(rng, 18), 16, cw - 32)[:text_lines]:
                    s = text_line(line, 16, cw - 32, (80, 80, 80), WHITE)
                    card[y : y + s.shape[0], 16 : 16 + s.shape[1]] = s
                    y += s.shape[0]
                row[:ch, x : x + cw] = card
            rows.append(row)
        rows.append(self.solid(8, SAND))
        self.blocks.append(np.concatenate(rows))

    def band(self, text: str, colour: tuple[int, int, int], button: tuple[int, int, int] | None = None) -> None:
        h = 240
        b = self.solid(h, colour)
        size = 26 if self.w < 700 else 34
        lines = wrap(text, size, self.w - 2 * self.margin)[:2]
        y = 40
        for line in lines:
            s = text_line(line, size, self.w - 2 * self.margin, WHITE, colour)
            b[y : y + s.shape[0], self.margin : self.margin + s.shape[1]] = s
            y += s.shape[0]
        if button is not None:
            bw, bh = 200, 52
            b[h - bh - 30 : h - 30, self.margin : self.margin + bw] = button
            self._text_at(b, "Join us", 20, WHITE, button, self.margin + 50, h - bh - 30 + 10)
        self.blocks.append(b)

    def footer(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        h = 320 if self.w < 700 else 220
        b = self.solid(h, NAVY)
        cols = 1 if self.w < 700 else 4
        for c in range(cols):
            x = self.margin + c * ((self.w - 2 * self.margin) // cols)
            for r in range(5 if cols == 1 else 4):
                self._text_at(b, WORDS[int(rng.integers(0, len(WORDS)))].capitalize(), 16, (200, 210, 220), NAVY,
                              x, 30 + r * 40)
        self.blocks.append(b)

    def image(self) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate(self.blocks))


def build_page(width: int, sections: int, seed: int, variant: Variant) -> np.ndarray:
    """A Planet 4 style page: header, hero, then alternating text/cards/bands, footer."""
    p = Page(width, variant)
    p.header()
    p.hero(seed, "People power for a green and peaceful future")
    if variant.push_px:
        p.blocks.append(p.solid(variant.push_px, WHITE))
    for s in range(sections):
        if variant.banner_after == s:
            p.band("Breaking: sign the petition to protect the oceans now", (220, 70, 40), WHITE)
        kind = s % 3
        if kind == 0:
            p.text_section(s, seed * 31 + s, 3)
        elif kind == 1:
            p.cards(seed * 17 + s, 6)
        else:
            p.band(sentence(np.random.default_rng(seed + s), 8), GREEN if s % 2 else DARK,
                   variant.button if s == 2 else None)
    p.footer(seed)
    img = p.image()
    return img[: img.shape[0] - variant.push_px] if variant.push_px else img


def drift(img: np.ndarray) -> np.ndarray:
    """Colour management drift: green and blue one level lower (ΔE well under 1) everywhere."""
    out = img.copy()
    g, b = out[..., 1], out[..., 2]
    g[g > 0] -= 1
    b[b > 0] -= 1
    return out


# page name -> (sections, seed, variant name); sections set the page's length.
PAGES: list[tuple[str, int, int, str]] = [
    ("Home", 6, 1, "identical"),
    ("About", 4, 2, "identical"),
    ("Press", 5, 3, "reencoded"),
    ("Search", 3, 4, "reencoded"),
    ("Explore", 8, 5, "subpixel"),
    ("News", 7, 6, "photonoise"),
    ("Donate", 5, 7, "drift"),
    ("Act", 7, 8, "word"),
    ("Article", 8, 9, "recolour"),
    ("Campaign", 11, 10, "banner"),
    ("Petition", 7, 11, "reflow"),
    ("Events", 6, 12, "pushed"),
]

VARIANTS: dict[str, Variant] = {
    "identical": Variant(),
    "reencoded": Variant(),
    "subpixel": Variant(subpixel_paragraphs=frozenset({1, 4, 7})),
    "photonoise": Variant(photo_noise=True),
    "drift": Variant(),
    "word": Variant(word_at=(3, 1)),
    "recolour": Variant(button=(198, 40, 40), swapped_card=2),
    "banner": Variant(banner_after=6),
    "reflow": Variant(heading_change=3, reflow=6),
    "pushed": Variant(push_px=6),
}

EXPECTED = {"identical": "unchanged", "reencoded": "unchanged", "subpixel": "noise", "photonoise": "noise",
            "drift": "noise", "word": "changed", "recolour": "changed", "banner": "changed", "reflow": "changed",
            "pushed": "changed"}


def save_png(arr: np.ndarray, path: Path, level: int = 6) -> None:
    Image.fromarray(arr).save(path, format="PNG", compress_level=level)


def generated_pair(name: str, sections: int, seed: int, variant: str, vp: str, width: int,
                   ref_dir: Path, test_dir: Path) -> dict[str, object]:
    file = f"p4_{name}_0_document_{[v for v, _ in VIEWPORTS].index(vp)}_{vp}.png"
    ref = build_page(width, sections, seed, Variant())
    ref_path, test_path = ref_dir / file, test_dir / file
    save_png(ref, ref_path)
    if variant == "identical":
        shutil.copyfile(ref_path, test_path)
        test = ref
    elif variant == "reencoded":
        test = ref
        save_png(ref, test_path, level=1)
    elif variant == "drift":
        test = drift(ref)
        save_png(test, test_path)
    else:
        test = build_page(width, sections, seed, VARIANTS[variant])
        save_png(test, test_path)
    same = ref.shape == test.shape
    mismatch = float((ref != test).any(axis=2).mean() * 100) if same else 100.0
    return {
        "pair": {
            "reference": f"../bitmaps_reference/{file}",
            "test": f"../bitmaps_test/{TIMESTAMP}/{file}",
            "selector": "document",
            "fileName": file,
            "label": name,
            "requireSameDimensions": False,
            "misMatchThreshold": 3,
            "url": f"https://www.greenpeace.org/bench/{name.lower()}/",
            "referenceUrl": "",
            "expect": 0,
            "viewportLabel": vp,
            "diff": {
                "isSameDimensions": same,
                "dimensionDifference": {"width": int(test.shape[1] - ref.shape[1]),
                                        "height": int(test.shape[0] - ref.shape[0])},
                "misMatchPercentage": f"{mismatch:.2f}",
            },
        },
        "status": "pass" if mismatch <= 3 else "fail",
        "_variant": variant,
        "_size": [int(test.shape[1]), int(test.shape[0])],
    }


def fixture_tests(ref_dir: Path, test_dir: Path) -> list[dict[str, object]]:
    """The real BackstopJS report's tests and images, paths unchanged."""
    text = (FIXTURE / "html_report" / "config.js").read_text()
    data = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    for src in (FIXTURE / "bitmaps_reference").glob("*.png"):
        shutil.copyfile(src, ref_dir / src.name)
    for src in (FIXTURE / "bitmaps_test" / TIMESTAMP).iterdir():
        shutil.copyfile(src, test_dir / src.name)
    return list(data["tests"])


def make(out: Path, progress: Callable[[str], None] = print) -> Path:
    data_dir = out / "backstop_data"
    tmp = out / "backstop_data.part"
    shutil.rmtree(tmp, ignore_errors=True)
    ref_dir, test_dir, html = tmp / "bitmaps_reference", tmp / "bitmaps_test" / TIMESTAMP, tmp / "html_report"
    for d in (ref_dir, test_dir, html):
        d.mkdir(parents=True)
    tests = fixture_tests(ref_dir, test_dir)
    manifest: dict[str, dict[str, object]] = {}
    for name, sections, seed, variant in PAGES:
        for vp, width in VIEWPORTS:
            t = generated_pair(name, sections, seed, variant, vp, width, ref_dir, test_dir)
            size: list[int] = t.pop("_size")  # type: ignore[assignment]
            file_name = t["pair"]["fileName"]  # type: ignore[index]
            manifest[str(file_name)] = {"variant": t.pop("_variant"), "expected": EXPECTED[variant], "size": size}
            tests.append(t)
            progress(f"{name:10s} {vp:8s} {size[0]:5d} x {size[1]:6d}  {variant}")
    report = {"testSuite": "BackstopJS", "tests": tests, "id": "planet4_bench"}
    (html / "config.js").write_text("report(" + json.dumps(report, indent=2) + ");\n")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)
    tmp.rename(data_dir)
    return data_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "work" / "report")
    ap.add_argument("--force", action="store_true", help="rebuild even if the report exists")
    args = ap.parse_args(argv)
    target = args.out / "backstop_data"
    if (target / "html_report" / "config.js").is_file() and not args.force:
        print(f"{target} exists (use --force to rebuild)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    make(args.out)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
