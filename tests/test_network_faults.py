"""Network faults during `fetch` and the CircleCI API calls, against the real local fake servers.

Every fault must end in one of two ways: the job completes (the fault was within the retry
bound), or it fails clearly: one line saying what went wrong and what to do, no traceback, no
half-written file under its final name or counted in the fetch manifest, never an approval,
and never the token in any message.

Covered: timeouts (servers silent before answering or in the middle of a body), connection
resets mid-body, 429/5xx storms shorter and longer than the retry bound, truncated JSON and
artifact bodies, malformed JSON and JSON of the wrong shape, artifact lists that change or loop
between pages, Ctrl-C in the middle of a real `reviewer fetch` process followed by a rerun, a
full disk while writing a download, an approve whose POST times out, and Ctrl-C in a real
`reviewer approve` process while its POST is on its way. (A POST whose answer is dropped,
before or after CircleCI acted, is covered by
tests/test_actions.py::test_a_lost_answer_is_checked_not_resent.)
"""

from __future__ import annotations

import errno
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from circleci_env import PROJECT, SLUG, Sleeps, cli_runner, fast_policy, files_under
from fake_circleci import FakeCircleCI, FakeStorage, openapi

from reviewer import actions
from reviewer.circleci import CircleCIClient, CircleCIError
from reviewer.errors import ReviewerError
from reviewer.sources.circleci_fetch import MANIFEST, FetchError, JobRef, fetch_report, verify_fetched
from reviewer.webclient import GaveUp, HttpError, RateLimited

pytest_plugins = ["circleci_fixtures"]

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 0.5  # the client's timeout in these tests: a hang costs this long per try
HANG = 2.0  # how long a hanging server stays silent: well past TIMEOUT
ATTEMPTS = 3
ARTIFACTS = r"/artifacts$"  # the artifact list of a job (not /artifacts/<key> downloads)


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def quick(cci: FakeCircleCI, token: str, sleeps: Sleeps) -> Iterator[CircleCIClient]:
    """A client with a short timeout and few, sleepless retries."""
    openapi()  # load the spec the fake validates against now, not within the first timed request
    c = CircleCIClient(token, cci.api_url, retry=fast_policy(sleeps, attempts=ATTEMPTS), timeout=TIMEOUT)
    yield c
    c.close()


def compare_job(cci: FakeCircleCI, report: Path, tag: str = "v1.0.0") -> JobRef:
    _p, wf = cci.add_release(SLUG, tag, report=report)
    return JobRef(SLUG, cci.job(wf, "visualtests-compare").job_number or 0, wf.id, tag)


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


def manifest_files(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    return json.loads(path.read_text())["files"] if path.is_file() else {}


def assert_nothing_half_written(out: Path) -> None:
    """No temporary file left, and every file the manifest counts is there, whole and unchanged."""
    assert temp_files(out) == []
    for rel in manifest_files(out):
        assert ".part" not in rel
        assert (out / rel).is_file()


WHAT_TO_DO = ("try again", "is --api-url right", "narrow the search", "run the same command again")


def assert_clear(message: str, token: str) -> None:
    """One line, no traceback, no token, and it says what to do."""
    assert message.strip() and "\n" not in message.strip(), message
    assert "Traceback" not in message and token not in message
    assert any(hint in message.lower() for hint in WHAT_TO_DO), message


def blob_of(cci: FakeCircleCI, job: JobRef, suffix: str) -> str:
    return next(a.key for a in cci.artifacts[(SLUG, job.job_number)] if a.path.endswith(suffix))


def listing(cci: FakeCircleCI, job: JobRef) -> list[dict[str, str]]:
    """The items CircleCI would list for the job (path and the real, redirecting URL)."""
    return [{"path": a.path, "node_index": 0, "url": f"{cci.origin}/artifacts/{job.job_number}/{a.key}"}
            for a in cci.artifacts[(SLUG, job.job_number)]]


def page(items: list[dict[str, Any]], next_token: str | None) -> bytes:
    return json.dumps({"items": items, "next_page_token": next_token}).encode()


@pytest.fixture
def cli(cci: FakeCircleCI, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """`reviewer ARGS` in this process with the quick client; returns (exit code, stdout, stderr)."""
    openapi()
    monkeypatch.chdir(tmp_path)
    run_cli = cli_runner(monkeypatch, capsys, token=token, api_url=cci.api_url,
                         client_factory=lambda api_url: CircleCIClient(
                             token, api_url or cci.api_url, retry=fast_policy(attempts=ATTEMPTS), timeout=TIMEOUT))

    def invoke(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cli(*args)
        assert token not in out + err and "Traceback" not in out + err
        return code, out, err

    return invoke


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def tells_what_to_do(line: str) -> bool:
    return any(hint in line.lower() for hint in WHAT_TO_DO)


# -- 1. timeouts ----------------------------------------------------------------------------------


# A server silent before it answers ("hang"), or after sending the headers and half the body
# ("stall"): either way the client's read timeout ends the try.
SILENCES = ["hang", "stall"]


@pytest.mark.parametrize("silence", SILENCES)
def test_a_download_that_hangs_once_is_retried_and_completes(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path,
        tmp_path: Path, silence: str) -> None:
    job = compare_job(cci, approving_report)
    storage.inject("GET", r"^/blob/", silence, delay=HANG, times=2)
    cci.inject("GET", ARTIFACTS, silence, delay=HANG)  # the listing too
    result = fetch_report(quick, job, tmp_path / "dl")
    assert result.complete, result.problems()
    assert files_under(result.root) == files_under(approving_report)
    assert_nothing_half_written(tmp_path / "dl")


@pytest.mark.parametrize("silence", SILENCES)
def test_a_download_that_never_answers_fails_clearly_and_the_rerun_finishes(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path,
        tmp_path: Path, token: str, silence: str) -> None:
    job = compare_job(cci, approving_report)
    victim = blob_of(cci, job, "desktop.png")
    storage.inject("GET", rf"^/blob/{victim}$", silence, delay=HANG, times=100)
    started = time.monotonic()
    result = fetch_report(quick, job, tmp_path / "dl")
    assert time.monotonic() - started < ATTEMPTS * (TIMEOUT + 0.5) + 2  # bounded by the timeout, not HANG
    assert not result.complete and len(result.failed) == 1
    assert f"still failing after {ATTEMPTS} tries" in result.failed[0] and "Timeout" in result.failed[0]
    assert all(token not in p for p in result.problems())
    assert_nothing_half_written(tmp_path / "dl")
    assert verify_fetched(result.root, job) is not None

    storage.faults.clear()
    again = fetch_report(quick, job, tmp_path / "dl")
    assert again.complete and again.downloaded >= 1 and verify_fetched(again.root, job) is None


def test_an_api_that_never_answers_fails_clearly(cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path,
                                                tmp_path: Path, token: str) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "hang", delay=HANG, times=100)
    with pytest.raises(GaveUp) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert "list artifacts" in str(info.value) and "Timeout" in str(info.value)
    assert len(cci.find("GET", ARTIFACTS)) == ATTEMPTS
    assert not (tmp_path / "dl" / MANIFEST).exists() and temp_files(tmp_path / "dl") == []


def test_the_cli_says_one_line_when_the_api_never_answers(cci: FakeCircleCI, cli, approving_report: Path,  # type: ignore[no-untyped-def]
                                                         token: str) -> None:
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    cci.inject("GET", ARTIFACTS, "hang", delay=HANG, times=100)
    code, _out, err = cli("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    assert code == 1
    line = error_line(err)
    assert "list artifacts" in line and f"after {ATTEMPTS} tries" in line and tells_what_to_do(line)


# -- 2. connection resets mid-body ------------------------------------------------------------------


def test_connections_reset_mid_body_are_retried(cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient,
                                               approving_report: Path, tmp_path: Path) -> None:
    job = compare_job(cci, approving_report)
    storage.inject("GET", r"^/blob/", "reset", times=ATTEMPTS - 1)
    cci.inject("GET", ARTIFACTS, "reset", times=ATTEMPTS - 1)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert result.complete, result.problems()
    assert files_under(result.root) == files_under(approving_report)
    assert_nothing_half_written(tmp_path / "dl")


def test_a_download_always_reset_fails_clearly(cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient,
                                              approving_report: Path, tmp_path: Path, token: str) -> None:
    job = compare_job(cci, approving_report)
    victim = blob_of(cci, job, "mobile.png")
    storage.inject("GET", rf"^/blob/{victim}$", "reset", times=100)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert not result.complete and len(result.failed) >= 1
    assert all(f"after {ATTEMPTS} tries" in f and token not in f and tells_what_to_do(f) for f in result.failed)
    assert_nothing_half_written(tmp_path / "dl")
    assert not any(k.endswith("mobile.png") and victim in k for k in manifest_files(tmp_path / "dl"))
    assert verify_fetched(result.root, job) is not None


# -- 3. storms of 429 / 5xx -----------------------------------------------------------------------------


@pytest.mark.parametrize("status,headers", [(429, {"Retry-After": "0"}), (503, {}), (502, {})])
def test_a_storm_shorter_than_the_retry_bound_completes(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path, tmp_path: Path,
        status: int, headers: dict[str, str]) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "status", status=status, headers=headers, times=ATTEMPTS - 1)
    victim = blob_of(cci, job, "config.js")
    storage.inject("GET", rf"^/blob/{victim}$", "status", status=status, headers=headers, times=ATTEMPTS - 1)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert result.complete, result.problems()
    assert_nothing_half_written(tmp_path / "dl")


@pytest.mark.parametrize("status,headers", [(429, {"Retry-After": "0"}), (503, {}), (500, {})])
def test_a_storm_longer_than_the_retry_bound_fails_clearly(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path, tmp_path: Path,
        token: str, status: int, headers: dict[str, str]) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "status", status=status, headers=headers, times=ATTEMPTS)
    with pytest.raises(GaveUp) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert f"after {ATTEMPTS} tries" in str(info.value) and str(status) in str(info.value)
    assert len(cci.find("GET", ARTIFACTS)) == ATTEMPTS  # bounded: not one more

    # The same storm on one artifact: that file fails, the rest is kept, nothing half-written.
    cci.faults.clear()
    victim = blob_of(cci, job, "desktop.png")
    storage.inject("GET", rf"^/blob/{victim}$", "status", status=status, headers=headers, times=100)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert not result.complete and len(result.failed) == 1 and str(status) in result.failed[0]
    assert_nothing_half_written(tmp_path / "dl")


def test_a_retry_after_longer_than_we_wait_stops_at_once(cci: FakeCircleCI, quick: CircleCIClient,
                                                         approving_report: Path, tmp_path: Path,
                                                         token: str, sleeps: Sleeps) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "status", status=429, headers={"Retry-After": "3600"}, times=100)
    with pytest.raises(RateLimited) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert "Try again later" in str(info.value) and sleeps == []  # did not sit there for an hour


# -- 4. truncated bodies ------------------------------------------------------------------------------


def test_a_truncated_json_answer_is_retried(cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path,
                                           tmp_path: Path) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "truncate", times=ATTEMPTS - 1)
    assert fetch_report(quick, job, tmp_path / "dl").complete


def test_a_json_answer_always_truncated_fails_clearly(cci: FakeCircleCI, quick: CircleCIClient,
                                                      approving_report: Path, tmp_path: Path, token: str) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "truncate", times=100)
    with pytest.raises(GaveUp) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert "connection problem" in str(info.value)


def test_an_artifact_truncated_within_the_bound_completes_and_beyond_it_is_not_kept(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path,
        tmp_path: Path) -> None:
    job = compare_job(cci, approving_report)
    js = blob_of(cci, job, "index_bundle.js")
    png = blob_of(cci, job, "desktop.png")
    storage.inject("GET", rf"^/blob/{js}$", "truncate", times=ATTEMPTS - 1)
    storage.inject("GET", rf"^/blob/{png}$", "truncate", times=100)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert not result.complete and len(result.failed) == 1 and "received" in result.failed[0]
    assert (result.root / "html_report" / "index_bundle.js").read_bytes() == \
        (approving_report / "html_report" / "index_bundle.js").read_bytes()
    assert_nothing_half_written(tmp_path / "dl")


# -- 5. malformed JSON and JSON of the wrong shape ---------------------------------------------------------


@pytest.mark.parametrize("body,says", [
    (b"{not json", "not JSON"),
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b"", "not JSON"),
    (b'{"items": {"path": "x"}, "next_page_token": null}', "no `items` list"),
    (b'{"items": null}', "no `items` list"),
    (b'{"next_page_token": null}', "no `items` list"),
    (b"[]", "not a JSON object"),
    (b'"items"', "not a JSON object"),
    (b"null", "not a JSON object"),
])
def test_malformed_json_from_the_api_is_a_clear_error(cci: FakeCircleCI, quick: CircleCIClient,
                                                      approving_report: Path, tmp_path: Path, token: str,
                                                      body: bytes, says: str) -> None:
    job = compare_job(cci, approving_report)
    cci.inject("GET", ARTIFACTS, "body", status=200, body=body)
    with pytest.raises(CircleCIError) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert says in str(info.value) and "list artifacts" in str(info.value)
    assert not (tmp_path / "dl" / MANIFEST).exists()


def test_items_of_the_wrong_shape_are_skipped_not_trusted(cci: FakeCircleCI, quick: CircleCIClient,
                                                          approving_report: Path, tmp_path: Path) -> None:
    job = compare_job(cci, approving_report)
    junk: list[Any] = [None, 3, "app/backstop_data/html_report/config.js", [], {"path": 5, "url": "x"},
                       {"path": "app/backstop_data/html_report/config.js"}, {"url": "http://127.0.0.1:1/x"}]
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(junk, None))
    with pytest.raises(FetchError, match="no BackstopJS report"):
        fetch_report(quick, job, tmp_path / "dl")
    # Junk mixed with the real listing: the junk is ignored and the report arrives complete.
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(junk + listing(cci, job), None))
    assert fetch_report(quick, job, tmp_path / "dl").complete


def test_the_cli_says_one_line_on_malformed_json(cci: FakeCircleCI, cli, approving_report: Path) -> None:  # type: ignore[no-untyped-def]
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    cci.inject("GET", r"/workflow/[^/]+/job$", "body", status=200, body=b'{"items": "all of them"}')
    code, _out, err = cli("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    assert code == 1 and "no `items` list" in error_line(err) and tells_what_to_do(error_line(err))
    cci.inject("GET", ARTIFACTS, "body", status=200, body=b"{truncated")
    code, _out, err = cli("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    assert code == 1 and "not JSON" in error_line(err) and tells_what_to_do(error_line(err))


# Answers an approve reads on its way; each one malformed must stop it before any POST.
_APPROVE_READS = [
    ("GET", ARTIFACTS, b"{not json"),
    ("GET", ARTIFACTS, b'{"items": 7}'),
    ("GET", r"/workflow/[^/]+/job$", b"{not json"),
    ("GET", r"/workflow/[^/]+/job$", b'{"items": {"name": "hold-production"}}'),
    ("GET", r"/pipeline/[^/]+/workflow$", b"[1, 2]"),
    ("GET", r"/project/.+/pipeline$", b'{"items": "x"}'),
    ("GET", r"^/api/v2/me$", b"<html>login</html>"),
]


@pytest.mark.parametrize("method,where,body", _APPROVE_READS)
def test_malformed_json_never_leads_to_an_approval(
        cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path, tmp_path: Path, token: str,
        method: str, where: str, body: bytes) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    cci.inject(method, where, "body", status=200, body=body, times=100)
    try:
        result = actions.approve(quick, PROJECT, "v1.2.0", audit_log=tmp_path / "audit.jsonl",
                                 work_dir=tmp_path / "work")
    except ReviewerError as exc:  # a clear error (the CLI prints it as one line, exit 1)
        assert_clear(str(exc), token)
    else:
        assert not result.ok, result.message
        assert token not in result.message
    assert cci.find("POST", r"/approve/") == []
    assert cci.job(wf, "hold-production").status == "on_hold"


# -- 6. artifact lists that change between pages ---------------------------------------------------------


def test_a_page_token_that_loops_stops_clearly(cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path,
                                               tmp_path: Path, token: str) -> None:
    job = compare_job(cci, approving_report)
    items = listing(cci, job)
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(items[:2], "t1"))
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(items[2:4], "t2"))
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(items[:2], "t1"), times=100)  # back to page 2
    with pytest.raises(CircleCIError) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert "same page token twice" in str(info.value)
    assert len(cci.find("GET", ARTIFACTS)) == 3


def test_a_page_that_repeats_the_previous_one_is_not_downloaded_twice(
        cci: FakeCircleCI, storage: FakeStorage, quick: CircleCIClient, approving_report: Path,
        tmp_path: Path) -> None:
    job = compare_job(cci, approving_report)
    items = listing(cci, job)
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(items[:4], "t1"))
    # Page 2 repeats page 1 (one of them under another URL, as if re-uploaded) and then goes on.
    moved = dict(items[0], url=items[0]["url"].replace("/artifacts/", "/artifacts/0"))
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page([moved, *items[1:4], *items[4:6]], "t2"))
    cci.inject("GET", ARTIFACTS, "body", status=200, body=page(items[6:], None))
    result = fetch_report(quick, job, tmp_path / "dl")
    assert result.complete, result.problems()
    assert files_under(result.root) == files_under(approving_report)
    keys = [r.path.rsplit("/", 1)[-1] for r in storage.find("GET", r"^/blob/")]
    assert len(keys) == len(set(keys)) == len(items)  # each file once, from the first URL listed


def test_a_list_that_never_ends_is_bounded(cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    from fake_http import Reply

    import reviewer.circleci as circleci

    job = compare_job(cci, approving_report)
    items = listing(cci, job)
    calls: list[int] = []

    def endless(req: Any, a: dict[str, str]) -> Reply:  # a fresh token every time: no loop to spot
        calls.append(1)
        return Reply.json({"items": items[:2], "next_page_token": f"pg-{1000 + len(calls)}"})

    monkeypatch.setattr(cci, "op_artifacts", endless)
    with pytest.raises(CircleCIError) as info:
        fetch_report(quick, job, tmp_path / "dl")
    assert_clear(str(info.value), token)
    assert f"more than {circleci.MAX_PAGES} pages" in str(info.value) and len(calls) == circleci.MAX_PAGES


# -- 7. Ctrl-C in the middle of a real `reviewer fetch`, then running again -----------------------------------


def test_ctrl_c_mid_fetch_then_the_rerun_finishes(cci: FakeCircleCI, storage: FakeStorage, fixture_copy: Path,
                                                  tmp_path: Path, token: str) -> None:
    cci.add_release(SLUG, "v1.2.0", report=fixture_copy)
    storage.delay = 0.1  # each file takes a while: the fetch is surely still running at SIGINT
    env = {**os.environ, "CIRCLE_TOKEN": token, "CIRCLECI_API_URL": cci.api_url,
           "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("CIRCLECI_TOKEN", None)
    out = tmp_path / "dl"
    cmd = [sys.executable, "-m", "reviewer", "fetch", PROJECT, "--tag", "v1.2.0", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not list(out.rglob("*.png")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the fetch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    text = (stdout + stderr).decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and token not in text
    assert "interrupted" in text and "run the same command again" in text

    # Whatever is on disk: no temporary file is counted, nothing is called complete.
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["state"] != "complete"
    assert all(".part" not in rel for rel in manifest["files"])
    assert 0 < len(manifest["files"]) < len(files_under(fixture_copy))
    for p in temp_files(out):
        assert p.relative_to(out).as_posix() not in manifest["files"]
    for rel, entry in manifest["files"].items():
        assert (out / rel).stat().st_size == entry["size"]
    job = JobRef(SLUG, next(iter(cci.artifacts))[1])
    assert verify_fetched(out, job) is not None

    storage.delay = 0.0
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    text = (again.stdout + again.stderr).decode()
    assert again.returncode == 0, text
    assert "already complete" in text and "complete: reviewer analyze" in text and token not in text
    assert temp_files(out) == [] and verify_fetched(out, job) is None
    got = files_under(out / "backstop_data")
    want = files_under(fixture_copy)
    assert all(got[k] == want[k] for k in got)

    analyzed = subprocess.run([sys.executable, "-m", "reviewer", "analyze", str(out), "--out", str(tmp_path / "rv")],
                              cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert analyzed.returncode in (0, 3), (analyzed.stdout + analyzed.stderr).decode()
    assert (tmp_path / "rv").is_dir() and "Traceback" not in analyzed.stderr.decode()


# -- 8. disk full while writing a download ------------------------------------------------------------


def test_a_full_disk_fails_clearly_and_keeps_nothing_half_written(
        cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    job = compare_job(cci, approving_report)
    real_open = pathlib.Path.open

    class FullDisk(io.RawIOBase):
        """A file that takes a few bytes and then reports ENOSPC, like a filling disk."""

        def __init__(self, fh: Any) -> None:
            self.fh, self.room = fh, 100

        def write(self, data: Any) -> int:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return int(self.fh.write(data))

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

    def open_(self: Path, mode: str = "r", *args: Any, **kw: Any) -> Any:
        fh = real_open(self, mode, *args, **kw)
        if "w" in mode and ".part" in self.name and self.suffix == ".png":
            return FullDisk(fh)
        return fh

    monkeypatch.setattr(pathlib.Path, "open", open_)
    result = fetch_report(quick, job, tmp_path / "dl")
    assert not result.complete and len(result.failed) == 4  # the four images
    assert all("the disk is full" in f and "free space and run again" in f and token not in f
               for f in result.failed)
    assert not list((tmp_path / "dl").rglob("*.png"))  # neither under its name nor as a .part
    assert_nothing_half_written(tmp_path / "dl")
    assert verify_fetched(result.root, job) is not None

    monkeypatch.setattr(pathlib.Path, "open", real_open)  # space freed: the rerun finishes
    again = fetch_report(quick, job, tmp_path / "dl")
    assert again.complete and again.downloaded == 4
    assert files_under(again.root) == files_under(approving_report)


def test_a_full_disk_in_the_cli_is_one_line(cci: FakeCircleCI, cli, approving_report: Path,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cci.add_release(SLUG, "v1.2.0", report=approving_report)

    def full(self: Path, *args: Any, **kw: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_text", full)  # even the manifest cannot be written
    code, _out, err = cli("fetch", PROJECT, "--tag", "v1.2.0", "--out", "dl")
    line = error_line(err)
    assert code == 1 and "the disk is full" in line and "free space and run again" in line
    assert "unexpected" not in line


# -- 9. an approve whose POST times out --------------------------------------------------------------------


@pytest.mark.parametrize("acted", [True, False])
def test_an_approve_whose_post_times_out_is_checked_not_resent(
        cci: FakeCircleCI, quick: CircleCIClient, approving_report: Path, tmp_path: Path, token: str,
        acted: bool) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    # CircleCI takes longer than our timeout; it has (or has not) approved when we give up waiting.
    cci.inject("POST", r"/approve/", "hang_after" if acted else "hang", delay=HANG)
    result = actions.approve(quick, PROJECT, "v1.2.0", audit_log=tmp_path / "audit.jsonl",
                             work_dir=tmp_path / "work")
    assert len(cci.find("POST", r"/approve/")) == 1  # never re-sent
    assert token not in result.message
    if acted:
        assert result.ok and "shows the job approved" in result.message
        assert cci.job(wf, "hold-production").status == "success"
    else:
        assert not result.ok and "Nothing was re-sent" in result.message and "Timeout" in result.message
        assert cci.job(wf, "hold-production").status == "on_hold"
    assert json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])["outcome"] == \
        ("done" if acted else "unconfirmed")


def test_ctrl_c_while_the_approval_is_on_its_way_is_said_and_logged_and_the_rerun_sends_nothing(
        cci: FakeCircleCI, approving_report: Path, tmp_path: Path, token: str) -> None:
    """CircleCI has acted on the POST but not answered when the user presses Ctrl-C."""
    _p, wf = cci.add_release(SLUG, "v1.2.0", report=approving_report)
    cci.inject("POST", r"/approve/", "hang_after", delay=30)
    env = {**os.environ, "CIRCLE_TOKEN": token, "CIRCLECI_API_URL": cci.api_url,
           "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("CIRCLECI_TOKEN", None)
    log = tmp_path / "audit.jsonl"
    cmd = [sys.executable, "-m", "reviewer", "approve", PROJECT, "--tag", "v1.2.0", "--yes", "--audit-log", str(log)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not cci.find("POST", r"/approve/") and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None and cci.find("POST", r"/approve/"), "the approval was never sent"
    time.sleep(0.2)  # the server has applied it and is now silent
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    text = (stdout + stderr).decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and token not in text
    assert "may or may not have received it" in text and f"reviewer status {SLUG} --tag v1.2.0" in text
    assert json.loads(log.read_text().splitlines()[-1])["outcome"] == "interrupted"

    cci.faults.clear()
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    text = (again.stdout + again.stderr).decode()
    assert again.returncode == 0, text
    assert "already approved" in text and len(cci.find("POST", r"/approve/")) == 1
    assert cci.job(wf, "hold-production").status == "success"


def test_a_timed_out_cancel_is_not_resent(cci: FakeCircleCI, quick: CircleCIClient, tmp_path: Path) -> None:
    _p, wf = cci.add_release(SLUG, "v1.2.0")
    cci.inject("POST", r"/cancel$", "hang", delay=HANG)
    result = actions.hold(quick, PROJECT, "v1.2.0", reason="broken header", reject=True,
                          audit_log=tmp_path / "audit.jsonl")
    assert len(cci.find("POST", r"/cancel$")) == 1
    assert not result.ok and cci.job(wf, "hold-production").status == "on_hold"


def test_ctrl_c_while_a_rejection_is_on_its_way_is_said_and_logged(
        cci: FakeCircleCI, quick: CircleCIClient, tmp_path: Path, token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The interrupt arrives inside the cancel request (as reviewer's SIGINT handler raises it;
    the approve test above sends a real SIGINT to a real process)."""
    from reviewer.errors import Interrupted

    cci.add_release(SLUG, "v1.2.0")

    def interrupted(job_id: str) -> None:
        raise Interrupted()

    monkeypatch.setattr(quick, "cancel_job", interrupted)
    log = tmp_path / "audit.jsonl"
    with pytest.raises(Interrupted) as caught:
        actions.hold(quick, PROJECT, "v1.2.0", reason="broken header", reject=True, audit_log=log)
    message = str(caught.value)
    assert "may or may not have received it" in message and f"reviewer status {SLUG} --tag v1.2.0" in message
    assert token not in message and caught.value.exit_code == 130
    entry = json.loads(log.read_text().splitlines()[-1])
    assert (entry["action"], entry["outcome"]) == ("reject", "interrupted")


def test_the_http_error_hierarchy_is_what_the_cli_reports() -> None:
    # The CLI turns any ReviewerError into `error: <message>` (one line, exit code): these faults use it.
    assert issubclass(GaveUp, HttpError) and issubclass(CircleCIError, ReviewerError)
    assert issubclass(FetchError, ReviewerError)
