"""`reviewer serve`: the review page on 127.0.0.1, with Approve / Hold / Reject buttons.

The buttons call the same functions as `reviewer approve` and `reviewer hold [--reject]`
(reviewer.actions), with the same safety checks and the same audit line. The CircleCI token
stays in this process: the page only ever holds a per-session secret.

Why a page on localhost cannot be driven by another site:
- every request must carry a Host header naming this machine (127.0.0.1, localhost, [::1]) or
  a name given with --allow-host, so a DNS-rebinding page cannot even read the page (and the
  secret in it);
- a POST must come from this origin (Origin header), carry the session secret in the
  X-Reviewer-Session header (a header, so a plain cross-site form cannot send it) and be JSON;
- the page forbids framing, and loads nothing but its own images.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reviewer import review_state
from reviewer.errors import ReviewerError, UsageError

if TYPE_CHECKING:  # the imaging stack and the CircleCI client load only when a command needs them
    from reviewer.actions import ActionResult, CommitLookup
    from reviewer.circleci import CircleCIClient
    from reviewer.config import Settings
    from reviewer.model import Review

ENDPOINT = "/api/action"
STATE_ENDPOINT = "/api/state"  # per-pair review marks (reviewer.review_state)
SECRET_HEADER = "X-Reviewer-Session"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
MAX_BODY = 16 * 1024
MAX_REASON = 2000
ACTIONS = ("approve", "hold", "reject")

# One action: (action, reason or None, force) -> the JSON answer for the page.
ActionHandler = Callable[[str, "str | None", bool], dict[str, Any]]

DESCRIBE = {
    "approve": "Approves hold-production of this release in CircleCI, so production deploys, but only when every "
               "safety check passes: the production workflow of exactly this tag, hold-production on hold, "
               "visualtests-compare finished, no [HOLD] in the commit message, this very report, and the "
               "analysis. Written to the audit log.",
    "hold": "Records a hold in the audit log with your reason. Nothing is sent to CircleCI: hold-production "
            "stays waiting, and nobody should approve it.",
    "reject": "Cancels hold-production in CircleCI: deploy-production will not run. Written to the audit log.",
}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """'127.0.0.1:8080' -> '127.0.0.1'; '[::1]:80' -> '::1'; lower-cased."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1: h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


@dataclass
class ServeConfig:
    page: str  # the rendered index.html (holds the session secret)
    images: Path  # the review's images folder
    review_json: Path | None
    secret: str
    allowed_hosts: frozenset[str]
    handler: ActionHandler | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: Callable[[str], None] | None = None
    state: review_state.StateStore | None = None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def page_actions(secret: str, *, project: str | None, tag: str | None, enabled: bool,
                 why_disabled: str | None = None) -> dict[str, Any]:
    """What the page needs to show the buttons (see reviewer.render.html.render_html)."""
    return {"endpoint": ENDPOINT, "secret": secret, "enabled": enabled, "why_disabled": why_disabled,
            "project": project, "tag": tag, "describe": DESCRIBE, "state_endpoint": STATE_ENDPOINT}


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg: ServeConfig  # set on the subclass made per server

    # -- plumbing ------------------------------------------------------------------------------

    def version_string(self) -> str:
        return "reviewer"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The page loads hundreds of images: logging every GET buries what matters (actions,
        # refusals, errors). Successful reads stay quiet.
        status = int(code) if isinstance(code, int) or str(code).isdigit() else 0
        if self.command in ("GET", "HEAD") and 0 < status < 400:
            return
        super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:
        if self.cfg.log:
            self.cfg.log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8")

    def _refuse(self, status: int, why: str) -> None:
        if self.command == "POST":
            # A refused POST's body may be unread; on a kept-alive connection it would be parsed
            # as the next request. Close instead.
            self.close_connection = True
            self._send(status, json.dumps({"ok": False, "refused": True, "message": why}).encode(),
                       "application/json; charset=utf-8", {"Connection": "close"})
            return
        self._json(status, {"ok": False, "refused": True, "message": why})

    def _host_ok(self) -> bool:
        host = self.headers.get("Host")
        if not host or host_name(host) not in self.cfg.allowed_hosts:
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST,
                         "this server answers only to this machine's own names (pass --allow-host NAME to add one)")
            return False
        return True

    # -- GET -----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.cfg.page.encode("utf-8"), "text/html; charset=utf-8",
                       {"Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"})
        elif path == "/review.json" and self.cfg.review_json is not None and self.cfg.review_json.is_file():
            self._send(HTTPStatus.OK, self.cfg.review_json.read_bytes(), "application/json; charset=utf-8")
        elif path.startswith("/images/"):
            self._image(path)
        elif path == STATE_ENDPOINT and self.cfg.state is not None:
            self._json(HTTPStatus.OK, self.cfg.state.snapshot())
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def _image(self, path: str) -> None:
        base = self.cfg.images.resolve()
        rel = path[len("/images/"):]
        parts = rel.split("/")
        if not rel.endswith(".png") or any(p in ("", ".", "..") or "\\" in p for p in parts):
            self._refuse(HTTPStatus.NOT_FOUND, "not found")
            return
        target = base.joinpath(*parts).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            self._refuse(HTTPStatus.NOT_FOUND, "not found")
            return
        self._send(HTTPStatus.OK, target.read_bytes(), "image/png")

    # -- POST ----------------------------------------------------------------------------------

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if urlsplit(self.path).path == STATE_ENDPOINT:
            self._post_state()
            return
        if urlsplit(self.path).path != ENDPOINT:
            self._refuse(HTTPStatus.NOT_FOUND, "not found")
            return
        why = self._why_not_same_origin()
        if why:
            self._refuse(HTTPStatus.FORBIDDEN, why)
            return
        body = self._body()
        if body is None:
            return
        if self.cfg.handler is None:
            self._refuse(HTTPStatus.CONFLICT, "no CircleCI release to act on: serve PROJECT --tag TAG "
                                              "(or pass --project and --tag)")
            return
        action, reason, force = body
        blocker = self.cfg.state.approve_blocker() if action == "approve" and self.cfg.state else None
        if blocker:  # answered like the checks of reviewer.actions that refuse: 200, ok false, the reason
            self._json(HTTPStatus.OK, {"ok": False, "refused": True, "action": action, "message": blocker})
            return
        if not self.cfg.lock.acquire(blocking=False):
            self._refuse(HTTPStatus.CONFLICT, "another action is running; wait for its answer")
            return
        try:
            answer = self.cfg.handler(action, reason, force)
        except ReviewerError as exc:
            answer = {"ok": False, "action": action, "message": str(exc)}
        except Exception as exc:  # the page must get an answer it can show, never a dropped connection
            answer = {"ok": False, "action": action, "message": f"unexpected {type(exc).__name__}: {exc}"}
        finally:
            self.cfg.lock.release()
        from reviewer.redact import redact

        answer["message"] = redact(str(answer.get("message", "")))
        self._json(HTTPStatus.OK, answer)

    def _post_state(self) -> None:
        """A review mark from the page: the same secret, origin and Host rules as the actions."""
        why = self._why_not_same_origin()
        if why:
            self._refuse(HTTPStatus.FORBIDDEN, why)
            return
        if self.cfg.state is None:
            self._refuse(HTTPStatus.NOT_FOUND, "this server keeps no review state")
            return
        found, data = self._read_json()
        if not found:
            return
        if data is None:
            self._refuse(HTTPStatus.BAD_REQUEST, "the request must be JSON")
            return
        try:
            answer = self.cfg.state.update(data)
        except review_state.StateError as exc:
            self._refuse(HTTPStatus.CONFLICT if exc.conflict else HTTPStatus.BAD_REQUEST, str(exc))
            return
        except OSError as exc:
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR,
                         f"cannot write {review_state.STATE_FILE}: {exc.strerror or exc}; check the output folder")
            return
        self._json(HTTPStatus.OK, answer)

    def _why_not_same_origin(self) -> str | None:
        sent = self.headers.get(SECRET_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), self.cfg.secret.encode()):
            return "missing or wrong session secret: reload the page served by this `reviewer serve`"
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if origin is None or origin != f"http://{host}":
            return "cross-origin request refused"
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site != "same-origin":
            return "cross-site request refused"
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            return "the request must be JSON"
        return None

    def _read_json(self) -> tuple[bool, Any]:
        """(read, data): read is False when the request was refused (no or too large a
        Content-Length); data is None when the body is not JSON."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return False, None
        if length < 0 or length > MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
            return False, None
        try:
            return True, json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return True, None

    def _action_data(self, actions: tuple[str, ...]) -> tuple[dict[str, Any], str | None] | None:
        """The JSON object of an action among `actions` and its stripped reason (None if empty);
        None when refused."""
        found, data = self._read_json()
        if not found:
            return None
        if not isinstance(data, dict) or data.get("action") not in actions:
            self._refuse(HTTPStatus.BAD_REQUEST, f"expected {{\"action\": one of {', '.join(actions)}, ...}}")
            return None
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
            self._refuse(HTTPStatus.BAD_REQUEST, f"reason must be text of at most {MAX_REASON} characters")
            return None
        return data, (reason.strip() or None) if isinstance(reason, str) else None

    def _body(self) -> tuple[str, str | None, bool] | None:
        """(action, reason, force) of an Approve / Hold / Reject request; None when refused."""
        parsed = self._action_data(ACTIONS)
        if parsed is None:
            return None
        data, reason = parsed
        force = data.get("force", False)
        if not isinstance(force, bool):
            self._refuse(HTTPStatus.BAD_REQUEST, "force must be true or false")
            return None
        return str(data["action"]), reason, force


class ReviewServer:
    """The HTTP server; `start()` runs it in a thread (tests), `serve_forever()` in the caller's."""

    def __init__(self, cfg: ServeConfig, host: str = "127.0.0.1", port: int = 0,
                 handler_class: type[RequestHandler] | None = None) -> None:
        """`handler_class`: a RequestHandler subclass that reads another kind of action body
        (the fleet page's); every check of who may act stays RequestHandler's."""
        handler = type("Handler", (handler_class or RequestHandler,), {"cfg": cfg})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pass another --port") from None
        self.httpd.daemon_threads = True
        self.cfg = cfg
        self._thread: threading.Thread | None = None
        self.on_close: list[Callable[[], None]] = []  # e.g. closing the CircleCI client made for it

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = str(host)
        if shown in ("0.0.0.0", "::"):
            shown = "127.0.0.1"
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}/"

    def start(self) -> ReviewServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="reviewer-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        """Stop a server started with start() (or serving in another thread) and release it."""
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release()

    def release(self) -> None:
        self.httpd.server_close()
        for fn in self.on_close:
            fn()
        self.on_close.clear()


def allowed_hosts(bind: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Host names a request may use. Binding beyond loopback needs at least one --allow-host."""
    if not is_loopback(bind) and not extra:
        raise UsageError(f"--host {bind} would let other machines reach Approve/Reject; "
                         "pass --allow-host NAME (the name people will use) to do that on purpose")
    return frozenset(LOOPBACK_NAMES | {h.strip().lower() for h in extra if h.strip()})


# -- the actions, through reviewer.actions --------------------------------------------------------

def result_dict(result: ActionResult) -> dict[str, Any]:
    """ActionResult -> what the page shows (never the token: messages are redacted by the caller)."""
    return {
        "ok": bool(result.ok), "action": result.action, "message": result.message, "refused": bool(result.refused),
        "audit": json.dumps(result.audit, ensure_ascii=False) if result.audit else None,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks],
        "link": result.link,
    }


def circleci_handler(client: CircleCIClient, project: str, tag: str, *, audit_log: Path, review: Review | None = None,
                     settings: Settings | None = None, work_dir: Path | None = None,
                     commit_lookup: CommitLookup | None = None) -> ActionHandler:
    """Approve / Hold / Reject of release `tag`, exactly as the CLI commands do them."""
    from reviewer import actions

    def handle(action: str, reason: str | None, force: bool) -> dict[str, Any]:
        if action == "approve":
            result = actions.approve(client, project, tag, force=force, reason=reason, audit_log=audit_log,
                                     review=review, settings=settings, work_dir=work_dir,
                                     commit_lookup=commit_lookup)
        else:
            if not reason:
                raise UsageError(f"{action} needs a reason: say why the release is held")
            result = actions.hold(client, project, tag, reason=reason, reject=action == "reject",
                                  audit_log=audit_log, digest=review.digest if review is not None else None)
        return result_dict(result)

    return handle


# -- wiring: what `reviewer serve` serves --------------------------------------------------------------

NO_RELEASE = ("No CircleCI release to act on: this page shows a local report. Run `reviewer serve PROJECT --tag TAG` "
              "(or add --project and --tag) to approve, hold or reject a release from here.")


def _page_data(review: Review) -> dict[str, Any]:
    from reviewer.render.jsonout import review_document

    data = review_document(review)
    return data


def local_review(target: Path, out: Path | None, settings: Settings) -> tuple[Review | None, dict[str, Any], Path]:
    """(Review or None, review.json data, output folder) for a local report, zip or output folder.
    An output folder of `reviewer analyze` (review.json + images/) is served as it is."""
    from reviewer.analyze import run

    if out is None and target.is_dir() and (target / "review.json").is_file() and (target / "images").is_dir():
        try:
            data = json.loads((target / "review.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {target / 'review.json'}: {exc}") from None
        if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("pairs"), list):
            raise UsageError(f"{target / 'review.json'} is not a schema-1 review; serve the report itself")
        return None, data, target
    review, out_dir = run(target, out, settings)
    return review, _page_data(review), out_dir


def fetch_release_review(client: CircleCIClient, project: str, tag: str, out: Path | None, settings: Settings,
                         say: Callable[[str], None] | None = None) -> tuple[Review, Path]:
    """Fetch, verify and analyse the release's compare report, the one way `review` and
    `approve` do it (reviewer.release_review): the buttons then act on this very analysis."""
    from reviewer.circleci import project_slug
    from reviewer.release import find_release
    from reviewer.release_review import Progress, review_release

    release = find_release(client, project_slug(project), tag=tag)
    rr = review_release(client, release, settings, work_dir=out, progress=Progress(say=say))
    return rr.review, rr.out_dir


def make_server(target: str, *, settings: Settings, tag: str | None = None, project: str | None = None,
                out: Path | None = None, host: str = "127.0.0.1", port: int = 0, allow_host: tuple[str, ...] = (),
                audit_log: Path, client: CircleCIClient | None = None, api_url: str | None = None,
                commit_lookup: CommitLookup | None = None,
                log: Callable[[str], None] | None = None, say: Callable[[str], None] | None = None) -> ReviewServer:
    """Everything `reviewer serve` does before serving: find or fetch the report, analyse it,
    wire the buttons (or disable them), render the page with the session secret, bind.

    TARGET is a local report / zip / output folder, or (with `tag`) a CircleCI project.
    `client` is created from the environment when a release is involved and none is given."""
    hosts = allowed_hosts(host, allow_host)
    local = Path(target)
    act_project: str | None
    if local.exists():
        act_project = project
        if act_project and not tag:
            raise UsageError("--project needs --tag: which release should the buttons act on?")
    elif tag:
        if project:
            raise UsageError("give the project once: `reviewer serve PROJECT --tag TAG`")
        act_project = target
    else:
        raise UsageError(f"{target} does not exist: pass a report folder, a .zip or a `reviewer analyze` output "
                         f"folder; or, to review a CircleCI release, a project with --tag TAG")
    secret = new_secret()
    handler: ActionHandler | None = None
    owned = None
    try:
        if act_project and tag:
            if client is None:
                from reviewer.circleci import client_from_env

                client = owned = client_from_env(api_url)
            if local.exists():
                review, data, out_dir = local_review(local, out, settings)
            else:
                review, out_dir = fetch_release_review(client, act_project, tag, out, settings, say)
                data = _page_data(review)
            handler = circleci_handler(client, act_project, tag, audit_log=audit_log, review=review,
                                       settings=settings, commit_lookup=commit_lookup)
            actions = page_actions(secret, project=act_project, tag=tag, enabled=True)
        else:
            _review, data, out_dir = local_review(local, out, settings)
            actions = page_actions(secret, project=None, tag=None, enabled=False, why_disabled=NO_RELEASE)
        from reviewer.render.html import render_page

        cfg = ServeConfig(page=render_page(data, actions), images=out_dir / "images",
                          review_json=out_dir / "review.json", secret=secret, allowed_hosts=hosts, handler=handler,
                          log=log, state=review_state.StateStore.beside(out_dir, data))
        server = ReviewServer(cfg, host, port)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    if owned is not None:
        server.on_close.append(owned.close)
    return server
