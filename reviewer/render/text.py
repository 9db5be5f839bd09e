"""Text that has to fit: labels shortened where they are least distinctive."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut in the middle so both ends stay.

    Pair labels are often paths (`/components/textarea/example-textarea-error`) whose
    distinctive part is the end; cutting the end makes rows look alike. More of the end is
    kept than of the start, and a cut prefers a `/` or space boundary near its place.
    """
    text = " ".join(text.split())
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width <= 2:
        return text[:width - 1] + ELLIPSIS if width == 2 else ELLIPSIS
    room = width - 1
    head = room * 2 // 5
    tail = room - head
    start, end = text[:head], text[len(text) - tail:]
    # Move the cut to a boundary when one is close, so words and path parts stay whole.
    for sep in ("/", " ", "-", "_"):
        k = end.find(sep)
        if 0 < k <= tail // 3:
            end = end[k:]
            break
    return start + ELLIPSIS + end
