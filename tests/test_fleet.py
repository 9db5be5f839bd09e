"""`reviewer fleet` end to end, against the local CircleCI (spec-validated): 49 projects in every
state of issue 12, the theme change analysed from real screenshots by the real `reviewer ci`.

Done means: fleet completes through a 429 storm; every site gets the right line; the theme
change shared by 40 sites is one group of 40; `approve --clean` approves exactly the clean and
noise-only sites; `--accept` of the theme group then approves the 40 and nothing else; a
rerun approves nothing twice.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from circleci_env import Sleeps, fast_policy, main_invoker
from fake_circleci import FakeCircleCI
from fleet_sites import STATES, TAG, THEME_SITES, build_reports, populate, slug

from reviewer import audit
from reviewer.fleet.limiter import SharedLimiter
from reviewer.fleet.run import fleet_client

pytest_plugins = ["circleci_fixtures"]

EXPECTED_STATUS = {"clean": "clean", "noise": "noise", "regression": "changes", "hold-marker": "held",
                   "compare-running": "waiting", "no-release": "no-release", "404": "error", "429-storm": "clean",
                   "theme": "changes"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_reports(tmp_path_factory.mktemp("fleet-reports"))


Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def fleet_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cci: FakeCircleCI,
              token: str) -> tuple[Invoke, list[SharedLimiter]]:
    from reviewer.cli import fleet_cmds

    limiters: list[SharedLimiter] = []

    def client(api_url: str | None, limiter: SharedLimiter):  # type: ignore[no-untyped-def]
        limiters.append(limiter)
        return fleet_client(token, cci.api_url, limiter, retry=fast_policy(Sleeps()))

    monkeypatch.setenv("CIRCLE_TOKEN", token)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(fleet_cmds, "_client", client)
    return main_invoker(monkeypatch, capsys), limiters


def _lines(text: str, start: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(start))


def _hold_states(cci: FakeCircleCI) -> dict[str, str]:
    states = {}
    for wf in cci.all_workflows():
        if wf.pipeline.tag == TAG and wf.name == "production":
            states[wf.pipeline.slug.rsplit("planet4-", 1)[1]] = cci.job(wf, "hold-production").status
    return states


def test_fleet_of_49_sites_end_to_end(cci: FakeCircleCI, storage, token: str, reports: dict[str, Path],
                                      fleet_cli: tuple[Invoke, list[SharedLimiter]], tmp_path: Path) -> None:
    invoke, limiters = fleet_cli
    populate(cci, reports)
    # A 429 storm: planet4-storm's pipelines are rate limited twice, then the next requests of the
    # run, whichever sites they are for (never more than the client's tries for one request).
    cci.inject("GET", r"^/api/v2/project/gh/greenpeace/planet4-storm/pipeline$", "status", status=429,
               headers={"Retry-After": "1"}, times=2)
    cci.inject("GET", r"^/api/v2/project/", "status", status=429, headers={"Retry-After": "1"}, times=2)
    sites_txt = tmp_path / "sites.txt"
    sites_txt.write_text("# planet4-base sites.txt\n" + "\n".join(STATES) + "\n")
    out, log = tmp_path / "fleet", tmp_path / "audit.jsonl"

    code, stdout, err = invoke("fleet", "--sites", str(sites_txt), "-o", str(out), "-j", "8")
    assert code == 1, stdout  # the 404 project is a failed site; every other site is reviewed
    assert token not in stdout + err
    assert not any(token in (out / name).read_text() for name in ("fleet.json", "fleet.md", "fleet.html"))
    data = json.loads((out / "fleet.json").read_text())
    lines = {s["name"]: s for s in data["sites"]}
    assert list(lines) == list(STATES)
    assert {n: s["status"] for n, s in lines.items()} == {n: EXPECTED_STATUS[st] for n, st in STATES.items()}
    assert "404" in lines["ghost"]["error"] and "personal API token" in lines["ghost"]["error"]
    assert "no release waiting" in lines["denmark"]["error"]
    assert lines["chile"]["decision"] == "hold" and "[HOLD]" in json.dumps(lines["chile"]["checks"])
    assert lines["brasil"]["source"] == "local"  # no review.json stored: analysed here
    assert {lines[n]["source"] for n in THEME_SITES} == {"artifact"}
    assert not any("source.json" in note for n in THEME_SITES for note in lines[n]["notes"])  # reviewer ci wrote it
    assert data["rate_limit"]["pauses"] == 4 and limiters[0].waited > 0  # every site waited, none failed

    # The theme change: one group of exactly the 40 sites; the regression is not in it.
    theme = data["groups"][0]
    assert theme["kind"] == "colour" and sorted(theme["sites"]) == sorted(THEME_SITES)
    assert all(theme["id"] in lines[n]["groups"] for n in THEME_SITES)
    assert theme["id"] not in lines["brasil"]["groups"] and lines["brasil"]["groups"]
    assert sum(1 for g in data["groups"] if set(g["sites"]) & set(THEME_SITES)) == 1
    # Its examples are real crops next to the page, side by side.
    example = theme["examples"][0]
    assert (out / example["reference"]).is_file() and (out / example["test"]).is_file()
    html = (out / "fleet.html").read_text()
    assert html.count('<tr class="site"') == 49 and f'data-group="{theme["id"]}"' in html
    md = (out / "fleet.md").read_text()
    assert len(md) < 65_536 and theme["id"] in md

    # --dry-run sends nothing.
    code, stdout, _ = invoke("fleet", "approve", "--clean", "--dry-run", "--from", str(out), "--audit-log", str(log))
    assert code == 0 and _lines(stdout, "would approve ") == 4
    assert cci.find("POST", r"/approve/") == [] and not log.exists()

    # --clean: exactly the clean and noise-only sites.
    code, stdout, _ = invoke("fleet", "approve", "--clean", "--from", str(out), "--audit-log", str(log))
    assert code == 0, stdout
    approved = {n for n, st in _hold_states(cci).items() if st == "success"}
    assert approved == {"africa", "aotearoa", "argentina", "storm"}
    entries = audit.read(log)
    assert len(entries) == 4 and all(e["fleet"] is True and e["groups"] == [] for e in entries)
    assert {e["digest"] for e in entries} == {lines[n]["digest"] for n in approved}

    # --accept needs a reason and a known group.
    code, _, err = invoke("fleet", "approve", "--accept", theme["id"], "--from", str(out))
    assert code == 2 and "--reason" in err
    code, _, err = invoke("fleet", "approve", "--accept", "colour-nosuch", "--reason", "x", "--from", str(out))
    assert code == 2 and "no such group" in err

    # --accept of the theme group: the 40, and nothing else (not the regression, not [HOLD]).
    code, stdout, _ = invoke("fleet", "approve", "--accept", theme["id"], "--reason", "new button colour of the "
                             "master theme, inspected", "--from", str(out), "--audit-log", str(log))
    assert code == 0, stdout
    approved = {n for n, st in _hold_states(cci).items() if st == "success"}
    assert approved == {"africa", "aotearoa", "argentina", "storm", *THEME_SITES}
    new = audit.read(log)[4:]
    assert len(new) == 40 and all(e["groups"] == [theme["id"]] and theme["id"] in e["reason"] and e["forced"]
                                  for e in new)
    assert _hold_states(cci)["chile"] == "on_hold" and _hold_states(cci)["brasil"] == "on_hold"

    # A rerun approves nothing twice.
    posts = len(cci.find("POST", r"/approve/"))
    assert posts == 44
    code, stdout, _ = invoke("fleet", "approve", "--clean", "--accept", theme["id"], "--reason", "again", "--from",
                             str(out), "--audit-log", str(log))
    assert code == 0 and _lines(stdout, "already approved ") == 44
    assert len(cci.find("POST", r"/approve/")) == posts and len(audit.read(log)) == 44

    # A new fleet run shows them approved.
    code, stdout, _ = invoke("fleet", *STATES, "-o", str(tmp_path / "again"))
    again = json.loads((tmp_path / "again" / "fleet.json").read_text())
    assert sum(1 for s in again["sites"] if s["status"] == "approved") == 44
    assert storage.saw(token) == []


def test_a_tampered_review_json_is_not_trusted_and_the_site_is_analysed_here(
        cci: FakeCircleCI, token: str, reports: dict[str, Path], tmp_path: Path) -> None:
    from reviewer.fleet.gather import FleetOptions, gather_site

    root = reports["belgium"]
    forged = tmp_path / "forged" / "backstop_data"
    import shutil

    shutil.copytree(root, forged)
    review = json.loads((forged / "reviewer" / "review.json").read_text())
    review["decision"] = {"action": "approve", "reasons": []}
    (forged / "reviewer" / "review.json").write_text(json.dumps(review))
    cci.add_release(slug("belgium"), TAG, report=forged)
    with fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy()) as client:
        site = gather_site(client, "belgium", FleetOptions(out=tmp_path / "fleet"))
        assert site.source == "local" and site.facts.decision == "hold"
        assert any("own digest" in n for n in site.notes)
        site = gather_site(client, "belgium", FleetOptions(out=tmp_path / "fleet2", local_fallback=False))
        assert site.facts.decision is None and "own digest" in (site.report_problem or "")


def test_an_unreadable_review_json_means_the_site_is_analysed_here(
        cci: FakeCircleCI, token: str, reports: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from reviewer.fleet.gather import FleetOptions, gather_site

    broken = tmp_path / "broken" / "backstop_data"
    shutil.copytree(reports["canada"], broken)
    (broken / "reviewer" / "review.json").write_text('{"schema": 1, "pairs": [')
    cci.add_release(slug("canada"), TAG, report=broken)
    with fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy()) as client:
        site = gather_site(client, "canada", FleetOptions(out=tmp_path / "fleet"))
    assert site.facts.error is None and site.source == "local" and site.facts.decision == "hold"
    assert any("cannot be used" in n for n in site.notes)
    assert [i.kind for i in site.items] == ["colour"] and site.items[0].fingerprint is not None


def test_a_compare_job_that_stored_no_report_is_that_sites_line(cci: FakeCircleCI, token: str,
                                                                tmp_path: Path) -> None:
    from reviewer.fleet.gather import FleetOptions, gather_site
    from reviewer.fleet.group import site_status

    cci.add_release(slug("france"), TAG, report={"app/backstop_data/notes.txt": b"BackstopJS crashed"})
    with fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy()) as client:
        site = gather_site(client, "france", FleetOptions(out=tmp_path / "fleet"))
    assert site_status(site.facts) == "blocked"
    assert "no BackstopJS report" in (site.report_problem or "")


def test_which_release_newest_waiting_or_tag_or_since(cci: FakeCircleCI, token: str, tmp_path: Path) -> None:
    from reviewer.fleet.gather import FleetOptions, find_site_release, gather_site
    from reviewer.fleet.group import site_status
    from reviewer.release import ReleaseNotFound

    s = slug("peru")
    cci.add_release(s, "v2.29.0", compare="success", hold="on_hold")  # never approved, superseded
    cci.add_release(s, "v2.30.0", compare="success", hold="success")  # pipeline 2: in production
    cci.add_pipeline(s, None, branch="develop")
    cci.add_release(s, TAG, compare="running")  # pipeline 4, created 2025-10-01T13:00
    with fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy()) as client:
        assert find_site_release(client, s).tag == TAG
        assert find_site_release(client, s, since="2025-10-01T12:30").tag == TAG
        with pytest.raises(ReleaseNotFound, match="since 2025-10-01T13:30"):
            find_site_release(client, s, since="2025-10-01T13:30")
        assert find_site_release(client, s, tag="v2.29.0").tag == "v2.29.0"
        old = gather_site(client, "peru", FleetOptions(out=tmp_path / "f", tag="v2.30.0"))
        assert site_status(old.facts) == "approved"
        missing = gather_site(client, "peru", FleetOptions(out=tmp_path / "f", tag="v9.9.9"))
        assert site_status(missing.facts) == "no-release" and "v9.9.9" in (missing.facts.error or "")
    # Once the newest release is approved, an older one still on hold is not offered instead.
    wf = next(w for w in cci.all_workflows() if w.pipeline.tag == TAG)
    cci.job(wf, "hold-production").status = "success"
    with fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy()) as client:
        assert find_site_release(client, s).tag == TAG
