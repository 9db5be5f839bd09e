"""The report parser on every shape BackstopJS writes, and on what it must refuse."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from reviewer.backstop import parse_config_js, report_from_data
from reviewer.errors import ReportError, SourceError
from reviewer.sources.local import extract_zip, find_report_files, load_report, opened_source


def jsonp(data: object) -> str:
    return "report(" + json.dumps(data) + ");"


@pytest.mark.parametrize(
    "text", ["report({\"tests\": []});", "report({\"tests\": []})", "\ufeff report({\"tests\": []});\n"]
)
def test_config_js_variants_parse(text):
    assert parse_config_js(text) == {"tests": []}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("var x = 1;", "does not start with `report(`"),
        ("report({not json});", "no valid JSON"),
        ("report({\"tests\": []}); alert(1);", "unexpected content after"),
        ("report([1, 2]);", "must hold a JSON object"),
        ("report({\"tests\": []}", "unexpected content after"),
    ],
)
def test_config_js_refuses_anything_else(text, message):
    with pytest.raises(ReportError, match=message.replace("(", r"\(").replace("`", ".")):
        parse_config_js(text)


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "backstop_data"
    (root / "html_report").mkdir(parents=True)
    (root / "bitmaps_reference").mkdir()
    (root / "bitmaps_test" / "20240101-000000").mkdir(parents=True)
    return root


def pair(**kw):
    base = {"reference": "../bitmaps_reference/a.png", "test": "../bitmaps_test/20240101-000000/a.png",
            "selector": "document", "fileName": "a.png", "label": "Home", "misMatchThreshold": 3,
            "url": "https://example.org/", "viewportLabel": "phone"}
    base.update(kw)
    return {"pair": base, "status": kw.pop("status", "pass")}


def parse(root: Path, *tests):
    return report_from_data({"id": "site", "tests": list(tests)}, root, root / "html_report",
                            root / "html_report" / "config.js")


def test_identical_pair_with_short_diff(tmp_path):
    root = make_root(tmp_path)
    r = parse(root, pair(diff={"isSameDimensions": True, "dimensionDifference": {"width": 0, "height": 0},
                               "misMatchPercentage": "0.00"}))
    p = r.pairs[0]
    assert (p.label, p.viewport, p.selector, p.file) == ("Home", "phone", "document", "a.png")
    assert p.backstop_mismatch == 0.0 and p.same_dimensions is True
    assert p.reference == (root / "bitmaps_reference" / "a.png").resolve()
    assert p.test == (root / "bitmaps_test" / "20240101-000000" / "a.png").resolve()


def test_failed_pair_with_full_diff(tmp_path):
    root = make_root(tmp_path)
    t = pair(diff={"isSameDimensions": False, "misMatchPercentage": "12.34", "rawMisMatchPercentage": 12.3391,
                   "analysisTime": 40}, diffImage="../bitmaps_test/20240101-000000/failed_diff_a.png")
    t["status"] = "fail"
    p = parse(root, t).pairs[0]
    assert p.backstop_status == "fail" and p.backstop_mismatch == 12.34 and p.same_dimensions is False
    assert p.backstop_diff_image is not None and p.backstop_diff_image.name == "failed_diff_a.png"


def test_pair_without_diff_and_with_engine_error(tmp_path):
    root = make_root(tmp_path)
    t = pair(error="Reference file not found /x/a.png", engineErrorMsg="Waiting for selector `.x` failed")
    del t["pair"]["reference"]
    p = parse(root, t).pairs[0]
    assert p.backstop_mismatch is None and p.reference is None
    assert p.backstop_error == "Reference file not found /x/a.png; Waiting for selector `.x` failed"


def test_windows_backslash_paths(tmp_path):
    root = make_root(tmp_path)
    p = parse(root, pair(reference="..\\bitmaps_reference\\a.png",
                         test="..\\bitmaps_test\\20240101-000000\\a.png")).pairs[0]
    assert p.reference == (root / "bitmaps_reference" / "a.png").resolve()
    assert p.test == (root / "bitmaps_test" / "20240101-000000" / "a.png").resolve()
    assert p.path_problem is None


@pytest.mark.parametrize("bad", ["/etc/passwd", "../../../etc/passwd", "C:\\Windows\\win.ini",
                                 "../bitmaps_reference/../../outside.png"])
def test_paths_leaving_the_report_are_refused(tmp_path, bad):
    root = make_root(tmp_path)
    p = parse(root, pair(reference=bad)).pairs[0]
    assert p.reference is None
    assert p.path_problem and "refusing" in p.path_problem


def test_symlink_out_of_the_report_is_refused(tmp_path):
    root = make_root(tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    (root / "bitmaps_reference" / "a.png").symlink_to(secret)
    p = parse(root, pair()).pairs[0]
    assert p.reference is None and "outside the report" in (p.path_problem or "")


def test_any_characters_in_labels(tmp_path):
    root = make_root(tmp_path)
    label = "<script>alert(1)</script> Ünïcødé \u202e\x07 " + "x" * 10_000
    p = parse(root, pair(label=label)).pairs[0]
    assert p.label.startswith("<script>alert(1)</script> Ünïcødé")
    assert "\x07" not in p.label and "\u202e" not in p.label


def test_missing_and_mistyped_fields_do_not_crash(tmp_path):
    root = make_root(tmp_path)
    r = parse(root, {"pair": {"label": 5, "diff": "oops", "misMatchThreshold": "x"}}, "not a dict", {"status": 1})
    assert len(r.pairs) == 3
    assert r.pairs[0].label == "5" and r.pairs[0].backstop_mismatch is None
    assert r.pairs[1].label == "test 1" and r.pairs[1].file == "test-1"


def test_duplicate_file_names_are_reported(tmp_path):
    root = make_root(tmp_path)
    r = parse(root, pair(), pair(label="Other"))
    assert r.warnings and "repeats file name" in r.warnings[0]


def test_tests_must_be_a_list(tmp_path):
    root = make_root(tmp_path)
    with pytest.raises(ReportError, match="`tests` is missing"):
        report_from_data({"tests": {}}, root, root, root / "config.js")


# --- finding the report -------------------------------------------------------------------

def test_every_source_shape_finds_the_fixture(fixture_report, tmp_path):
    app = tmp_path / "app"
    shutil.copytree(fixture_report, app / "backstop_data")
    for source in (fixture_report, app, app / "backstop_data", app / "backstop_data" / "html_report"):
        r = load_report(source)
        assert len(r.pairs) == 30 and r.source_file.name == "config.js", source
    archive = tmp_path / "report.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", tmp_path, "app")
    with opened_source(archive) as folder:
        assert len(load_report(folder).pairs) == 30


def test_falls_back_to_json_reports(fixture_report, tmp_path):
    root = tmp_path / "backstop_data"
    shutil.copytree(fixture_report, root)
    (root / "html_report" / "config.js").write_text("garbage")
    r = load_report(root)
    assert r.source_file.name == "jsonReport.json" and len(r.pairs) == 30
    assert r.pairs[0].test is not None and r.pairs[0].test.is_file()
    (root / "json_report" / "jsonReport.json").unlink()
    r = load_report(root)
    assert r.source_file.name == "report.json" and len(r.pairs) == 30
    assert r.pairs[0].test is not None and r.pairs[0].test.is_file()
    assert r.pairs[0].reference is not None and r.pairs[0].reference.is_file()


def test_no_report_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no BackstopJS report found"):
        load_report(tmp_path)
    assert find_report_files(tmp_path) == []


def test_unreadable_report_says_what_was_tried(tmp_path):
    root = make_root(tmp_path)
    (root / "html_report" / "config.js").write_text("report({oops});")
    with pytest.raises(ReportError, match="no readable BackstopJS report"):
        load_report(root)


def test_missing_source_and_non_zip_file(tmp_path):
    with pytest.raises(SourceError, match="does not exist"), opened_source(tmp_path / "nope"):
        pass
    f = tmp_path / "x.txt"
    f.write_text("hello")
    with pytest.raises(SourceError, match="neither a folder nor a zip"), opened_source(f):
        pass


def test_zip_slip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("backstop_data/html_report/config.js", "report({\"tests\": []});")
        zf.writestr("../../escaped.txt", "pwned")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SourceError, match="zip slip"):
        extract_zip(archive, dest)
    assert not (tmp_path / "escaped.txt").exists()


def test_zip_bomb_is_refused_before_extracting(tmp_path, monkeypatch):
    import reviewer.sources.local as local

    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\0" * 2_000_000)
    monkeypatch.setattr(local, "MAX_ZIP_BYTES", 1_000_000)
    with pytest.raises(SourceError, match="would expand"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "a.bin").exists()


@pytest.mark.parametrize(("kw", "long", "short"), [
    ({"backstop_status": "fail", "backstop_mismatch": 0.0, "mismatch_threshold": 0.1, "same_dimensions": False},
     "fail: sizes differ (mismatch 0.00% is within misMatchThreshold 0.1%)", "fail: sizes differ"),
    ({"backstop_status": "fail", "backstop_mismatch": 23.85, "same_dimensions": False},
     "fail: mismatch 23.85% > misMatchThreshold 3%", "fail 23.85%"),
    ({"backstop_status": "pass", "backstop_mismatch": 0.03, "same_dimensions": True},
     "pass: mismatch 0.03% ≤ misMatchThreshold 3%", "pass 0.03%"),
    ({"backstop_status": "fail", "backstop_mismatch": None, "backstop_error": "Reference file not found"},
     "fail: Reference file not found", "fail: error"),
])
def test_backstops_verdict_is_said_with_its_real_reason(kw, long, short):
    """A pair BackstopJS failed within its threshold failed on its size: never a mismatch figure
    that contradicts the verdict."""
    from sample_review import make_pair

    from reviewer.backstop import verdict_text

    pair = make_pair(0, "Home", **kw)
    assert verdict_text(pair) == long
    assert verdict_text(pair, short=True) == short
