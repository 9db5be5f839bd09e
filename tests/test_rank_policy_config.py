from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_review import make_pair, sample_review

from reviewer.config import IgnoreRegion, Settings, load_settings, settings_from_mapping
from reviewer.errors import UsageError
from reviewer.model import Box, PairAnalysis, Region, RegionKind, Verdict
from reviewer.policy import decide
from reviewer.rank import rank, region_impact


def changed(pixels: int, contrast: float, y: int = 2000, kind: RegionKind = RegionKind.CONTENT) -> PairAnalysis:
    r = Region(Box(0, y, 10, 10), kind, pixels, contrast, 0.5, significant=True)
    return PairAnalysis(Verdict.CHANGED, "x", (r,), (100, 3000), (100, 3000), pixels)


def test_every_changed_pair_ranks_above_every_noise_pair_whatever_the_score():
    tiny = changed(4, 2.5)
    noise = PairAnalysis(Verdict.NOISE, "n", noise_pixels={"invisible": 10**6})
    ranked = rank([(make_pair(0, "N"), noise), (make_pair(1, "C"), tiny)], Settings())
    assert [rp.pair.label for rp in ranked] == ["C", "N"]
    assert ranked[0].score > 0 and ranked[1].score == 0


def test_bigger_and_stronger_changes_score_higher():
    s = Settings()
    small = rank([(make_pair(0, "a"), changed(20, 10))], s)[0].score
    big = rank([(make_pair(0, "a"), changed(20_000, 10))], s)[0].score
    strong = rank([(make_pair(0, "a"), changed(20, 80))], s)[0].score
    assert big > small and strong > small


def test_first_screen_and_inserted_content_add_explained_terms():
    s = Settings()
    below = rank([(make_pair(0, "a", "mobile"), changed(100, 30, y=2000))], s)[0]
    above = rank([(make_pair(0, "a", "mobile"), changed(100, 30, y=100))], s)[0]
    assert above.score == below.score + 15
    assert any(t.name == "first screen" and "490 px" in t.why for t in above.terms)
    ins = rank([(make_pair(0, "a"), changed(100, 30, kind=RegionKind.INSERTED))], s)[0]
    assert any(t.name == "inserted/removed" for t in ins.terms)


def test_region_impact_is_bounded():
    assert 0 < region_impact(Region(Box(0, 0, 1, 1), RegionKind.CONTENT, 1, 0.0, None, significant=True)) < 50
    assert region_impact(Region(Box(0, 0, 1, 1), RegionKind.CONTENT, 10**9, 1e6, None, significant=True)) == 50


def test_sample_order_and_ranks():
    r = sample_review()
    assert [rp.pair.label for rp in r.ranked][:3] == ["News", "Article", "Donate | <b>now</b>"]
    assert [rp.analysis.verdict.value for rp in r.ranked][3:] == ["error", "noise", "unchanged"]


def test_decision_approves_only_unchanged_and_noise():
    ok = rank([(make_pair(0, "a"), PairAnalysis(Verdict.UNCHANGED, "same")),
               (make_pair(1, "b"), PairAnalysis(Verdict.NOISE, "aa"))], Settings())
    assert decide(ok).action == "approve" and decide(ok).reasons == ()
    assert decide(()).action == "hold"
    assert decide(ok, ["config.js was truncated"]).action == "hold"


VERDICTS = st.sampled_from(list(Verdict))


@given(st.lists(VERDICTS, max_size=30), st.lists(st.text(max_size=20), max_size=2))
def test_decision_never_approves_on_doubt(verdicts, problems):
    items = [(make_pair(i, f"p{i}"), PairAnalysis(v, "r") if v is not Verdict.CHANGED else changed(10, 10))
             for i, v in enumerate(verdicts)]
    d = decide(rank(items, Settings()), problems)
    doubtful = not verdicts or problems or any(v in (Verdict.CHANGED, Verdict.ERROR) for v in verdicts)
    assert (d.action == "hold") == bool(doubtful)
    if d.action == "hold":
        assert d.reasons


# --- configuration ------------------------------------------------------------------------

def test_defaults_without_any_file(tmp_path):
    s, origin = load_settings(search_from=tmp_path)
    assert s == Settings() and origin == "defaults"
    assert s.first_screen("xxlarge") == 1100 and s.first_screen("unknown") == 800


def test_reviewer_toml_and_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.reviewer]\ndrift_delta_e = 3\n")
    s, origin = load_settings(search_from=tmp_path)
    assert s.drift_delta_e == 3.0 and origin.endswith("pyproject.toml")
    (tmp_path / "reviewer.toml").write_text(
        'merge_distance_px = 9\n[viewport_heights]\nphone = 480\n'
        '[[ignore_regions]]\nlabel = "Home"\nviewport = "phone"\nx = 0\ny = 0\nw = 10\nh = 20\n')
    s, origin = load_settings(search_from=tmp_path)
    assert s.merge_distance_px == 9 and s.drift_delta_e == 2.0 and origin.endswith("reviewer.toml")
    assert s.first_screen("phone") == 480 and s.first_screen("mobile") == 490
    assert s.ignores_for("Home", "phone") == (Box(0, 0, 10, 20),)
    assert s.ignores_for("Home", "desktop") == ()


@pytest.mark.parametrize(("data", "message"), [
    ({"nope": 1}, "unknown setting"),
    ({"drift_delta_e": "high"}, "must be float"),
    ({"merge_distance_px": True}, "must be int"),
    ({"merge_distance_px": -1}, "must not be negative"),
    ({"sensitivity": 0}, "must be greater than 0"),
    ({"pixels_per_degree": -1.0}, "must not be negative"),
    ({"min_region_pixels": 4}, "no longer a setting"),
    ({"detect_antialiasing": True}, "no longer a setting"),
    ({"ignore_regions": [{"x": 1}]}, "needs integer x, y, w, h"),
    ({"ignore_regions": [{"x": 0, "y": 0, "w": 0, "h": 5}]}, "positive w and h"),
    ({"ignore_regions": {"x": 0}}, "must be a list"),
    ({"viewport_heights": {"phone": "tall"}}, "positive integers"),
])
def test_bad_settings_are_usage_errors(data, message):
    with pytest.raises(UsageError, match=message):
        settings_from_mapping(data, "reviewer.toml")


def test_invalid_toml_and_missing_file(tmp_path: Path):
    bad = tmp_path / "reviewer.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_settings_digest_tracks_analysis_settings_only():
    assert Settings().digest() == Settings(workers=2).digest()
    assert Settings().digest() != Settings(drift_delta_e=3.0).digest()
    assert Settings().digest() != Settings(ignore_regions=(IgnoreRegion(0, 0, 1, 1),)).digest()
