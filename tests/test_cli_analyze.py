"""`reviewer analyze` end to end, as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QUIET_LABELS = {"Home", "About", "Badge", "Campaign", "Pricing"}


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reviewer", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def quiet_report(fixture_report, tmp_path_factory) -> Path:
    """The fixture reduced to its unchanged and noise-only pairs: a release that should pass."""
    root = tmp_path_factory.mktemp("quiet") / "backstop_data"
    shutil.copytree(fixture_report, root)
    cfg = root / "html_report" / "config.js"
    text = cfg.read_text()
    data = json.loads(text[len("report("): text.rindex(")")])
    data["tests"] = [t for t in data["tests"] if t["pair"]["label"] in QUIET_LABELS and
                     t["pair"]["selector"] in ("document", "header.site-header")]
    cfg.write_text("report(" + json.dumps(data) + ");")
    return root


def test_fixture_holds_with_exit_3(fixture_report, tmp_path):
    out = tmp_path / "out"
    res = run_cli("analyze", fixture_report, "--out", out)
    assert res.returncode == 3, res.stderr
    assert "Decision: HOLD" in res.stdout
    assert "12 changed" in res.stdout
    for name in ("review.json", "index.html", "summary.md", "junit.xml"):
        assert (out / name).is_file()
    assert json.loads((out / "review.json").read_text())["decision"]["action"] == "hold"


def test_quiet_release_approves_with_exit_0(quiet_report, tmp_path):
    res = run_cli("analyze", quiet_report, "--out", tmp_path / "o", "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("approve")
    data = json.loads((tmp_path / "o" / "review.json").read_text())
    assert {p["verdict"] for p in data["pairs"]} == {"unchanged", "noise"}
    assert data["decision"] == {"action": "approve", "reasons": []}


def test_default_output_folder_is_reports_report_id(quiet_report, tmp_path):
    res = run_cli("analyze", quiet_report, "-q", cwd=tmp_path)
    assert res.returncode == 0
    assert (tmp_path / "reports" / "fixture" / "review.json").is_file()


def test_zip_source(quiet_report, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "artifacts"), "zip", quiet_report.parent, "backstop_data")
    out = tmp_path / "reports" / "o"
    res = run_cli("analyze", archive, "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    data = json.loads((out / "review.json").read_text())
    # the images the page needs outlive the extraction folder, which is gone
    for p in data["pairs"]:
        assert (out / p["images"]["test"]).is_file()
    assert [p.name for p in out.parent.iterdir()] == ["o"]


def test_a_zip_is_unpacked_beside_the_output_folder(quiet_report, tmp_path, monkeypatch):
    """Same file system as the output (screenshots hard-linked, not copied; a large report
    does not fill a small /tmp), whether --out is given or the default reports/<id>."""
    from reviewer import analyze
    from reviewer.config import Settings
    from reviewer.sources import local

    archive = Path(shutil.make_archive(str(tmp_path / "artifacts"), "zip", quiet_report.parent, "backstop_data"))
    unpacked: list[Path] = []
    real = local.extract_zip
    monkeypatch.setattr(local, "extract_zip", lambda src, dest: (unpacked.append(dest), real(src, dest))[1])
    out = tmp_path / "elsewhere" / "o"
    analyze.run(archive, out, Settings(workers=1))
    monkeypatch.chdir(tmp_path)
    analyze.run(archive, None, Settings(workers=1))
    assert [d.parent.resolve() for d in unpacked] == [out.parent.resolve(), (tmp_path / "reports").resolve()]
    assert not any(d.exists() for d in unpacked)
    assert (tmp_path / "reports" / "fixture" / "review.json").is_file()


def test_config_file_changes_the_decision(quiet_report, tmp_path):
    strict = tmp_path / "strict.toml"
    strict.write_text("drift_delta_e = 0.0\nsubpixel_tolerance_px = 0\nsensitivity = 4.0\n")
    res = run_cli("analyze", quiet_report, "--out", tmp_path / "o", "--config", strict, "-q")
    assert res.returncode == 3


def test_unreadable_report_exits_1_with_a_clear_message(tmp_path):
    (tmp_path / "html_report").mkdir()
    (tmp_path / "html_report" / "config.js").write_text("report({broken")
    res = run_cli("analyze", tmp_path, "--out", tmp_path / "o")
    assert res.returncode == 1
    assert res.stderr.startswith("error: no readable BackstopJS report")
    assert "Traceback" not in res.stderr


def test_missing_source_exits_1(tmp_path):
    res = run_cli("analyze", tmp_path / "nope")
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_bad_usage_exits_2(fixture_report, tmp_path):
    assert run_cli("analyze").returncode == 2
    assert run_cli("analyze", fixture_report, "--bogus").returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("nope = 1\n")
    res = run_cli("analyze", fixture_report, "--config", bad)
    assert res.returncode == 2 and "unknown setting" in res.stderr


def test_help_documents_exit_codes():
    res = run_cli("analyze", "--help")
    assert res.returncode == 0
    assert "0 approve, 3 hold, 1" in " ".join(res.stdout.split())


@pytest.mark.parametrize("workers", ["1", "2"])  # in this process, and in a pool of workers
def test_ctrl_c_then_rerun_completes(fixture_report, tmp_path, workers):
    """Ctrl-C in the middle of a run: exit 130 with one line, nothing half-written, and the
    rerun completes from what the first run finished. (With one worker the pair being analysed
    once caught Ctrl-C as a broken pair and the run went on.) Deterministic: the run is frozen
    (SIGSTOP) once its first pair is in the cache, Ctrl-C is delivered to its process group
    as a terminal does, and only then is it let go."""
    import os
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "reviewer", "analyze", str(fixture_report), "--out", str(out),
                             "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    cache = out / ".reviewer-cache"
    deadline = time.monotonic() + 120
    while not (cache.is_dir() and any(p.is_file() for p in cache.rglob("*.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no pair finished within 120 s"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        assert not (out / "review.json").exists(), "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (out / "review.json").exists()
    assert not list(out.rglob("*.part"))
    finished = {p.parent.name for p in cache.rglob("*.json")}
    assert finished
    res = run_cli("analyze", fixture_report, "--out", out, "-q")
    assert res.returncode == 3, res.stderr
    assert json.loads((out / "review.json").read_text())["decision"]["action"] == "hold"
    assert finished <= {p.parent.name for p in cache.rglob("*.json")}  # the first run's work was kept
