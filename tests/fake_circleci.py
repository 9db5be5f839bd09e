"""A local CircleCI API v2 (and its artifact storage host) for the tests: real HTTP, state, faults.

- FakeCircleCI serves the operations the reviewer uses (see SOURCE.md) under /api/v2, with
  state: approving an approval job makes it `success`, cancelling makes it `canceled`,
  triggering a pipeline adds one with a `rollback` workflow.
- Lists are paged with a small page size (default 2) so paging is always exercised.
- Artifact URLs point at this server's /artifacts/... (standing for CircleCI's own artifact
  host, which needs the token) and redirect to FakeStorage, a second server on another port
  (another origin) standing for the storage host. FakeStorage records every request so tests
  can prove the token never reached it.
- Every request to /api/v2 and every response is validated against tests/data/circleci/openapi.json
  with openapi-core; problems are collected in `violations` (and a bad request gets 400), and
  the tests' fixtures assert the list is empty.

The spec marks nullable fields with the Swagger-2 extension `x-nullable`; openapi-core only
knows OpenAPI 3's `nullable`, so the loader copies one to the other (CircleCI does send null
for e.g. `avatar_url`, `stopped_at` and `vcs.commit.body`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_http import FakeServer, Recorded, Reply

# CircleCI's published spec, committed with its source and licence (data/circleci/SOURCE.md).
SPEC_PATH = Path(__file__).parent / "data" / "circleci" / "openapi.json"
SPEC_HOST = "https://circleci.com"
SPEC_BASE = "/api/v2"
BASE_TIME = dt.datetime(2025, 10, 1, 9, 0, tzinfo=dt.UTC)


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items()}
        if out.get("x-nullable") is True:
            out["nullable"] = True
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def openapi() -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(_nullable(json.loads(SPEC_PATH.read_text())))


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class FakeJob:
    name: str
    type: str = "build"
    status: str = "success"
    job_number: int | None = None
    id: str = field(default_factory=new_id)
    approval_request_id: str | None = None
    dependencies: list[str] = field(default_factory=list)
    approved_by: str | None = None
    canceled_by: str | None = None

    def api(self, slug: str) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": self.type, "status": self.status,
            "project_slug": slug, "dependencies": self.dependencies,
            "started_at": iso(BASE_TIME), "stopped_at": None if self.status in ("on_hold", "running",
                                                                               "blocked", "queued")
            else iso(BASE_TIME + dt.timedelta(minutes=5)),
        }
        if self.job_number is not None:
            d["job_number"] = self.job_number
        if self.approval_request_id:
            d["approval_request_id"] = self.approval_request_id
        if self.approved_by:
            d["approved_by"] = self.approved_by
        if self.canceled_by:
            d["canceled_by"] = self.canceled_by
        return d


@dataclass
class FakeWorkflow:
    name: str
    pipeline: FakePipeline
    jobs: list[FakeJob]
    created: dt.datetime
    id: str = field(default_factory=new_id)

    def status(self) -> str:
        states = [j.status for j in self.jobs]
        bad = {"failed", "infrastructure_fail", "timedout", "canceled"}
        if any(s in ("running", "queued") for s in states):
            return "failing" if any(s in bad for s in states) else "running"
        if any(s == "on_hold" for s in states):
            return "failing" if any(s in bad for s in states) else "on_hold"
        if any(s == "canceled" for s in states):
            return "canceled"
        if any(s in bad for s in states):
            return "failed"
        return "success"

    def api(self, me_id: str) -> dict[str, Any]:
        status = self.status()
        done = status in ("success", "failed", "canceled")
        return {
            "id": self.id, "name": self.name, "status": status, "pipeline_id": self.pipeline.id,
            "pipeline_number": self.pipeline.number, "project_slug": self.pipeline.slug,
            "started_by": me_id, "created_at": iso(self.created),
            "stopped_at": iso(self.created + dt.timedelta(minutes=30)) if done else None,
        }


@dataclass
class FakePipeline:
    slug: str
    number: int
    tag: str | None
    created: dt.datetime
    subject: str | None = "Release"
    body: str | None = ""
    revision: str = "0123456789abcdef0123456789abcdef01234567"
    branch: str | None = None
    trigger_type: str = "webhook"
    parameters: dict[str, Any] = field(default_factory=dict)
    workflows: list[FakeWorkflow] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    commit_known: bool = True  # False: CircleCI sends no vcs.commit at all

    def api(self) -> dict[str, Any]:
        org, repo = self.slug.split("/")[1:]
        vcs: dict[str, Any] = {
            "provider_name": "GitHub",
            "origin_repository_url": f"https://github.com/{org}/{repo}",
            "target_repository_url": f"https://github.com/{org}/{repo}",
            "revision": self.revision,
        }
        if self.tag:
            vcs["tag"] = self.tag
        if self.branch:
            vcs["branch"] = self.branch
        if self.commit_known:
            vcs["commit"] = {"subject": self.subject, "body": self.body}
        return {
            "id": self.id, "number": self.number, "project_slug": self.slug, "state": "created",
            "created_at": iso(self.created), "updated_at": iso(self.created), "errors": [],
            "trigger": {"type": self.trigger_type, "received_at": iso(self.created),
                        "actor": {"login": "someone", "avatar_url": None}},
            "vcs": vcs,
        }


@dataclass
class Artifact:
    path: str
    key: str  # blob key on the storage host


# Route table: (method, regex below /api/v2, OpenAPI path pattern, handler name)
_SLUG = r"(?P<slug>[^/]+/[^/]+/[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    (m, re.compile(r), p, h) for m, r, p, h in [
        ("GET", r"^/me$", "/me", "me"),
        ("GET", rf"^/project/{_SLUG}/pipeline$", "/project/{project-slug}/pipeline", "list_pipelines"),
        ("POST", rf"^/project/{_SLUG}/pipeline$", "/project/{project-slug}/pipeline", "trigger"),
        ("GET", rf"^/project/{_SLUG}/pipeline/(?P<number>\d+)$",
         "/project/{project-slug}/pipeline/{pipeline-number}", "pipeline_by_number"),
        ("GET", rf"^/project/{_SLUG}/(?P<job_number>\d+)/artifacts$",
         "/project/{project-slug}/{job-number}/artifacts", "artifacts"),
        ("GET", r"^/pipeline/(?P<pipeline_id>[^/]+)$", "/pipeline/{pipeline-id}", "pipeline"),
        ("GET", r"^/pipeline/(?P<pipeline_id>[^/]+)/workflow$", "/pipeline/{pipeline-id}/workflow", "workflows"),
        ("GET", r"^/workflow/(?P<id>[^/]+)$", "/workflow/{id}", "workflow"),
        ("GET", r"^/workflow/(?P<id>[^/]+)/job$", "/workflow/{id}/job", "workflow_jobs"),
        ("POST", r"^/workflow/(?P<id>[^/]+)/approve/(?P<approval_request_id>[^/]+)$",
         "/workflow/{id}/approve/{approval_request_id}", "approve"),
        ("POST", r"^/jobs/(?P<job_id>[^/]+)/cancel$", "/jobs/{job-id}/cancel", "cancel"),
    ]
]
_PARAM_NAMES = {"slug": "project-slug", "number": "pipeline-number", "job_number": "job-number",
                "job_id": "job-id", "pipeline_id": "pipeline-id", "approval_request_id": "approval_request_id"}


class FakeStorage(FakeServer):
    """The storage host artifact URLs redirect to. Serves blobs; records who asked with what."""

    def __init__(self) -> None:
        super().__init__()
        self.blobs: dict[str, bytes | Path] = {}
        self.delay = 0.0  # seconds each blob takes: makes concurrency observable
        self.in_flight = 0
        self.max_in_flight = 0

    def put(self, data: bytes | Path) -> str:
        key = uuid.uuid4().hex
        with self.lock:
            self.blobs[key] = data
        return key

    def handle(self, req: Recorded) -> Reply:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self._blob(req)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _blob(self, req: Recorded) -> Reply:
        m = re.match(r"^/blob/([0-9a-f]+)$", req.path)
        blob = self.blobs.get(m.group(1)) if m else None
        if blob is None or req.method != "GET":
            return Reply(404, b"NoSuchKey", content_type="application/xml")
        data = blob.read_bytes() if isinstance(blob, Path) else blob
        return Reply(200, data, content_type="application/octet-stream")

    def saw(self, secret: str) -> list[Recorded]:
        """Requests that carried `secret` anywhere: a header, the URL or the body."""
        with self.lock:
            return [r for r in self.requests if secret in r.raw_target or secret in r.body.decode("latin-1")
                    or any(secret in v for v in r.headers.values())]


class FakeCircleCI(FakeServer):
    def __init__(self, token: str, storage: FakeStorage, *, page_size: int = 2) -> None:
        super().__init__()
        self.token = token
        self.storage = storage
        self.page_size = page_size
        self.api_url = self.origin + SPEC_BASE
        self.me_id = new_id()
        self.me: dict[str, Any] = {"id": self.me_id, "login": "p4-release-bot", "name": "Planet 4 Release Bot",
                                   "avatar_url": None}
        self.projects: set[str] = set()
        self.pipelines: list[FakePipeline] = []
        self.artifacts: dict[tuple[str, int], list[Artifact]] = {}
        self.violations: list[str] = []
        self.job_counter = 100
        self.on_approve: Callable[[FakeJob], None] | None = None
        self.state_lock = threading.RLock()

    # -- building state --------------------------------------------------------------------

    def add_project(self, slug: str) -> None:
        self.projects.add(slug)

    def _next_job_number(self) -> int:
        self.job_counter += 1
        return self.job_counter

    def add_pipeline(self, slug: str, tag: str | None, *, subject: str | None = "Release",
                     body: str | None = "", branch: str | None = None, commit_known: bool = True,
                     trigger_type: str = "webhook", parameters: dict[str, Any] | None = None) -> FakePipeline:
        with self.state_lock:
            self.add_project(slug)
            number = max((p.number for p in self.pipelines if p.slug == slug), default=0) + 1
            created = BASE_TIME + dt.timedelta(hours=number)
            p = FakePipeline(slug, number, tag, created, subject, body, branch=branch, commit_known=commit_known,
                          trigger_type=trigger_type, parameters=dict(parameters or {}))
            self.pipelines.append(p)
            return p

    def add_workflow(self, pipeline: FakePipeline, name: str, jobs: list[FakeJob]) -> FakeWorkflow:
        with self.state_lock:
            for j in jobs:
                if j.type == "build" and j.job_number is None:
                    j.job_number = self._next_job_number()
                if j.type == "approval" and j.approval_request_id is None:
                    j.approval_request_id = j.id  # CircleCI: approval_request_id == the job's id
            created = pipeline.created + dt.timedelta(minutes=len(pipeline.workflows))
            wf = FakeWorkflow(name, pipeline, jobs, created)
            pipeline.workflows.append(wf)
            return wf

    def add_release(self, slug: str, tag: str, *, subject: str | None = "Release", body: str | None = "",
                    compare: str = "failed", hold: str = "on_hold", commit_known: bool = True,
                    report: Path | dict[str, bytes | Path] | None = None,
                    prefix: str = "app/backstop_data/") -> tuple[FakePipeline, FakeWorkflow]:
        """A tag pipeline with Planet 4's `production` workflow (see PIPELINE.md)."""
        p = self.add_pipeline(slug, tag, subject=subject, body=body, commit_known=commit_known)
        deploy_staging = FakeJob("deploy-staging")
        jobs = [
            FakeJob("visualtests-reference"), FakeJob("build"), deploy_staging,
            FakeJob("visualtests-compare", status=compare, dependencies=[deploy_staging.id]),
            FakeJob("hold-production", type="approval", status=hold, dependencies=[deploy_staging.id]),
            FakeJob("rollback-staging", type="approval", status="on_hold", dependencies=[deploy_staging.id]),
        ]
        hold_job, rb = jobs[4], jobs[5]
        jobs.append(FakeJob("deploy-production", status="blocked", dependencies=[hold_job.id]))
        jobs.append(FakeJob("finish-staging", status="blocked", dependencies=[rb.id]))
        wf = self.add_workflow(p, "production", jobs)
        if report is not None:
            self.add_artifacts(slug, self.job(wf, "visualtests-compare").job_number or 0, report, prefix)
        return p, wf

    def add_artifacts(self, slug: str, job_number: int, files: Path | dict[str, bytes | Path],
                      prefix: str = "app/backstop_data/") -> None:
        """A folder (served below `prefix`) or {artifact path: bytes or file}."""
        if isinstance(files, Path):
            mapping: dict[str, bytes | Path] = {
                prefix + f.relative_to(files).as_posix(): f for f in sorted(files.rglob("*")) if f.is_file()
            }
        else:
            mapping = dict(files)
        with self.state_lock:
            items = self.artifacts.setdefault((slug, job_number), [])
            for path, data in mapping.items():
                items.append(Artifact(path, self.storage.put(data)))

    @staticmethod
    def job(wf: FakeWorkflow, name: str) -> FakeJob:
        return next(j for j in wf.jobs if j.name == name)

    def all_workflows(self) -> list[FakeWorkflow]:
        return [w for p in self.pipelines for w in p.workflows]

    # -- HTTP -------------------------------------------------------------------------------

    def handle(self, req: Recorded) -> Reply:
        if req.path.startswith("/artifacts/"):
            return self._artifact_redirect(req)
        if not req.path.startswith(SPEC_BASE + "/"):
            return Reply.json({"message": "not found"}, 404)
        sub = req.path[len(SPEC_BASE):]
        for method, regex, pattern, name in ROUTES:
            m = regex.match(sub)
            if m and method == req.method:
                params = {_PARAM_NAMES.get(k, k): v for k, v in m.groupdict().items()}
                problem = self._validate_request(req, pattern, params)
                if problem:
                    self.violations.append(f"request {req.method} {req.raw_target}: {problem}")
                    return Reply.json({"message": f"bad request: {problem}"}, 400)
                with self.state_lock:
                    reply = self._authorised(req, name, m.groupdict())
                self._validate_response(req, pattern, params, reply)
                return reply
        self.violations.append(f"no such operation: {req.method} {req.raw_target}")
        return Reply.json({"message": "Not found"}, 404)

    def _authorised(self, req: Recorded, name: str, args: dict[str, str]) -> Reply:
        if req.headers.get("circle-token") != self.token:
            if "slug" in args:
                return Reply.json({"message": "Project not found"}, 404)
            return Reply.json({"message": "You must log in first."}, 401)
        if "slug" in args and args["slug"] not in self.projects:
            return Reply.json({"message": "Project not found"}, 404)
        handler: Callable[[Recorded, dict[str, str]], Reply] = getattr(self, "op_" + name)
        return handler(req, args)

    def _artifact_redirect(self, req: Recorded) -> Reply:
        # Stands for CircleCI's artifact host: needs the token, answers with a redirect to storage.
        if req.headers.get("circle-token") != self.token:
            return Reply(401, b"unauthorized", content_type="text/plain")
        key = req.path.rsplit("/", 1)[-1]
        return Reply(302, b"", {"Location": f"{self.storage.origin}/blob/{key}?X-Amz-Signature=abc123"},
                     content_type="text/plain")

    def _page(self, req: Recorded, items: list[dict[str, Any]]) -> Reply:
        token = req.query.get("page-token")
        start = 0
        if token:
            m = re.fullmatch(r"pg-(\d+)", token)
            if not m:
                return Reply.json({"message": "invalid page-token"}, 400)
            start = int(m.group(1))
        end = start + self.page_size
        nxt = f"pg-{end}" if end < len(items) else None
        return Reply.json({"items": items[start:end], "next_page_token": nxt})

    # operations ----------------------------------------------------------------------------

    def op_me(self, req: Recorded, a: dict[str, str]) -> Reply:
        return Reply.json(self.me)

    def op_list_pipelines(self, req: Recorded, a: dict[str, str]) -> Reply:
        pipes = sorted((p for p in self.pipelines if p.slug == a["slug"]), key=lambda p: -p.number)
        return self._page(req, [p.api() for p in pipes])

    def op_pipeline_by_number(self, req: Recorded, a: dict[str, str]) -> Reply:
        for p in self.pipelines:
            if p.slug == a["slug"] and p.number == int(a["number"]):
                return Reply.json(p.api())
        return Reply.json({"message": "Pipeline not found"}, 404)

    def op_pipeline(self, req: Recorded, a: dict[str, str]) -> Reply:
        for p in self.pipelines:
            if p.id == a["pipeline_id"]:
                return Reply.json(p.api())
        return Reply.json({"message": "Pipeline not found"}, 404)

    def op_workflows(self, req: Recorded, a: dict[str, str]) -> Reply:
        for p in self.pipelines:
            if p.id == a["pipeline_id"]:
                return self._page(req, [w.api(self.me_id) for w in p.workflows])
        return Reply.json({"message": "Pipeline not found"}, 404)

    def _workflow(self, wid: str) -> FakeWorkflow | None:
        return next((w for w in self.all_workflows() if w.id == wid), None)

    def op_workflow(self, req: Recorded, a: dict[str, str]) -> Reply:
        wf = self._workflow(a["id"])
        return Reply.json(wf.api(self.me_id)) if wf else Reply.json({"message": "Workflow not found"}, 404)

    def op_workflow_jobs(self, req: Recorded, a: dict[str, str]) -> Reply:
        wf = self._workflow(a["id"])
        if wf is None:
            return Reply.json({"message": "Workflow not found"}, 404)
        return self._page(req, [j.api(wf.pipeline.slug) for j in wf.jobs])

    def op_artifacts(self, req: Recorded, a: dict[str, str]) -> Reply:
        items = self.artifacts.get((a["slug"], int(a["job_number"])), [])
        return self._page(req, [{"path": it.path, "node_index": 0,
                                 "url": f"{self.origin}/artifacts/{a['job_number']}/0/{it.path}/{it.key}"}
                                for it in items])

    def op_approve(self, req: Recorded, a: dict[str, str]) -> Reply:
        wf = self._workflow(a["id"])
        job = next((j for j in wf.jobs if j.approval_request_id == a["approval_request_id"]), None) if wf else None
        if job is None:
            return Reply.json({"message": "Not found"}, 404)
        if job.status != "on_hold":
            return Reply.json({"message": "Job is not on hold"}, 400)
        job.status = "success"
        job.approved_by = self.me_id
        if self.on_approve:
            self.on_approve(job)
        return Reply.json({"message": "Accepted."}, 202)

    def op_cancel(self, req: Recorded, a: dict[str, str]) -> Reply:
        for wf in self.all_workflows():
            for job in wf.jobs:
                if job.id == a["job_id"]:
                    job.status = "canceled"
                    job.canceled_by = self.me_id
                    return Reply.json({"message": "Job cancelled successfully."})
        return Reply.json({"message": "Job not found"}, 404)

    def op_trigger(self, req: Recorded, a: dict[str, str]) -> Reply:
        body = req.json() or {}
        tag = body.get("tag")
        params = body.get("parameters") or {}
        original = next((p for p in self.pipelines if p.slug == a["slug"] and p.tag == tag), None)
        p = self.add_pipeline(a["slug"], tag, subject=original.subject if original else None,
                              body=original.body if original else None, trigger_type="api", parameters=params)
        if params.get("rollback") is True:
            rollback_staging = FakeJob("rollback-staging", status="running")
            self.add_workflow(p, "rollback", [
                rollback_staging,
                FakeJob("hold-production", type="approval", status="blocked", dependencies=[rollback_staging.id]),
                FakeJob("hold-production-db", type="approval", status="blocked", dependencies=[rollback_staging.id]),
            ])
        return Reply.json({"id": p.id, "state": "created", "number": p.number, "created_at": iso(p.created)}, 201)

    # -- validation against openapi.json ---------------------------------------------------------

    def _mock_request(self, req: Recorded, pattern: str, params: dict[str, str]) -> Any:
        from openapi_core.testing import MockRequest

        content_type = req.headers.get("content-type", "application/json").split(";")[0]
        return MockRequest(SPEC_HOST, req.method, req.path, path_pattern=SPEC_BASE + pattern, view_args=params,
                           args=req.query, headers=req.headers, data=req.body or None,
                           content_type=content_type)

    def _validate_request(self, req: Recorded, pattern: str, params: dict[str, str]) -> str | None:
        try:
            openapi().validate_request(self._mock_request(req, pattern, params))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc} {getattr(exc, '__cause__', '') or ''}"
        if req.method == "POST" and req.body and "json" not in req.headers.get("content-type", ""):
            return "a JSON body sent without Content-Type: application/json"
        return None

    def _validate_response(self, req: Recorded, pattern: str, params: dict[str, str], reply: Reply) -> None:
        from openapi_core.testing import MockResponse

        try:
            openapi().validate_response(self._mock_request(req, pattern, params),
                                        MockResponse(reply.body, reply.status, reply.headers, reply.content_type))
        except Exception as exc:
            self.violations.append(f"response to {req.method} {req.raw_target} ({reply.status}): "
                                   f"{type(exc).__name__}: {exc} {getattr(exc, '__cause__', '') or ''}")
