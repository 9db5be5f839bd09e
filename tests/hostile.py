"""A generated corpus of hostile report inputs: each builder returns bytes or a report tree."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

RUN = "20240101-000000"


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(buf, format="PNG")
    return buf.getvalue()


def page(h: int = 200, w: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = np.full((h, w, 3), 255, np.uint8)
    for _ in range(6):
        y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
        arr[y : y + 12, x : x + 18] = rng.integers(0, 200, 3)
    return arr


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A PNG whose header declares w x h pixels, with almost no data behind it."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = _chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


GOOD = page()
GOOD_PNG = png(GOOD)

# name -> (bytes of the test image, what the reason must mention)
BAD_IMAGES: dict[str, tuple[Callable[[], bytes], str]] = {
    "zero-byte": (lambda: b"", "empty"),
    "truncated": (lambda: GOOD_PNG[: len(GOOD_PNG) // 2], "cannot be decoded"),
    "corrupt": (lambda: GOOD_PNG[:70] + b"\xff" * 40 + GOOD_PNG[110:], "cannot be decoded"),
    "not-an-image": (lambda: b"<html>this is not a png</html>", "cannot be decoded"),
    "jpeg-named-png": (lambda: jpeg_bytes(GOOD), "not a PNG"),
    "decompression-bomb": (bomb_png, "screenshot"),
}

# name -> test image bytes that are the same picture in another PNG flavour (must still compare)
FLAVOURS: dict[str, Callable[[], bytes]] = {
    "alpha": lambda: png(GOOD, "RGBA"),
    "palette": lambda: _palette_png(GOOD),
    "greyscale": lambda: png(np.repeat(GOOD.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2), "L"),
    "sixteen-bit": lambda: _png16(GOOD.mean(axis=2).astype(np.uint16) * 257),
}


def _palette_png(arr: np.ndarray) -> bytes:
    # An adaptive palette holds the page's few colours exactly (convert("P") would dither).
    buf = io.BytesIO()
    Image.fromarray(arr).quantize(colors=256, method=Image.Quantize.MAXCOVERAGE).save(buf, format="PNG")
    return buf.getvalue()


def _png16(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def entry(name: str, label: str | None = None, **pair: object) -> dict[str, object]:
    base: dict[str, object] = {
        "reference": f"../bitmaps_reference/{name}", "test": f"../bitmaps_test/{RUN}/{name}",
        "selector": "document", "fileName": name, "label": label or name.removesuffix(".png"),
        "misMatchThreshold": 3, "url": "https://example.org/", "viewportLabel": "phone",
        "diff": {"isSameDimensions": True, "misMatchPercentage": "1.00"},
    }
    base.update(pair)
    return {"pair": base, "status": "fail"}


def write_report(root: Path, tests: list[dict[str, object]], images: dict[str, tuple[bytes | None, bytes | None]],
                 config_text: str | None = None) -> Path:
    """root/backstop_data with html_report/config.js and the given (reference, test) images."""
    data = root / "backstop_data"
    (data / "html_report").mkdir(parents=True, exist_ok=True)
    (data / "bitmaps_reference").mkdir(exist_ok=True)
    (data / "bitmaps_test" / RUN).mkdir(parents=True, exist_ok=True)
    for name, (ref, test) in images.items():
        if ref is not None:
            (data / "bitmaps_reference" / name).write_bytes(ref)
        if test is not None:
            (data / "bitmaps_test" / RUN / name).write_bytes(test)
    text = config_text if config_text is not None else "report(" + json.dumps({"id": "hostile", "tests": tests}) + ");"
    (data / "html_report" / "config.js").write_text(text, encoding="utf-8")
    return data


def baseline() -> tuple[list[dict[str, object]], dict[str, tuple[bytes | None, bytes | None]]]:
    """Two healthy pairs every hostile report also carries: one unchanged, one changed."""
    changed = GOOD.copy()
    changed[100:140, 10:110] = (200, 0, 0)
    tests = [entry("ok_same.png"), entry("ok_changed.png")]
    images = {"ok_same.png": (GOOD_PNG, GOOD_PNG), "ok_changed.png": (GOOD_PNG, png(changed))}
    return tests, images
