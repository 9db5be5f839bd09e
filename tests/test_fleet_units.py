"""Fleet's pure parts: sites lists, review.json trust, fingerprints on real pixels, grouping,
what --clean and --accept may approve, the shared rate limit, the summary's size."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from fleet_sites import LABEL, NEW_BLUE, OLD_GREEN, draw_button, page
from PIL import Image

from reviewer.actions import Check
from reviewer.errors import UsageError
from reviewer.fleet.fingerprint import fingerprint, same_change
from reviewer.fleet.gather import review_prefix, review_problem, since_key
from reviewer.fleet.group import RegionItem, SiteFacts, acceptable, approvable_clean, group_regions, site_status
from reviewer.fleet.limiter import LimitedTransport, SharedLimiter
from reviewer.fleet.render import render_markdown
from reviewer.fleet.sites import choose_sites, configured_sites, parse_sites_text, slug_for
from reviewer.model import Box
from reviewer.render.jsonout import analysis_digest

# -- sites ------------------------------------------------------------------------------------------


def test_sites_txt_names_become_planet4_slugs(tmp_path: Path) -> None:
    assert slug_for("africa") == "gh/greenpeace/planet4-africa"
    assert slug_for("planet4-africa") == "gh/greenpeace/planet4-africa"
    assert slug_for("gh/other/repo") == "gh/other/repo"
    assert parse_sites_text("africa\n\n# comment\naotearoa  # trailing\n", "x") == ["africa", "aotearoa"]
    with pytest.raises(UsageError, match="line 2"):
        parse_sites_text("africa\n../etc\n", "sites.txt")
    f = tmp_path / "sites.txt"
    f.write_text("africa\nplanet4-africa\nbrasil\n")
    assert choose_sites(["brasil", "chile"], f, None) == ["brasil", "chile", "africa"]


def test_fleet_table_in_reviewer_toml_is_the_default_list_and_not_an_analysis_setting(tmp_path: Path) -> None:
    from reviewer.config import load_settings

    toml = tmp_path / "reviewer.toml"
    toml.write_text('sensitivity = 1.5\n[fleet]\nsites = ["africa", "brasil"]\n')
    assert configured_sites(None, tmp_path) == ["africa", "brasil"]
    assert configured_sites(toml) == ["africa", "brasil"]
    assert load_settings(toml)[0].sensitivity == 1.5
    with pytest.raises(UsageError, match="no sites"):
        choose_sites([], None, tmp_path / "missing.toml")


def test_since_is_compared_as_utc() -> None:
    assert since_key("2026-12-01") == "2026-12-01T00:00:00"
    assert since_key("2026-12-01T10:00:00+01:00") == "2026-12-01T09:00:00"
    with pytest.raises(UsageError):
        since_key("last week")


# -- review.json trust ------------------------------------------------------------------------------


def _review(files: list[str]) -> dict:
    data = {"schema": 1, "decision": {"action": "approve", "reasons": []}, "counts": {},
            "pairs": [{"file": f, "seconds": 0.1} for f in files], "generated_at": "x"}
    data["digest"] = analysis_digest(data)
    return data


def test_review_json_stands_for_the_report_only_when_intact_and_about_it() -> None:
    data = _review(["a.png", "b.png"])
    record = {"review_digest": data["digest"], "sha256": "abc"}
    assert review_problem(data, ["b.png", "a.png"], "abc", record) is None
    assert "source.json" in (review_problem(data, ["b.png", "a.png"], None, None) or "")  # no record: analysed here
    assert "other pairs" in (review_problem(data, ["a.png"], "abc", record) or "")
    assert "not the one" in (review_problem(data, ["a.png", "b.png"], "def", record) or "")
    edited = {**data, "decision": {"action": "approve", "reasons": ["edited"]}}
    assert "own digest" in (review_problem(edited, ["a.png", "b.png"], "abc", record) or "")
    assert "another analysis" in (review_problem(data, ["a.png", "b.png"], "abc", {"review_digest": "x",
                                                                                 "sha256": "abc"}) or "")
    assert "schema-1" in (review_problem({"schema": 2}, [], None, None) or "")
    assert "schema-1" in (review_problem({**data, "decision": {"action": "ship it"}}, None, None, None) or "")
    assert review_prefix(["app/backstop_data/reviewer/review.json", "x/review.json"]) == "app/backstop_data/reviewer/"
    assert review_prefix(["app/backstop_data/html_report/config.js"]) is None


# -- fingerprints on real pixels --------------------------------------------------------------------


def _crops(tmp: Path, name: str, base: np.ndarray, x: int, y: int, before, after, size=(132, 40),
           label=LABEL) -> tuple:
    """Crops as analyze writes them: the region padded by 16 px."""
    ref, test = base.copy(), base.copy()
    draw_button(ref, x, y, before, size, label)
    draw_button(test, x, y, after, size, label)
    box = Box(x, y, *size)
    x0, y0 = max(0, x - 16), max(0, y - 16)
    paths = []
    for side, arr in (("ref", ref), ("test", test)):
        p = tmp / f"{name}-{side}.png"
        Image.fromarray(arr[y0:y + size[1] + 16, x0:x + size[0] + 16]).save(p)
        paths.append(p)
    size_wh = (base.shape[1], base.shape[0])
    return fingerprint("colour", box, box, paths[0], paths[1], size_wh, size_wh)


def test_the_same_button_change_matches_anywhere_over_any_page(tmp_path: Path) -> None:
    home, about = page("Home"), page("About")
    a = _crops(tmp_path, "a", home, 100, 120, OLD_GREEN, NEW_BLUE)
    b = _crops(tmp_path, "b", about, 500, 400, OLD_GREEN, NEW_BLUE)
    wider = _crops(tmp_path, "c", home, 300, 200, OLD_GREEN, NEW_BLUE, size=(140, 40))
    assert same_change(a, b)
    assert same_change(a, wider)
    other_colour = _crops(tmp_path, "d", home, 100, 120, OLD_GREEN, (200, 40, 40))
    assert not same_change(a, other_colour)
    banner = _crops(tmp_path, "e", home, 20, 100, OLD_GREEN, NEW_BLUE, size=(700, 40))
    assert not same_change(a, banner)


def test_the_same_colour_under_another_language_matches_a_near_colour_does_not(tmp_path: Path) -> None:
    home, about = page("Home"), page("About")
    donate = _crops(tmp_path, "a", home, 100, 120, OLD_GREEN, NEW_BLUE)
    faire_un_don = _crops(tmp_path, "b", about, 420, 310, OLD_GREEN, NEW_BLUE, size=(140, 40),
                          label=(5, 9, 4, 6, 9, 5, 7, 4, 6))
    assert same_change(donate, faire_un_don)
    darker = _crops(tmp_path, "c", about, 420, 310, OLD_GREEN, (0, 90, 170))  # alike thumbnails, another blue
    assert not same_change(donate, darker)


def _item(site: str, fp, page: str = "Home [desktop]", kind: str = "colour", region: int = 0) -> RegionItem:
    return RegionItem(site, page, 1, region, kind, 10.0, fp)


def test_grouping_one_change_across_sites_ranked_by_sites(tmp_path: Path) -> None:
    home = page("Home")
    theme = [_item(f"s{i:02}", _crops(tmp_path, f"t{i}", home, 40 + 37 * i, 60 + 23 * i, OLD_GREEN, NEW_BLUE))
             for i in range(5)]
    lone = _item("s99", _crops(tmp_path, "x", home, 50, 50, (0, 0, 0), (255, 255, 0)))
    unprinted = _item("s98", None, kind="content")
    groups = group_regions([lone, *theme[::-1], unprinted])
    assert [len(g.sites) for g in groups] == [5, 1, 1]
    assert groups[0].sites == tuple(f"s{i:02}" for i in range(5))
    again = group_regions(theme)
    assert again[0].id == groups[0].id  # the id comes from the change, not from which sites ran


# -- site decisions ---------------------------------------------------------------------------------

OK = tuple(Check(n, True, "") for n in ("release", "approval", "compare", "commit", "report", "analysis"))


def _facts(**kw) -> SiteFacts:
    base = {"name": "a", "slug": "gh/greenpeace/planet4-a", "tag": "v1", "checks": OK, "decision": "approve"}
    return SiteFacts(**{**base, **kw})


def test_status_and_clean_approval() -> None:
    assert site_status(_facts()) == "clean" and approvable_clean(_facts())
    assert site_status(_facts(counts={"noise": 2})) == "noise"
    held = (*OK[:3], Check("commit", False, "[HOLD]"), *OK[4:])
    assert site_status(_facts(checks=held)) == "held" and not approvable_clean(_facts(checks=held))
    hold = (*OK[:5], Check("analysis", False, "hold", True))
    assert site_status(_facts(checks=hold, decision="hold")) == "changes"
    assert site_status(SiteFacts("a", "s", error="no release waiting")) == "no-release"
    assert site_status(SiteFacts("a", "s", error="404")) == "error"
    assert site_status(_facts(already_approved=True, checks=())) == "approved"
    compare = (*OK[:2], Check("compare", False, "running"), *OK[3:])
    assert site_status(_facts(checks=compare, compare_running=True)) == "waiting"
    assert site_status(_facts(checks=compare)) == "blocked"  # ended infrastructure_fail: not worth waiting for


def test_accept_only_when_every_change_is_in_accepted_groups() -> None:
    groups = group_regions([_item("a", None, region=0), _item("a", None, region=1, page="About [desktop]")])
    facts = _facts(decision="hold")
    ids = [g.id for g in groups]
    assert acceptable(facts, groups, ids)[0]
    assert not acceptable(facts, groups, ids[:1])[0]
    assert not acceptable(_facts(decision="hold", counts={"error": 1}), groups, ids)[0]
    assert not acceptable(_facts(decision="hold", unmatched_pages=("Home [desktop]",)), groups, ids)[0]
    assert not acceptable(_facts(), groups, ids)[0]  # approve needs no acceptance


# -- the shared limiter -----------------------------------------------------------------------------


def test_a_429_for_one_request_pauses_every_request() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = SharedLimiter(2, clock=lambda: now[0], sleep=sleep)
    calls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "3"})
        return httpx.Response(200, json={})

    transport = LimitedTransport(httpx.MockTransport(answer), limiter)
    with httpx.Client(transport=transport) as c:
        assert c.get("http://x/a").status_code == 429
        assert c.get("http://x/b").status_code == 200  # another site's request waits too
    assert slept == [3.0] and limiter.pauses == [3.0]


def test_requests_in_flight_are_bounded() -> None:
    limiter = SharedLimiter(3)
    now, most = [0], [0]
    lock = threading.Lock()
    gate = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        gate.wait(0.05)
        with lock:
            now[0] -= 1
        return httpx.Response(200)

    transport = LimitedTransport(httpx.MockTransport(answer), limiter)
    threads = [threading.Thread(target=lambda: transport.handle_request(httpx.Request("GET", "http://x/")))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 3


# -- the summary ------------------------------------------------------------------------------------


def test_fleet_md_stays_under_githubs_comment_limit() -> None:
    sites = [{"name": f"site-{i}" + "x" * 30, "status": "changes", "decision": "hold", "tag": "v1", "counts":
              {"changed": 3}, "error": None, "top": [{"page": "Home [desktop] " + "y" * 60}], "groups": ["g"] * 5,
              "checks": [], "approvable_clean": False} for i in range(3000)]
    groups = [{"id": f"colour-{i:08}", "kind": "colour", "sites": [s["name"] for s in sites[:50]],
               "pages": ["Home [desktop]"] * 3, "score": 1.0} for i in range(400)]
    text = render_markdown({"tag": "v1", "summary": {"changes": 3000}, "sites": sites, "groups": groups})
    assert len(text) < 65_536
    assert "more site(s)" in text and "more group(s)" in text


def test_the_page_links_only_to_http_or_relative_paths() -> None:
    from reviewer.fleet.render import safe_link

    assert safe_link("https://output.circle-artifacts.com/x/index.html") is not None
    assert safe_link("sites/planet4-a/job-7/local/review/index.html") is not None
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", None, ""):
        assert safe_link(bad) is None


def test_the_line_names_what_to_act_on_first() -> None:
    from reviewer.fleet.group import first_blocker

    checks = [Check("compare", False, "running"), Check("report", False, "not checked"),
              Check("analysis", False, "not analysed")]
    assert first_blocker(checks) == checks[0]
    assert first_blocker(checks[1:]) == checks[1]
    assert first_blocker([Check("release", True, "")]) is None


def test_which_sites_fleet_approve_takes_and_why_not() -> None:
    from reviewer.fleet.act import choose_mode

    groups = group_regions([_item("a", None), _item("b", None, kind="content")])
    theme, other = groups[0].id, groups[1].id

    def site(**kw) -> dict:
        base = {"name": "a", "slug": "s", "tag": "v1", "error": None, "already_approved": False,
                "approvable_clean": False, "analysis": "hold", "counts": {"changed": 1},
                "checks": [{"name": "analysis", "ok": False, "detail": "hold"}], "status": "changes"}
        return {**base, **kw}

    assert choose_mode(site(error="404"), groups, clean=True, accepted=[theme]) == ("skip", "404")
    assert choose_mode(site(already_approved=True), groups, clean=True, accepted=[])[0] == "skip"
    assert choose_mode(site(approvable_clean=True), groups, clean=True, accepted=[])[0] == "clean"
    assert choose_mode(site(approvable_clean=True), groups, clean=False, accepted=[theme])[0] == "skip"
    held = site(checks=[{"name": "commit", "ok": False, "detail": "[HOLD]"},
                        {"name": "analysis", "ok": False, "detail": "hold"}])
    assert choose_mode(held, groups, clean=True, accepted=[theme]) == ("skip", "commit: [HOLD]")
    assert choose_mode(site(), groups, clean=True, accepted=[])[0] == "skip"
    assert choose_mode(site(), groups, clean=False, accepted=[theme])[0] == "accept"
    assert choose_mode(site(name="b"), groups, clean=False, accepted=[theme])[0] == "skip"
    assert choose_mode(site(name="b"), groups, clean=False, accepted=[theme, other])[0] == "accept"


def test_text_from_circleci_or_reports_is_shown_as_text_on_the_page() -> None:
    from reviewer.fleet.render import render_html

    hostile = "<script>alert(1)</script>"
    site = {"name": "a", "slug": "s", "status": "error", "decision": "error", "tag": None, "release": None,
            "error": hostile, "counts": {}, "top": [{"page": hostile, "verdict": "changed", "score": 1.0}],
            "groups": [], "checks": [], "approvable_clean": False, "page": None, "blocker": hostile}
    page = render_html({"tag": hostile, "generated_at": "t", "summary": {"error": 1}, "sites": [site], "groups": []})
    assert hostile not in page and "&lt;script&gt;" in page


def test_crops_are_fetched_once_each_a_few_at_a_time_and_a_failure_is_no_crop(tmp_path: Path) -> None:
    import time

    from reviewer.errors import ReviewerError
    from reviewer.fleet.gather import crop_paths, fetch_crops

    data = {"pairs": [
        {"verdict": "changed", "regions": [{"significant": True}, {"significant": False}, {"significant": True}],
         "images": {"crops": [{"reference": "a.png", "test": "b.png"}, {"reference": "x.png", "test": "y.png"},
                              {"reference": "a.png", "test": "c.png"}]}},
        {"verdict": "noise", "regions": [{"significant": True}], "images": {"crops": [{"reference": "n.png"}]}},
    ]}
    assert crop_paths(data) == ["a.png", "b.png", "c.png"]
    lock, now, most = threading.Lock(), [0], [0]

    def fetch(path: str) -> Path:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        if path == "c.png":
            raise ReviewerError("the artifact host answered 500")
        return tmp_path / path

    got = fetch_crops(["a.png", "b.png", "c.png", "d.png", "e.png"], fetch, workers=3)
    assert got["a.png"] == tmp_path / "a.png" and got["c.png"] is None and most[0] == 3
