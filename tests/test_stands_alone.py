"""The repository stands alone: a user clones it without the workplace's `shared/` folder, so no
code, test, tool or CI script may read a path outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Absolute paths of the machine this was written on, or a climb to the workplace's sibling
# folders. (Hostile-input tests climb out with `../..` on purpose: that is what they test.)
OUTSIDE = re.compile(r"(?<![\w./-])/work/|\.\./shared\b|(?<![\w./-])/shared/")

# Data, not reads: BackstopJS wrote the absolute paths of the machine that ran it into the report.
DATA = ("fixtures/report/", "fixtures/calibration/report/")


def tracked_sources() -> list[Path]:
    """The repository's code, tests, tools and CI scripts (git's list when this is a clone)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0:
        names = listed.stdout.splitlines()
    else:  # an exported tree without .git
        skip = (".venv/", "node_modules/", "reports/", "benchmarks/work/")
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and "node_modules" not in p.parts and not str(p.relative_to(ROOT)).startswith(skip)]
    suffixes = {".py", ".sh", ".js", ".mjs", ".toml", ".cfg", ".ini", ".yml", ".yaml"}
    files = [ROOT / f for f in names if not f.startswith(DATA) and f != "tests/test_stands_alone.py"]
    return [f for f in files if f.suffix in suffixes or f.parent.name == ".ci"]


def test_no_code_or_test_reads_outside_the_repository() -> None:
    offenders = []
    for path in tracked_sources():
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_the_circleci_spec_is_committed_with_its_source() -> None:
    spec = ROOT / "tests" / "data" / "circleci" / "openapi.json"
    source = (spec.parent / "SOURCE.md").read_text()
    assert spec.stat().st_size > 100_000
    assert "MIT" in source and "circleci-docs" in source
