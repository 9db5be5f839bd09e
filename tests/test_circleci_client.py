"""The CircleCI client against the local CircleCI: paging, retries, errors, token safety."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from circleci_env import PROJECT, SLUG, Sleeps, fast_policy
from fake_circleci import FakeCircleCI, FakeJob

from reviewer.circleci import (
    DEFAULT_API_URL,
    AuthError,
    BadProject,
    CircleCIClient,
    NotFound,
    TokenMissing,
    app_url,
    client_from_env,
    project_slug,
)
from reviewer.redact import redact
from reviewer.release import ReleaseNotFound, find_release, release_tags
from reviewer.webclient import DownloadError, GaveUp, OutcomeUnknown, RateLimited, WebClient, parse_retry_after

pytest_plugins = ["circleci_fixtures"]


# -- PROJECT ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "slug"), [
    ("planet4-africa", "gh/greenpeace/planet4-africa"),
    ("gh/greenpeace/planet4-africa", "gh/greenpeace/planet4-africa"),
    ("github/greenpeace/planet4-africa", "gh/greenpeace/planet4-africa"),
    ("bitbucket/org/repo", "bb/org/repo"),
    ("  gh/org/repo.name_x  ", "gh/org/repo.name_x"),
])
def test_project_slug_accepts_short_and_full_names(given: str, slug: str) -> None:
    assert project_slug(given) == slug


@pytest.mark.parametrize("bad", ["africa", "gh/org", "gh/org/repo/extra", "gh/../repo", "gh/org/..",
                                 "planet4-x?page-token=1", "gitlab/org/repo", "gh/org/re po", "planet4-x#frag"])
def test_project_slug_refuses_anything_that_could_bend_the_api_path(bad: str) -> None:
    with pytest.raises(BadProject) as info:
        project_slug(bad)
    assert info.value.exit_code == 2


def test_app_url_for_cloud_and_server() -> None:
    assert app_url(DEFAULT_API_URL, SLUG, 12) == "https://app.circleci.com/pipelines/github/greenpeace/planet4-testland/12"
    assert app_url("https://ci.example.org/api/v2", SLUG) == "https://ci.example.org/pipelines/github/greenpeace/planet4-testland"


# -- paging ------------------------------------------------------------------------------------


def test_every_list_is_paged_through(cci: FakeCircleCI, client: CircleCIClient) -> None:
    for i in range(7):
        cci.add_pipeline(SLUG, f"v1.{i}.0")
    tags = [p["vcs"]["tag"] for p in client.pipelines(SLUG)]
    assert tags == [f"v1.{i}.0" for i in reversed(range(7))]
    listed = cci.find("GET", r"/project/.*/pipeline$")
    assert len(listed) == 4  # page size 2
    assert [r.query.get("page-token") for r in listed] == [None, "pg-2", "pg-4", "pg-6"]


def test_release_is_found_by_tag_across_pages_and_its_jobs_are_paged(cci: FakeCircleCI,
                                                                     client: CircleCIClient) -> None:
    cci.add_release(SLUG, "v2.0.0")
    for _ in range(5):
        cci.add_pipeline(SLUG, None, branch="main")
    release = find_release(client, SLUG, tag="v2.0.0")
    assert release.workflow.name == "production"
    assert len(release.jobs) == 8  # 4 pages of 2
    assert release.job("hold-production").status == "on_hold"  # type: ignore[union-attr]
    assert len(cci.find("GET", r"/workflow/.*/job$")) == 4


def test_release_by_pipeline_number_and_workflow_id_must_agree_with_the_tag(cci: FakeCircleCI,
                                                                            client: CircleCIClient) -> None:
    p, wf = cci.add_release(SLUG, "v2.0.0")
    assert find_release(client, SLUG, pipeline_number=p.number).workflow.id == wf.id
    assert find_release(client, SLUG, workflow_id=wf.id, tag="v2.0.0").pipeline.number == p.number
    with pytest.raises(ReleaseNotFound, match=r"not 'v9\.9\.9'"):
        find_release(client, SLUG, workflow_id=wf.id, tag="v9.9.9")


def test_a_later_rollback_pipeline_for_the_same_tag_is_not_mistaken_for_the_release(
        cci: FakeCircleCI, client: CircleCIClient) -> None:
    _p, wf = cci.add_release(SLUG, "v2.0.0")
    cci.add_pipeline(SLUG, "v2.0.0", trigger_type="api")  # newer, no production workflow
    assert find_release(client, SLUG, tag="v2.0.0").workflow.id == wf.id


def test_release_order_ignores_rollback_pipelines_to_old_tags(cci: FakeCircleCI, client: CircleCIClient) -> None:
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        cci.add_release(SLUG, tag)
    cci.add_pipeline(SLUG, "v1.0.0", trigger_type="api")  # someone rolled back to v1.0.0 later
    assert [r.tag for r in release_tags(client, SLUG)] == ["v1.2.0", "v1.1.0", "v1.0.0"]


# -- retries -------------------------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_it_names(cci: FakeCircleCI, client: CircleCIClient,
                                                      sleeps: Sleeps) -> None:
    cci.inject("GET", r"/me$", "status", status=429, headers={"Retry-After": "3"})
    assert client.me()["login"] == "p4-release-bot"
    assert sleeps == [3.0]


def test_5xx_and_dropped_connections_are_retried_with_bounded_backoff(cci: FakeCircleCI, client: CircleCIClient,
                                                                      sleeps: Sleeps) -> None:
    cci.add_release(SLUG, "v2.0.0")
    cci.inject("GET", r"/pipeline$", "status", status=502)
    cci.inject("GET", r"/workflow$", "drop")
    cci.inject("GET", r"/job$", "truncate")
    release = find_release(client, SLUG, tag="v2.0.0")
    assert release.job("visualtests-compare") is not None
    assert len(sleeps) == 3 and all(0 < s <= 0.05 for s in sleeps)


def test_retries_are_bounded_and_the_error_says_what_failed(cci: FakeCircleCI, token: str) -> None:
    sleeps = Sleeps()
    client = CircleCIClient(token, cci.api_url, retry=fast_policy(sleeps, attempts=3))
    cci.inject("GET", r"/me$", "status", status=503, times=10)
    with pytest.raises(GaveUp, match=r"still failing after 3 tries: server error 503"):
        client.me()
    assert len(cci.find("GET", r"/me$")) == 3 and len(sleeps) == 2


def test_a_retry_after_longer_than_we_wait_stops_at_once(cci: FakeCircleCI, client: CircleCIClient) -> None:
    cci.inject("GET", r"/me$", "status", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited, match="asks to wait 3600 s"):
        client.me()
    assert len(cci.find("GET", r"/me$")) == 1


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after("Wed, 01 Oct 2025 09:00:30 GMT", now=1759309200.0) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_post_whose_answer_is_lost_is_not_resent(cci: FakeCircleCI, client: CircleCIClient) -> None:
    _p, wf = cci.add_release(SLUG, "v2.0.0")
    job = cci.job(wf, "hold-production")
    cci.inject("POST", r"/approve/", "drop")
    with pytest.raises(OutcomeUnknown, match="may or may not have taken effect"):
        client.approve_job(wf.id, job.approval_request_id or "")
    cci.inject("POST", r"/approve/", "status", status=502)
    with pytest.raises(OutcomeUnknown):
        client.approve_job(wf.id, job.approval_request_id or "")
    assert len(cci.find("POST", r"/approve/")) == 2 and job.status == "on_hold"


def test_a_429_to_a_post_is_retried_because_nothing_happened(cci: FakeCircleCI, client: CircleCIClient) -> None:
    _p, wf = cci.add_release(SLUG, "v2.0.0")
    job = cci.job(wf, "hold-production")
    cci.inject("POST", r"/approve/", "status", status=429, headers={"Retry-After": "0"})
    assert client.approve_job(wf.id, job.approval_request_id or "") == "Accepted."
    assert job.status == "success" and len(cci.find("POST", r"/approve/")) == 2


# -- errors -------------------------------------------------------------------------------------


def test_404_on_a_project_explains_personal_tokens(cci: FakeCircleCI) -> None:
    project_token = CircleCIClient("project-token-1234", cci.api_url, retry=fast_policy())
    with pytest.raises(NotFound) as info:
        list(project_token.pipelines(SLUG))
    assert "project API tokens" in str(info.value) and "personal API token" in str(info.value)
    with pytest.raises(AuthError, match="rejected the token"):
        project_token.me()


def test_unknown_project_is_a_clear_404(client: CircleCIClient) -> None:
    with pytest.raises(NotFound, match="gh/greenpeace/planet4-nowhere does not exist"):
        find_release(client, project_slug("planet4-nowhere"), tag="v1")


def test_the_fake_really_validates_against_openapi(cci: FakeCircleCI, token: str) -> None:
    """A request that breaks the spec is refused and recorded (then cleared for the fixture)."""
    r = httpx.post(f"{cci.api_url}/project/{SLUG}/pipeline", headers={"Circle-Token": token},
                   json={"tag": 12, "parameters": {"rollback": True}})
    assert r.status_code == 400
    r = httpx.get(f"{cci.api_url}/workflow/not-a-uuid/job", headers={"Circle-Token": token})
    assert r.status_code == 400
    assert len(cci.violations) == 2 and "InvalidRequestBody" in cci.violations[0]
    cci.violations.clear()


# -- the token ------------------------------------------------------------------------------------


def test_token_comes_from_either_variable_and_is_redacted(cci: FakeCircleCI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIRCLECI_TOKEN", raising=False)
    monkeypatch.delenv("CIRCLE_TOKEN", raising=False)
    with pytest.raises(TokenMissing, match="CIRCLE_TOKEN"):
        client_from_env(cci.api_url)
    monkeypatch.setenv("CIRCLE_TOKEN", cci.token)
    c = client_from_env(cci.api_url)
    assert c.me()["name"] == "Planet 4 Release Bot"
    assert cci.token not in repr(c) and redact(f"x {cci.token} y") == "x *** y"
    monkeypatch.setenv("CIRCLECI_API_URL", cci.api_url)
    assert client_from_env().api_url == cci.api_url


def test_token_header_goes_only_to_trusted_origins() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("circle-token")))
        hops = {
            "https://circleci.com/api/v2/a": "https://circleci.com/api/v2/b",  # same origin: keeps it
            "https://circleci.com/api/v2/b": "https://output.circle-artifacts.com/x",  # CircleCI's artifact host
            "https://output.circle-artifacts.com/x": "https://storage.example.net/blob?sig=1",  # storage: never
            "https://storage.example.net/blob?sig=1": "http://circleci.com/api/v2/c",  # downgrade to http: never
        }
        target = hops.get(str(request.url))
        if target:
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, json={"ok": True})

    client = CircleCIClient("secret-token-xyz", transport=httpx.MockTransport(handler), retry=fast_policy())
    client.web.request("GET", "/a")
    assert seen == [
        ("https://circleci.com/api/v2/a", "secret-token-xyz"),
        ("https://circleci.com/api/v2/b", "secret-token-xyz"),
        ("https://output.circle-artifacts.com/x", "secret-token-xyz"),
        ("https://storage.example.net/blob?sig=1", None),
        ("http://circleci.com/api/v2/c", None),
    ]


def test_a_server_installation_trusts_only_its_own_origin() -> None:
    web = CircleCIClient("secret-token-xyz", "https://ci.example.org/api/v2").web
    assert web.trusted("https://ci.example.org/api/v2/me")
    assert not web.trusted("https://output.circle-artifacts.com/x")
    assert not web.trusted("https://ci.example.org:8443/api/v2/me")


def test_errors_never_carry_the_token(cci: FakeCircleCI, token: str) -> None:
    web = WebClient(cci.api_url, {"Circle-Token": token}, retry=fast_policy())
    cci.inject("GET", r"/me$", "status", status=500, times=10)
    with pytest.raises(GaveUp) as info:
        web.request("GET", "/me")
    assert token not in str(info.value) and token not in repr(info.value)


def test_pipeline_trigger_body_is_exactly_rollback_sh_s(cci: FakeCircleCI, client: CircleCIClient) -> None:
    created = client.trigger_pipeline(project_slug(PROJECT), tag="v1.0.0", parameters={"rollback": True})
    assert created["state"] == "created"
    (req,) = cci.find("POST", r"/pipeline$")
    assert json.loads(req.body) == {"tag": "v1.0.0", "parameters": {"rollback": True}}
    assert req.headers["content-type"] == "application/json"


def test_fake_job_states_reflect_actions(cci: FakeCircleCI, client: CircleCIClient) -> None:
    _p, wf = cci.add_release(SLUG, "v2.0.0")
    job: FakeJob = cci.job(wf, "rollback-staging")
    client.cancel_job(job.id)
    assert job.status == "canceled"


def test_a_storage_host_asking_for_credentials_fails_clearly_without_getting_them(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "circleci.com":
            return httpx.Response(302, headers={"Location": "https://storage.example.net/blob"})
        return httpx.Response(403, text="AccessDenied")

    client = CircleCIClient("secret-token-xyz", transport=httpx.MockTransport(handler), retry=fast_policy())
    with pytest.raises(DownloadError, match="only ever sent to the API's own host"):
        client.download("https://circleci.com/api/v2/artifact", tmp_path / "x.png")
    assert seen[-1].url.host == "storage.example.net" and "circle-token" not in seen[-1].headers
    assert list(tmp_path.iterdir()) == []
