"""BackstopJS reports for fleet tests, derived from the fixture report's real screenshots.

Every site's report has two pairs cut from a real BackstopJS image of fixtures/report
(800 px desktop pages): a page where the site's state shows, and a page that never changes.

- `theme`: the same new button colour (Planet 4 green to blue) on a button-like area drawn at
  a different position on each site, over the real page around it, its label in one of several
  languages: one change, many places;
- `regression`: a block of the page replaced by another page's content (site-specific);
- `noise`: a block of the test image 2 levels brighter: drift below what a person sees;
- `clean`: the test images are the reference images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "report" / "backstop_data" / "bitmaps_reference"
PAGES = ("Home", "About", "Badge", "Campaign", "Blog", "Pricing")
RUN = "20261201-090000"
OLD_GREEN = (102, 204, 0)
NEW_BLUE = (0, 110, 200)
BUTTON = (132, 40)


def page(name: str) -> np.ndarray:
    with Image.open(FIXTURE / f"fixture_{name}_0_document_1_desktop.png") as im:
        return np.asarray(im.convert("RGB")).copy()


LABEL = (8, 8, 8, 8, 8, 8)  # the label's glyph strokes (widths), 7 px apart: "Donate"


def draw_button(arr: np.ndarray, x: int, y: int, colour: tuple[int, int, int],
                size: tuple[int, int] = BUTTON, label: tuple[int, ...] = LABEL) -> None:
    """A flat button with a white label (glyph-like bars), as a theme draws a call to action."""
    w, h = size
    arr[y:y + h, x:x + w] = colour
    gx = x + 22
    for stroke in label:
        if gx + stroke > x + w - 8:
            break
        arr[y + 14:y + h - 14, gx:gx + stroke] = (255, 255, 255)
        gx += stroke + 7


# The button's label in the sites' languages (Donate, Faire un don, Doneer, Spenden, ...): the
# theme's colour change is the same change under every one of them.
LABELS = (LABEL, (5, 9, 4, 6, 9, 5, 7, 4, 6), (6, 6, 9, 4, 8), (9, 4, 4, 9, 6, 5, 8), (7, 5, 8, 8))


def button_position(seed: int) -> tuple[int, int]:
    return 40 + (seed * 97) % 560, 60 + (seed * 53) % 460


def site_pairs(kind: str, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, reference, test) for a site's report."""
    base = page(PAGES[seed % len(PAGES)])
    still = page(PAGES[(seed + 1) % len(PAGES)])
    x, y = button_position(seed)
    label = LABELS[seed % len(LABELS)]
    ref = base.copy()
    draw_button(ref, x, y, OLD_GREEN, label=label)
    test = ref.copy()
    if kind == "theme":
        draw_button(test, x, y, NEW_BLUE, label=label)
    elif kind == "regression":
        other = page(PAGES[(seed + 3) % len(PAGES)])
        test[300:520, 100:700] = other[40:260, 100:700]
    elif kind == "noise":
        test[200:400, 100:500] = np.clip(test[200:400, 100:500].astype(int) + 2, 0, 255).astype(np.uint8)
    elif kind != "clean":
        raise ValueError(kind)
    return [("Home", ref, test), ("About", still, still.copy())]


def make_site_report(folder: Path, kind: str, seed: int) -> Path:
    """folder/backstop_data with html_report/config.js as BackstopJS writes it; returns it."""
    root = folder / "backstop_data"
    tests = []
    for label, ref, test in site_pairs(kind, seed):
        name = f"planet4_{label}_0_document_1_desktop.png"
        (root / "bitmaps_reference").mkdir(parents=True, exist_ok=True)
        (root / "bitmaps_test" / RUN).mkdir(parents=True, exist_ok=True)
        Image.fromarray(ref).save(root / "bitmaps_reference" / name)
        Image.fromarray(test).save(root / "bitmaps_test" / RUN / name)
        changed = not np.array_equal(ref, test)
        tests.append({"pair": {
            "reference": f"../bitmaps_reference/{name}", "test": f"../bitmaps_test/{RUN}/{name}",
            "selector": "document", "fileName": name, "label": label, "misMatchThreshold": 0.1,
            "url": f"https://www-dev.greenpeace.org/site{seed}/{label.lower()}/", "expect": 0,
            "viewportLabel": "desktop",
            "diff": {"isSameDimensions": True, "misMatchPercentage": "1.20" if changed else "0.00"}},
            "status": "fail" if changed else "pass"})
    (root / "html_report").mkdir(parents=True, exist_ok=True)
    (root / "html_report" / "config.js").write_text(
        "report(" + json.dumps({"testSuite": "BackstopJS", "id": "planet4", "tests": tests}, indent=2) + ");")
    (root / "html_report" / "index.html").write_text("<!DOCTYPE html><title>BackstopJS Report</title>")
    return root


# -- a fleet of 49 projects on the local CircleCI ---------------------------------------------------

THEME_SITES = (
    "belgium", "bulgaria", "canada", "croatia", "czech-republic", "east-asia", "eu-unit", "finland", "france",
    "greece", "hungary", "india", "indonesia", "international", "israel", "italy", "japan", "korea",
    "luxembourg", "malaysia", "mena", "mexico", "netherlands", "new-zealand", "nordic", "norway", "peru",
    "philippines", "poland", "romania", "slovakia", "slovenia", "southeastasia", "spain", "sweden",
    "switzerland", "taiwan", "thailand", "turkey", "ummah",
)
STATES = {
    "africa": "clean", "aotearoa": "clean", "argentina": "noise", "brasil": "regression", "chile": "hold-marker",
    "colombia": "compare-running", "denmark": "no-release", "ghost": "404", "storm": "429-storm",
    **{name: "theme" for name in THEME_SITES},
}
TAG = "v2.31.0"


def slug(name: str) -> str:
    return f"gh/greenpeace/planet4-{name}"


def analysed_report(folder: Path, kind: str, seed: int, with_review: bool = True) -> Path:
    """The site's backstop_data as its visualtests-compare job stores it: with reviewer/ written
    by the real `reviewer ci` step (analysis only), or without it (reviewer ci did not run)."""
    from reviewer.ci import CIEnv, run_ci
    from reviewer.config import Settings

    root = make_site_report(folder, kind, seed)
    if with_review:
        run_ci(root, env=CIEnv(None, None, None, None, None, None), settings=Settings(workers=1), client=None,
               approve=False)
    return root


def build_reports(base: Path) -> dict[str, Path]:
    """Every site's stored report, built once (the analyses are real and take a few seconds)."""
    reports: dict[str, Path] = {}
    for seed, (name, state) in enumerate(sorted(STATES.items())):
        kind = {"clean": "clean", "noise": "noise", "regression": "regression", "hold-marker": "clean",
                "429-storm": "clean", "theme": "theme"}.get(state)
        if kind is not None:
            reports[name] = analysed_report(base / name, kind, seed, with_review=state != "regression")
    return reports


def populate(cci, reports: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """The 49 projects in their states, on a FakeCircleCI; an older approved release on each."""
    for name, state in STATES.items():
        s = slug(name)
        if state == "404":
            continue  # not a project CircleCI knows (or the token cannot see)
        if state == "no-release":
            cci.add_pipeline(s, None, branch="main")
            continue
        cci.add_release(s, "v2.30.0", compare="success", hold="success")  # in production already
        cci.add_pipeline(s, None, branch="develop")
        subject = "[HOLD] Release v2.31.0: wait for the campaign launch" if state == "hold-marker" else "Release"
        compare = "running" if state == "compare-running" else "failed"
        cci.add_release(s, TAG, subject=subject, compare=compare,
                        report=None if state == "compare-running" else reports[name])
