"""Row alignment for pages whose content moved up or down.

When a banner is inserted in the middle of a page, everything below it moves down. Comparing
row y with row y would mark the whole tail as changed. Instead we match identical rows (by
hash) with a longest-common-subsequence style diff, so the banner is reported as `inserted`
and the rest is compared with the rows it actually corresponds to.

Pages whose height changed are always aligned. A page of the same height is aligned only when
that explains most of its differing rows (content pushed down with its end cut off): the rows
that appeared and disappeared are still reported, as inserted and removed bands.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xxhash
from numpy.typing import NDArray

SegmentKind = Literal["equal", "compare", "inserted", "removed"]


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    r0: int  # reference rows [r0, r1)
    r1: int
    t0: int  # test rows [t0, t1)
    t1: int


def row_keys(img: NDArray[np.uint8]) -> list[bytes]:
    """One key per row: a 128-bit XXH3 digest of its bytes.

    Equal rows get equal keys; different rows get different keys but for a 2**-128 chance, and
    rows matched as equal are compared pixel by pixel later anyway, so a fast non-cryptographic
    hash is enough (XXH3 hashes a row about 10 times faster than BLAKE2). 16 bytes per row
    instead of a copy of the row (a 1500 x 15,000 page: 240 KB instead of 67 MB per image).
    """
    digest = xxhash.xxh3_128_digest
    if img.flags.c_contiguous:
        return [digest(row.data) for row in img.reshape(img.shape[0], -1)]
    return [digest(np.ascontiguousarray(row).data) for row in img]


def align_rows(ref: NDArray[np.uint8], test: NDArray[np.uint8]) -> list[Segment]:
    """Split both images into corresponding row segments.

    Same height: one in-place `compare` segment (see realign_same_height for pushed content).
    Different heights: an alignment.
    """
    hr, ht = ref.shape[0], test.shape[0]
    if hr == ht:
        return [Segment("compare", 0, hr, 0, ht)]
    return _align(row_keys(ref), row_keys(test))


# A same-height page is re-aligned only when this many rows differ in place (a small element
# moved is better described as a shift than as rows inserted and removed) ...
REALIGN_MIN_ROWS = 64
# ... and when the alignment leaves at most this share of them to examine.
REALIGN_MAX_SHARE = 0.5


def realign_same_height(ref: NDArray[np.uint8], test: NDArray[np.uint8],
                        differing: NDArray[np.bool_], min_band_rows: int = 0) -> list[Segment] | None:
    """An alignment of two same-height images whose content moved vertically, or None when
    comparing row y with row y is the better account.

    `differing` is the per-row in-place difference. The alignment is used when it turns many
    differing rows into a few inserted, removed or compared ones: a block inserted near the top
    pushes everything below it down and cuts the page's end off, and every row below it differs
    in place although nothing there changed. It is not used when no inserted or removed band is
    taller than `min_band_rows`: content moved by that little is a move, not new rows.
    """
    in_place = int(differing.sum())
    if ref.shape[0] != test.shape[0] or in_place < REALIGN_MIN_ROWS:
        return None
    if not _rows_found_elsewhere(ref, test, differing):
        return None
    segments = _align(row_keys(ref), row_keys(test))
    moved = any(s.kind in ("inserted", "removed") and max(s.r1 - s.r0, s.t1 - s.t0) > min_band_rows
                for s in segments)
    left = sum(max(s.r1 - s.r0, s.t1 - s.t0) for s in segments if s.kind != "equal")
    if not moved or left > REALIGN_MAX_SHARE * in_place:
        return None
    return segments


def _rows_found_elsewhere(ref: NDArray[np.uint8], test: NDArray[np.uint8], differing: NDArray[np.bool_]) -> bool:
    """A cheap necessary condition for content that moved: most of the test rows that differ
    in place occur somewhere in the reference. Rows are compared by a sample of every 16th
    pixel, which cannot miss a row that does occur, so a page that changed everywhere (colour
    drift, new photos) is ruled out for the price of a strided copy instead of hashing every row."""
    step = 16
    ref_sample = np.ascontiguousarray(ref[:, ::step]).reshape(ref.shape[0], -1)
    test_sample = np.ascontiguousarray(test[differing, ::step]).reshape(int(differing.sum()), -1)
    known = {row.tobytes() for row in ref_sample}
    found = sum(row.tobytes() in known for row in test_sample)
    return found >= 0.5 * test_sample.shape[0]


def _align(ref_rows: list[bytes], test_rows: list[bytes]) -> list[Segment]:
    matcher = difflib.SequenceMatcher(None, ref_rows, test_rows, autojunk=True)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append(Segment("equal", i1, i2, j1, j2))
        elif tag == "delete":
            segments.append(Segment("removed", i1, i2, j1, j1))
        elif tag == "insert":
            segments.append(Segment("inserted", i1, i1, j1, j2))
        else:
            segments += _replace(ref_rows, test_rows, i1, i2, j1, j2)
    return _merge_small_equal(segments)


def _replace(ref_rows: list[bytes], test_rows: list[bytes], i1: int, i2: int, j1: int, j2: int) -> list[Segment]:
    """Rows that differ and whose counts differ: compare the overlap, the excess is inserted
    or removed. The excess goes at the end or at the start of the block, whichever leaves
    fewer differing rows in the overlap (a banner is usually followed by blank rows that the
    matcher treated as too common to anchor on)."""
    n = min(i2 - i1, j2 - j1)
    if i2 - i1 == j2 - j1:
        return [Segment("compare", i1, i2, j1, j2)]
    if n <= 2:
        # A row or two against a tall block: comparing them in place would only produce a
        # sliver of "change" at the block's edge; they are better described as cut and added.
        return [Segment("removed", i1, i2, j1, j1), Segment("inserted", i2, i2, j1, j2)]
    top = sum(ref_rows[i1 + k] != test_rows[j1 + k] for k in range(n))
    bottom = sum(ref_rows[i2 - n + k] != test_rows[j2 - n + k] for k in range(n))
    if bottom < top:  # excess at the start of the block
        excess = (
            Segment("removed", i1, i2 - n, j1, j1) if i2 - i1 > n else Segment("inserted", i1, i1, j1, j2 - n)
        )
        overlap = Segment("compare", i2 - n, i2, j2 - n, j2)
        return [excess, overlap]
    out = [Segment("compare", i1, i1 + n, j1, j1 + n)]
    if i2 - i1 > n:
        out.append(Segment("removed", i1 + n, i2, j1 + n, j1 + n))
    else:
        out.append(Segment("inserted", i1 + n, i1 + n, j1 + n, j2))
    return out


def _merge_small_equal(segments: list[Segment]) -> list[Segment]:
    """Drop empty segments; keep the order (it is the page order)."""
    return [s for s in segments if (s.r1 - s.r0) > 0 or (s.t1 - s.t0) > 0]
