"""Colour differences: sRGB to CIELAB and CIEDE2000, computed once per distinct colour pair.

The values are exactly scikit-image's (`rgb2lab`, `deltaE_ciede2000`); only the work is
arranged differently: screenshots have few distinct colours, so each distinct (reference,
test) colour pair is converted and measured once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000, xyz2lab
from skimage.color.colorconv import xyz_from_rgb

Img = NDArray[np.uint8]

# Colour pairs converted at once: bounds the temporaries of a page where every pixel differs.
SLICE = 1 << 15


class DeltaECache:
    """CIEDE2000 per (reference colour, test colour) pair, remembered in a direct-mapped table.

    A page's differing pixels take few distinct colour pairs (a drifted page: thousands among
    millions of pixels), so most look-ups hit and only new pairs are converted to Lab. The
    value of a pair never depends on which other pairs are computed with it.
    """

    _EMPTY = np.uint64(1 << 63)  # packed pairs use 48 bits: never a real key

    def __init__(self, bits: int = 18) -> None:
        self.bits = bits
        self.keys = np.full(1 << bits, self._EMPTY, dtype=np.uint64)
        self.values = np.zeros(1 << bits, dtype=np.float32)

    def lookup(self, ca: Img, cb: Img) -> NDArray[np.float32]:
        if ca.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        packed = (_pack(ca).astype(np.uint64) << np.uint64(24)) | _pack(cb).astype(np.uint64)
        slot = ((packed * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.intp)
        out = self.values[slot]
        miss = np.flatnonzero(self.keys[slot] != packed)
        if miss.size:
            uniq, inverse = np.unique(packed[miss], return_inverse=True)
            de = np.concatenate([_ciede2000_packed(uniq[i : i + SLICE]) for i in range(0, uniq.size, SLICE)])
            out[miss] = de[inverse.reshape(-1)]
            uslot = ((uniq * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(np.intp)
            self.keys[uslot] = uniq
            self.values[uslot] = de
        return out


def colour_delta_e(ca: Img, cb: Img) -> NDArray[np.float32]:
    """CIEDE2000 between colour lists (N, 3), computed once per distinct colour pair.

    Screenshots have few distinct colours, so deduplicating first makes a large diff cheap.
    """
    if ca.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    packed = (_pack(ca).astype(np.uint64) << np.uint64(24)) | _pack(cb).astype(np.uint64)
    uniq, inverse = np.unique(packed, return_inverse=True)
    return _ciede2000_packed(uniq)[inverse.reshape(-1)]


def _ciede2000_packed(uniq: NDArray[np.uint64]) -> NDArray[np.float32]:
    ua = _unpack((uniq >> np.uint64(24)).astype(np.uint32))
    ub = _unpack((uniq & np.uint64(0xFFFFFF)).astype(np.uint32))
    # Channels first: the formula's many element-wise steps then run on contiguous arrays
    # (same operations, same values; about a fifth faster than on (N, 3) columns).
    lab_a = np.ascontiguousarray(srgb_to_lab(ua).T)
    lab_b = np.ascontiguousarray(srgb_to_lab(ub).T)
    return deltaE_ciede2000(lab_a, lab_b, channel_axis=0).astype(np.float32)


def _linear_lut() -> NDArray[np.float64]:
    """scikit-image's sRGB to linear step (rgb2xyz) for the 256 values of a channel: the same
    operations on the same values, so the table holds exactly what it computes per pixel."""
    arr = np.arange(256, dtype=np.float64) / 255.0
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    return arr


_LINEAR = _linear_lut()


def srgb_to_lab(colours: Img) -> NDArray[np.float64]:
    """`rgb2lab(colours[:, None, :] / 255.0)[:, 0, :]` for (N, 3) uint8 colours, with the
    power function of the sRGB curve read from a 256-entry table; then scikit-image's own
    matrix product and xyz2lab, so the values are identical."""
    linear = _LINEAR[colours][:, None, :]
    xyz = linear @ xyz_from_rgb.T.astype(linear.dtype)
    return xyz2lab(xyz)[:, 0, :]


def _pack(c: Img) -> NDArray[np.uint32]:
    c32 = c.astype(np.uint32)
    return ((c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]).astype(np.uint32)


def _unpack(p: NDArray[np.uint32]) -> Img:
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=1).astype(np.uint8)
