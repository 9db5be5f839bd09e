"""`reviewer fleet serve`: Approve clean sites / Accept group on the fleet page, against the local
CircleCI, under reviewer serve's rules (this machine's names only, same origin, session secret)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from circleci_env import fast_policy
from fake_circleci import FakeCircleCI
from fleet_sites import TAG, analysed_report, slug

from reviewer import audit
from reviewer.config import Settings
from reviewer.fleet.gather import FleetOptions
from reviewer.fleet.limiter import SharedLimiter
from reviewer.fleet.run import fleet_client, run_fleet
from reviewer.fleet.serve import make_fleet_server
from reviewer.serve import ENDPOINT, SECRET_HEADER, ReviewServer

pytest_plugins = ["circleci_fixtures"]
SITES = {"africa": "clean", "belgium": "theme", "canada": "theme"}


@pytest.fixture
def fleet_server(cci: FakeCircleCI, token: str, tmp_path: Path) -> Iterator[tuple[ReviewServer, dict[str, Any], Path]]:
    for seed, (name, kind) in enumerate(SITES.items()):
        cci.add_release(slug(name), TAG, report=analysed_report(tmp_path / "src" / name, kind, seed))
    out, log = tmp_path / "fleet", tmp_path / "audit.jsonl"
    client = fleet_client(token, cci.api_url, SharedLimiter(4), retry=fast_policy())
    run = run_fleet(client, list(SITES), FleetOptions(out=out, settings=Settings(workers=1)))
    server = make_fleet_server(out, client=client, audit_log=log).start()
    yield server, run.data, log
    server.close()
    client.close()


def _conn(server: ReviewServer) -> tuple[http.client.HTTPConnection, int]:
    port = server.httpd.server_address[1]
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30), port


def get(server: ReviewServer, path: str) -> tuple[int, bytes]:
    conn, port = _conn(server)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def post(server: ReviewServer, body: Any, *, secret: str | None, host: str | None = None) -> tuple[int, dict]:
    conn, port = _conn(server)
    headers = {"Content-Type": "application/json", "Host": host or f"127.0.0.1:{port}",
               "Origin": f"http://127.0.0.1:{port}"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    conn.request("POST", ENDPOINT, body=json.dumps(body).encode(), headers=headers)
    r = conn.getresponse()
    data = json.loads(r.read() or b"{}")
    conn.close()
    return r.status, data


def _approved(cci: FakeCircleCI) -> set[str]:
    return {wf.pipeline.slug.rsplit("planet4-", 1)[1] for wf in cci.all_workflows()
            if wf.pipeline.tag == TAG and cci.job(wf, "hold-production").status == "success"}


def test_fleet_page_buttons_act_like_fleet_approve(fleet_server, cci: FakeCircleCI, token: str) -> None:
    server, data, log = fleet_server
    secret = server.cfg.secret
    status, page = get(server, "/")
    assert status == 200 and b"Approve clean sites (1)" in page and b"Accept group" in page
    assert token.encode() not in page
    theme = data["groups"][0]
    assert sorted(theme["sites"]) == ["belgium", "canada"]
    status, png = get(server, "/images/" + theme["examples"][0]["test"])
    assert status == 200 and png.startswith(b"\x89PNG")
    assert get(server, "/images/../fleet.json")[0] == 404

    # Refused before anything happens: no secret, or a name that is not this machine's.
    assert post(server, {"action": "approve-clean"}, secret=None)[0] == 403
    assert post(server, {"action": "approve-clean"}, secret=secret, host="evil.example")[0] == 421
    assert post(server, {"action": "accept", "groups": ["../x"], "reason": "r"}, secret=secret)[0] == 400
    assert post(server, {"action": "approve"}, secret=secret)[0] == 400
    assert _approved(cci) == set() and cci.find("POST", r"/approve/") == []

    status, answer = post(server, {"action": "approve-clean"}, secret=secret)
    assert status == 200 and answer["ok"] and _approved(cci) == {"africa"}
    status, answer = post(server, {"action": "accept", "groups": [theme["id"]]}, secret=secret)
    assert not answer["ok"] and "reason" in answer["message"] and _approved(cci) == {"africa"}
    status, answer = post(server, {"action": "accept", "groups": [theme["id"]], "reason": "theme colour, inspected"},
                          secret=secret)
    assert answer["ok"] and _approved(cci) == set(SITES)
    assert {s["name"]: s["outcome"] for s in answer["sites"]} == {"belgium": "approved", "canada": "approved"}
    entries = audit.read(log)
    assert len(entries) == 3 and [e["groups"] for e in entries[1:]] == [[theme["id"]]] * 2
    # Pressing again approves nothing twice.
    status, answer = post(server, {"action": "approve-clean"}, secret=secret)
    assert answer["ok"] and len(audit.read(log)) == 3 and len(cci.find("POST", r"/approve/")) == 3
