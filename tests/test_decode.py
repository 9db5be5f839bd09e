"""The libspng fast path of load_rgb gives exactly what Pillow gives, and never decides a
file's fate: what libspng declines, Pillow decodes or rejects as before."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reviewer.errors import ImageError
from reviewer.imaging import decode
from reviewer.imaging.decode import load_rgb, to_rgb

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 256, (37, 53, 4), dtype=np.uint8)
PIXELS[:, :, 3][PIXELS[:, :, 3] < 128] = 255  # some opaque, some blended


def _pillow(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return to_rgb(im)


def _save(path: Path, im: Image.Image, **kw: object) -> Path:
    im.save(path, format="PNG", **kw)
    return path


FLAVOURS = {
    "rgb": lambda p: _save(p, Image.fromarray(PIXELS[:, :, :3])),
    "rgba": lambda p: _save(p, Image.fromarray(PIXELS)),
    "rgb-interlaced": lambda p: _save(p, Image.fromarray(PIXELS[:, :, :3]), optimize=False, interlace=1),
    "rgb-colour-key": lambda p: _save(p, Image.fromarray(PIXELS[:, :, :3]),
                                      transparency=tuple(int(v) for v in PIXELS[0, 0, :3])),
    "palette": lambda p: _save(p, Image.fromarray(PIXELS[:, :, :3]).quantize(64)),
    "grey": lambda p: _save(p, Image.fromarray(PIXELS[:, :, 0])),
    "grey-alpha": lambda p: _save(p, Image.fromarray(PIXELS[:, :, :3]).convert("LA")),
    "grey-16": lambda p: _save(p, Image.fromarray(PIXELS[:, :, 0].astype(np.uint16) * 257)),
}


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_every_png_flavour_decodes_as_pillow_decodes_it(tmp_path, flavour):
    path = FLAVOURS[flavour](tmp_path / f"{flavour}.png")
    got = load_rgb(path)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.array_equal(got, _pillow(path))


def test_browser_screenshots_take_the_fast_path(tmp_path, monkeypatch):
    """8-bit RGB and RGBA, the PNGs Chromium writes, are decoded by libspng, not Pillow."""
    monkeypatch.setattr(decode, "to_rgb", lambda im: pytest.fail("decoded by Pillow"))
    for flavour in ("rgb", "rgba", "rgb-interlaced"):
        path = FLAVOURS[flavour](tmp_path / f"{flavour}.png")
        assert load_rgb(path).shape == (37, 53, 3)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def test_a_16_bit_rgb_png_is_left_to_pillow(tmp_path):
    """Pillow cannot write 16-bit RGB: built by hand, 2x1 pixels."""
    ihdr = (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([16, 2, 0, 0, 0])
    row = b"\x00" + bytes([0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x01, 0x00])
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(row)) + _chunk(b"IEND", b"")
    path = tmp_path / "rgb16.png"
    path.write_bytes(png)
    assert np.array_equal(load_rgb(path), _pillow(path))


@pytest.mark.parametrize("damage", ["truncated", "bad-idat-crc", "flipped-byte", "no-iend"])
def test_damaged_screenshots_fail_or_decode_exactly_as_with_pillow(tmp_path, damage):
    good = FLAVOURS["rgb"](tmp_path / "good.png").read_bytes()
    idat = good.index(b"IDAT")
    bad = {
        "truncated": good[: len(good) * 2 // 3],
        "bad-idat-crc": good[: idat + 10] + bytes([good[idat + 10] ^ 0x40]) + good[idat + 11 :],
        "flipped-byte": good[:-40] + bytes([good[-40] ^ 0xFF]) + good[-39:],
        "no-iend": good[:-12],
    }[damage]
    path = tmp_path / f"{damage}.png"
    path.write_bytes(bad)
    try:
        expected = _pillow(path)
    except (OSError, SyntaxError, ValueError):
        with pytest.raises(ImageError):
            load_rgb(path)
    else:
        assert np.array_equal(load_rgb(path), expected)


def test_without_pyspng_pillow_decodes_everything(tmp_path, monkeypatch):
    """Platforms with no pyspng wheel install reviewer without it."""
    monkeypatch.setattr(decode, "pyspng", None)
    for flavour in ("rgb", "rgba"):
        path = FLAVOURS[flavour](tmp_path / f"{flavour}.png")
        assert np.array_equal(load_rgb(path), _pillow(path))
