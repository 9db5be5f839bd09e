"""Sources, folders and the CLI as a newcomer meets them (issue 13, point 7): help and version,
several reports in one folder, html_report/index.html, output folders that would damage files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reviewer", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def small_report(fixture_report: Path, dest: Path, labels: set[str]) -> Path:
    """A copy of the real fixture report reduced to a few pairs (fast to analyse)."""
    root = dest / "backstop_data"
    shutil.copytree(fixture_report, root)
    cfg = root / "html_report" / "config.js"
    text = cfg.read_text()
    data = json.loads(text[len("report("): text.rindex(")")])
    data["tests"] = [t for t in data["tests"] if t["pair"]["label"] in labels][:4]
    cfg.write_text("report(" + json.dumps(data) + ");")
    return root


def test_help_version_and_a_start_here_example() -> None:
    for flag in ("-h", "--help"):
        res = run_cli(flag)
        assert res.returncode == 0 and "Start here" in res.stdout and "reviewer analyze" in res.stdout
    res = run_cli("analyze", "-h")
    assert res.returncode == 0 and "--out" in res.stdout
    res = run_cli("--version")
    assert res.returncode == 0 and re.fullmatch(r"reviewer \d+\.\d+\.\d+\S*\n", res.stdout)


def test_the_command_list_never_cuts_a_description_mid_sentence() -> None:
    from reviewer.cli import app, short_help

    text = " ".join(run_cli("--help").stdout.split())
    commands = app.registered_commands
    assert len(commands) >= 10
    for cmd in commands:
        assert cmd.callback is not None
        line = short_help(cmd.callback)
        assert line.endswith((".", ")")), line
        assert f"{cmd.name} {line}" in text, cmd.name
    for group in app.registered_groups:  # command groups (fleet) too
        assert group.short_help and f"{group.name} {group.short_help}" in text, group.name
    assert "..." not in text[text.index("Commands:"):]


def test_a_folder_with_several_reports_is_refused_with_the_list(fixture_report: Path, tmp_path: Path) -> None:
    small_report(fixture_report, tmp_path / "artifacts" / "site-a", {"Home"})
    small_report(fixture_report, tmp_path / "artifacts" / "site-b", {"Home", "About"})
    res = run_cli("analyze", tmp_path / "artifacts", "--out", tmp_path / "out")
    assert res.returncode == 2, res.stderr
    assert "holds 2 BackstopJS reports" in res.stderr
    for site in ("site-a", "site-b"):
        assert re.search(rf"{site}/backstop_data: id \S+, \d+ tests, run \d{{4}}-\d\d-\d\d", res.stderr), res.stderr
    assert not (tmp_path / "out" / "review.json").exists()


def test_the_only_report_below_a_folder_is_named_first(fixture_report: Path, tmp_path: Path) -> None:
    small_report(fixture_report, tmp_path / "app", {"Home"})
    res = run_cli("analyze", tmp_path / "app", "--out", tmp_path / "out")
    assert res.returncode in (0, 3), res.stderr
    assert res.stderr.splitlines()[0].startswith("reading the report in backstop_data (id ")


def test_html_report_index_html_is_its_report(fixture_report: Path, tmp_path: Path) -> None:
    root = small_report(fixture_report, tmp_path, {"Home", "About"})
    res = run_cli("analyze", root / "html_report" / "index.html", "--out", tmp_path / "out")
    assert res.returncode in (0, 3), res.stderr
    assert json.loads((tmp_path / "out" / "review.json").read_text())["pairs"]


def test_out_inside_the_report_is_refused(fixture_report: Path, tmp_path: Path) -> None:
    root = small_report(fixture_report, tmp_path, {"Home"})
    res = run_cli("analyze", root, "--out", root / "review")
    assert res.returncode == 2 and "inside the report's folder" in res.stderr
    assert not (root / "review").exists()


def test_out_among_someone_elses_files_needs_force(fixture_report: Path, tmp_path: Path) -> None:
    root = small_report(fixture_report, tmp_path, {"Home"})
    theirs = tmp_path / "Documents"
    theirs.mkdir()
    (theirs / "thesis.docx").write_bytes(b"precious")
    res = run_cli("analyze", root, "--out", theirs)
    assert res.returncode == 2 and "did not write (thesis.docx)" in res.stderr and "--force" in res.stderr
    assert sorted(p.name for p in theirs.iterdir()) == ["thesis.docx"]
    res = run_cli("analyze", root, "--out", theirs, "--force")
    assert res.returncode in (0, 3) and (theirs / "thesis.docx").read_bytes() == b"precious"
    # A previous run's output folder is the normal case: analysed again without --force.
    res = run_cli("analyze", root, "--out", tmp_path / "out")
    assert res.returncode in (0, 3)
    res = run_cli("analyze", root, "--out", tmp_path / "out")
    assert res.returncode in (0, 3), res.stderr


def test_serve_of_a_missing_path_says_it_does_not_exist(tmp_path: Path) -> None:
    res = run_cli("serve", tmp_path / "no-such-report")
    assert res.returncode == 2 and "does not exist" in res.stderr
