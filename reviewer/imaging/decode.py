"""Decode screenshots into RGB arrays, safely.

BackstopJS writes PNG; anything else under a .png name, a truncated file or a header that
declares a decompression bomb becomes an ImageError with a one-line reason, never a crash.

Pillow reads and checks every header. The pixels of the 8-bit RGB and RGBA PNGs that browsers
write are decoded by libspng (pyspng) straight into an array: about 30% faster than Pillow,
which also keeps its own copy of the image while handing it over. Anything libspng declines
is decoded by Pillow, so libspng can only make decoding faster, never refuse a file.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from reviewer.errors import ImageError

try:
    import pyspng
except ImportError:  # no wheel for this platform (see pyproject.toml): Pillow decodes everything
    pyspng = None

# A 1500 px wide page 40,000 px tall is already far beyond any real Planet 4 page; a header
# declaring more is a decompression bomb, not a screenshot.
MAX_PIXELS = 1500 * 40_000
# BackstopJS writes PNG. A JPEG is accepted only under a .jpg/.jpeg name: anything else
# wearing a .png name means the file is not what the report says it is.
ACCEPTED_FORMATS = {".png": frozenset({"PNG"}), ".jpg": frozenset({"JPEG"}), ".jpeg": frozenset({"JPEG"})}

# BackstopJS copies these images from its capture/resources/ folder when it cannot take the
# screenshot (selector missing, hidden, or an error while capturing); identified by digest.
BACKSTOP_PLACEHOLDERS: dict[str, str] = {
    "0cc2dadaaf27618da40a151cc0888be71aa2754f467563b001a6c054e700fa08": "the selector was not found on the page",
    "159d14d1f0ed69742cd26df387df446efdeeed34227f56bf36b8343fb4054277": "the selector is not visible on the page",
    "3f564ca7662a9c13bc5c2189bc668eb5655a7421886880e0e053458c06202ab9": "BackstopJS hit an error while capturing",
    "a5bb737a97ad71ebce0cf35e8f30e466b641daf1f7bc5c63228b0731c9efdec8": "BackstopJS hit an error while capturing",
}

RGB = NDArray[np.uint8]

# Pillow registers its format plugins on the first open; done at import, before workers fork.
Image.preinit()


def placeholder_reason(digest: str) -> str | None:
    return BACKSTOP_PLACEHOLDERS.get(digest)


def load_rgb(path: Path) -> RGB:
    """Decode to an (H, W, 3) uint8 array; transparency is composited on white like a browser page."""
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path.name} is empty (0 bytes): the screenshot was never written completely")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format or "?"
                if fmt not in ACCEPTED_FORMATS.get(path.suffix.lower(), ACCEPTED_FORMATS[".png"]):
                    raise ImageError(f"{path.name} is a {fmt} file, not a PNG screenshot")
                w, h = im.size
                if w <= 0 or h <= 0:
                    raise ImageError(f"{path.name} has no pixels ({w}x{h})")
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"{path.name} declares {w}x{h} pixels, more than any screenshot "
                        f"({MAX_PIXELS:,} max); refusing to decode it"
                    )
                fast = _decode_spng(path, im)
                if fast is not None:
                    return fast
                im.load()
                return to_rgb(im)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path.name} is missing from the report") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path.name} is too large to be a screenshot (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow raises OSError for truncated data, UnidentifiedImageError for non-images.
        raise ImageError(
            f"{path.name} cannot be decoded ({_short(exc)}); the file is damaged or not an image"
        ) from None


# IHDR colour types libspng decodes here: truecolour and truecolour with alpha, at 8 bits.
_SPNG_FORMATS = {2: "RGB", 6: "RGBA"}


def _decode_spng(path: Path, im: Image.Image) -> RGB | None:
    """The pixels of an 8-bit RGB/RGBA PNG decoded by libspng, or None to let Pillow do it
    (another kind of PNG, or a file libspng refuses: Pillow then decides what is wrong)."""
    if pyspng is None or im.format != "PNG" or "transparency" in im.info:
        return None
    data = path.read_bytes()
    # IHDR is the first chunk (Pillow checked it): bit depth at byte 24, colour type at 25.
    if len(data) < 29 or data[24] != 8 or data[25] not in _SPNG_FORMATS:
        return None
    # pyspng tells libspng to ignore chunk checksums; a screenshot damaged in transit must not
    # decode into plausible wrong pixels, so they are checked here (~4% of the decode time).
    if not _chunks_intact(data):
        return None
    try:
        arr = pyspng.load(data, format=_SPNG_FORMATS[data[25]])
    except RuntimeError:
        return None
    if arr.dtype != np.uint8 or arr.shape[:2] != (im.size[1], im.size[0]):
        return None
    return rgba_on_white(arr) if arr.shape[2] == 4 else np.ascontiguousarray(arr)


def _chunks_intact(data: bytes) -> bool:
    """Every chunk up to IEND is complete and matches its CRC-32."""
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos : pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(data) or zlib.crc32(view[pos + 4 : end]) != int.from_bytes(view[end : end + 4], "big"):
            return False
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = end + 4
    return False


def rgba_on_white(rgba: NDArray[np.uint8]) -> RGB:
    """Composite RGBA on white, like a browser page behind a transparent screenshot."""
    wide = rgba.astype(np.uint16)
    alpha = wide[:, :, 3:4]
    rgb = (wide[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(rgb.astype(np.uint8))


def to_rgb(im: Image.Image) -> RGB:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.uint32)
        top = 65535 if im.mode.startswith("I;16") else max(int(arr.max()), 1)
        grey = (arr * 255 // top).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return rgba_on_white(np.asarray(im.convert("RGBA"), dtype=np.uint8))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
