"""Helpers shared by the CircleCI/GitHub tests (their fixtures are in circleci_fixtures.py).

- `fast_policy()`: a RetryPolicy that records waits instead of sleeping, so fault tests take
  milliseconds.
- `make_report(folder, changed=...)`: a small BackstopJS report built on the fly (real PNGs,
  config.js in BackstopJS's JSONP form): unchanged pairs analyse to approve, a changed one
  to hold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from reviewer.webclient import RetryPolicy

SLUG = "gh/greenpeace/planet4-testland"
PROJECT = "planet4-testland"
FIXTURE_REPORT = Path(__file__).resolve().parent.parent / "fixtures" / "report" / "backstop_data"


class Sleeps(list[float]):
    """A RetryPolicy.sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_policy(sleeps: Sleeps | None = None, attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, backoff=0.01, max_wait=0.05, max_retry_after=5.0,
                       sleep=sleeps if sleeps is not None else Sleeps())


def _png(path: Path, colour: tuple[int, int, int], box: tuple[int, int, int, int] | None = None,
         size: tuple[int, int] = (320, 240)) -> None:
    arr = np.full((size[1], size[0], 3), 250, dtype=np.uint8)
    arr[20:60, 20:300] = (30, 30, 30)  # a header bar
    if box:
        x0, y0, x1, y1 = box
        arr[y0:y1, x0:x1] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_report(folder: Path, *, changed: bool = False, run: str = "20251001-090000") -> Path:
    """A BackstopJS report in folder/backstop_data with two pairs; returns backstop_data."""
    root = folder / "backstop_data"
    tests = []
    for i, (label, viewport) in enumerate((("Home", "mobile"), ("Home", "desktop"))):
        name = f"planet4_{label}_0_document_{i}_{viewport}.png"
        ref = root / "bitmaps_reference" / name
        test = root / "bitmaps_test" / run / name
        _png(ref, (0, 120, 0), (40, 100, 140, 160))
        if changed and i == 1:
            _png(test, (200, 0, 0), (40, 100, 300, 200))  # a big red block instead of the green one
        else:
            test.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ref, test)
        pair = {
            "reference": f"../bitmaps_reference/{name}", "test": f"../bitmaps_test/{run}/{name}",
            "selector": "document", "fileName": name, "label": label, "misMatchThreshold": 3,
            "url": "https://www-dev.greenpeace.org/testland/", "expect": 0, "viewportLabel": viewport,
            "diff": {"isSameDimensions": True, "misMatchPercentage": "0.00"},
        }
        status = "pass"
        if changed and i == 1:
            diff = root / "bitmaps_test" / run / f"failed_diff_{name}"
            _png(diff, (255, 0, 255), (40, 100, 300, 200))
            pair["diffImage"] = f"../bitmaps_test/{run}/failed_diff_{name}"
            pair["diff"] = {"isSameDimensions": True, "misMatchPercentage": "25.00"}
            status = "fail"
        tests.append({"pair": pair, "status": status})
    html = root / "html_report"
    html.mkdir(parents=True, exist_ok=True)
    (html / "config.js").write_text("report(" + json.dumps({"testSuite": "BackstopJS", "id": "planet4",
                                                            "tests": tests}, indent=2) + ");")
    (html / "index.html").write_text("<!DOCTYPE html><title>BackstopJS Report</title><script src=index_bundle.js>"
                                     "</script>")
    (html / "index_bundle.js").write_text("/* the report app */")
    (root / "ci_report").mkdir(exist_ok=True)
    (root / "ci_report" / "xunit.xml").write_text("<testsuites/>")
    return root


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli_runner(monkeypatch, capsys, *, token: str, api_url: str, client_factory):  # type: ignore[no-untyped-def]
    """Run `reviewer ARGS` in this process against the local CircleCI: environment set, no
    terminal (so confirmations need --yes), the given client. Returns invoke(*args) ->
    (exit code, stdout, stderr)."""
    import io
    import sys

    from reviewer.cli import circleci_cmds

    monkeypatch.setenv("CIRCLE_TOKEN", token)
    monkeypatch.delenv("CIRCLECI_TOKEN", raising=False)
    monkeypatch.setenv("CIRCLECI_API_URL", api_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(circleci_cmds, "_client", client_factory)
    return main_invoker(monkeypatch, capsys)


def main_invoker(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """invoke(*args) -> (exit code, stdout, stderr): `reviewer ARGS` run in this process."""
    import sys

    from reviewer.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["reviewer", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
