"""Property-based fuzzing (hypothesis, bounded by max_examples): whatever the input, the parser
returns a report or a clear ReportError, the decoder an array or a clear ImageError, and the
comparison a valid verdict with regions inside the image."""

from __future__ import annotations

import json

import numpy as np
from hostile import GOOD_PNG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewer.backstop import parse_config_js, report_from_data
from reviewer.config import Settings
from reviewer.errors import ImageError, ReportError
from reviewer.imaging.compare import compare_images
from reviewer.imaging.decode import load_rgb
from reviewer.model import Verdict

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
pair_keys = st.sampled_from(["reference", "test", "label", "fileName", "selector", "viewportLabel", "diff",
                             "misMatchThreshold", "error", "engineErrorMsg", "diffImage", "url"])
pairs = st.dictionaries(pair_keys, json_values, max_size=8)
tests = st.lists(st.one_of(st.fixed_dictionaries({"pair": pairs, "status": json_values}), json_values), max_size=6)


@FUZZ
@given(st.text(max_size=300))
def test_config_js_parser_never_crashes_on_text(text):
    try:
        assert isinstance(parse_config_js(text), dict)
    except ReportError as exc:
        assert str(exc) and "\n" not in str(exc)


@FUZZ
@given(json_values)
def test_config_js_parser_on_jsonp_of_any_json(value):
    text = "report(" + json.dumps(value) + ");"
    try:
        assert parse_config_js(text) == value
    except ReportError:
        assert not isinstance(value, dict)


@FUZZ
@given(st.dictionaries(st.sampled_from(["tests", "id", "testSuite"]), json_values) | st.fixed_dictionaries(
    {"tests": tests, "id": json_values}))
def test_report_builder_on_any_structure(tmp_path_factory, data):
    root = tmp_path_factory.getbasetemp() / "fuzz-root"
    (root / "html_report").mkdir(parents=True, exist_ok=True)
    try:
        report = report_from_data(data, root, root / "html_report", root / "html_report" / "config.js")
    except ReportError as exc:
        assert "tests" in str(exc)
        return
    for p in report.pairs:
        assert isinstance(p.label, str) and p.label.isprintable()
        for path in (p.reference, p.test):
            assert path is None or path.is_relative_to(root.resolve())


@FUZZ
@given(st.binary(max_size=400) | st.builds(lambda cut, junk: GOOD_PNG[:cut] + junk,
                                            st.integers(0, len(GOOD_PNG)), st.binary(max_size=64)))
def test_png_decoder_never_crashes(tmp_path_factory, blob):
    path = tmp_path_factory.getbasetemp() / "fuzz.png"
    path.write_bytes(blob)
    try:
        arr = load_rgb(path)
    except ImageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3


@FUZZ
@given(st.integers(1, 24), st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**32 - 1))
def test_compare_images_on_random_pairs(h1, h2, w, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h1, w, 3), dtype=np.uint8)
    b = a[:h2].copy() if h2 <= h1 else np.concatenate([a, rng.integers(0, 256, (h2 - h1, w, 3), np.uint8)])
    b[rng.random(b.shape[:2]) < 0.1] = rng.integers(0, 256, 3, dtype=np.uint8)
    res = compare_images(a, b, Settings())
    assert res.verdict in (Verdict.UNCHANGED, Verdict.NOISE, Verdict.CHANGED)
    for r in res.regions:
        assert r.box.x >= 0 and r.box.x2 <= w and r.box.y >= 0 and r.box.y2 <= max(h2, 1)

