"""Downloading a report from CircleCI artifacts: complete or clearly not, never outside DIR,
never the token to the storage host, resumable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from circleci_env import SLUG, files_under, make_report
from fake_circleci import FakeCircleCI, FakeStorage

from reviewer.analyze import run
from reviewer.circleci import CircleCIClient
from reviewer.config import Settings
from reviewer.model import Review
from reviewer.sources.circleci_fetch import (
    MANIFEST,
    FetchError,
    JobRef,
    UnsafeArtifactPath,
    fetch_report,
    png_check,
    safe_relpath,
    target_path,
    verify_fetched,
)

pytest_plugins = ["circleci_fixtures"]


def compare_job(cci: FakeCircleCI, tag: str = "v1.0.0", report: Path | None = None,
                extra: dict[str, bytes | Path] | None = None) -> JobRef:
    _p, wf = cci.add_release(SLUG, tag, report=report)
    number = cci.job(wf, "visualtests-compare").job_number or 0
    if extra:
        cci.add_artifacts(SLUG, number, extra)
    return JobRef(SLUG, number, wf.id, tag)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".part" in p.name]


def test_the_real_fixture_report_arrives_complete_and_analyses_like_the_original(
        cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient, fixture_copy: Path, tmp_path: Path,
        token: str, fixture_review: tuple[Review, Path]) -> None:
    job = compare_job(cci, report=fixture_copy)
    # Artifacts CircleCI would also list but the report does not need are not downloaded.
    cci.add_artifacts(SLUG, job.job_number, {"app/other/notes.txt": b"x"})
    result = fetch_report(client, job, tmp_path / "dl")
    assert result.complete, result.problems()
    got = files_under(result.root)
    want = files_under(fixture_copy)
    assert set(got) <= set(want)
    assert all(got[k] == want[k] for k in got)
    assert "html_report/config.js" in got and "html_report/index.html" in got
    assert any(k.startswith("html_report/assets/fonts/") for k in got)  # the page's assets
    original, _ = fixture_review  # the original report, analysed once per session (conftest.py)
    fetched, _ = run(result.out, tmp_path / "b", Settings())  # what `reviewer analyze DIR` does
    assert fetched.counts == original.counts and fetched.decision == original.decision
    assert [(rp.pair.file, rp.analysis.verdict) for rp in fetched.ranked] == \
        [(rp.pair.file, rp.analysis.verdict) for rp in original.ranked]
    assert storage.saw(token) == []  # the storage host never saw the token
    assert all(r.headers.get("circle-token") == token for r in cci.find("GET", r"^/artifacts/"))
    assert verify_fetched(result.root, job) is None


def test_a_fetch_under_faults_ends_complete(cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient,
                                           approving_report: Path, tmp_path: Path, token: str) -> None:
    job = compare_job(cci, report=approving_report)
    cci.inject("GET", r"/artifacts$", "status", status=429, headers={"Retry-After": "1"})
    cci.inject("GET", r"^/artifacts/", "drop")  # the artifact host drops one connection
    storage.inject("GET", r"^/blob/", "status", status=502)
    storage.inject("GET", r"^/blob/", "truncate", times=2)  # two bodies cut in half
    result = fetch_report(client, job, tmp_path / "dl", workers=3)
    assert result.complete, result.problems()
    assert files_under(result.root) == files_under(approving_report)
    assert no_temp_files(tmp_path / "dl")
    assert storage.saw(token) == []


def test_a_fetch_that_cannot_complete_says_so_and_leaves_no_partial_file(
        cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient, approving_report: Path,
        tmp_path: Path) -> None:
    job = compare_job(cci, report=approving_report)
    # The test image of the desktop pair is always truncated.
    victim = next(a for a in cci.artifacts[(SLUG, job.job_number)] if "bitmaps_test" in a.path
                  and "desktop" in a.path)
    storage.inject("GET", rf"^/blob/{victim.key}$", "truncate", times=100)
    result = fetch_report(client, job, tmp_path / "dl")
    assert not result.complete and not result.downloads_ok
    assert len(result.failed) == 1 and victim.path in result.failed[0]
    assert "received" in result.failed[0] and "bytes" in result.failed[0]
    local = tmp_path / "dl" / "backstop_data" / victim.path.removeprefix("app/backstop_data/")
    assert not local.exists() and no_temp_files(tmp_path / "dl")
    assert verify_fetched(result.root, job) is not None  # nothing downstream may trust it

    # Fixed on the storage side: running again downloads only what is missing.
    storage.faults.clear()
    again = fetch_report(client, job, tmp_path / "dl")
    assert again.complete and again.downloaded == 1 and again.skipped == result.downloaded
    assert verify_fetched(again.root, job) is None


def test_a_damaged_png_with_a_matching_length_is_caught(cci: FakeCircleCI, client: CircleCIClient,
                                                       approving_report: Path, tmp_path: Path) -> None:
    name = "bitmaps_reference/planet4_Home_0_document_0_mobile.png"
    broken = (approving_report / name).read_bytes()[:-12]  # no IEND: cut short before upload
    job = compare_job(cci, report=approving_report)
    items = cci.artifacts[(SLUG, job.job_number)]
    victim = next(a for a in items if a.path.endswith(name))
    cci.storage.blobs[victim.key] = broken
    result = fetch_report(client, job, tmp_path / "dl")
    assert not result.complete and "no IEND" in result.failed[0]


def test_artifact_paths_that_would_escape_are_refused(cci: FakeCircleCI, client: CircleCIClient,
                                                      approving_report: Path, tmp_path: Path) -> None:
    job = compare_job(cci, report=approving_report, extra={
        "app/backstop_data/html_report/../../../../escaped.txt": b"evil",
        "app/backstop_data/html_report/assets/..\\..\\..\\win.txt": b"evil",
    })
    result = fetch_report(client, job, tmp_path / "a" / "dl")
    assert not result.complete and len(result.refused) == 2
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("*win.txt"))


@pytest.mark.parametrize("bad", ["/etc/passwd", "a/../../b", "../x", "a//b", "C:/x", "a\\b", "./a", ""])
def test_safe_relpath_refuses(bad: str) -> None:
    with pytest.raises(UnsafeArtifactPath):
        safe_relpath(bad)


def test_a_symlink_inside_the_folder_cannot_lead_outside(tmp_path: Path) -> None:
    out = tmp_path / "dl"
    (out / "backstop_data").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, out / "backstop_data" / "html_report")
    with pytest.raises(UnsafeArtifactPath):
        target_path(out, safe_relpath("backstop_data/html_report/config.js"))


def test_images_the_report_names_but_the_job_did_not_store_make_it_incomplete(
        cci: FakeCircleCI, client: CircleCIClient, tmp_path: Path) -> None:
    report = make_report(tmp_path / "src")
    (report / "bitmaps_reference" / "planet4_Home_0_document_1_desktop.png").unlink()
    job = compare_job(cci, report=report)
    result = fetch_report(client, job, tmp_path / "dl")
    assert result.downloads_ok and not result.complete
    assert result.missing == ("app/backstop_data/bitmaps_reference/planet4_Home_0_document_1_desktop.png",)


def test_a_job_without_a_report_is_a_clear_error(cci: FakeCircleCI, client: CircleCIClient, tmp_path: Path) -> None:
    job = compare_job(cci, extra={"app/backstop_data/ci_report/xunit.xml": b"<x/>"})
    with pytest.raises(FetchError, match="no BackstopJS report"):
        fetch_report(client, job, tmp_path / "dl")


def test_a_folder_fetched_for_another_job_is_not_mixed_up(cci: FakeCircleCI, client: CircleCIClient,
                                                          approving_report: Path, tmp_path: Path) -> None:
    first = compare_job(cci, "v1.0.0", report=approving_report)
    second = compare_job(cci, "v1.1.0", report=approving_report)
    assert fetch_report(client, first, tmp_path / "dl").complete
    with pytest.raises(FetchError, match="another job"):
        fetch_report(client, second, tmp_path / "dl")
    assert "not of" in (verify_fetched(tmp_path / "dl" / "backstop_data", second) or "")


def test_a_file_changed_after_the_fetch_is_noticed(cci: FakeCircleCI, client: CircleCIClient,
                                                  approving_report: Path, tmp_path: Path) -> None:
    job = compare_job(cci, report=approving_report)
    result = fetch_report(client, job, tmp_path / "dl")
    config = result.root / "html_report" / "config.js"
    config.write_text(config.read_text().replace('"pass"', '"pass" '))
    assert "changed" in (verify_fetched(result.root, job) or "")
    assert (tmp_path / "dl" / MANIFEST).is_file()


def test_downloads_run_in_a_bounded_pool(cci: FakeCircleCI, storage: FakeStorage, client: CircleCIClient,
                                         fixture_copy: Path, tmp_path: Path) -> None:
    job = compare_job(cci, report=fixture_copy)
    storage.delay = 0.01
    result = fetch_report(client, job, tmp_path / "dl", workers=4)
    assert result.complete
    assert 2 <= storage.max_in_flight <= 4


def test_progress_reports_every_file(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                                    tmp_path: Path) -> None:
    job = compare_job(cci, report=approving_report)
    seen: list[tuple[int, int, int]] = []
    result = fetch_report(client, job, tmp_path / "dl", progress=lambda d, t, b: seen.append((d, t, b)))
    assert seen[-1][0] == seen[-1][1] == result.downloaded
    assert seen[-1][2] == result.bytes > 0


def test_png_check(tmp_path: Path, approving_report: Path) -> None:
    good = next(approving_report.rglob("*.png"))
    assert png_check(good) is None
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"<html>error page</html>")
    assert png_check(bad) == "not a PNG file"
    txt = tmp_path / "a.txt"
    txt.write_text("anything")
    assert png_check(txt) is None
