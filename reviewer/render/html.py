"""index.html: the ranked review page (pure: Review in, HTML text out).

Report text (labels, URLs, selectors, errors) reaches the page only through Jinja2's
autoescaping or as JSON inside a non-executable script block, so a label such as
`<script>` is shown as text and never runs. The page makes no network request: styles and
script are inline, images are relative files next to it.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from reviewer.model import Review
from reviewer.render.jsonout import review_dict

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


def render_html(review: Review, actions: dict[str, Any] | None = None) -> str:
    """`actions` (used by `reviewer serve`) adds approve/hold/reject controls to the page."""
    data = review_dict(review)
    template = _env.get_template("review.html.j2")
    return template.render(review=data, data_json=safe_json(data), actions=actions,
                           actions_json=safe_json(actions or {}))
