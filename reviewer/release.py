"""Finding a Planet 4 release in CircleCI: tag -> pipeline -> `production` workflow -> jobs.

A tag push starts a pipeline whose `production` workflow holds the jobs of PIPELINE.md
(visualtests-compare, the approvals hold-production and rollback-staging, ...). A rollback
pipeline for the same tag runs a `rollback` workflow instead, with the approvals
hold-production and hold-production-db. A re-run workflow appears as a second workflow of the
same name in the same pipeline: the newest one is the one that counts.

CircleCI's answers are turned into frozen dataclasses here, defensively: a field CircleCI
leaves out or sends as null becomes None, never a crash and never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from reviewer.circleci import CircleCIClient, CircleCIError

PRODUCTION = "production"
ROLLBACK = "rollback"
COMPARE_JOB = "visualtests-compare"
HOLD_PRODUCTION = "hold-production"
ROLLBACK_STAGING = "rollback-staging"
HOLD_PRODUCTION_DB = "hold-production-db"
APPROVAL_NAMES = (HOLD_PRODUCTION, ROLLBACK_STAGING, HOLD_PRODUCTION_DB)
TAG_SCAN_PAGES = 30  # pipelines are listed newest first, ~20 a page: about 600 pipelines back

# Job states after which a job will not change by itself.
FINISHED = frozenset({"success", "failed", "canceled", "timedout", "infrastructure_fail",
                      "terminated-unknown", "not_run", "unauthorized", "retried"})


class ReleaseNotFound(CircleCIError):
    pass


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _int(value: Any) -> int | None:
    # JSON true would pass isinstance(..., int): a job number must be a real number.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    type: str  # "build" or "approval"
    status: str
    job_number: int | None = None
    approval_request_id: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Job:
        number = d.get("job_number")
        return cls(
            id=str(d.get("id") or ""),
            name=str(d.get("name") or ""),
            type=str(d.get("type") or ""),
            status=str(d.get("status") or "unknown"),
            job_number=_int(number),
            approval_request_id=_str(d.get("approval_request_id")),
            started_at=_str(d.get("started_at")),
            stopped_at=_str(d.get("stopped_at")),
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class Workflow:
    id: str
    name: str
    status: str
    pipeline_id: str
    pipeline_number: int | None
    created_at: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Workflow:
        number = d.get("pipeline_number")
        return cls(
            id=str(d.get("id") or ""),
            name=str(d.get("name") or ""),
            status=str(d.get("status") or "unknown"),
            pipeline_id=str(d.get("pipeline_id") or ""),
            pipeline_number=_int(number),
            created_at=str(d.get("created_at") or ""),
        )


@dataclass(frozen=True)
class Pipeline:
    id: str
    number: int
    project_slug: str
    state: str
    created_at: str
    tag: str | None
    branch: str | None
    revision: str | None
    commit_subject: str | None  # None when CircleCI did not say (null or absent)
    commit_body: str | None
    trigger_type: str | None
    rollback: bool  # triggered with parameters {"rollback": true}, as far as CircleCI tells

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Pipeline:
        vcs = _dict(d.get("vcs"))
        commit = _dict(vcs.get("commit"))
        trigger = _dict(d.get("trigger"))
        params = _dict(d.get("trigger_parameters"))
        number = d.get("number")
        subject, body = commit.get("subject"), commit.get("body")
        return cls(
            id=str(d.get("id") or ""),
            number=n if (n := _int(number)) is not None else -1,
            project_slug=str(d.get("project_slug") or ""),
            state=str(d.get("state") or "unknown"),
            created_at=str(d.get("created_at") or ""),
            tag=_str(vcs.get("tag")),
            branch=_str(vcs.get("branch")),
            revision=_str(vcs.get("revision")),
            commit_subject=subject if isinstance(subject, str) else None,
            commit_body=body if isinstance(body, str) else None,
            trigger_type=_str(trigger.get("type")),
            rollback=_is_rollback(params),
        )

    @property
    def commit_message(self) -> str | None:
        """Subject and body, or None when CircleCI did not give both: we do not know the message."""
        if self.commit_subject is None or self.commit_body is None:
            return None
        return f"{self.commit_subject}\n\n{self.commit_body}".strip("\n")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_rollback(params: dict[str, Any]) -> bool:
    for key in ("rollback", "parameters"):
        value = params.get(key)
        if value is True or (isinstance(value, dict) and value.get("rollback") is True):
            return True
    return False


@dataclass(frozen=True)
class Release:
    """One pipeline's workflow of interest and its jobs, as read at one moment."""

    project_slug: str
    pipeline: Pipeline
    workflow: Workflow
    jobs: tuple[Job, ...]

    @property
    def tag(self) -> str | None:
        return self.pipeline.tag

    def job(self, name: str) -> Job | None:
        """The job of that name; if a name repeats (should not happen), the last one listed."""
        found = [j for j in self.jobs if j.name == name]
        return found[-1] if found else None

    @property
    def approvals_waiting(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.type == "approval" and j.status == "on_hold")

    def label(self) -> str:
        tag = f" {self.tag}" if self.tag else ""
        return f"{self.project_slug}{tag} (pipeline {self.pipeline.number}, {self.workflow.name} workflow)"


def iter_tag_pipelines(client: CircleCIClient, slug: str, tag: str,
                       max_pages: int = TAG_SCAN_PAGES) -> Iterator[Pipeline]:
    """The project's pipelines for `tag` among the latest `max_pages` pages, newest first (lazily)."""
    for item in client.paged(f"/project/{slug}/pipeline", what=f"list pipelines of {slug}", slug=slug,
                             max_pages=max_pages):
        p = Pipeline.from_api(item)
        if p.tag == tag:
            yield p


def _newest(workflows: Iterable[Workflow], name: str) -> Workflow | None:
    named = [w for w in workflows if w.name == name]
    return max(named, key=lambda w: w.created_at) if named else None


def release_from_pipeline(client: CircleCIClient, slug: str, pipeline: Pipeline,
                          workflow_name: str = PRODUCTION) -> Release | None:
    workflows = [Workflow.from_api(w) for w in client.workflows(pipeline.id)]
    wf = _newest(workflows, workflow_name)
    if wf is None:
        return None
    jobs = tuple(Job.from_api(j) for j in client.workflow_jobs(wf.id))
    return Release(slug, pipeline, wf, jobs)


def find_release(client: CircleCIClient, slug: str, *, tag: str | None = None,
                 pipeline_number: int | None = None, workflow_id: str | None = None,
                 workflow_name: str = PRODUCTION) -> Release:
    """The release's `workflow_name` workflow, found by tag, pipeline number or workflow id.

    When more than one is given they must agree, or ReleaseNotFound says how they differ.
    """
    if workflow_id:
        data = client.workflow(workflow_id)
        wf = Workflow.from_api(data)
        if str(data.get("project_slug") or "") not in ("", slug):
            raise ReleaseNotFound(f"workflow {workflow_id} belongs to {data.get('project_slug')}, not {slug}")
        pipeline = Pipeline.from_api(client.pipeline(wf.pipeline_id))
        if wf.name != workflow_name:
            raise ReleaseNotFound(f"workflow {workflow_id} is the {wf.name!r} workflow, not {workflow_name!r}")
        _agree(pipeline, tag, pipeline_number)
        jobs = tuple(Job.from_api(j) for j in client.workflow_jobs(wf.id))
        return Release(slug, pipeline, wf, jobs)
    if pipeline_number is not None:
        pipeline = Pipeline.from_api(client.pipeline_by_number(slug, pipeline_number))
        _agree(pipeline, tag, pipeline_number)
        release = release_from_pipeline(client, slug, pipeline, workflow_name)
        if release is None:
            raise ReleaseNotFound(f"pipeline {pipeline_number} of {slug} has no {workflow_name!r} workflow")
        return release
    if not tag:
        raise ReleaseNotFound("say which release: --tag TAG, --pipeline N or --workflow ID")
    pipelines: list[Pipeline] = []
    # Newest first: a later rollback pipeline for the same tag has no production workflow.
    for pipeline in iter_tag_pipelines(client, slug, tag):
        pipelines.append(pipeline)
        release = release_from_pipeline(client, slug, pipeline, workflow_name)
        if release is not None:
            return release
    if not pipelines:
        raise ReleaseNotFound(
            f"no pipeline for tag {tag!r} among the latest pipelines of {slug}; check the tag, or pass "
            "--pipeline N (the pipeline's number in the CircleCI web app)")
    numbers = ", ".join(str(p.number) for p in pipelines)
    raise ReleaseNotFound(f"tag {tag!r} has pipeline(s) {numbers} but none has a {workflow_name!r} workflow")


def _agree(pipeline: Pipeline, tag: str | None, number: int | None) -> None:
    if tag is not None and pipeline.tag != tag:
        raise ReleaseNotFound(f"pipeline {pipeline.number} is for tag {pipeline.tag!r}, not {tag!r}")
    if number is not None and pipeline.number != number:
        raise ReleaseNotFound(f"the workflow belongs to pipeline {pipeline.number}, not {number}")


@dataclass(frozen=True)
class TagRelease:
    tag: str
    first_pipeline: Pipeline  # the earliest pipeline seen for the tag: when it was released
    latest_pipeline: Pipeline


def release_tags(client: CircleCIClient, slug: str, max_pages: int = TAG_SCAN_PAGES) -> list[TagRelease]:
    """Released tags, newest release first, from the project's tag pipelines.

    A tag is dated by its earliest pipeline, so a later rollback pipeline to an old tag does
    not make that tag look like the newest release. Pipelines CircleCI marks as triggered with
    `rollback: true` are skipped for dating.
    """
    seen: dict[str, list[Pipeline]] = {}
    for item in client.paged(f"/project/{slug}/pipeline", what=f"list pipelines of {slug}", slug=slug,
                             max_pages=max_pages):
        p = Pipeline.from_api(item)
        if p.tag:
            seen.setdefault(p.tag, []).append(p)
    releases: list[TagRelease] = []
    for tag, pipes in seen.items():
        normal = [p for p in pipes if not p.rollback] or pipes
        first = min(normal, key=lambda p: (p.created_at, p.number))
        latest = max(pipes, key=lambda p: (p.created_at, p.number))
        releases.append(TagRelease(tag, first, latest))
    releases.sort(key=lambda r: (r.first_pipeline.created_at, r.first_pipeline.number), reverse=True)
    return releases
