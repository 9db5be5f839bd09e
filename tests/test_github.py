"""The GitHub commit comment (create, then update our own) and commit messages, against a local GitHub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from circleci_env import Sleeps, fast_policy
from fake_github import FakeGitHub

from reviewer.errors import UsageError
from reviewer.github import MARKER, MAX_BODY, GitHubClient, GitHubError, comment_body, github_from_env

pytest_plugins = ["circleci_fixtures"]

TOKEN = "ghp_testtoken0123456789"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    server = FakeGitHub(TOKEN)
    yield server
    server.close()


@pytest.fixture
def client(gh: FakeGitHub, sleeps: Sleeps) -> Iterator[GitHubClient]:
    c = GitHubClient(TOKEN, gh.api_url, retry=fast_policy(sleeps))
    yield c
    c.close()


def test_first_run_creates_later_runs_update(gh: FakeGitHub, client: GitHubClient) -> None:
    first = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "## ✅ Visual review: APPROVE\n")
    second = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "## ⛔ Visual review: HOLD\n")
    assert first.created and not second.created and first.id == second.id
    (comment,) = gh.comments
    assert comment.body == f"{MARKER}\n## ⛔ Visual review: HOLD\n"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in gh.requests)


def test_only_our_own_marked_comment_is_updated(gh: FakeGitHub, client: GitHubClient) -> None:
    for i in range(5):  # more than a page of other people's comments
        gh.add_comment("greenpeace", "planet4-x", SHA, f"comment {i}", "someone")
    gh.add_comment("greenpeace", "planet4-x", SHA, f"{MARKER}\nquoted by someone else", "someone")
    ours = gh.add_comment("greenpeace", "planet4-x", SHA, f"{MARKER}\nold summary", gh.login)
    result = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "new summary")
    assert result.id == ours.id and not result.created
    assert ours.body.endswith("new summary")
    assert [c.body for c in gh.comments if c.login == "someone"][-1].endswith("quoted by someone else")
    assert len(gh.find("GET", r"/comments$")) == 4  # 7 comments, pages of 2: the Link header was followed


def test_without_a_readable_user_the_marker_alone_identifies_ours(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.user_forbidden = True  # e.g. a GitHub App installation token
    first = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "one")
    second = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "two")
    assert first.id == second.id and len(gh.comments) == 1


def test_a_lost_post_answer_does_not_post_twice(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.inject("POST", r"/comments$", "drop_after")
    result = client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "summary")
    assert result.created and len(gh.comments) == 1 and len(gh.find("POST", r"/comments$")) == 1


def test_rate_limits_and_server_errors_are_retried(gh: FakeGitHub, client: GitHubClient, sleeps: Sleeps) -> None:
    gh.inject("GET", r"/comments$", "status", status=403, headers={"Retry-After": "2"})
    gh.inject("GET", r"/comments$", "status", status=502)
    client.upsert_commit_comment("greenpeace", "planet4-x", SHA, "summary")
    assert sleeps[0] == 2.0 and len(sleeps) == 2 and len(gh.comments) == 1


def test_a_refused_token_is_explained_and_not_shown(gh: FakeGitHub) -> None:
    bad = GitHubClient("ghp_wrong_token_999", gh.api_url, retry=fast_policy())
    with pytest.raises(GitHubError) as info:
        bad.upsert_commit_comment("greenpeace", "planet4-x", SHA, "summary")
    assert "GITHUB_TOKEN" in str(info.value) and "ghp_wrong_token_999" not in str(info.value)


def test_commit_message(gh: FakeGitHub, client: GitHubClient) -> None:
    gh.commits[("greenpeace", "planet4-x", SHA)] = "Release v1\n\n[HOLD] please"
    assert client.commit_message("greenpeace", "planet4-x", SHA) == "Release v1\n\n[HOLD] please"
    public = GitHubClient(None, gh.api_url, retry=fast_policy())
    assert "authorization" not in {k.lower() for k in public.web._auth}
    with pytest.raises(GitHubError, match="422"):
        client.commit_message("greenpeace", "planet4-x", "f" * 40)


@pytest.mark.parametrize(("owner", "repo", "sha"), [("../x", "r", SHA), ("o", "r/../../x", SHA), ("o", "r", "HEAD")])
def test_names_are_checked_before_they_reach_a_url(client: GitHubClient, owner: str, repo: str, sha: str) -> None:
    with pytest.raises(UsageError):
        client.upsert_commit_comment(owner, repo, sha, "x")


def test_long_summaries_are_shortened_to_what_github_accepts() -> None:
    body = comment_body("x" * 100_000)
    assert len(body) <= MAX_BODY and body.startswith(MARKER) and "shortened" in body


def test_github_from_env(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHub) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        github_from_env()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    assert github_from_env().login() == gh.login
