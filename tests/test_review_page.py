"""The review page (index.html) in real Chromium, opened from disk like a reviewer would.

What is held: it loads with no error and no network request; pairs are ranked and counted;
every view (side by side, swipe, onion skin, blink, heat map) shows what it promises; region
navigation scrolls and zooms to each region; the keyboard and the filters work; report text
full of HTML and script is shown as text and runs nothing; and a 1,000-pair report opens with
only the selected pair's images loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import FIXTURE, file_url, large_review, launch_chromium, open_page, write_page

from reviewer.model import Box, Pair, PairAnalysis, PairAssets, Region, RegionKind, Report, Review, Verdict

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch_chromium()



@pytest.fixture(scope="module")
def page_file(fixture_review: tuple[Review, Path]) -> Path:
    return fixture_review[1] / "index.html"


def rank_of(review: Review, label: str, viewport: str) -> int:
    return next(rp.rank for rp in review.ranked if rp.pair.label == label and rp.pair.viewport == viewport)


def opened(chromium: Any, page_file: Path, fragment: str = "") -> tuple[Any, Any]:
    return open_page(chromium, file_url(page_file, fragment))


def clean(page: Any, w: Any) -> None:
    assert w.page_errors == [] and w.console_errors == [], (w.page_errors, w.console_errors)
    assert page.evaluate("window.__csp") == []
    assert w.network() == []


def box_inside_pane(page: Any, pane_sel: str, k: int) -> bool:
    """Region k's box is wholly in view (or, when larger than the pane, fills it from its corner)."""
    return bool(page.evaluate("""([paneSel, k]) => {
        const pane = document.querySelector(paneSel);
        const box = pane.querySelector('.box[data-k="' + k + '"]');
        const p = pane.getBoundingClientRect(), b = box.getBoundingClientRect();
        const corner = b.left >= p.left - 1 && b.top >= p.top - 1;
        const fitsX = b.right <= p.right + 1 || b.width > pane.clientWidth - 40;
        const fitsY = b.bottom <= p.bottom + 1 || b.height > pane.clientHeight - 40;
        return corner && fitsX && fitsY;
    }""", [pane_sel, k]))


def test_loads_from_disk_ranked_with_no_error_and_no_network_request(chromium, page_file, fixture_review):
    review, out = fixture_review
    page, w = opened(chromium, page_file)
    page.wait_for_timeout(300)
    clean(page, w)
    base = out.resolve().as_uri() + "/"
    assert w.requests[0] == page_file.resolve().as_uri()
    assert all(u.startswith(base) for u in w.requests), w.requests  # only its own files
    # the images of the selected pair really load under the page's Content-Security-Policy
    sizes = page.eval_on_selector_all("#viewer img.layer", "els => els.map(e => e.complete && e.naturalWidth)")
    assert len(sizes) == 2 and all(sizes)
    # ranked: changed, error, noise, unchanged; ranks in order; the first change is selected
    groups = page.eval_on_selector_all("#list section.group", "els => els.map(e => e.dataset.verdict)")
    assert groups == ["changed", "error", "noise", "unchanged"]
    ranks = page.eval_on_selector_all("#list .row", "els => els.map(e => Number(e.dataset.rank))")
    assert ranks == list(range(1, 25))  # the 6 unchanged pairs stay collapsed and unbuilt
    assert page.is_hidden("section[data-verdict=unchanged] .gbody")
    chips = page.eval_on_selector_all(".chip", "els => els.map(e => e.textContent)")
    assert chips == ["12changed", "6error", "6noise", "6unchanged"]
    first = review.ranked[0]
    assert page.text_content("#pair-title") == first.pair.label
    assert page.get_attribute("#row-1", "aria-selected") == "true"
    # ours beside BackstopJS's, with the disagreement said out loud
    page.goto(file_url(page_file, f"pair={rank_of(review, 'Signup', 'phone')}"))
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert "CHANGED" in page.text_content("#our-verdict")
    bs = page.text_content("#backstop-verdict")
    assert "pass" in bs and "0.71%" in bs and "hides this change" in bs


def test_each_view_shows_what_it_promises(chromium, page_file, fixture_review):
    review, _ = fixture_review
    page, w = opened(chromium, page_file, f"pair={rank_of(review, 'Signup', 'desktop')}")
    layers = "#viewer img.layer"

    def loaded(kind: str) -> bool:
        return bool(page.eval_on_selector(f'#viewer img[data-layer="{kind}"]', "e => e.complete && e.naturalWidth > 0"))

    page.keyboard.press("1")
    assert page.locator(".pane").count() == 2 and loaded("ref") and loaded("test")
    assert page.get_attribute('[data-view="side"]', "aria-pressed") == "true"

    page.keyboard.press("2")  # swipe: the test image is clipped at the divider, which follows the slider
    assert page.locator(".pane").count() == 1 and page.get_attribute('[data-view="swipe"]', "aria-pressed") == "true"
    clip = page.eval_on_selector('img[data-layer="test"]', "e => e.style.clipPath")
    page.eval_on_selector("#swipe-range", "e => { e.value = '10'; e.dispatchEvent(new Event('input')); }")
    clip10 = page.eval_on_selector('img[data-layer="test"]', "e => e.style.clipPath")
    assert clip.startswith("inset(") and clip10.startswith("inset(") and clip10 != clip
    stage = page.locator(".stage").bounding_box()
    pane = page.locator(".pane").bounding_box()
    left = max(stage["x"], pane["x"])
    y = pane["y"] + pane["height"] / 2
    page.mouse.move(left + 30, y)
    page.mouse.down()
    page.mouse.move(left + 200, y, steps=4)
    page.mouse.up()
    assert int(page.eval_on_selector("#swipe-range", "e => e.value")) > 10

    page.keyboard.press("3")  # onion skin: the test image's opacity follows the slider
    page.eval_on_selector("#onion-range", "e => { e.value = '30'; e.dispatchEvent(new Event('input')); }")
    assert page.eval_on_selector('img[data-layer="test"]', "e => e.style.opacity") == "0.3"

    page.keyboard.press("4")  # blink: alternates on its own; b pauses and flips by hand
    seen = {page.eval_on_selector('img[data-layer="test"]', "e => e.style.visibility")}
    for _ in range(8):
        page.wait_for_timeout(150)
        seen.add(page.eval_on_selector('img[data-layer="test"]', "e => e.style.visibility"))
    assert seen == {"visible", "hidden"}
    page.keyboard.press("b")
    assert page.text_content("#blink-toggle") == "play"
    before = page.eval_on_selector('img[data-layer="test"]', "e => e.style.visibility")
    page.keyboard.press("b")
    after = page.eval_on_selector('img[data-layer="test"]', "e => e.style.visibility")
    assert before != after
    page.wait_for_timeout(700)
    assert page.eval_on_selector('img[data-layer="test"]', "e => e.style.visibility") == after  # stays paused

    page.keyboard.press("5")  # heat map: the mask over a dimmed test image, as large as the test image
    assert loaded("mask") and page.eval_on_selector('img[data-layer="test"]', "e => e.classList.contains('dim')")
    mask_w, test_w = page.eval_on_selector_all(layers, "els => els.map(e => e.getBoundingClientRect().width)")[::-1][:2]
    assert abs(mask_w - test_w) < 1
    clean(page, w)


def test_region_navigation_scrolls_and_zooms_to_each_region(chromium, page_file, fixture_review):
    review, _ = fixture_review
    rank = rank_of(review, "Article", "phone")  # a 3,227 px tall page with a one-word change
    rp = review.ranked[rank - 1]
    region = rp.analysis.regions[0]
    page, w = opened(chromium, page_file, f"pair={rank}")
    # opening a changed pair shows the whole width, scrolled to the change, nothing chosen yet
    assert page.text_content("#region-pos") == "region –/1"
    assert page.text_content('[title^="Fit width"]').startswith("fit ")
    assert page.evaluate("document.querySelector('.pane[data-role=test]').scrollTop") > 0
    assert box_inside_pane(page, ".pane[data-role=test]", 0)
    # choosing the region (n) zooms in on it, at actual size or larger
    page.keyboard.press("n")
    assert page.text_content("#region-pos") == "region 1/1"
    zoom = int(page.text_content('[title^="Fit width"]').split()[-1].rstrip("%"))
    assert zoom >= 100
    assert box_inside_pane(page, ".pane[data-role=test]", 0)
    # the minimap shows where on the tall page the change is
    top = page.eval_on_selector(".minimap .mk", "e => parseFloat(e.style.top)")
    assert abs(top - 100 * region.box.y / rp.analysis.test_size[1]) < 0.5
    # back to the top, then the minimap marker brings the region back
    page.evaluate("document.querySelectorAll('.pane').forEach(p => p.scrollTop = 0)")
    assert not box_inside_pane(page, ".pane[data-role=test]", 0)
    page.click(".minimap .mk")
    assert box_inside_pane(page, ".pane[data-role=test]", 0)

    # several regions: n and p step through them, and each one is brought into view
    blog = rank_of(review, "Blog", "desktop")
    n = len(review.ranked[blog - 1].analysis.regions)
    assert n >= 2
    page.goto(file_url(page_file, f"pair={blog}&view=heat"))
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert page.text_content("#region-pos") == f"region –/{n}"
    page.keyboard.press("n")
    assert page.text_content("#region-pos") == f"region 1/{n}"
    page.keyboard.press("n")
    assert page.text_content("#region-pos") == f"region 2/{n}"
    assert page.get_attribute('.region[data-k="1"]', "aria-current") == "true"
    assert page.eval_on_selector('.pane .box[data-k="1"]', "e => e.classList.contains('focus')")
    assert box_inside_pane(page, ".pane", 1)
    page.keyboard.press("p")
    assert page.text_content("#region-pos") == f"region 1/{n}" and box_inside_pane(page, ".pane", 0)
    page.click('.region[data-k="1"]')  # a region card does the same
    assert page.text_content("#region-pos") == f"region 2/{n}"
    # every region explains itself: kind, where, area, visibility, contrast, SSIM, which test decided
    card = page.text_content('.region[data-k="0"]')
    for word in ("where", "area", "visible", "contrast", "SSIM", "decided", "rule"):
        assert word in card
    clean(page, w)


def test_keyboard_shortcuts_and_help(chromium, page_file):
    page, w = opened(chromium, page_file)
    page.keyboard.press("j")
    assert page.get_attribute("#row-2", "aria-selected") == "true" and page.get_attribute("#detail", "data-rank") == "2"
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.get_attribute("#detail", "data-rank") == "2"
    page.keyboard.press("?")
    assert page.is_visible("#help") and "next region" in page.text_content("#help")
    page.keyboard.press("Escape")
    assert page.locator("#help").count() == 0
    page.keyboard.press("x")
    assert page.locator("#viewer .box").count() == 0
    page.keyboard.press("x")
    assert page.locator("#viewer .box").count() > 0
    page.keyboard.press("u")
    assert page.locator("section[data-verdict=unchanged] .row").count() == 6
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-text"
    page.keyboard.type("j")  # typing in the filter box is not a shortcut
    assert page.get_attribute("#detail", "data-rank") == "2"
    page.keyboard.press("Escape")
    clean(page, w)


def test_filters_by_verdict_viewport_and_text(chromium, page_file):
    page, w = opened(chromium, page_file)

    def visible_rows() -> list[str]:
        return page.eval_on_selector_all("#list .row", "els => els.filter(e => !e.hidden && e.offsetParent)"
                                                       ".map(e => e.querySelector('.lb').textContent + ' ' + "
                                                       "e.querySelector('.sub').textContent.split(' ')[0])")

    page.click('.chip[data-verdict="changed"]')
    assert page.is_hidden('section[data-verdict="changed"]')
    assert page.get_attribute("#detail", "data-rank") == "13"  # the selection moves to the first error
    page.click('.chip[data-verdict="changed"]')
    page.select_option("#f-viewport", "phone")
    rows = visible_rows()
    assert rows and all(r.endswith("phone") for r in rows)
    page.fill("#f-text", "clock")
    page.wait_for_timeout(250)
    assert visible_rows() == ["Clock phone"]
    assert page.text_content("#pair-title") == "Clock"
    page.select_option("#f-viewport", "")
    page.fill("#f-text", "CLOCK")
    page.wait_for_timeout(250)
    assert sorted(visible_rows()) == ["Clock desktop", "Clock phone"]
    assert "1 of" not in page.text_content('section[data-verdict="changed"] h2')
    page.fill("#f-text", "no such page")
    page.wait_for_timeout(250)
    assert visible_rows() == [] and page.is_visible("#list .empty")
    clean(page, w)


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def hostile_review(out: Path) -> Review:
    ref = FIXTURE / "bitmaps_reference" / "fixture_Signup_0_document_0_phone.png"
    test = next((FIXTURE / "bitmaps_test").iterdir()) / ref.name
    d = out / "images" / "p0000"
    d.mkdir(parents=True)
    os.link(ref, d / "reference.png")
    os.link(test, d / "test.png")
    pair = Pair(index=0, file='x"><svg onload=window.__pwned=3>.png', label=HOSTILE, viewport="<b>phone</b>",
                selector='"><svg onload="window.__pwned=4">', url="javascript:window.__pwned=5",
                reference_url="", reference=ref, test=test, backstop_diff_image=None, backstop_status="pass",
                backstop_mismatch=0.5, backstop_error=None, mismatch_threshold=3.0, same_dimensions=True)
    err = Pair(index=1, file="e.png", label="</script><script>window.__pwned=6</script><!--", viewport="phone",
               selector="document", url="https://example.org/?q=<script>", reference_url="", reference=None,
               test=None, backstop_diff_image=None, backstop_status="fail", backstop_mismatch=None,
               backstop_error="<iframe src=javascript:window.__pwned=7>", mismatch_threshold=3.0,
               same_dimensions=None)
    region = Region(Box(20, 900, 120, 50), RegionKind.COLOUR, 4000, 60.0, 0.9, significant=True,
                    why='<a href="javascript:window.__pwned=8">click</a>')
    items = [(pair, PairAnalysis(Verdict.CHANGED, "<u>changed</u>", (region,), (320, 1500), (320, 1500), 4000)),
             (err, PairAnalysis(Verdict.ERROR, "BackstopJS: <iframe src=javascript:window.__pwned=7>"))]
    from reviewer.analyze import build_review
    from reviewer.config import Settings

    report = Report(id="<h1>id</h1>", root=out, source_file=out / "config.js", pairs=(pair, err),
                    warnings=("<marquee>warning</marquee>",))
    assets = {0: PairAssets("images/p0000/reference.png", "images/p0000/test.png"),
              1: PairAssets("javascript:alert(1)", "../../../../etc/passwd.png")}
    return build_review(report, [(p, a, assets.get(p.index, PairAssets())) for p, a in items], Settings())


def test_report_text_with_html_and_script_is_shown_as_text_and_runs_nothing(chromium, tmp_path):
    review = hostile_review(tmp_path)
    page_file = write_page(review, tmp_path)
    html = page_file.read_text()
    assert HOSTILE not in html and "<svg" not in html and "<iframe" not in html and "<marquee" not in html
    page, w = opened(chromium, page_file)
    for rank in (1, 2):
        page.goto(file_url(page_file, f"pair={rank}"))
        page.reload()
        page.wait_for_selector("html[data-ready=true]")
        page.click("#reasons summary")
        page.wait_for_timeout(100)
        assert page.evaluate("window.__pwned") is None
    assert w.dialogs == [] and w.page_errors == [] and w.console_errors == []
    assert page.evaluate("window.__csp") == []
    assert page.evaluate("document.querySelectorAll('svg, iframe, marquee, u, h1 script, [onerror], [onload]')"
                         ".length") == 0
    assert page.eval_on_selector_all("script", "els => els.length") == 3  # data, actions, the page's own
    # the text is there, verbatim
    page.goto(file_url(page_file, "pair=1"))
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert page.text_content("#pair-title") == HOSTILE
    assert page.text_content("#pair-url") == "javascript:window.__pwned=5"
    assert page.evaluate("document.querySelectorAll('a[href]').length") == 0  # the URL is text, not a link
    assert '"><svg onload="window.__pwned=4">' in page.text_content(".ptitle .vp")
    assert 'javascript:window.__pwned=8' in page.text_content('.region[data-k="0"]')
    # image paths that are not the page's own files are never loaded
    assert all(u.startswith(tmp_path.resolve().as_uri()) for u in w.requests)
    assert not any("passwd" in u or u.startswith("javascript") for u in w.requests)


def test_a_1000_pair_report_loads_only_what_is_on_screen(chromium, tmp_path):
    review = large_review(1000, tmp_path)
    page_file = write_page(review, tmp_path)
    page, w = opened(chromium, page_file)
    page.wait_for_timeout(500)
    images = [u for u in w.requests if u.endswith(".png")]
    # the selected pair's two screenshots and its region crops; nothing of the other 999
    assert 2 <= len(images) <= 2 + 2 * 4, images
    assert all("/p" + f"{review.ranked[0].pair.index:04d}" + "/" in u for u in images)
    assert page.evaluate("document.images.length") <= 12
    counts = review.counts
    built = page.locator("#list .row").count()
    assert built == counts["changed"] + counts["error"] + counts["noise"]  # unchanged rows not built yet
    page.keyboard.press("u")
    assert page.locator("#list .row").count() == 1000
    page.fill("#f-text", "page 0999")
    page.wait_for_timeout(250)
    assert page.eval_on_selector_all("#list .row", "els => els.filter(e => !e.hidden).length") == 1
    clean(page, w)


def test_escape_clears_the_filter_and_an_active_filter_is_always_shown(chromium, page_file, fixture_review):
    review, _ = fixture_review
    page, w = opened(chromium, page_file)

    def chip(v: str) -> str:
        return str(page.text_content(f'.chip[data-verdict="{v}"] .n'))

    assert page.is_hidden("#filter-state") and chip("changed") == "12"
    page.keyboard.press("/")
    page.keyboard.type("clock")
    page.wait_for_timeout(250)
    clock = [rp for rp in review.ranked if "clock" in rp.pair.label.lower()]
    verdict = clock[0].analysis.verdict.value
    # the chips count what the filter lets through, out of the report's total
    assert chip(verdict) == f"{len(clock)}/{review.counts[verdict]}"
    assert chip("unchanged") == f"0/{review.counts['unchanged']}"
    assert page.is_visible("#filter-state")
    state = page.text_content("#filter-state")
    assert "“clock”" in state and f"{len(clock)} of 30" in state
    # Esc empties the box and drops its filter: the whole list is back and nothing says "filtered"
    page.keyboard.press("Escape")
    page.wait_for_timeout(250)
    assert page.evaluate("document.activeElement.id") != "f-text"
    assert page.input_value("#f-text") == ""
    assert page.is_hidden("#filter-state") and chip("changed") == "12"
    counts = page.eval_on_selector_all("#list section.group h2 .cnt", "els => els.map(e => e.textContent)")
    assert not any("of" in c for c in counts), counts
    # a filter set without the text box (a viewport, a verdict chip) is shown too, and cleared by its button
    page.select_option("#f-viewport", "phone")
    page.click('.chip[data-verdict="noise"]')
    state = page.text_content("#filter-state")
    assert page.is_visible("#filter-state") and "phone" in state and "hiding noise" in state
    assert chip("changed") == "6/12"
    page.click("#filter-clear")
    assert page.is_hidden("#filter-state") and page.input_value("#f-viewport") == ""
    assert page.get_attribute('.chip[data-verdict="noise"]', "aria-pressed") == "true"
    clean(page, w)
    # on a laptop screen the filter bar sits above the list, outside its scrolling, and the
    # header keeps its height: filtering never moves the image
    page, w = open_page(chromium, file_url(page_file), width=1280, height=720)
    header = page.evaluate("document.getElementById('top').getBoundingClientRect().height")
    page.keyboard.press("u")
    page.select_option("#f-viewport", "desktop")
    page.click('.chip[data-verdict="noise"]')
    page.evaluate("document.getElementById('list').scrollTop = 1e6")
    assert page.evaluate("document.getElementById('list').scrollTop") > 0
    bar = page.locator("#filter-state").bounding_box()
    listbox = page.locator("#list").bounding_box()
    assert page.is_visible("#filter-state") and bar["y"] + bar["height"] <= listbox["y"] + 1
    assert page.evaluate("document.getElementById('top').getBoundingClientRect().height") == header
    clean(page, w)


def test_a_pair_opens_at_fit_width_with_every_box_and_zooms_only_when_asked(chromium, page_file, fixture_review):
    review, _ = fixture_review
    rank = rank_of(review, "Blog", "desktop")
    regions = review.ranked[rank - 1].analysis.regions
    page, w = opened(chromium, page_file, f"pair={rank}")
    assert page.text_content('[title^="Fit width"]').startswith("fit ")
    assert page.text_content("#region-pos") == f"region –/{len(regions)}"
    # the whole width of the page in each pane, every region boxed, the region list beside the image
    widths = page.evaluate("""() => Array.from(document.querySelectorAll('.pane')).map(p =>
        [p.querySelector('.stage').getBoundingClientRect().width, p.clientWidth])""")
    assert len(widths) == 2 and all(stage <= pane for stage, pane in widths), widths
    assert page.locator(".pane[data-role=test] .box").count() == len(regions)
    assert page.locator(".box.focus").count() == 0 and page.locator('.region[aria-current="true"]').count() == 0
    viewer = page.locator("#viewer").bounding_box()
    side = page.locator("#regions").bounding_box()
    assert side["x"] >= viewer["x"] + viewer["width"] and abs(side["y"] - viewer["y"]) < 2
    # the minimap is wide enough to show the page's shape, and shows the page
    mm = page.locator("#minimap").bounding_box()
    assert mm["width"] >= 48
    assert page.eval_on_selector("#minimap img.mm-page", "e => e.complete && e.naturalWidth > 0")
    # a crop of a wide, short region keeps a readable height (and scrolls sideways)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.crops img')).every(i => i.complete)")
    crops = page.eval_on_selector_all(".crops img", "els => els.map(e => [e.naturalWidth, e.naturalHeight, "
                                                     "e.getBoundingClientRect().height])")
    assert any(nw > 6 * nh for nw, nh, _ in crops), crops  # the pair has one
    assert all(h >= min(56, nh) - 1 for _nw, nh, h in crops), crops
    # z zooms in on the first region, z again goes back to the whole width
    page.keyboard.press("z")
    assert page.text_content("#region-pos") == f"region 1/{len(regions)}"
    assert not page.text_content('[title^="Fit width"]').startswith("fit ")
    page.keyboard.press("z")
    assert page.text_content('[title^="Fit width"]').startswith("fit ")
    # clicking a region card zooms in on that region
    page.click('.region[data-k="1"]')
    assert page.text_content("#region-pos") == f"region 2/{len(regions)}"
    assert not page.text_content('[title^="Fit width"]').startswith("fit ")
    clean(page, w)


def test_on_a_laptop_screen_the_toolbar_stays_on_one_line_and_the_image_does_not_move(chromium, page_file,
                                                                                     fixture_review):
    review, _ = fixture_review
    rank = rank_of(review, "Blog", "desktop")
    page, w = open_page(chromium, file_url(page_file, f"pair={rank}"), width=1280, height=720)
    measured = {}
    for key, mode in (("1", "side"), ("2", "swipe"), ("3", "onion"), ("4", "blink"), ("5", "heat"), ("1", "side")):
        page.keyboard.press(key)
        assert page.get_attribute(f'[data-view="{mode}"]', "aria-pressed") == "true"
        measured[mode] = page.evaluate("""() => {
            const tb = document.querySelector('.toolbar');
            const kids = Array.from(tb.children).filter(c => c.getBoundingClientRect().width > 0);
            const mid = c => { const r = c.getBoundingClientRect(); return r.top + r.height / 2; };
            const pane = document.querySelector('.pane').getBoundingClientRect();
            const zoom = document.querySelector('[title^="Fit width"]').getBoundingClientRect();
            const mids = kids.map(mid);
            return {height: tb.getBoundingClientRect().height, spread: Math.max(...mids) - Math.min(...mids),
                    overflow: tb.scrollWidth - tb.clientWidth, paneTop: pane.top, zoomX: zoom.left,
                    viewerTop: document.getElementById('viewer').getBoundingClientRect().top};
        }""")
    for mode, m in measured.items():
        assert m["spread"] <= 2 and m["overflow"] <= 0, (mode, m)  # one line, nothing cut off
    for key in ("height", "paneTop", "viewerTop", "zoomX"):
        values = {round(m[key]) for m in measured.values()}
        assert len(values) == 1, (key, measured)
    clean(page, w)


def band_geometry(page: Any, pane: str, k: int) -> dict[str, Any]:
    """Where region k's band (or seam) is drawn in a pane, in image pixels at the pane's zoom."""
    return dict(page.evaluate("""([pane, k]) => {
        const p = document.querySelector(pane);
        const b = p.querySelector('.box[data-k="' + k + '"]');
        const stage = p.querySelector('.stage').getBoundingClientRect(), r = b.getBoundingClientRect();
        const img = p.querySelector('img.layer');
        const z = stage.width / (img.naturalWidth || stage.width);
        return {band: b.dataset.band, top: (r.top - stage.top) / z, height: r.height / z,
                label: (b.querySelector('.seam-label') || {}).textContent || null};
    }""", [pane, k]))


def test_inserted_and_removed_bands_are_drawn_in_both_images_and_said_in_words(chromium, page_file, fixture_review):
    review, _ = fixture_review
    removed_rank = next(rp.rank for rp in review.ranked
                        if any(r.kind.value == "removed" and r.box.x == 0 for r in rp.analysis.regions))
    inserted_rank = next(rp.rank for rp in review.ranked
                         if any(r.kind.value == "inserted" and r.box.x == 0 for r in rp.analysis.regions))
    for rank, kind in ((removed_rank, "removed"), (inserted_rank, "inserted")):
        regions = review.ranked[rank - 1].analysis.regions
        k = next(i for i, r in enumerate(regions) if r.kind.value == kind)
        r = regions[k]
        assert r.ref_y is not None and r.ref_h is not None
        page, w = opened(chromium, page_file, f"pair={rank}&view=side")
        page.wait_for_function("() => Array.from(document.querySelectorAll('img.layer')).every(i => i.naturalWidth)")
        card = page.text_content(f'.region[data-k="{k}"] .band-text')
        ref, test = band_geometry(page, ".pane[data-role=ref]", k), band_geometry(page, ".pane[data-role=test]", k)
        if kind == "removed":
            assert card == f"{r.ref_h:,} rows removed at y {r.ref_y:,} of the reference"
            # the rows where they were in the reference, the seam where the gap closed in the test
            assert ref["band"] == "rows" and abs(ref["top"] - r.ref_y) < 4 and abs(ref["height"] - r.ref_h) < 6
            assert test["band"] == "seam" and abs(test["top"] - r.box.y) < 4 and test["label"] == card
        else:
            assert card == f"{r.box.h:,} rows inserted at y {r.box.y:,} of the test"
            assert test["band"] == "rows" and abs(test["top"] - r.box.y) < 4 and abs(test["height"] - r.box.h) < 6
            assert ref["band"] == "seam" and abs(ref["top"] - r.ref_y) < 4 and ref["label"] == card
        assert "360×1" not in page.text_content(f'.region[data-k="{k}"]')
        # the heat map shows the band too: a removed band as its seam, labelled, over the test image
        page.keyboard.press("5")
        heat = band_geometry(page, ".pane", k)
        assert heat["band"] == ("seam" if kind == "removed" else "rows") and abs(heat["top"] - r.box.y) < 4
        assert page.is_visible(f'.pane .box[data-k="{k}"]')
        clean(page, w)


def test_legend_and_colours_agree_and_backstop_pass_is_not_shown_as_an_error(chromium, page_file, fixture_review):
    review, _ = fixture_review
    colour_of = "(sel) => getComputedStyle(document.querySelector(sel)).borderTopColor"
    kinds_seen = set()
    for rp in review.ranked:
        if rp.analysis.verdict.value not in ("changed", "noise") or not rp.analysis.regions:
            continue
        page, w = opened(chromium, page_file, f"pair={rp.rank}&view=heat")
        boxes = page.eval_on_selector_all("#viewer .box:not(.recap)", "els => els.map(e => [e.className, "
                                          "getComputedStyle(e).borderTopColor, getComputedStyle(e).borderTopStyle])")
        assert boxes
        for cls, colour, style in boxes:
            kind = next(c for c in cls.split() if c not in ("box", "band", "seam", "focus"))
            kinds_seen.add(kind)
            swatch = f'.legend [data-legend="{kind}"] .swatch'
            assert page.evaluate(colour_of, swatch) == colour, (rp.pair.label, kind)  # named, in the same colour
            if "seam" not in cls:
                assert page.evaluate(f"getComputedStyle(document.querySelector('{swatch}')).borderTopStyle") == style
        # the selection ring uses a colour of its own, in the legend, and no kind's colour
        page.keyboard.press("n")
        shadow = "e => getComputedStyle(e).boxShadow"
        ring = page.eval_on_selector("#viewer .box.focus", shadow)
        legend_ring = page.eval_on_selector('.legend [data-legend="selected"] .swatch', shadow)
        ring_colour = ring.split(")")[-2].split("rgb")[-1]  # the outer ring: the last colour of the shadow
        assert ring_colour in legend_ring
        kind_colours = page.eval_on_selector_all(".legend [data-legend]:not([data-legend=selected]) .swatch",
                                                 "els => els.map(e => getComputedStyle(e).borderTopColor)")
        assert not any(ring_colour in c for c in kind_colours), (ring, kind_colours)
        clean(page, w)
    assert {"content", "colour", "inserted", "removed", "noise"} <= kinds_seen
    # the selection never borrows the inserted/removed blue
    page, w = opened(chromium, page_file, f"pair={rank_of(review, 'News', 'phone')}")
    page.keyboard.press("n")
    inserted = page.evaluate(colour_of, '.legend [data-legend="inserted"] .swatch')
    ring = page.eval_on_selector("#viewer .box.focus", "e => getComputedStyle(e).boxShadow")
    assert inserted.split("rgb")[-1] not in ring
    # "BS pass" on a changed pair says BackstopJS missed it, in a colour that is not an error's
    red = {page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", f".chip .n.{v}")
           for v in ("changed", "error")}
    missed = page.eval_on_selector_all(".row.changed .bs", "els => els.filter(e => e.textContent.startsWith('BS pass'))"
                                       ".map(e => [e.textContent, getComputedStyle(e).color])")
    assert missed and all(text == "BS pass · missed" and colour not in red for text, colour in missed), (missed, red)
    clean(page, w)


def test_review_marks_keys_progress_and_next_unreviewed_kept_in_the_browser_per_digest(chromium, page_file,
                                                                                        fixture_review, tmp_path):
    review, _ = fixture_review
    to_review = review.counts["changed"] + review.counts["error"]
    page, w = opened(chromium, page_file)

    def progress() -> str:
        return str(page.text_content("#review-progress"))

    def mark_of(rank: int) -> str | None:
        return page.get_attribute(f"#row-{rank}", "data-review")

    assert progress() == f"reviewed 0/{to_review}"
    page.keyboard.press("a")  # accepted
    assert mark_of(1) == "accepted" and page.text_content("#row-1 .rv") == "✓"
    assert page.get_attribute("#mark-accepted", "aria-pressed") == "true"
    assert progress() == f"reviewed 1/{to_review}" and "1 accepted" in page.get_attribute("#review-progress", "title")
    page.keyboard.press("a")  # the same key again clears the mark
    assert mark_of(1) == "" and progress() == f"reviewed 0/{to_review}"
    page.keyboard.press("w")  # needs work
    assert mark_of(1) == "needs-work" and progress() == f"reviewed 1/{to_review} · 1 needs work"
    # the pressed button says which mark it is in its own colour: red for needs work
    background = "(s) => getComputedStyle(document.querySelector(s)).backgroundColor"
    assert page.evaluate(background, "#mark-needs-work") == page.evaluate(background, ".chip .n.changed")
    page.keyboard.press("r")  # next unreviewed: #2
    assert page.get_attribute("#detail", "data-rank") == "2"
    page.keyboard.press("s")  # seen
    page.click("#row-4")
    page.keyboard.press("a")
    page.click("#row-1")
    page.keyboard.press("r")  # skips the marked #2, lands on #3
    assert page.get_attribute("#detail", "data-rank") == "3"
    page.keyboard.press("r")  # and then #5: #4 is marked
    assert page.get_attribute("#detail", "data-rank") == "5"
    assert progress() == f"reviewed 3/{to_review} · 1 needs work"
    # kept in this browser for this analysis: a reload shows the same marks
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert [mark_of(r) for r in (1, 2, 3, 4)] == ["needs-work", "seen", "", "accepted"]
    assert progress() == f"reviewed 3/{to_review} · 1 needs work"
    digest = page.evaluate("JSON.parse(document.getElementById('review-data').textContent).digest")
    assert page.evaluate("Object.keys(localStorage)") == [f"reviewer:review-state:{digest}"]
    # another analysis starts with no marks
    other = write_page(large_review(40, tmp_path), tmp_path)
    page.goto(file_url(other))
    page.wait_for_selector("html[data-ready=true]")
    assert page.text_content("#review-progress").startswith("reviewed 0/")
    assert page.locator('#list .row[data-review="needs-work"]').count() == 0
    clean(page, w)


@pytest.mark.slow
def test_an_error_with_both_images_shows_the_comparison_and_stays_an_error(chromium, tmp_path):
    import shutil

    from PIL import Image, ImageDraw

    from reviewer.analyze import run
    from reviewer.config import Settings

    # BackstopJS said "Reference file not found" for Contact; the reference was captured afterwards
    report = tmp_path / "backstop_data"
    shutil.copytree(FIXTURE, report)
    test_image = next((report / "bitmaps_test").iterdir()) / "fixture_Contact_0_document_0_phone.png"
    reference = report / "bitmaps_reference" / test_image.name
    assert not reference.exists()
    with Image.open(test_image) as im:
        ref = im.convert("RGB")
    ImageDraw.Draw(ref).rectangle((20, 120, 200, 170), fill=(200, 30, 30))
    ref.save(reference)
    review, out = run(report, tmp_path / "out", Settings(), use_cache=False)
    rp = next(r for r in review.ranked if r.pair.file == test_image.name)
    assert rp.pair.backstop_error and "Reference file not found" in rp.pair.backstop_error
    # the verdict and the decision are those of a broken run
    assert rp.analysis.verdict.value == "error" and rp.score == 0
    assert rp.analysis.reason.startswith("BackstopJS: Reference file not found")
    assert "compared for display only" in rp.analysis.reason
    assert review.decision.action == "hold" and review.counts["error"] == 6
    assert any(r.significant for r in rp.analysis.regions)  # the evidence: where the images differ
    page, w = opened(chromium, out / "index.html", f"pair={rp.rank}")
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.layer')).every(i => i.naturalWidth)")
    assert page.text_content(".ptitle .badge") == "error"
    assert page.text_content("#evidence").startswith("BackstopJS errored; images found afterwards")
    assert "backstop reference" in page.text_content("#error-hint")
    assert page.locator(".pane").count() == 2
    assert page.locator(".pane[data-role=test] .box").count() == len(rp.analysis.regions)
    assert page.locator("#regions .region").count() == len(rp.analysis.regions)
    # the same error without its reference: no comparison, the same hint
    other = next(r for r in review.ranked if r.pair.label == "Contact" and r.pair.viewport == "desktop")
    page.goto(file_url(out / "index.html", f"pair={other.rank}"))
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert page.locator("#evidence").count() == 0 and page.locator(".pane .box").count() == 0
    assert "backstop reference" in page.text_content("#error-hint")
    clean(page, w)


def test_long_path_labels_keep_their_distinctive_end_in_the_list_and_whole_in_the_header(chromium, tmp_path):
    """A 765-pair report's labels look like `/components/textarea/example-textarea-error`: cut at
    the end they all read `/components/textarea/…`. The list cuts them in the middle."""
    from dataclasses import replace

    review = large_review(40, tmp_path)
    ends = ["example-textarea-error", "example-textarea-disabled", "example-select-multiple"]
    ranked = tuple(replace(rp, pair=replace(rp.pair, label=f"/components/forms/with-a-long-section-name/"
                                                            f"{ends[k % 3]}-{k:02d}"))
                   for k, rp in enumerate(review.ranked))
    page_file = write_page(replace(review, ranked=ranked), tmp_path)
    page, w = opened(chromium, page_file)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(200)
    rows = page.eval_on_selector_all("#list .row:not([hidden]) .lb", """els => els.map(e => {
        const tail = e.querySelector('.lb-tail'), end = e.querySelector('.lb-end');
        const head = e.querySelector('.lb-head');
        return {title: e.title, text: e.textContent, tail: end.textContent,
                endRight: end.getBoundingClientRect().right, boxRight: tail.getBoundingClientRect().right,
                headCut: head.scrollWidth > head.clientWidth + 1 || head.clientWidth === 0}; })""")
    assert len(rows) >= 10
    for r in rows:
        assert r["title"] == r["text"] and r["title"].startswith("/components/")
        # the label's last characters are drawn at the right edge of its box: its end is visible
        assert r["tail"].endswith(r["title"][-5:]) and abs(r["endRight"] - r["boxRight"]) <= 1, r
    assert any(r["headCut"] for r in rows)  # the list is narrower than the labels: the head gave way
    title = page.locator("#pair-title")
    assert title.text_content() == rows[0]["title"]
    assert page.evaluate("e => e.scrollWidth <= e.clientWidth + 1", title.element_handle())  # whole, wrapped
    clean(page, w)
