"""One way from a release to a review: `reviewer review`, `reviewer serve` and `approve` all fetch,
verify and analyse through reviewer.release_review, so none shows what another would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from circleci_env import PROJECT, SLUG, cli_runner, fast_policy
from fake_circleci import FakeCircleCI

from reviewer.circleci import CircleCIClient, client_from_env
from reviewer.config import Settings
from reviewer.release import find_release
from reviewer.release_review import Progress, review_release
from reviewer.serve import make_server
from reviewer.sources.circleci_fetch import FetchError

pytest_plugins = ["circleci_fixtures"]


def tamper_after_download(root: Path) -> Progress:
    """A download progress hook that, when the last file arrives, rewrites an image that was
    already downloaded and recorded: what a disk, a sync tool or a person could do between the
    fetch and the analysis."""
    def download(done: int, total: int, _bytes: int) -> None:
        if total and done == total:
            victims = sorted(root.rglob("bitmaps_test/**/*.png"))
            if victims:
                victims[0].write_bytes(victims[0].read_bytes() + b"changed")
    return Progress(download=download)


def test_a_download_changed_before_its_analysis_is_never_reviewed(
        cci: FakeCircleCI, client: CircleCIClient, approving_report: Path, tmp_path: Path) -> None:
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    release = find_release(client, SLUG, tag="v1.2.0")
    work = tmp_path / "work"
    with pytest.raises(FetchError, match=r"changed or disappeared since it was fetched.*run the same command again"):
        review_release(client, release, Settings(), work_dir=work, progress=tamper_after_download(work))
    assert not (work / "review" / "review.json").exists()
    # Run again: the changed file is downloaded again, verified, and the review is written.
    rr = review_release(client, release, Settings(), work_dir=work)
    assert rr.review.decision.action == "approve" and rr.incomplete is None
    assert (rr.out_dir / "review.json").is_file()


def test_missing_images_are_reviewed_as_errors_but_never_approved(
        cci: FakeCircleCI, client: CircleCIClient, approving_report: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, token: str, capsys: pytest.CaptureFixture[str]) -> None:
    (approving_report / "bitmaps_reference" / "planet4_Home_0_document_1_desktop.png").unlink()
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    rr = review_release(client, find_release(client, SLUG, tag="v1.2.0"), Settings(), work_dir=tmp_path / "w")
    assert rr.review.decision.action == "hold"
    assert rr.incomplete and "not among the job's artifacts" in rr.incomplete
    assert any(rp.analysis.verdict.value == "error" for rp in rr.review.ranked)

    monkeypatch.chdir(tmp_path)
    invoke = cli_runner(monkeypatch, capsys, token=token, api_url=cci.api_url,
                        client_factory=lambda api_url: client_from_env(api_url, retry=fast_policy()))
    code, out, _err = invoke("review", PROJECT, "--tag", "v1.2.0")
    assert code == 3 and "the report is incomplete" in out and "Decision: HOLD" in out


def test_serve_shows_only_a_verified_download(cci: FakeCircleCI, client: CircleCIClient, approving_report: Path,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cci.add_release(SLUG, "v1.2.0", report=approving_report)
    work = tmp_path / "serve"
    import reviewer.release_review as service

    real_fetch = service.fetch_release

    def fetch_then_tamper(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_fetch(*args, **kwargs)
        victim = sorted(result.root.rglob("bitmaps_reference/*.png"))[0]
        victim.write_bytes(victim.read_bytes() + b"x")
        return result

    monkeypatch.setattr(service, "fetch_release", fetch_then_tamper)
    with pytest.raises(FetchError, match="changed or disappeared"):
        make_server(PROJECT, tag="v1.2.0", settings=Settings(), out=work, audit_log=tmp_path / "audit.jsonl",
                    client=client)
