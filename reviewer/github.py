"""GitHub REST API: the review summary as one comment on the tagged commit, and commit messages.

Our comment is recognised by a hidden marker, `<!-- reviewer:summary -->`, on its first line
(and, when the token's user can be read from GET /user, by its author), so running again
updates it instead of adding another. A POST whose answer is lost is not re-sent blindly:
the comments are listed again and a comment with the marker counts as created.

The token (GITHUB_TOKEN) is registered with reviewer.redact and sent only to the API origin.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from reviewer.errors import UsageError
from reviewer.redact import redact, register_secret
from reviewer.webclient import HttpError, OutcomeUnknown, RetryPolicy, WebClient

if TYPE_CHECKING:
    from reviewer.release import Release

DEFAULT_GITHUB_API = "https://api.github.com"
MARKER = "<!-- reviewer:summary -->"
MAX_BODY = 65_000  # GitHub refuses comments over 65,536 characters
MAX_PAGES = 50
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


class GitHubError(HttpError):
    pass


@dataclass(frozen=True)
class CommentResult:
    id: int
    url: str
    created: bool  # False: our earlier comment was updated


def comment_body(summary: str) -> str:
    body = f"{MARKER}\n{summary}"
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 80] + "\n\n… (shortened: the full summary is in the job's artifacts)\n"
    return body


def _check(owner: str, repo: str, sha: str) -> None:
    if not (_NAME.match(owner) and _NAME.match(repo) and owner not in (".", "..") and repo not in (".", "..")):
        raise UsageError(f"{owner}/{repo} is not a GitHub repository name")
    if not _SHA.match(sha):
        raise UsageError(f"{sha!r} is not a commit SHA")


class GitHubClient:
    """`GitHubClient(token, api_url=DEFAULT_GITHUB_API, transport=None)`; token may be None for
    public reads (commit messages of public repositories)."""

    def __init__(self, token: str | None, api_url: str = DEFAULT_GITHUB_API,
                 transport: httpx.BaseTransport | None = None, *, retry: RetryPolicy | None = None) -> None:
        token = (token or "").strip() or None
        register_secret(token)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.api_url = api_url.rstrip("/")
        self.has_token = token is not None
        self.web = WebClient(self.api_url, auth, transport=transport, retry=retry,
                             accept="application/vnd.github+json")
        self._login: str | bool | None = False  # False: not asked yet

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r})"

    def close(self) -> None:
        self.web.close()

    def _json(self, method: str, path_or_url: str, *, what: str, json: Any = None, ok: tuple[int, ...] = (200,),
              params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        response = self.web.request(method, path_or_url, json=json, params=params, what=what,
                                    idempotent=method in ("GET", "PATCH"))
        if response.status_code not in ok:
            try:
                said = str(response.json().get("message", ""))[:200]
            except (ValueError, AttributeError):
                said = ""
            hint = ""
            if response.status_code in (401, 403, 404):
                hint = (" (check GITHUB_TOKEN: it needs write access to the repository's contents to comment on "
                        "commits)") if self.has_token else " (set GITHUB_TOKEN)"
            raise GitHubError(redact(f"{what}: GitHub answered {response.status_code}"
                                     + (f": {said}" if said else "") + hint))
        try:
            return response.json(), response
        except ValueError:
            raise GitHubError(f"{what}: GitHub's answer is not JSON") from None

    def commit_message(self, owner: str, repo: str, sha: str) -> str:
        """The full message (subject and body) of a commit."""
        _check(owner, repo, sha)
        data, _ = self._json("GET", f"/repos/{owner}/{repo}/commits/{sha}", what=f"read commit {sha[:12]}")
        message = data.get("commit", {}).get("message") if isinstance(data, dict) else None
        if not isinstance(message, str):
            raise GitHubError(f"read commit {sha[:12]}: GitHub's answer has no commit message")
        return message

    def login(self) -> str | None:
        """The token's user, or None when GitHub will not say (e.g. an app installation token)."""
        if self._login is False:
            try:
                data, _ = self._json("GET", "/user", what="read the token's user")
                self._login = str(data.get("login")) if isinstance(data, dict) and data.get("login") else None
            except GitHubError:
                self._login = None
        return self._login if isinstance(self._login, str) else None

    def commit_comments(self, owner: str, repo: str, sha: str) -> Iterator[dict[str, Any]]:
        _check(owner, repo, sha)
        url: str | None = f"/repos/{owner}/{repo}/commits/{sha}/comments"
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            data, response = self._json("GET", url, params=params, what=f"list comments of {sha[:12]}")
            if not isinstance(data, list):
                raise GitHubError("list comments: GitHub's answer is not a list")
            yield from (c for c in data if isinstance(c, dict))
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
        raise GitHubError(f"list comments of {sha[:12]}: more than {MAX_PAGES} pages")

    def find_ours(self, owner: str, repo: str, sha: str) -> dict[str, Any] | None:
        login = self.login()
        ours = [c for c in self.commit_comments(owner, repo, sha)
                if str(c.get("body") or "").lstrip().startswith(MARKER)
                and (login is None or (c.get("user") or {}).get("login") == login)]
        return max(ours, key=lambda c: int(c.get("id") or 0)) if ours else None

    def upsert_commit_comment(self, owner: str, repo: str, sha: str, summary: str) -> CommentResult:
        """Post `summary` on the commit, or update our earlier comment there."""
        body = comment_body(summary)
        existing = self.find_ours(owner, repo, sha)
        if existing is not None:
            cid = int(existing["id"])
            data, _ = self._json("PATCH", f"/repos/{owner}/{repo}/comments/{cid}", json={"body": body},
                                 what="update our commit comment")
            return CommentResult(cid, str(data.get("html_url") or ""), created=False)
        try:
            data, _ = self._json("POST", f"/repos/{owner}/{repo}/commits/{sha}/comments", json={"body": body},
                                 ok=(200, 201), what="comment on the commit")
        except OutcomeUnknown:
            again = self.find_ours(owner, repo, sha)  # the POST may have worked: never post twice
            if again is None:
                raise
            return CommentResult(int(again["id"]), str(again.get("html_url") or ""), created=True)
        return CommentResult(int(data["id"]), str(data.get("html_url") or ""), created=True)


def github_from_env(*, transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None,
                    require_token: bool = True) -> GitHubClient:
    token = (os.environ.get("GITHUB_TOKEN") or "").strip()
    if require_token and not token:
        raise UsageError("--comment github needs GITHUB_TOKEN (a token that may comment on the repository's commits)")
    return GitHubClient(token or None, os.environ.get("GITHUB_API_URL") or DEFAULT_GITHUB_API, transport,
                        retry=retry)


def commit_lookup(release: Release) -> tuple[str | None, str]:
    """The tagged commit's message from GitHub, for when CircleCI does not give it (public
    repositories need no token): a `CommitLookup` for reviewer.actions (approve, serve)."""
    vcs, org, repo = release.project_slug.split("/")
    sha = release.pipeline.revision
    if vcs != "gh" or not sha:
        return None, "no GitHub commit to read it from"
    gh = github_from_env(require_token=False)
    try:
        return gh.commit_message(org, repo, sha), f"from GitHub ({sha[:12]})"
    finally:
        gh.close()
