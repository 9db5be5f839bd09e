"""Decode screenshots into RGB arrays, safely.

BackstopJS writes PNG; anything else under a .png name, a truncated file or a header that
declares a decompression bomb becomes an ImageError with a one-line reason, never a crash.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from reviewer.errors import ImageError

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


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


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


def to_rgb(im: Image.Image) -> RGB:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.uint32)
        top = 65535 if im.mode.startswith("I;16") else max(int(arr.max()), 1)
        grey = (arr * 255 // top).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[:, :, 3:4]
        rgb = (rgba[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
        return np.ascontiguousarray(rgb.astype(np.uint8))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
