"""The fleet page in Chromium: offline from disk (no request, no CSP violation, the crops shown,
the filters work) and served by `reviewer fleet serve` (Approve clean sites really approves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import file_url, launch_chromium, open_page
from fake_circleci import FakeCircleCI
from test_fleet_serve import SITES, _approved, fleet_server  # noqa: F401 (fixture)

pytest_plugins = ["circleci_fixtures"]
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch_chromium()


def _visible_sites(page: Any) -> list[str]:
    return page.eval_on_selector_all("tr.site:not(.hidden)", "rows => rows.map(r => r.dataset.site)")


def test_fleet_page_offline_and_served(chromium: Any, fleet_server, cci: FakeCircleCI,  # noqa: F811
                                       tmp_path: Path) -> None:
    server, data, _log = fleet_server
    out = Path(server.cfg.images)
    page, watch = open_page(chromium, file_url(out / "fleet.html"))
    assert sorted(_visible_sites(page)) == sorted(SITES)
    theme = data["groups"][0]["id"]
    assert page.eval_on_selector_all("section.group img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    page.select_option("#f-group", theme)
    assert sorted(_visible_sites(page)) == ["belgium", "canada"]
    page.select_option("#f-group", "")
    page.select_option("#f-decision", "approve")
    assert _visible_sites(page) == ["africa"]
    page.fill("#f-site", "bel")
    assert _visible_sites(page) == []
    assert watch.network() == [] and watch.page_errors == [] and page.evaluate("window.__csp") == []
    assert page.query_selector("#approve-clean") is None  # from disk: no buttons
    page.context.close()

    # Served: the button asks, then approves the clean site through the server.
    context = chromium.new_context()
    served = context.new_page()
    errors: list[str] = []
    served.on("pageerror", lambda e: errors.append(str(e)))
    served.on("dialog", lambda d: d.accept())
    served.goto(server.url)
    served.wait_for_selector("html[data-ready=true]")
    assert served.eval_on_selector_all("section.group img", "imgs => imgs.every(i => i.naturalWidth > 0)")
    served.click("#approve-clean")
    served.wait_for_selector("#result-list li")  # (the page's CSP forbids wait_for_function's eval)
    assert "approved africa" in served.inner_text("#result-list")
    assert _approved(cci) == {"africa"} and errors == []
    context.close()
