"""Renderers against golden files. Regenerate after an intended change with
REVIEWER_UPDATE_GOLDEN=1 python -m pytest tests/test_renderers.py, and review the diff."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sample_review import sample_review

from reviewer.render.html import render_html, safe_json
from reviewer.render.jsonout import render_json
from reviewer.render.junit import render_junit
from reviewer.render.markdown import render_markdown

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("REVIEWER_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"golden file {name} is missing; run with REVIEWER_UPDATE_GOLDEN=1, review it and commit it")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_markdown_golden():
    check_golden("summary.md", render_markdown(sample_review(), page_url="https://output.circle-artifacts.com/output/job/abc/artifacts/0/app/backstop_data/reviewer/index.html"))


def test_junit_golden_and_valid():
    text = render_junit(sample_review())
    check_golden("junit.xml", text)
    suite = ET.fromstring(text.split("\n", 1)[1])
    assert suite.get("tests") == "6" and suite.get("failures") == "3" and suite.get("errors") == "1"
    assert len(suite.findall("testcase")) == 6
    assert len(suite.findall("testcase/failure")) == 3 and len(suite.findall("testcase/error")) == 1


def test_json_golden_and_contract():
    text = render_json(sample_review())
    check_golden("review.json", text)
    data = json.loads(text)
    assert data["schema"] == 1
    assert data["decision"] == {"action": "hold", "reasons": data["decision"]["reasons"]}
    assert [p["rank"] for p in data["pairs"]] == [1, 2, 3, 4, 5, 6]
    assert [p["verdict"] for p in data["pairs"]] == ["changed"] * 3 + ["error", "noise", "unchanged"]
    assert data["pairs"][0]["regions"][0].keys() >= {"x", "y", "w", "h", "kind"}


def test_json_digest_ignores_time_but_not_content():
    from dataclasses import replace

    r = sample_review()
    a = json.loads(render_json(r))["digest"]
    b = json.loads(render_json(replace(r, generated_at="2030-01-01T00:00:00Z")))["digest"]
    assert a == b
    c = json.loads(render_json(replace(r, settings_digest="other")))["digest"]
    assert a != c


def test_markdown_escapes_report_text():
    md = render_markdown(sample_review())
    assert "<b>" not in md and "\\<b\\>" in md
    assert "Donate \\| \\<b\\>now\\</b\\>" in md


def test_html_escapes_report_text():
    html = render_html(sample_review())
    assert "<b>now</b>" not in html
    assert "&lt;b&gt;now&lt;/b&gt;" in html or "\\u003cb\\u003enow" in html


def test_safe_json_cannot_close_its_script_block():
    text = safe_json({"label": "</script><script>alert(1)</script><!--"})
    assert "</script" not in text and "<!--" not in text
    assert json.loads(text) == {"label": "</script><script>alert(1)</script><!--"}
