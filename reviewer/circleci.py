"""CircleCI API v2 client: the few operations the reviewer needs, paged, retried and token-safe.

The contract is CircleCI's OpenAPI description, committed as tests/data/circleci/openapi.json;
the tests run every request and response through it. Behaviour it does not state:

- only personal API tokens work; a project token (or a token that cannot see a private
  project) gets 404 "Project not found", so a 404 on a project explains that;
- lists are paged with `next_page_token`, sent back as `page-token`;
- 429 comes with Retry-After; artifact URLs may redirect to storage hosts, which must never
  receive the token (see reviewer.webclient for how redirects are followed).

Construct with `CircleCIClient(token, api_url, transport)` or `client_from_env()`.

    ReviewerError
     ├── UsageError
     │    ├── TokenMissing       no CIRCLECI_TOKEN / CIRCLE_TOKEN in the environment (exit 2)
     │    └── BadProject         PROJECT is not planet4-<nro> or a vcs/org/repo slug (exit 2)
     └── HttpError (reviewer.webclient)
          └── CircleCIError      CircleCI answered with an error (exit 1)
               ├── AuthError     401/403: the token is wrong or may not do this
               └── NotFound      404; on a project it explains personal vs project tokens
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from reviewer.errors import UsageError
from reviewer.redact import redact, register_secret
from reviewer.webclient import HttpError, RetryPolicy, WebClient

DEFAULT_API_URL = "https://circleci.com/api/v2"
TOKEN_ENV = ("CIRCLECI_TOKEN", "CIRCLE_TOKEN")
API_URL_ENV = "CIRCLECI_API_URL"
PLANET4_ORG = "gh/greenpeace"
# CircleCI serves artifacts from its own host, which needs the token for private projects;
# that host then redirects to the storage host, which never gets it.
CIRCLECI_ARTIFACT_ORIGINS = ("https://output.circle-artifacts.com",)
MAX_PAGES = 200  # a bound for every paged list: 200 pages of ~20 items is far beyond any need

_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_VCS = {"gh": "gh", "github": "gh", "bb": "bb", "bitbucket": "bb", "circleci": "circleci"}


class TokenMissing(UsageError):
    pass


class BadProject(UsageError):
    pass


class CircleCIError(HttpError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(CircleCIError):
    pass


class NotFound(CircleCIError):
    pass


def project_slug(project: str) -> str:
    """`planet4-<nro>` -> `gh/greenpeace/planet4-<nro>`; `gh|github|bb|bitbucket|circleci/org/repo` kept.

    `github/...` is normalised to `gh/...`. Each part is restricted to the characters GitHub
    allows, so a PROJECT can never smuggle `..`, `?` or `#` into an API path.
    """
    text = project.strip().strip("/")
    parts = text.split("/")
    if len(parts) == 1 and _SEGMENT.match(text) and text not in (".", ".."):
        if not text.startswith("planet4-"):
            raise BadProject(f"PROJECT {project!r}: a short name must be planet4-<nro> (e.g. planet4-africa); "
                             "otherwise give a full slug such as gh/greenpeace/planet4-africa")
        return f"{PLANET4_ORG}/{text}"
    if len(parts) == 3 and parts[0].lower() in _VCS and all(
        _SEGMENT.match(p) and p not in (".", "..") for p in parts[1:]
    ):
        return f"{_VCS[parts[0].lower()]}/{parts[1]}/{parts[2]}"
    raise BadProject(f"PROJECT {project!r} is neither planet4-<nro> nor a slug like gh/greenpeace/planet4-<nro>")


def app_url(api_url: str, slug: str, pipeline_number: int | None = None) -> str:
    """The web app's link for a project or pipeline (CircleCI cloud or a server installation)."""
    u = httpx.URL(api_url)
    host = "app.circleci.com" if u.host in ("circleci.com", "app.circleci.com") else u.host
    port = f":{u.port}" if u.port else ""
    vcs, org, repo = slug.split("/")
    vcs = {"gh": "github", "bb": "bitbucket"}.get(vcs, vcs)
    link = f"{u.scheme}://{host}{port}/pipelines/{vcs}/{org}/{repo}"
    return f"{link}/{pipeline_number}" if pipeline_number is not None else link


class CircleCIClient:
    """The CircleCI API v2 operations `reviewer` uses.

    `CircleCIClient(token, api_url=DEFAULT_API_URL, transport=None)`: `transport` swaps the
    network (tests pass httpx.MockTransport or nothing and a local `api_url`). The token is
    registered with reviewer.redact at once and sent only to the API's origin (and CircleCI's
    own artifact host when talking to circleci.com), as the `Circle-Token` header.
    """

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, transport: httpx.BaseTransport | None = None,
                 *, retry: RetryPolicy | None = None, timeout: float = 30.0) -> None:
        token = (token or "").strip()
        if not token:
            raise TokenMissing("the CircleCI token is empty; set CIRCLECI_TOKEN to a personal API token")
        register_secret(token)
        api_url = api_url.strip().rstrip("/")
        parsed = httpx.URL(api_url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UsageError(f"--api-url {api_url!r} must be an http(s) URL such as {DEFAULT_API_URL}")
        self.api_url = api_url
        extra = CIRCLECI_ARTIFACT_ORIGINS if parsed.host == "circleci.com" else ()
        self.web = WebClient(api_url, {"Circle-Token": token}, token_origins=extra, transport=transport,
                             retry=retry, timeout=timeout)
        self._me: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"CircleCIClient({self.api_url!r})"

    def close(self) -> None:
        self.web.close()

    def __enter__(self) -> CircleCIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, *, what: str, params: dict[str, Any] | None = None,
              json: Any = None, ok: tuple[int, ...] = (200,), idempotent: bool | None = None,
              slug: str | None = None) -> Any:
        response = self.web.request(method, path, params=params, json=json, idempotent=idempotent, what=what)
        if response.status_code not in ok:
            raise _error(response, what, slug)
        try:
            return response.json()
        except ValueError:
            if method != "GET":  # the action was accepted; an odd body must not hide that
                return {}
            raise CircleCIError(f"{what}: CircleCI answered {response.status_code} with something that is not "
                                "JSON; is --api-url right?") from None

    def get(self, path: str, *, what: str, params: dict[str, Any] | None = None,
            slug: str | None = None) -> dict[str, Any]:
        data = self._json("GET", path, what=what, params=params, slug=slug)
        if not isinstance(data, dict):
            raise CircleCIError(f"{what}: unexpected answer (not a JSON object); is --api-url right? "
                                "If it is, try again later.")
        return data

    def paged(self, path: str, *, what: str, params: dict[str, Any] | None = None,
              slug: str | None = None, max_pages: int = MAX_PAGES) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, page by page (lazily: stop iterating to stop fetching)."""
        token: str | None = None
        seen: set[str] = set()
        for _page in range(max_pages):
            data = self.get(path, what=what, params={**(params or {}), "page-token": token}, slug=slug)
            items = data.get("items")
            if not isinstance(items, list):
                raise CircleCIError(f"{what}: unexpected answer (no `items` list); is --api-url right? "
                                    "If it is, try again later.")
            for item in items:
                if isinstance(item, dict):
                    yield item
            token = data.get("next_page_token") or None
            if token is None:
                return
            if token in seen:  # a server bug would otherwise page forever
                raise CircleCIError(f"{what}: CircleCI returned the same page token twice; stopping. "
                                    "Try again later.")
            seen.add(token)
        raise CircleCIError(f"{what}: more than {max_pages} pages; stopping (narrow the search)")

    # -- operations (operationId from openapi.json in brackets) -------------------------------

    def me(self) -> dict[str, Any]:
        """The token's user [getCurrentUser]; cached. Also the cheapest token check."""
        if self._me is None:
            self._me = self.get("/me", what="check the token (GET /me)")
        return self._me

    def who(self) -> str:
        me = self.me()
        login, name = me.get("login"), me.get("name")
        return str(login or name or me.get("id") or "unknown")

    def pipelines(self, slug: str) -> Iterator[dict[str, Any]]:
        """Newest first [listPipelinesForProject]. No tag filter exists: callers match vcs.tag."""
        return self.paged(f"/project/{slug}/pipeline", what=f"list pipelines of {slug}", slug=slug)

    def pipeline_by_number(self, slug: str, number: int) -> dict[str, Any]:
        """[getPipelineByNumber]"""
        return self.get(f"/project/{slug}/pipeline/{int(number)}", what=f"get pipeline {number} of {slug}",
                        slug=slug)

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """[getPipelineById]"""
        return self.get(f"/pipeline/{_id(pipeline_id)}", what=f"get pipeline {pipeline_id}")

    def workflows(self, pipeline_id: str) -> list[dict[str, Any]]:
        """[listWorkflowsByPipelineId]"""
        return list(self.paged(f"/pipeline/{_id(pipeline_id)}/workflow",
                               what=f"list workflows of pipeline {pipeline_id}"))

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        """[getWorkflowById]"""
        return self.get(f"/workflow/{_id(workflow_id)}", what=f"get workflow {workflow_id}")

    def workflow_jobs(self, workflow_id: str) -> list[dict[str, Any]]:
        """[listWorkflowJobs] (paged by CircleCI even though the spec lists no page-token)"""
        return list(self.paged(f"/workflow/{_id(workflow_id)}/job", what=f"list jobs of workflow {workflow_id}"))

    def artifacts(self, slug: str, job_number: int) -> list[dict[str, Any]]:
        """[getJobArtifacts]"""
        return list(self.paged(f"/project/{slug}/{int(job_number)}/artifacts",
                               what=f"list artifacts of job {job_number}", slug=slug))

    def approve_job(self, workflow_id: str, approval_request_id: str) -> str:
        """[approvePendingApprovalJobById] -> CircleCI's message. Never retried once sent:
        a dropped connection or 5xx raises OutcomeUnknown and the caller re-reads the job."""
        self.me()  # who acts is known before anything is sent (the audit line needs it afterwards)
        data = self._json("POST", f"/workflow/{_id(workflow_id)}/approve/{_id(approval_request_id)}",
                          what="approve the job", ok=(200, 201, 202), idempotent=False)
        return str(data.get("message", "")) if isinstance(data, dict) else ""

    def cancel_job(self, job_id: str) -> str:
        """[cancelJobByJobID] the documented way to refuse an approval job."""
        self.me()  # see approve_job
        data = self._json("POST", f"/jobs/{_id(job_id)}/cancel", what="cancel the job", ok=(200, 201, 202),
                          idempotent=False)
        return str(data.get("message", "")) if isinstance(data, dict) else ""

    def trigger_pipeline(self, slug: str, *, tag: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """[triggerPipeline] with {"tag": ..., "parameters": ...}; never retried once sent."""
        self.me()  # see approve_job
        data = self._json("POST", f"/project/{slug}/pipeline", what=f"trigger a pipeline for {tag}",
                          json={"tag": tag, "parameters": parameters}, ok=(200, 201), idempotent=False, slug=slug)
        if not isinstance(data, dict):
            raise CircleCIError("trigger a pipeline: unexpected answer")
        return data

    def download(self, url: str, dest: Path, *, verify: Callable[[Path], str | None] | None = None) -> int:
        """An artifact into `dest`, atomically and checked (see WebClient.download)."""
        if httpx.URL(url).scheme not in ("http", "https"):
            raise HttpError(f"artifact URL {url!r} is not http(s); refusing")
        return self.web.download(url, dest, verify=verify)


def _id(value: str) -> str:
    """IDs go into URL paths: allow only what a CircleCI UUID can hold."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", text):
        raise UsageError(f"{value!r} is not a CircleCI ID (expected a UUID)")
    return text


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:300]
    return ""


def _error(response: httpx.Response, what: str, slug: str | None) -> CircleCIError:
    status = response.status_code
    said = redact(_message(response))
    said_part = f": {said}" if said else ""
    if status == 401:
        return AuthError(f"{what}: CircleCI rejected the token (401{said_part}). Set CIRCLECI_TOKEN (or "
                         "CIRCLE_TOKEN) to a valid personal API token.", status)
    if status == 403:
        return AuthError(f"{what}: the token's user may not do this (403{said_part}).", status)
    if status == 404 and slug is not None:
        return NotFound(
            f"{what}: CircleCI answered 404{said_part}. Either {slug} does not exist, or the token cannot see "
            "it: API v2 does not accept project API tokens, so use a personal API token (CircleCI > User "
            "settings > Personal API Tokens) of a user who can access the project.", status)
    if status == 404:
        return NotFound(f"{what}: not found (404{said_part})", status)
    return CircleCIError(f"{what}: CircleCI answered {status}{said_part}", status)


def token_from_env(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for name in TOKEN_ENV:
        value = (env.get(name) or "").strip()
        if value:
            register_secret(value)
            return value
    raise TokenMissing(
        "no CircleCI token: set CIRCLECI_TOKEN (or CIRCLE_TOKEN, Planet 4's name) to a personal API token "
        "(CircleCI > User settings > Personal API Tokens; project tokens do not work with API v2)"
    )


def client_from_env(api_url: str | None = None, *, transport: httpx.BaseTransport | None = None,
                    retry: RetryPolicy | None = None) -> CircleCIClient:
    """A client from CIRCLECI_TOKEN/CIRCLE_TOKEN and `api_url` or CIRCLECI_API_URL (or the default).

    Raises TokenMissing (a UsageError, exit 2) with what to do when no token is set.
    """
    url = api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    return CircleCIClient(token_from_env(), url, transport, retry=retry)
