"""The CircleCI commands as a maintainer runs them: exit codes, output, files, no token anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from circleci_env import PROJECT, SLUG, cli_runner, fast_policy
from fake_circleci import FakeCircleCI, FakeStorage

from reviewer import audit
from reviewer.circleci import client_from_env
from reviewer.cli.circleci_cmds import COMMANDS

pytest_plugins = ["circleci_fixtures"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "circleci.md"


@pytest.fixture
def run(cci: FakeCircleCI, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `reviewer ARGS` in this process (in tmp_path, pointed at the local CircleCI)."""
    monkeypatch.chdir(tmp_path)
    # The real client, with retries that do not sleep (the CLI's own policy waits seconds).
    run_cli = cli_runner(monkeypatch, capsys, token=token, api_url=cci.api_url,
                         client_factory=lambda api_url: client_from_env(api_url, retry=fast_policy()))
    outputs: list[str] = []

    def invoke(*args: str) -> tuple[int, str]:
        code, out, err = run_cli(*args)
        outputs.append(out + err)
        return code, out + err

    yield invoke
    assert all(token not in o for o in outputs), "the token was printed"


def test_every_command_has_an_example_and_is_documented() -> None:
    docs = DOCS.read_text()
    for name, fn in COMMANDS.items():
        assert "Example: reviewer " + name in (fn.__doc__ or ""), name
        assert f"reviewer {name}" in docs, name


def test_review_fetches_and_analyses(cci: FakeCircleCI, run, approving_report: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    code, out = run("review", PROJECT, "--tag", "v1.2.0")
    assert code == 0, out
    assert "Decision: APPROVE" in out and f"reviewer approve {PROJECT} --tag v1.2.0" in out
    job = cci.job(wf, "visualtests-compare").job_number
    assert (tmp_path / "reports" / "planet4-testland" / "v1.2.0" / f"job-{job}" / "review" / "index.html").is_file()


def test_review_of_a_held_release_exits_3(cci: FakeCircleCI, run, holding_report: Path) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.2.0", report=holding_report)
    code, out = run("review", PROJECT, "--tag", "v1.2.0")
    assert code == 3 and "Decision: HOLD" in out


def test_fetch_exits_0_only_when_complete(cci: FakeCircleCI, storage: FakeStorage, run, approving_report: Path,  # type: ignore[no-untyped-def]
                                         tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    number = cci.job(wf, "visualtests-compare").job_number or 0
    victim = next(a for a in cci.artifacts[(SLUG, number)] if a.path.endswith(".png"))
    storage.inject("GET", rf"^/blob/{victim.key}$", "status", status=500, times=100)
    code, out = run("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    assert code == 1 and "incomplete" in out and "download failed" in out
    storage.faults.clear()
    code, out = run("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    assert code == 0 and "1 file(s) downloaded" in out and "complete: reviewer analyze dl" in out


def test_fetch_refuses_while_the_compare_job_runs(cci: FakeCircleCI, run) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.2.0", compare="running")
    code, out = run("fetch", PROJECT, "--tag", "v1.2.0")
    assert code == 1 and "is running: its artifacts are stored when it ends" in out


def test_approve_asks_for_yes_without_a_terminal(cci: FakeCircleCI, run, approving_report: Path) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    code, out = run("approve", PROJECT, "--tag", "v1.2.0")
    assert code == 2 and "--yes" in out and cci.find("POST", r".") == []


def test_approve_prints_checks_and_the_audit_line(cci: FakeCircleCI, run, approving_report: Path,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    _p, _wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    code, out = run("approve", PROJECT, "--tag", "v1.2.0", "--yes")
    assert code == 0, out
    assert "✓ commit: no [HOLD]" in out and "approved hold-production of v1.2.0" in out
    (line,) = audit.read(tmp_path / "reports" / "audit.jsonl")
    assert f"audit: {json.dumps(line, ensure_ascii=False)}" in out
    code, out = run("approve", PROJECT, "--tag", "v1.2.0", "--yes")
    assert code == 0 and "already approved" in out and len(cci.find("POST", r"/approve/")) == 1


def test_approve_refused_exits_3(cci: FakeCircleCI, run, holding_report: Path) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.2.0", report=holding_report)
    code, out = run("approve", PROJECT, "--tag", "v1.2.0", "--yes")
    assert code == 3 and "! analysis: the analysis decides hold" in out and cci.find("POST", r".") == []


def test_hold_reject_and_rollback(cci: FakeCircleCI, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.0.0", hold="success", compare="success")
    cci.add_release(SLUG, "v1.1.0", hold="success", compare="success")
    _p, wf = cci.add_release(SLUG, "v1.2.0")
    code, out = run("hold", PROJECT, "--tag", "v1.2.0", "--reason", "menu overlaps the logo", "--reject", "--yes")
    assert code == 0 and "rejected" in out and cci.job(wf, "hold-production").status == "canceled"
    code, out = run("rollback", PROJECT, "--yes")
    assert code == 0 and "triggered for v1.0.0, the release before the latest one in production (v1.1.0)" in out
    assert "hold-production-db" in out
    assert f"https://127.0.0.1:{cci.port}/pipelines/github/greenpeace/planet4-testland/" not in out
    assert f"/pipelines/github/greenpeace/planet4-testland/{cci.pipelines[-1].number}" in out
    actions = [line["action"] for line in audit.read(tmp_path / "reports" / "audit.jsonl")]
    assert actions == ["reject", "rollback"]


def test_status_of_a_release_and_of_the_latest(cci: FakeCircleCI, run) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.1.0", hold="success", compare="success")
    cci.add_release(SLUG, "v1.2.0", subject="Release v1.2.0")
    code, out = run("status", PROJECT, "--tag", "v1.2.0")
    assert code == 0 and "visualtests-compare" in out and "Release v1.2.0" in out
    assert "approvals waiting: hold-production, rollback-staging" in out
    code, out = run("status", PROJECT)
    assert code == 0 and out.index("v1.2.0") < out.index("v1.1.0")


def test_status_shows_rollback_pipelines(cci: FakeCircleCI, run) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.0.0", hold="success", compare="success")
    cci.add_release(SLUG, "v1.1.0", hold="success", compare="success")
    code, out = run("rollback", PROJECT, "--to", "v1.0.0", "--yes")
    number = cci.pipelines[-1].number
    code, out = run("status", PROJECT, "--pipeline", str(number))
    assert code == 0 and "workflow rollback" in out and "hold-production-db" in out
    code, out = run("status", PROJECT, "--tag", "v1.0.0")
    assert code == 0 and "workflow production: " in out and f"later: pipeline {number} (rollback workflow" in out


def test_a_project_the_token_cannot_see(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("status", "planet4-nowhere", "--tag", "v1")
    assert code == 1 and "personal API token" in out


def test_no_token(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CIRCLE_TOKEN")
    code, out = run("status", PROJECT)
    assert code == 2 and "CIRCLECI_TOKEN" in out


def test_approve_reads_the_commit_from_github_when_circleci_does_not_say(  # type: ignore[no-untyped-def]
        cci: FakeCircleCI, run, approving_report: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_github import FakeGitHub

    p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report, commit_known=False)
    gh = FakeGitHub("unused")
    try:
        monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        gh.commits[("greenpeace", "planet4-testland", p.revision)] = "Release v1.2.0\n\n[HOLD] until the launch"
        code, out = run("approve", PROJECT, "--tag", "v1.2.0", "--yes")
        assert code == 3 and "contains [HOLD] (in its body; message from GitHub" in out
        gh.commits[("greenpeace", "planet4-testland", p.revision)] = "Release v1.2.0\n\nAll good"
        code, out = run("approve", PROJECT, "--tag", "v1.2.0", "--yes")
        assert code == 0 and cci.job(wf, "hold-production").status == "success"
        assert all("authorization" not in r.headers for r in gh.requests)  # no GITHUB_TOKEN, no header
    finally:
        gh.close()
