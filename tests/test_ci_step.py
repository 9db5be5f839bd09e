"""`reviewer ci` inside visualtests-compare: analyse, write the artifacts, approve only when safe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from circleci_env import SLUG
from fake_circleci import FakeCircleCI, FakeWorkflow
from fake_github import FakeGitHub

from reviewer import audit
from reviewer.ci import CIEnv, run_ci
from reviewer.circleci import CircleCIClient
from reviewer.config import Settings
from reviewer.github import MARKER, GitHubClient

pytest_plugins = ["circleci_fixtures"]

JOB_UUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def git_commit(folder: Path, subject: str, body: str = "") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(folder), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    args = [*git, "commit", "-q", "--allow-empty", "-m", subject] + (["-m", body] if body else [])
    subprocess.run(args, check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def env_for(wf: FakeWorkflow, sha: str, tag: str | None = "v1.2.0") -> CIEnv:
    org, repo = SLUG.split("/")[1:]
    return CIEnv(workflow_id=wf.id, username=org, reponame=repo, sha1=sha, tag=tag,
                 build_url=f"https://circleci.com/gh/{org}/{repo}/104", workflow_job_id=JOB_UUID)


@pytest.fixture
def source(approving_report: Path, tmp_path: Path) -> Path:
    """The report where the CI job has it (a copy: the step writes into it)."""
    dest = tmp_path / "app" / "backstop_data"
    shutil.copytree(approving_report, dest)
    return dest


@pytest.fixture
def github(token: str) -> Iterator[FakeGitHub]:
    server = FakeGitHub("ghp_" + token)
    yield server
    server.close()


def approvals(cci: FakeCircleCI) -> int:
    return len(cci.find("POST", r"/approve/"))


def test_a_clean_release_is_approved_and_reported(cci: FakeCircleCI, client: CircleCIClient, source: Path,
                                                  tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release v1.2.0", "New donation block")
    outcome = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, git_dir=tmp_path / "repo")
    assert outcome.exit_code == 0, outcome.approval
    assert cci.job(wf, "hold-production").status == "success" and approvals(cci) == 1
    out = source / "reviewer"
    assert outcome.out_dir == out
    for name in ("index.html", "summary.md", "junit.xml", "review.json", "audit.jsonl"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    page = f"https://output.circle-artifacts.com/output/job/{JOB_UUID}/artifacts/0/{out.resolve().as_posix()[1:]}"
    assert f"({page}/index.html)" in summary and f"[junit.xml]({page}/junit.xml)" in summary
    assert "approved hold-production of v1.2.0" in summary and "from git" in summary
    (line,) = audit.read(out / "audit.jsonl")
    assert line["action"] == "approve" and line["digest"] == outcome.review.digest


def test_hold_only_in_the_commit_body_keeps_it_on_hold(cci: FakeCircleCI, client: CircleCIClient, source: Path,
                                                       tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release v1.2.0", "Waiting for the campaign launch.\n\n[HOLD]")
    outcome = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, git_dir=tmp_path / "repo")
    assert outcome.exit_code == 3 and approvals(cci) == 0
    assert cci.job(wf, "hold-production").status == "on_hold"
    summary = (outcome.out_dir / "summary.md").read_text()
    assert "left on hold" in summary and "contains \\[HOLD\\]" not in summary
    assert "[HOLD] (in its body; message from git" in summary


def test_without_git_the_pipeline_data_is_used_and_doubt_holds(cci: FakeCircleCI, client: CircleCIClient,
                                                               source: Path, tmp_path: Path) -> None:
    p, wf = cci.add_release(SLUG, "v1.2.0", compare="running", body="[HOLD] until Monday")
    not_a_repo = tmp_path / "empty"
    not_a_repo.mkdir()
    outcome = run_ci(source, env=env_for(wf, p.revision), settings=Settings(), client=client, git_dir=not_a_repo)
    assert outcome.exit_code == 3 and approvals(cci) == 0
    assert any(c.name == "commit" and "CircleCI" in c.detail for c in outcome.checks if not c.ok)

    p2, wf2 = cci.add_release(SLUG, "v1.3.0", compare="running", commit_known=False)
    outcome = run_ci(source, env=env_for(wf2, p2.revision, "v1.3.0"), settings=Settings(), client=client,
                     git_dir=not_a_repo)
    assert outcome.exit_code == 3 and approvals(cci) == 0
    assert "cannot be ruled out" in (outcome.out_dir / "summary.md").read_text()


def test_the_pipeline_data_is_used_when_clean(cci: FakeCircleCI, client: CircleCIClient, source: Path,
                                              tmp_path: Path) -> None:
    p, wf = cci.add_release(SLUG, "v1.2.0", compare="running", subject="Release v1.2.0", body="Fixes")
    (tmp_path / "empty").mkdir()
    outcome = run_ci(source, env=env_for(wf, p.revision), settings=Settings(), client=client,
                     git_dir=tmp_path / "empty")
    assert outcome.exit_code == 0 and approvals(cci) == 1


def test_a_hold_decision_never_touches_circleci(cci: FakeCircleCI, client: CircleCIClient, holding_report: Path,
                                                tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release")
    outcome = run_ci(holding_report, env=env_for(wf, sha), settings=Settings(), client=client,
                     git_dir=tmp_path / "repo")
    assert outcome.exit_code == 3 and cci.requests == []
    summary = (outcome.out_dir / "summary.md").read_text()
    assert "HOLD" in summary and "analysis decided hold" in summary
    assert (outcome.out_dir / "junit.xml").read_text().count("<failure") == 1


@pytest.mark.parametrize(("tag", "has_client", "why"), [
    (None, True, "not a tag build"),
    ("v1.2.0", False, "no CircleCI token"),
    ("v9.9.9", True, "not 'v9.9.9'"),
])
def test_no_approval_without_a_production_tag_build_or_a_token(
        cci: FakeCircleCI, client: CircleCIClient, source: Path, tmp_path: Path, tag: str | None,
        has_client: bool, why: str) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release")
    outcome = run_ci(source, env=env_for(wf, sha, tag), settings=Settings(),
                     client=client if has_client else None, git_dir=tmp_path / "repo")
    assert outcome.exit_code == 3 and why in outcome.approval and approvals(cci) == 0


def test_already_approved(cci: FakeCircleCI, client: CircleCIClient, source: Path, tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running", hold="success")
    sha = git_commit(tmp_path / "repo", "Release")
    outcome = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, git_dir=tmp_path / "repo")
    assert outcome.exit_code == 0 and "already approved" in outcome.approval and approvals(cci) == 0


def test_an_unconfirmed_approval_fails_the_step(cci: FakeCircleCI, client: CircleCIClient, source: Path,
                                                tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    cci.inject("POST", r"/approve/", "status", status=502)
    sha = git_commit(tmp_path / "repo", "Release")
    outcome = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, git_dir=tmp_path / "repo")
    assert outcome.exit_code == 1 and approvals(cci) == 1 and "Nothing was re-sent" in outcome.approval


def test_the_summary_is_one_github_comment_updated_on_every_run(
        cci: FakeCircleCI, client: CircleCIClient, github: FakeGitHub, source: Path, tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release")
    org, repo = SLUG.split("/")[1:]
    github.add_comment(org, repo, sha, "Looks good to me", "someone")
    gh = GitHubClient(github.token, github.api_url)
    first = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, github=gh,
                   git_dir=tmp_path / "repo")
    second = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, github=gh,
                    git_dir=tmp_path / "repo")
    ours = [c for c in github.comments if c.login == github.login]
    assert len(ours) == 1 and ours[0].body.startswith(MARKER) and "Visual review" in ours[0].body
    assert "already approved" in ours[0].body  # the second run's summary replaced the first
    assert first.comment_url == second.comment_url and first.comment_url
    assert len(github.find("POST", r"/comments$")) == 1 and len(github.find("PATCH", r"/comments/")) == 1


def test_a_failed_comment_is_a_warning_not_a_failure(cci: FakeCircleCI, client: CircleCIClient,
                                                     github: FakeGitHub, source: Path, tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release")
    gh = GitHubClient("wrong-token-123", github.api_url)
    outcome = run_ci(source, env=env_for(wf, sha), settings=Settings(), client=client, github=gh,
                     git_dir=tmp_path / "repo")
    assert outcome.exit_code == 0 and outcome.warnings and "GitHub comment failed" in outcome.warnings[0]
    assert "wrong-token-123" not in (outcome.out_dir / "summary.md").read_text()


def test_the_ci_command_end_to_end(cci: FakeCircleCI, source: Path, tmp_path: Path, token: str) -> None:
    """As the CircleCI job runs it: a real process, CircleCI's variables, exit code 0, no token printed."""
    p, wf = cci.add_release(SLUG, "v1.2.0", compare="running")
    sha = git_commit(tmp_path / "repo", "Release v1.2.0")
    org, repo = SLUG.split("/")[1:]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CIRCLE_TOKEN": token, "CIRCLECI_API_URL": cci.api_url,
           "CIRCLE_WORKFLOW_ID": wf.id, "CIRCLE_PROJECT_USERNAME": org, "CIRCLE_PROJECT_REPONAME": repo,
           "CIRCLE_SHA1": sha, "CIRCLE_TAG": "v1.2.0", "CIRCLE_BUILD_URL": "https://circleci.com/gh/x/y/104",
           "CIRCLE_WORKFLOW_JOB_ID": JOB_UUID}
    res = subprocess.run([sys.executable, "-m", "reviewer", "ci", str(source), "--git-dir", str(tmp_path / "repo"),
                          "--comment", "github"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "approved hold-production of v1.2.0" in res.stdout and '"action": "approve"' in res.stdout
    assert "warning: no GitHub comment" in res.stdout  # no GITHUB_TOKEN: a warning, the release goes on
    assert token not in res.stdout + res.stderr
    assert cci.job(wf, "hold-production").status == "success"
    assert p.number > 0
