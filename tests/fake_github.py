"""A local GitHub REST API for the tests: commits, commit comments (paged with Link headers), /user.

State: comments per (owner, repo, sha), each with an author. Comments by other users can be
seeded to check that ours is recognised by its marker and its author. Faults as in fake_http.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fake_http import FakeServer, Recorded, Reply


@dataclass
class Comment:
    id: int
    owner: str
    repo: str
    sha: str
    body: str
    login: str


class FakeGitHub(FakeServer):
    def __init__(self, token: str, *, login: str = "p4-ci-bot", page_size: int = 2) -> None:
        super().__init__()
        self.token = token
        self.login = login
        self.page_size = page_size
        self.api_url = self.origin
        self.commits: dict[tuple[str, str, str], str] = {}
        self.comments: list[Comment] = []
        self.next_id = 1000
        self.user_forbidden = False  # True: GET /user answers 403 (an app installation token)

    def add_comment(self, owner: str, repo: str, sha: str, body: str, login: str) -> Comment:
        with self.lock:
            self.next_id += 1
            c = Comment(self.next_id, owner, repo, sha, body, login)
            self.comments.append(c)
            return c

    def _api(self, c: Comment) -> dict[str, Any]:
        return {"id": c.id, "body": c.body, "user": {"login": c.login},
                "html_url": f"https://github.com/{c.owner}/{c.repo}/commit/{c.sha}#commitcomment-{c.id}"}

    def handle(self, req: Recorded) -> Reply:
        authed = req.headers.get("authorization") == f"Bearer {self.token}"
        if req.path == "/user":
            if not authed:
                return Reply.json({"message": "Requires authentication"}, 401)
            if self.user_forbidden:
                return Reply.json({"message": "Resource not accessible by integration"}, 403)
            return Reply.json({"login": self.login})
        m = re.match(r"^/repos/([^/]+)/([^/]+)/commits/([0-9a-f]+)(/comments)?$", req.path)
        if m:
            owner, repo, sha, comments = m.groups()
            if not comments:
                msg = self.commits.get((owner, repo, sha))
                if msg is None:
                    return Reply.json({"message": "No commit found for SHA"}, 422)
                return Reply.json({"sha": sha, "commit": {"message": msg}})
            if req.method == "GET":
                return self._list(req, owner, repo, sha)
            if req.method == "POST":
                if not authed:
                    return Reply.json({"message": "Requires authentication"}, 401)
                body = (req.json() or {}).get("body")
                if not isinstance(body, str):
                    return Reply.json({"message": "body is required"}, 422)
                return Reply.json(self._api(self.add_comment(owner, repo, sha, body, self.login)), 201)
        m = re.match(r"^/repos/([^/]+)/([^/]+)/comments/(\d+)$", req.path)
        if m and req.method == "PATCH":
            if not authed:
                return Reply.json({"message": "Requires authentication"}, 401)
            c = next((c for c in self.comments if c.id == int(m.group(3))), None)
            if c is None:
                return Reply.json({"message": "Not Found"}, 404)
            if c.login != self.login:
                return Reply.json({"message": "Forbidden"}, 403)
            c.body = (req.json() or {}).get("body", c.body)
            return Reply.json(self._api(c))
        return Reply.json({"message": "Not Found"}, 404)

    def _list(self, req: Recorded, owner: str, repo: str, sha: str) -> Reply:
        items = [self._api(c) for c in self.comments if (c.owner, c.repo, c.sha) == (owner, repo, sha)]
        page = int(req.query.get("page", "1"))
        size = min(self.page_size, int(req.query.get("per_page", "30")))
        chunk = items[(page - 1) * size: page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = (f'<{self.origin}{req.path}?per_page={size}&page={page + 1}>; rel="next", '
                               f'<{self.origin}{req.path}?per_page={size}&page=1>; rel="first"')
        return Reply.json(chunk, 200, headers)
