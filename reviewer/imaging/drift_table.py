"""Upper bounds of CIEDE2000 for small colour changes, by colour bin: most pixels of a page that
drifted by a level or two are proven `drift` without computing their colour difference.

A page whose colours all moved by one or two levels (a browser or colour-management update)
has millions of differing pixels and, in its photos, about one distinct colour pair per pixel:
computing CIEDE2000 for each was most of the time such a page took. For a pixel whose channels
differ by at most k levels (k = 1, 2), the table holds, for the 8 x 8 x 8 bin of its reference
colour, the largest CIEDE2000 between any colour c of the bin and any c + d with max |d| = k,
rounded up to float32. When that bound is below the drift threshold, the pixel's own value is
too, and the pixel is `drift` exactly as the full computation would say (99.6% of colours for
k = 1 and 87% for k = 2 at the default threshold of 2.0).

The table is built once, exhaustively (every colour, every change; about 4 minutes on two
cores) with the same Lab conversion and CIEDE2000 as the analysis:

    .venv/bin/python -m reviewer.imaging.drift_table          # rewrites drift_bounds.npz

tests/test_drift_table.py recomputes bins exhaustively and checks them against the file.
"""

from __future__ import annotations

import itertools
import sys
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from skimage.color import deltaE_ciede2000

from reviewer.imaging.colour import srgb_to_lab

BIN_BITS = 5  # 32 bins per channel: bins of 8 x 8 x 8 colours
K_MAX = 2  # tables for changes of at most 1 and at most 2 levels per channel
TABLE_FILE = Path(__file__).with_name("drift_bounds.npz")
# A bound this close to the threshold decides nothing: the analysis computes CIEDE2000 on
# chunks where an element's place can change its last bit (SIMD body or scalar tail).
MARGIN = 1e-4


def changes(k: int) -> list[tuple[int, ...]]:
    """Every per-channel change whose largest component is exactly k levels."""
    return [d for d in itertools.product(range(-k, k + 1), repeat=3) if max(abs(v) for v in d) == k]


def bin_of(colours: NDArray[np.uint8]) -> NDArray[np.intp]:
    """The bin index of each (N, 3) colour."""
    shift = 8 - BIN_BITS
    c = colours.astype(np.intp) >> shift
    return (c[:, 0] << (2 * BIN_BITS)) | (c[:, 1] << BIN_BITS) | c[:, 2]


def bin_colours(index: int) -> NDArray[np.uint8]:
    """Every colour of one bin, (512, 3)."""
    side = 1 << (8 - BIN_BITS)
    r, g, b = index >> (2 * BIN_BITS), (index >> BIN_BITS) & ((1 << BIN_BITS) - 1), index & ((1 << BIN_BITS) - 1)
    axis = np.arange(side)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    return (grid + np.array([r, g, b]) * side).astype(np.uint8)


def exact_max(colours: NDArray[np.uint8], k: int) -> NDArray[np.float32]:
    """For each colour c, the largest CIEDE2000(c, c + d) over the changes d of size k (changes
    that leave the colour range are clipped), as float32 rounded up."""
    lab = srgb_to_lab(colours).T
    best = np.zeros(colours.shape[0], dtype=np.float32)
    wide = colours.astype(np.int16)
    for d in changes(k):
        other = np.clip(wide + np.array(d, dtype=np.int16), 0, 255).astype(np.uint8)
        de = deltaE_ciede2000(lab, srgb_to_lab(other).T, channel_axis=0)
        np.maximum(best, round_up(de), out=best)
    return best


def round_up(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """float32 values never below the float64 ones."""
    f = values.astype(np.float32)
    low = f.astype(np.float64) < values
    f[low] = np.nextafter(f[low], np.float32(np.inf))
    return f


def build(k: int, chunk_bins: int = 64) -> NDArray[np.float32]:
    """The bound of every bin for changes of size k: exhaustive, a few minutes per table."""
    n = 1 << (3 * BIN_BITS)
    table = np.zeros(n, dtype=np.float32)
    per = 1 << (3 * (8 - BIN_BITS))
    for start in range(0, n, chunk_bins):
        colours = np.concatenate([bin_colours(i) for i in range(start, start + chunk_bins)])
        table[start : start + chunk_bins] = exact_max(colours, k).reshape(chunk_bins, per).max(axis=1)
    return table


@cache
def tables() -> tuple[NDArray[np.float32], ...]:
    """(bounds for 1 level, bounds for 2 levels), loaded once per process."""
    with np.load(TABLE_FILE) as data:
        return tuple(np.ascontiguousarray(data[f"k{k}"], dtype=np.float32) for k in range(1, K_MAX + 1))


@cache
def _by_size() -> NDArray[np.float32]:
    """All tables in one array indexed by size * bins + bin; sizes 0 and above K_MAX bound nothing."""
    n = 1 << (3 * BIN_BITS)
    out = np.full((K_MAX + 2) * n, np.inf, dtype=np.float32)
    for k, table in enumerate(tables(), start=1):
        out[k * n : (k + 1) * n] = table
    return out


def proven_drift(ca: NDArray[np.uint8], cb: NDArray[np.uint8], threshold: float) -> NDArray[np.bool_]:
    """True where the bound proves CIEDE2000(ca, cb) < threshold; False means unknown."""
    if ca.shape[0] == 0 or threshold <= MARGIN:
        return np.zeros(ca.shape[0], dtype=bool)
    shift = 8 - BIN_BITS
    size = _abs_diff(ca[:, 0], cb[:, 0])
    np.maximum(size, _abs_diff(ca[:, 1], cb[:, 1]), out=size)
    np.maximum(size, _abs_diff(ca[:, 2], cb[:, 2]), out=size)
    np.minimum(size, K_MAX + 1, out=size)
    index = size.astype(np.int32) << (3 * BIN_BITS)
    index |= (ca[:, 0] >> shift).astype(np.int32) << (2 * BIN_BITS)
    index |= (ca[:, 1] >> shift).astype(np.int32) << BIN_BITS
    index |= ca[:, 2] >> shift
    return np.take(_by_size(), index) < threshold - MARGIN


def _abs_diff(x: NDArray[np.uint8], y: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.maximum(x, y) - np.minimum(x, y)


def main() -> None:
    built = {f"k{k}": build(k) for k in range(1, K_MAX + 1)}
    np.savez_compressed(TABLE_FILE, k1=built["k1"], k2=built["k2"])
    for name, table in built.items():
        print(f"{name}: largest bound {table.max():.4f}, bins under 2.0: {(table < 2.0).mean():.1%}", file=sys.stderr)


if __name__ == "__main__":
    main()
