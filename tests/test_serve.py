"""`reviewer serve`: the review page with Approve / Hold / Reject, against the local CircleCI.

What is held: the buttons call reviewer.actions (same checks, same audit line) and really
change the release in the (fake) CircleCI; a reason is required where the CLI requires one;
the token never reaches the page; a request without the session secret, from another
origin, or for another host name is refused and changes nothing; a page on another site
cannot act; a local report shows the page with the buttons disabled, saying why.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launch_chromium, open_page
from circleci_env import PROJECT, SLUG
from fake_circleci import FakeCircleCI

from reviewer import audit
from reviewer.circleci import CircleCIClient
from reviewer.config import Settings
from reviewer.errors import UsageError
from reviewer.review_state import STATE_FILE
from reviewer.serve import ENDPOINT, SECRET_HEADER, STATE_ENDPOINT, ReviewServer, allowed_hosts, make_server

pytest_plugins = ["circleci_fixtures"]

@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch_chromium()



@pytest.fixture
def serving(cci: FakeCircleCI, client: CircleCIClient, tmp_path: Path) -> Iterator[Any]:
    """serve(report, tag) -> (server, workflow, audit log): a release in the fake CircleCI
    with that report as its compare job's artifacts, served as `reviewer serve` does."""
    servers: list[ReviewServer] = []

    def serve(report: Path, tag: str) -> tuple[ReviewServer, Any, Path]:
        _p, wf = cci.add_release(SLUG, tag, report=report, body="New donation block")
        log = tmp_path / "audit.jsonl"
        server = make_server(PROJECT, tag=tag, settings=Settings(), out=tmp_path / tag, audit_log=log,
                             client=client).start()
        servers.append(server)
        return server, wf, log

    yield serve
    for s in servers:
        s.close()


def post(server: ReviewServer, body: Any, *, secret: str | None = None, origin: str | None = "same",
         host: str | None = None, ctype: str = "application/json", path: str = ENDPOINT) -> tuple[int, dict[str, Any]]:
    port = server.httpd.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": ctype, "Host": host or f"127.0.0.1:{port}"}
    if origin == "same":
        headers["Origin"] = f"http://127.0.0.1:{port}"
    elif origin is not None:
        headers["Origin"] = origin
    if secret is not None:
        headers[SECRET_HEADER] = secret
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    r = conn.getresponse()
    data = json.loads(r.read() or b"{}")
    conn.close()
    return r.status, data


def get(server: ReviewServer, path: str, host: str | None = None) -> tuple[int, bytes]:
    port = server.httpd.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)  # the path is sent exactly as given: no normalising
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def act(page: Any, action: str, reason: str | None) -> str:
    page.click(f"#action-{action}")
    page.wait_for_selector("#action-dialog")
    if reason is not None:
        page.fill("#action-reason", reason)
    page.click("#action-confirm")
    page.wait_for_function("() => { const r = document.getElementById('action-result');"
                           " return r && !r.hidden && r.textContent !== 'Sending…'; }", timeout=15_000)
    return str(page.text_content("#action-result"))


@pytest.mark.browser
def test_approve_from_the_page_approves_the_release_in_circleci(chromium, serving, cci, token, approving_report):
    server, wf, log = serving(approving_report, "v1.2.0")
    page, w = open_page(chromium, server.url)
    assert token not in page.content()
    assert page.is_enabled("#action-approve") and "v1.2.0" in page.text_content("#actions")
    text = act(page, "approve", None)  # the analysis approves: no reason needed
    assert "approved hold-production of v1.2.0" in text
    assert cci.job(wf, "hold-production").status == "success"
    (line,) = audit.read(log)
    assert line["action"] == "approve" and line["tag"] == "v1.2.0" and line["outcome"] == "done"
    assert line["digest"] == page.evaluate("JSON.parse(document.getElementById('review-data').textContent).digest")
    assert '"action": "approve"' in text  # the audit line is shown
    assert w.page_errors == [] and w.console_errors == []
    assert all(u.startswith(server.url) for u in w.requests)


@pytest.mark.browser
def test_hold_and_reject_from_the_page_need_a_reason_and_do_what_the_cli_does(chromium, serving, cci,
                                                                              holding_report):
    server, wf, log = serving(holding_report, "v1.3.0")
    page, _w = open_page(chromium, server.url)
    assert "Give a reason" in act(page, "hold", None)  # nothing is sent without a reason
    assert not log.exists()
    page.keyboard.press("Escape")
    text = act(page, "hold", "hero image broken on mobile")
    assert "hold recorded" in text and cci.job(wf, "hold-production").status == "on_hold"
    assert cci.find("POST", r".") == []  # a hold sends nothing to CircleCI
    page.click("#action-dialog .btn:not(#action-confirm)")  # Cancel
    # approving a release the analysis holds asks for a reason and says it overrides the review
    page.click("#action-approve")
    assert "says HOLD" in page.text_content("#action-dialog")
    page.click("#action-confirm")
    assert "Give a reason" in page.text_content("#action-result")
    page.keyboard.press("Escape")
    text = act(page, "reject", "the donate button turned red")
    assert "rejected" in text and cci.job(wf, "hold-production").status == "canceled"
    lines = audit.read(log)
    assert [entry["action"] for entry in lines] == ["hold", "reject"]
    assert lines[0]["reason"] == "hero image broken on mobile" and lines[1]["reason"] == "the donate button turned red"


def test_same_checks_as_the_cli_an_approval_the_analysis_holds_is_refused(serving, cci, holding_report):
    server, wf, _log = serving(holding_report, "v1.4.0")
    status, answer = post(server, {"action": "approve"}, secret=server.cfg.secret)
    assert status == 200 and answer["ok"] is False and answer["refused"] is True
    assert "analysis" in answer["message"] and cci.job(wf, "hold-production").status == "on_hold"
    assert [c["name"] for c in answer["checks"] if not c["ok"]] == ["analysis"]
    assert cci.find("POST", r"/approve/") == []


def test_requests_without_the_session_secret_or_from_elsewhere_are_refused(serving, cci, token, approving_report):
    server, wf, log = serving(approving_report, "v1.5.0")
    port = server.httpd.server_address[1]
    secret = server.cfg.secret
    body = {"action": "approve"}
    assert post(server, body)[0] == 403  # no secret
    assert post(server, body, secret="guess")[0] == 403
    assert post(server, body, secret=secret, origin="http://evil.example")[0] == 403
    assert post(server, body, secret=secret, origin="null")[0] == 403
    assert post(server, body, secret=secret, origin=None)[0] == 403  # no Origin at all
    assert post(server, body, secret=secret, ctype="text/plain")[0] == 403  # what a cross-site form can send
    # DNS rebinding: a request for another host name is refused, even the page itself
    evil = f"evil.example:{port}"
    assert post(server, body, secret=secret, host=evil, origin=f"http://{evil}")[0] == 421
    status, page = get(server, "/", host=evil)
    assert status == 421 and secret.encode() not in page
    # no way out of the images folder
    for path in ("/images/../review.json", "/images/%2e%2e/review.json", "/images/../../../../etc/passwd",
                 "/images/p0000/../../review.json", "/images/p0000/test.png/"):
        assert get(server, path)[0] == 404, path
    assert cci.find("POST", r".") == [] and not log.exists()
    assert cci.job(wf, "hold-production").status == "on_hold"
    # the page and its answers never hold the token
    status, page = get(server, "/")
    assert status == 200 and token.encode() not in page and secret.encode() in page
    ok, answer = post(server, {"action": "hold", "reason": "x"}, secret=secret)
    assert ok == 200 and answer["ok"] and token not in json.dumps(answer)
    assert post(server, {"action": "deploy"}, secret=secret)[0] == 400


@pytest.mark.browser
def test_a_page_on_another_site_cannot_act(chromium, serving, cci, approving_report, tmp_path):
    server, wf, _log = serving(approving_report, "v1.6.0")
    seen: list[str] = []
    server.cfg.log = seen.append
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(f"""<!doctype html><title>cat pictures</title>
<form id=f method=POST action="{server.url}api/action" enctype="text/plain">
<input name='{{"action":"approve","x":"' value='"}}'></form>
<script>
fetch("{server.url}api/action", {{method: "POST", mode: "no-cors", body: '{{"action":"approve"}}'}}).catch(() => {{}});
fetch("{server.url}api/action", {{method: "POST", headers: {{"Content-Type": "application/json",
  "X-Reviewer-Session": "guess"}}, body: '{{"action":"approve"}}'}}).catch(() => {{}});
setTimeout(() => document.getElementById("f").submit(), 300);
</script>""")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(evil))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        page.wait_for_timeout(1200)
        context.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert cci.find("POST", r".") == [] and cci.job(wf, "hold-production").status == "on_hold"
    refused = [line for line in seen if '"POST /api/action' in line and " 403 " in line]
    assert len(refused) >= 2, seen  # the attempts did arrive, and were refused


@pytest.mark.browser
def test_a_local_report_is_shown_with_the_buttons_disabled_and_says_why(chromium, fixture_review):
    _review, out = fixture_review
    server = make_server(str(out), settings=Settings(), audit_log=out / "audit.jsonl").start()
    try:
        page, w = open_page(chromium, server.url)
        for action in ("approve", "hold", "reject"):
            assert page.is_disabled(f"#action-{action}")
        assert "No CircleCI release to act on" in (page.get_attribute("#action-approve", "title") or "")
        assert page.locator("#list .row").count() == 24  # the same page as from disk
        imgs = page.eval_on_selector_all("#viewer img.layer", "els => els.map(e => e.complete && e.naturalWidth)")
        assert imgs and all(imgs)
        assert w.page_errors == [] and w.console_errors == [] and page.evaluate("window.__csp") == []
        status, answer = post(server, {"action": "hold", "reason": "x"}, secret=server.cfg.secret)
        assert status == 409 and "no CircleCI release" in answer["message"]
    finally:
        server.close()


def test_listening_beyond_this_machine_needs_allow_host():
    with pytest.raises(UsageError, match="--allow-host"):
        allowed_hosts("0.0.0.0")
    assert "review.example" in allowed_hosts("0.0.0.0", ("Review.Example",))
    assert "127.0.0.1" in allowed_hosts("127.0.0.1") and "evil.example" not in allowed_hosts("127.0.0.1")


def test_serve_needs_a_report_or_a_tag(tmp_path):
    with pytest.raises(UsageError, match="--tag"):
        make_server("planet4-nowhere", settings=Settings(), audit_log=tmp_path / "a.jsonl")


def test_the_serve_command_serves_until_interrupted(fixture_review):
    import os
    import signal
    import subprocess
    import sys

    _review, out = fixture_review
    proc = subprocess.Popen([sys.executable, "-m", "reviewer", "serve", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("review page: http://127.0.0.1:"), line
        url = line.split()[2]
        host, port = url.split("/")[2].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 200 and b'id="review-data"' in r.read()
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    assert code == 0


def test_the_log_shows_actions_and_refusals_not_every_image(fixture_review):
    out = fixture_review[1] if isinstance(fixture_review, tuple) else fixture_review
    lines: list[str] = []
    server = make_server(str(out), settings=Settings(), audit_log=out / "audit.jsonl", log=lines.append).start()
    try:
        images = sorted((out / "images").rglob("*.png"))[:5]
        for img in images:
            assert get(server, "/images/" + img.relative_to(out / "images").as_posix())[0] == 200
        assert get(server, "/")[0] == 200
        assert lines == []
        assert get(server, "/images/no-such.png")[0] == 404
        status, _ = post(server, {"action": "approve"})  # no session secret: refused
        assert status == 403
    finally:
        server.close()
    assert len(lines) == 2 and " 404 " in lines[0] and " 403 " in lines[1], lines


def test_review_marks_follow_the_same_rules_as_the_actions_and_needs_work_blocks_approve(serving, cci,
                                                                                        approving_report):
    server, wf, log = serving(approving_report, "v1.7.0")
    port = server.httpd.server_address[1]
    store = server.cfg.state
    assert store is not None
    state_file = server.cfg.review_json.parent / STATE_FILE
    key = next(iter(store.keys))
    mark = {"digest": store.digest, "pair": key, "state": "needs-work"}
    secret = server.cfg.secret
    # the same secret / origin / Host rules as Approve and Hold: refused, nothing written
    assert post(server, mark, path=STATE_ENDPOINT)[0] == 403
    assert post(server, mark, secret="guess", path=STATE_ENDPOINT)[0] == 403
    assert post(server, mark, secret=secret, origin="http://evil.example", path=STATE_ENDPOINT)[0] == 403
    assert post(server, mark, secret=secret, origin=None, path=STATE_ENDPOINT)[0] == 403
    assert post(server, mark, secret=secret, ctype="text/plain", path=STATE_ENDPOINT)[0] == 403
    evil = f"evil.example:{port}"
    assert post(server, mark, secret=secret, host=evil, origin=f"http://{evil}", path=STATE_ENDPOINT)[0] == 421
    assert get(server, STATE_ENDPOINT, host=evil)[0] == 421
    assert not state_file.exists()
    # a page of another analysis, an unknown pair or state: refused with what to do
    status, answer = post(server, {**mark, "digest": "0" * 64}, secret=secret, path=STATE_ENDPOINT)
    assert status == 409 and "reload the page" in answer["message"]
    assert post(server, {**mark, "pair": "../review.json"}, secret=secret, path=STATE_ENDPOINT)[0] == 400
    assert post(server, {**mark, "state": "approved"}, secret=secret, path=STATE_ENDPOINT)[0] == 400
    assert not state_file.exists()
    # a good mark is kept next to review.json and given back to whoever asks
    status, answer = post(server, mark, secret=secret, path=STATE_ENDPOINT)
    assert status == 200 and answer["pairs"] == {key: "needs-work"}
    on_disk = json.loads(state_file.read_text())
    assert on_disk["digest"] == store.digest and on_disk["pairs"][key]["state"] == "needs-work"
    status, body = get(server, STATE_ENDPOINT)
    assert status == 200 and json.loads(body)["pairs"] == {key: "needs-work"}
    # while a pair needs work, Approve is refused with the reason, and nothing reaches CircleCI
    status, answer = post(server, {"action": "approve"}, secret=secret)
    assert status == 200 and answer["ok"] is False and answer["refused"] and "needs work" in answer["message"]
    assert "Home [" in answer["message"]
    assert cci.find("POST", r".") == [] and cci.job(wf, "hold-production").status == "on_hold" and not log.exists()
    # cleared: Approve goes through its usual checks again
    assert post(server, {**mark, "state": None}, secret=secret, path=STATE_ENDPOINT)[1]["pairs"] == {}
    status, answer = post(server, {"action": "approve"}, secret=secret)
    assert status == 200 and answer["ok"] is True, answer
    assert cci.job(wf, "hold-production").status == "success"


@pytest.mark.browser
def test_review_marks_made_on_the_served_page_are_shown_to_the_next_reviewer(chromium, serving, cci,
                                                                             holding_report):
    server, _wf, log = serving(holding_report, "v1.8.0")
    state_file = server.cfg.review_json.parent / STATE_FILE
    first, w1 = open_page(chromium, server.url)
    assert first.text_content("#review-progress") == "reviewed 0/1"
    first.keyboard.press("w")  # the changed pair, selected on opening
    first.wait_for_function("() => document.getElementById('review-progress').textContent.includes('needs work')")
    for _ in range(50):
        if state_file.exists():
            break
        first.wait_for_timeout(100)
    (mark,) = json.loads(state_file.read_text())["pairs"].values()
    assert mark["state"] == "needs-work"
    # a colleague opening the page sees the mark, in the header and on the pair
    second, w2 = open_page(chromium, server.url)
    second.wait_for_function("() => document.getElementById('review-progress').textContent.includes('needs work')")
    assert second.text_content("#review-progress") == "reviewed 1/1 · 1 needs work"
    assert second.get_attribute("#list .row.changed", "data-review") == "needs-work"
    assert second.get_attribute("#mark-needs-work", "aria-pressed") == "true"
    # and cannot approve: the dialog says why before, the server refuses with the reason
    text = act(second, "approve", "looked fine to me")
    assert "needs work" in second.text_content("#needs-work-notice")
    assert "needs work" in text and cci.find("POST", r".") == [] and not log.exists()
    second.keyboard.press("Escape")
    # accepting it instead replaces the mark for everyone
    second.keyboard.press("a")
    second.wait_for_selector('#list .row.changed[data-review="accepted"]')
    for _ in range(50):
        if "accepted" in state_file.read_text():
            break
        second.wait_for_timeout(100)
    assert server.cfg.state is not None and server.cfg.state.approve_blocker() is None
    for page, w in ((first, w1), (second, w2)):
        assert w.page_errors == [] and w.console_errors == [] and page.evaluate("window.__csp") == []
