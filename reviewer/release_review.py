"""From a CircleCI release to a review a person may look at: fetch, verify, analyse.

`reviewer review`, `reviewer serve PROJECT --tag` and `reviewer approve` all go through
`review_release`, so a page never shows the analysis of a download the approval path would
refuse: every file is re-hashed against the fetch manifest before it is analysed.

Layout of a release's work folder (default reports/<repo>/<tag>/job-<n>/):
    report/   the download (backstop_data, the fetch manifest)
    review/   the analysis (index.html, review.json, summary.md, junit.xml)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reviewer.analyze import run
from reviewer.circleci import CircleCIClient
from reviewer.config import Settings
from reviewer.model import Review
from reviewer.release import COMPARE_JOB, Release
from reviewer.sources.circleci_fetch import FetchError, FetchResult, JobRef, fetch_report, verify_fetched

Say = Callable[[str], None]
DownloadProgress = Callable[[int, int, int], None]  # files done, files in all, bytes
AnalysisProgress = Callable[[int, int], None]  # pairs done, pairs in all


@dataclass(frozen=True)
class Progress:
    """What the caller shows while a release is reviewed; every part optional."""

    say: Say | None = None
    download: DownloadProgress | None = None
    analysis: AnalysisProgress | None = None

    def tell(self, text: str) -> None:
        if self.say is not None:
            self.say(text)


@dataclass(frozen=True)
class ReleaseReview:
    job: JobRef
    fetch: FetchResult
    review: Review
    out_dir: Path  # the analysis' output folder (work folder / review)

    @property
    def incomplete(self) -> str | None:
        """Why the approval path refuses this review although it could be analysed: images the
        report names that the job never stored (those pairs are errors, so it holds anyway)."""
        if self.fetch.complete:
            return None
        return "the report is incomplete: " + "; ".join(self.fetch.problems()[:3])


def default_work_dir(slug: str, tag: str, job_number: int) -> Path:
    """reports/<repo>/<tag>/job-<n>: a rerun of the same job reuses (and resumes) its folder."""
    safe_tag = "".join(c if c.isalnum() or c in "-._" else "_" for c in tag)[:80] or "tag"
    return Path("reports") / slug.split("/")[-1] / safe_tag / f"job-{job_number}"


def compare_job(release: Release) -> JobRef:
    """The job whose artifacts hold the release's BackstopJS report; FetchError when there is none
    yet (the job is missing, has no number, or has not finished storing its artifacts)."""
    job = release.job(COMPARE_JOB)
    if job is None or job.job_number is None:
        raise FetchError(f"{release.label()} has no {COMPARE_JOB} job with artifacts")
    if not job.finished:
        raise FetchError(f"{COMPARE_JOB} is {job.status}: its artifacts are stored when it ends; try again then")
    return JobRef(release.project_slug, job.job_number, release.workflow.id, release.tag)


def work_dir_for(release: Release, job: JobRef) -> Path:
    return default_work_dir(release.project_slug, release.tag or f"pipeline-{release.pipeline.number}",
                            job.job_number)


def fetch_release(client: CircleCIClient, job: JobRef, target: Path, progress: Progress = Progress()) -> FetchResult:
    progress.tell(f"fetching the report of {COMPARE_JOB} (job {job.job_number}) into {target}")
    return fetch_report(client, job, target, progress=progress.download)


def review_release(client: CircleCIClient, release: Release, settings: Settings, *, work_dir: Path | None = None,
                   job: JobRef | None = None, progress: Progress = Progress()) -> ReleaseReview:
    """Fetch the release's compare report into WORK/report (resuming), check that every file is
    the one CircleCI served, analyse it into WORK/review.

    Raises FetchError when the download failed or does not verify (run again to resume) and
    ReportError when the report cannot be analysed. Images the job never stored do not raise:
    those pairs become errors, the review holds, and `incomplete` says why approval refuses."""
    job = job or compare_job(release)
    base = work_dir or work_dir_for(release, job)
    fetched = fetch_release(client, job, base / "report", progress)
    if not fetched.downloads_ok:
        raise FetchError("the download is incomplete: " + "; ".join(fetched.problems()[:3])
                         + " (run the same command again to resume)")
    problem = verify_fetched(fetched.root, job, allow_missing=True)
    if problem:
        # A rerun re-hashes every file and downloads again the ones that no longer match.
        raise FetchError(f"{problem}; run the same command again to download it again")
    progress.tell("analysing the report")
    review, out_dir = run(fetched.out, base / "review", settings, progress.analysis)
    return ReleaseReview(job, fetched, review, out_dir)
