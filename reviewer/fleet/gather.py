"""Per site: find the release, get its analysis, run the approval checks, fingerprint the changes.

    find_site_release   newest tag release whose hold-production waits (or --tag, --since)
    artifact_review     review.json written by `reviewer ci` in that release's visualtests-compare,
                        accepted only when it is intact and about that job's report
    local_review        otherwise: fetch the report and analyse it here (actions.plan_approval,
                        with the result cache), as `reviewer approve` would
    gather_fleet        every site in a bounded thread pool; one failing site is a line, never a stop

The sites share one CircleCIClient whose transport is a fleet.limiter.LimitedTransport, so a
429 seen for one site pauses them all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reviewer.actions import (
    ApprovalFacts,
    CommitLookup,
    approval_checks,
    commit_message,  # the same commit-message rules as `reviewer approve`
    plan_approval,
)
from reviewer.circleci import CircleCIClient, app_url
from reviewer.errors import Interrupted, ReviewerError, UsageError
from reviewer.fleet.fingerprint import fingerprint
from reviewer.fleet.group import RegionItem, SiteFacts
from reviewer.fleet.sites import slug_for
from reviewer.model import Box, Decision
from reviewer.outdir import file_sha256
from reviewer.redact import redact
from reviewer.release import (
    COMPARE_JOB,
    HOLD_PRODUCTION,
    TAG_SCAN_PAGES,
    Pipeline,
    Release,
    ReleaseNotFound,
    find_release,
    release_from_pipeline,
)
from reviewer.render.jsonout import analysis_digest, review_document
from reviewer.sources.circleci_fetch import REPORT_FILES, JobRef, fetch_report, png_check, safe_relpath, target_path

if TYPE_CHECKING:
    from reviewer.config import Settings

REVIEW_JSON = "reviewer/review.json"  # reviewer ci writes SOURCE/reviewer/, stored with SOURCE
SOURCE_RECORD = "reviewer/source.json"  # written by reviewer ci: which report file review.json is about
MAX_RELEASES_LOOKED_AT = 10  # tag releases examined per site for one waiting on hold-production
DEFAULT_CONCURRENCY = 8
MAX_REVIEW_BYTES = 64 * 1024 * 1024
CROP_WORKERS = 4  # per site; the shared limiter bounds the requests of all sites together

Progress = Callable[[int, int, str], None]  # (sites done, sites in all, the site just done)
_ANALYSIS = threading.Lock()  # local analyses run one at a time (see _gather)


@dataclass(frozen=True)
class FleetOptions:
    out: Path  # the fleet's folder: fleet.json/.md/.html and sites/<repo>/...
    tag: str | None = None
    since: str | None = None  # ISO date or datetime: only releases created from then on
    concurrency: int = DEFAULT_CONCURRENCY
    settings: Settings | None = None
    commit_lookup: CommitLookup | None = None
    local_fallback: bool = True  # analyse here when the compare job stored no usable review.json


@dataclass(frozen=True)
class SiteResult:
    facts: SiteFacts
    items: tuple[RegionItem, ...] = ()
    release: dict[str, Any] | None = None  # tag, pipeline, workflow_id, compare_job, link
    source: str | None = None  # "artifact" (review.json of the compare job) or "local"
    digest: str | None = None  # review.json's digest: the analysis the decision is about
    report_problem: str | None = "not checked"
    page: str | None = None  # the site's own review page (an artifact URL or a relative path)
    top: tuple[dict[str, Any], ...] = ()  # the site's most important pairs
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.facts.name


def since_key(since: str) -> str:
    """--since DATE as a prefix comparable with CircleCI's created_at (ISO 8601, UTC)."""
    text = since.strip().replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {since!r}: give a date such as 2026-12-01 or 2026-12-01T09:00") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def find_site_release(client: CircleCIClient, slug: str, *, tag: str | None = None,
                      since: str | None = None) -> Release:
    """The release to review: --tag's; else the newest tag release whose hold-production is on
    hold, stopping at a newer release already approved (it is in production: nothing waits)."""
    if tag:
        return find_release(client, slug, tag=tag)
    floor = since_key(since) if since else None
    looked = 0
    for item in client.paged(f"/project/{slug}/pipeline", what=f"list pipelines of {slug}", slug=slug,
                             max_pages=TAG_SCAN_PAGES):
        p = Pipeline.from_api(item)
        if floor is not None and p.created_at[:19] < floor:
            break  # newest first: everything after this is older still
        if not p.tag or p.rollback:
            continue
        release = release_from_pipeline(client, slug, p)
        if release is None:
            continue
        looked += 1
        job = release.job(HOLD_PRODUCTION)
        if job is not None and job.type == "approval" and job.status in ("on_hold", "success"):
            return release
        if looked >= MAX_RELEASES_LOOKED_AT:
            break
    window = f" since {since}" if since else ""
    raise ReleaseNotFound(f"no release waiting on {HOLD_PRODUCTION}{window} among the latest tag pipelines of {slug}; "
                          "nothing to review there (pass --tag TAG to review a given release)")


# -- review.json from the compare job's artifacts ---------------------------------------------------


def review_prefix(paths: Sequence[str]) -> str | None:
    """The artifact folder holding reviewer ci's outputs (`.../reviewer/`), or None."""
    hits = sorted((p for p in paths if p == REVIEW_JSON or p.endswith("/" + REVIEW_JSON)), key=len)
    return hits[0][: len(hits[0]) - len("review.json")] if hits else None


def review_problem(data: Any, report_files: Sequence[str] | None, report_sha256: str | None,
                   record: dict[str, Any] | None) -> str | None:
    """Why this review.json must not stand for the job's report (None: it may). Pure.

    It must be schema 1 and match its own digest (nothing edited since it was written); about
    exactly the report's pairs; and, by reviewer ci's record (source.json), about that exact
    report file."""
    if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("pairs"), list) \
            or not isinstance(data.get("decision"), dict) or data["decision"].get("action") not in ("approve", "hold"):
        return "review.json is not a schema-1 review"
    try:
        digest = analysis_digest(data)
    except (KeyError, TypeError, AttributeError):
        return "review.json is malformed"
    if digest != data.get("digest"):
        return "review.json does not match its own digest: it changed after reviewer ci wrote it"
    # Without reviewer ci's record of the report file it was made from, nothing ties the stored
    # analysis to the stored report beyond its pair names: analyse the report here instead.
    if record is None:
        return "no reviewer/source.json beside review.json (an older reviewer ci?): the report is analysed here"
    if record.get("review_digest") != digest:
        return "source.json is about another analysis than review.json"
    if report_sha256 is None or record.get("sha256") != report_sha256:
        return "the job's report file is not the one review.json was made from"
    if report_files is not None:
        mine = sorted(str(p.get("file")) for p in data["pairs"] if isinstance(p, dict))
        if mine != sorted(report_files):
            return "review.json is about other pairs than the job's report"
    return None


def write_source_record(review_digest: str, report_file: Path, source_root: Path, out_dir: Path) -> Path:
    """reviewer ci's note of which report file (and its sha256) review.json was made from."""
    try:
        rel = report_file.resolve().relative_to(source_root.resolve()).as_posix()
    except ValueError:
        rel = report_file.name
    path = out_dir / "source.json"
    data = {"report_file": rel, "sha256": file_sha256(report_file), "review_digest": review_digest}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass
class _Artifacts:
    client: CircleCIClient
    urls: dict[str, str]
    into: Path

    def get(self, path: str, *, limit: int | None = None) -> Path:
        url = self.urls[path]
        dest = target_path(self.into, safe_relpath(path))
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.download(url, dest, verify=png_check)
        if limit is not None and dest.stat().st_size > limit:
            raise ReviewerError(f"{path} is larger than {limit} bytes")
        return dest


def _report_files(path: Path) -> list[str]:
    from reviewer.sources.local import read_report_file

    return [p.file for p in read_report_file(path).pairs]


def artifact_review(client: CircleCIClient, release: Release, job_number: int,
                    site_dir: Path) -> tuple[dict[str, Any] | None, _Artifacts | None, str, str | None]:
    """(review.json data or None, the artifact store, its prefix, why it was not used)."""
    listing = client.artifacts(release.project_slug, job_number)
    urls = {str(a["path"]): str(a["url"]) for a in listing
            if isinstance(a.get("path"), str) and isinstance(a.get("url"), str)}
    prefix = review_prefix(list(urls))
    if prefix is None:
        return None, None, "", f"{COMPARE_JOB} stored no {REVIEW_JSON} (reviewer ci not run there?)"
    store = _Artifacts(client, urls, site_dir / "artifacts")
    # Anything wrong with the stored review (unreadable, cut short, not JSON) only means it
    # cannot stand for the report: the caller then analyses the report itself.
    try:
        data = json.loads(store.get(prefix + "review.json", limit=MAX_REVIEW_BYTES).read_text(encoding="utf-8"))
        record = None
        if prefix + "source.json" in urls:
            loaded = json.loads(store.get(prefix + "source.json", limit=1024 * 1024).read_text(encoding="utf-8"))
            record = loaded if isinstance(loaded, dict) else {}
        backstop = prefix[: -len("reviewer/")]
        report_rel = (record or {}).get("report_file")
        candidates = [report_rel] if isinstance(report_rel, str) else list(REPORT_FILES)
        report_path = next((backstop + c for c in candidates if backstop + c in urls), None)
        if report_path is None:
            return None, store, prefix, f"the job stored review.json but no report file ({', '.join(candidates)})"
        report = store.get(report_path, limit=MAX_REVIEW_BYTES)
        problem = review_problem(data, _report_files(report), file_sha256(report), record)
    except (ValueError, OSError, ReviewerError) as exc:
        return None, store, prefix, redact(f"the stored review.json cannot be used: {exc}")
    return (None if problem else data), store, prefix, problem


# -- the site's changed regions ----------------------------------------------------------------------


def _size(value: Any) -> tuple[int, int] | None:
    return (int(value[0]), int(value[1])) if isinstance(value, list) and len(value) == 2 else None


def region_items(site: str, data: dict[str, Any], fetch_crop: Callable[[str], Path | None],
                 out: Path) -> tuple[list[RegionItem], list[str]]:
    """Every significant region of every changed pair, fingerprinted from its crops; and the
    changed pages with a change that has no fingerprint (no crop, or no region at all)."""
    items: list[RegionItem] = []
    unmatched: list[str] = []
    for p in data.get("pairs", []):
        if not isinstance(p, dict) or p.get("verdict") != "changed":
            continue
        page = f"{p.get('label')} [{p.get('viewport')}]"
        images = p.get("images") or {}
        crops = images.get("crops") or []
        whole = {images.get("reference"), images.get("test")} - {None}
        regions = [r for r in p.get("regions", []) if isinstance(r, dict)]
        significant = [(k, r) for k, r in enumerate(regions) if r.get("significant")]
        if not significant:
            unmatched.append(page)
            continue
        for k, r in significant:
            try:
                box = Box(int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"]))
                ref_box = Box(box.x, int(r["ref_y"]), box.w, int(r.get("ref_h") or 1)) \
                    if r.get("ref_y") is not None else box
            except (KeyError, TypeError, ValueError):
                if page not in unmatched:  # a region we cannot place is a change no group covers
                    unmatched.append(page)
                continue
            pair_crops = crops[k] if k < len(crops) and isinstance(crops[k], dict) else None
            fp = None
            ref_local = test_local = None
            if pair_crops is not None:
                ref_rel, test_rel = pair_crops.get("reference"), pair_crops.get("test")
                try:
                    ref_local = fetch_crop(ref_rel) if ref_rel else None
                    test_local = fetch_crop(test_rel) if test_rel else None
                    if ref_local or test_local:
                        fp = fingerprint(str(r.get("kind")), box, ref_box, ref_local, test_local,
                                         _size(p.get("reference_size")), _size(p.get("test_size")),
                                         ref_rel in whole, test_rel in whole)
                except (OSError, ValueError, ReviewerError):
                    fp = None
            if fp is None and page not in unmatched:
                unmatched.append(page)
            items.append(RegionItem(site, page, int(p.get("rank") or 0), k, str(r.get("kind")),
                                    float(p.get("score") or 0.0), fp,
                                    _rel(ref_local, out), _rel(test_local, out)))
    return items, unmatched


def crop_paths(data: dict[str, Any]) -> list[str]:
    """The crops region_items will look at: those of significant regions of changed pairs."""
    paths: list[str] = []
    for p in data.get("pairs", []):
        if not isinstance(p, dict) or p.get("verdict") != "changed":
            continue
        crops = (p.get("images") or {}).get("crops") or []
        for k, r in enumerate(p.get("regions") or []):
            if isinstance(r, dict) and r.get("significant") and k < len(crops) and isinstance(crops[k], dict):
                paths += [v for v in (crops[k].get("reference"), crops[k].get("test"))
                          if isinstance(v, str) and v not in paths]
    return paths


def fetch_crops(paths: Sequence[str], fetch: Callable[[str], Path | None],
                workers: int = CROP_WORKERS) -> dict[str, Path | None]:
    """Each crop fetched once, a few at a time: a site with many changes has hundreds, and one by
    one they would cost a round trip each. A crop that cannot be had is None (its region then
    belongs to no group, and its site is reviewed on its own)."""
    def one(path: str) -> Path | None:
        try:
            return fetch(path)
        except (OSError, ValueError, ReviewerError):
            return None

    if len(paths) <= 1:
        return {path: one(path) for path in paths}
    with ThreadPoolExecutor(max_workers=min(workers, len(paths)), thread_name_prefix="crops") as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def _rel(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def top_pairs(data: dict[str, Any], limit: int = 3) -> tuple[dict[str, Any], ...]:
    pairs = [p for p in data.get("pairs", []) if isinstance(p, dict) and p.get("verdict") in ("changed", "error")]
    pairs.sort(key=lambda p: int(p.get("rank") or 0))
    return tuple({"page": f"{p.get('label')} [{p.get('viewport')}]", "verdict": p.get("verdict"),
                  "score": p.get("score"), "reason": p.get("reason")} for p in pairs[:limit])


# -- one site ----------------------------------------------------------------------------------------


def _release_dict(client: CircleCIClient, release: Release) -> dict[str, Any]:
    compare = release.job(COMPARE_JOB)
    return {"tag": release.tag, "pipeline": release.pipeline.number, "workflow_id": release.workflow.id,
            "compare_job": compare.job_number if compare else None,
            "compare_status": compare.status if compare else None,
            "link": app_url(client.api_url, release.project_slug, release.pipeline.number)}


def site_dir_for(out: Path, slug: str) -> Path:
    return out / "sites" / slug.split("/")[-1]


def gather_site(client: CircleCIClient, name: str, opts: FleetOptions) -> SiteResult:
    """Everything fleet shows for one site; never raises for the site's own problems."""
    started = time.perf_counter()
    slug = name
    try:
        slug = slug_for(name)
        result = _gather(client, name, slug, opts)
    except (KeyboardInterrupt, Interrupted):
        raise
    except ReleaseNotFound as exc:
        result = SiteResult(SiteFacts(name, slug, error=redact(str(exc)) if str(exc).startswith("no release")
                                      else redact(f"no release: {exc}")))
    except ReviewerError as exc:
        result = SiteResult(SiteFacts(name, slug, error=redact(str(exc))))
    except Exception as exc:  # one site's surprise must not stop the fleet: it is that site's line
        result = SiteResult(SiteFacts(name, slug, error=redact(f"unexpected {type(exc).__name__}: {exc}")))
    return replace(result, seconds=round(time.perf_counter() - started, 3))


def _gather(client: CircleCIClient, name: str, slug: str, opts: FleetOptions) -> SiteResult:
    release = find_site_release(client, slug, tag=opts.tag, since=opts.since)
    rel = _release_dict(client, release)
    approval, compare = release.job(HOLD_PRODUCTION), release.job(COMPARE_JOB)
    base = SiteFacts(name, slug, tag=release.tag,
                     compare_running=compare is not None and not compare.finished)
    if approval is not None and approval.type == "approval" and approval.status == "success":
        return SiteResult(replace(base, already_approved=True), release=rel)
    message, source = commit_message(release, opts.commit_lookup)
    facts = ApprovalFacts(opts.tag or release.tag or "", release.tag, release.workflow.name, approval, compare,
                          message, source)
    if compare is None or compare.job_number is None or compare.status not in ("success", "failed"):
        checks = tuple(approval_checks(facts))
        return SiteResult(replace(base, checks=checks), release=rel)
    # One folder per compare job: a later release's download must not meet this one's manifest.
    site_dir = site_dir_for(opts.out, slug) / f"job-{compare.job_number}"
    data, store, prefix, why_not = artifact_review(client, release, compare.job_number, site_dir)
    notes: list[str] = []
    if data is not None and store is not None and prefix + "source.json" not in store.urls:
        notes.append("review.json has no source.json beside it (reviewer ci before fleet): it was matched to the "
                     "report by its pairs only")
    if data is not None and store is not None:
        verdicts = Decision(str(data["decision"]["action"]), tuple(data["decision"].get("reasons") or ()))
        facts = replace(facts, report_problem=None, decision=verdicts)
        checks = tuple(approval_checks(facts))
        page = store.urls.get(prefix + "index.html")

        def fetch_crop(rel_path: str) -> Path | None:
            path = prefix + rel_path
            return store.get(path) if path in store.urls else None

        return _with_analysis(base, checks, data, fetch_crop, opts, rel, "artifact", page, None, notes)
    if not opts.local_fallback:
        if why_not:
            notes.append(why_not)
        facts = replace(facts, report_problem=why_not or "no analysis")
        return SiteResult(replace(base, checks=tuple(approval_checks(facts))), release=rel,
                          report_problem=why_not, notes=tuple(notes))
    work = site_dir / "local"
    # The download runs beside the other sites'; the analysis one site at a time, as it uses
    # every core and budgets memory as if it were alone. plan_approval then finds the download
    # complete (the fetch manifest) and only checks it.
    with contextlib.suppress(ReviewerError, OSError):
        fetch_report(client, JobRef(slug, compare.job_number, release.workflow.id, release.tag), work / "report")
    with _ANALYSIS:
        plan = plan_approval(client, slug, release.tag or "", settings=opts.settings, work_dir=work,
                             commit_lookup=opts.commit_lookup, workflow_id=release.workflow.id)
    if plan.review is None or plan.review_dir is None:
        report_check = next((c for c in plan.checks if c.name == "report"), None)
        problem = report_check.detail if report_check is not None and not report_check.ok else None
        return SiteResult(replace(base, checks=plan.checks), release=rel, report_problem=problem, notes=tuple(notes))
    review_dir = plan.review_dir
    data = review_document(plan.review)
    notes.append("analysed here: " + (why_not or "no review.json"))

    def copy_crop(rel_path: str) -> Path | None:
        src = target_path(review_dir, safe_relpath(rel_path))
        if not src.is_file():
            return None
        dest = target_path(site_dir / "local-crops", safe_relpath(rel_path))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    page = _rel(review_dir / "index.html", opts.out)
    report_check = next((c for c in plan.checks if c.name == "report"), None)
    problem = None if report_check is None or report_check.ok else report_check.detail
    return _with_analysis(base, plan.checks, data, copy_crop, opts, rel, "local", page, problem, notes)


def _with_analysis(base: SiteFacts, checks: tuple[Any, ...], data: dict[str, Any],
                   fetch_crop: Callable[[str], Path | None], opts: FleetOptions, rel: dict[str, Any],
                   source: str, page: str | None, report_problem: str | None, notes: list[str]) -> SiteResult:
    fetched = fetch_crops(crop_paths(data), fetch_crop)
    items, unmatched = region_items(base.name, data, fetched.get, opts.out)
    counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items()}
    changed = tuple(f"{p.get('label')} [{p.get('viewport')}]" for p in data["pairs"] if p.get("verdict") == "changed")
    facts = replace(base, checks=tuple(checks), decision=str(data["decision"]["action"]),
                    reasons=tuple(str(r) for r in data["decision"].get("reasons") or ()), counts=counts,
                    changed_pairs=changed, unmatched_pages=tuple(unmatched))
    return SiteResult(facts, tuple(items), rel, source, str(data.get("digest")), report_problem, page,
                      top_pairs(data), tuple(notes))


# -- the fleet ---------------------------------------------------------------------------------------


@dataclass
class _Count:
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def gather_fleet(client: CircleCIClient, names: Sequence[str], opts: FleetOptions,
                 progress: Progress | None = None) -> list[SiteResult]:
    """Every site, `opts.concurrency` at a time, in the order given."""
    opts.out.mkdir(parents=True, exist_ok=True)
    results: dict[int, SiteResult] = {}
    count = _Count()
    pool = ThreadPoolExecutor(max_workers=max(1, min(opts.concurrency, len(names) or 1)),
                              thread_name_prefix="fleet")
    try:
        futures = {pool.submit(gather_site, client, name, opts): i for i, name in enumerate(names)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            with count.lock:
                count.done += 1
                done = count.done
            if progress:
                progress(done, len(names), names[i])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(names))]
