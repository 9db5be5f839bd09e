from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "report" / "backstop_data"
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def fixture_report() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def fixture_review(tmp_path_factory):
    """The real BackstopJS fixture, analysed once for every test that reads the outputs."""
    from reviewer.analyze import run
    from reviewer.config import Settings

    out = tmp_path_factory.mktemp("fixture-review")
    review, out_dir = run(FIXTURE, out, Settings())
    return review, out_dir
