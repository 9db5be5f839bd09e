"""index.html: the ranked review page (pure: Review in, HTML text out).

The page is one file: its style and script (reviewer/render/static/) are inlined, the review
data is embedded as JSON in a non-executable `<script type="application/json">` block, and
the images are relative files next to it (images/pNNNN/...). It makes no network request:
a Content-Security-Policy forbids every fetch except images from its own folder, and allows
only the page's own script and style (by hash), so nothing injected could run.

Report text (labels, URLs, selectors, errors) reaches the page only through Jinja2's
autoescaping or as JSON that the script puts into the document with textContent, so a label
such as `<script>` is shown as text and never runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from reviewer.model import Review
from reviewer.render.jsonout import review_document

_env = Environment(
    loader=PackageLoader("reviewer", "render/templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def safe_json(data: Any) -> str:
    """JSON that cannot close its <script> block or open a comment inside it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@cache
def static_text(name: str) -> str:
    """One of the page's own files (reviewer/render/static/NAME), checked to be inlinable."""
    text = files("reviewer").joinpath("render", "static", name).read_text(encoding="utf-8")
    closing = "</script" if name.endswith(".js") else "</style"
    if closing in text.lower() or "<!--" in text:
        raise ValueError(f"{name} cannot be inlined: it contains {closing!r} or '<!--'")
    return text


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(css: str, js: str, *, connect: bool) -> str:
    """Only our own inline script/style run; images only from the page's folder; no fetch
    unless the page is served by `reviewer serve` (then only to its own origin)."""
    return "; ".join([
        "default-src 'none'",
        "img-src 'self' data: blob: file:",
        f"style-src {csp_hash(css)}",
        f"script-src {csp_hash(js)}",
        "connect-src 'self'" if connect else "connect-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ])


def render_page(data: dict[str, Any], actions: dict[str, Any] | None = None) -> str:
    """The page for a review.json dict (schema 1). `actions`: see render_html."""
    css, js = static_text("review.css"), static_text("review.js")
    template = _env.get_template("review.html.j2")
    return template.render(
        review=data, data_json=safe_json(data), actions=actions, actions_json=safe_json(actions or {}),
        css=css, js=js, csp=content_security_policy(css, js, connect=actions is not None),
    )


def render_html(review: Review, actions: dict[str, Any] | None = None) -> str:
    """`actions` (used by `reviewer serve`) adds Approve/Hold/Reject buttons to the page:
    {"endpoint": URL path, "secret": per-session secret, "enabled": bool, "why_disabled": text,
    "project": slug, "tag": tag, "describe": {action: text}}. Without it the page makes no request."""
    data = review_document(review)
    return render_page(data, actions)
