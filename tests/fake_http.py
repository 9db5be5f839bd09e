"""A real HTTP server on 127.0.0.1 (port 0) in a thread, with recorded requests and fault injection.

The fakes of CircleCI, its storage host and GitHub build on this. Faults are queued by the
test and consumed by matching requests:

    server.inject("GET", r"/pipeline$", "status", status=429, headers={"Retry-After": "0"})
    server.inject("GET", r"/blob/", "truncate")       # send half the body, then close
    server.inject("POST", r"/approve/", "drop")        # close without answering (not processed)
    server.inject("POST", r"/approve/", "drop_after")  # process, then close without answering
    server.inject("GET", r"/blob/", "reset")          # send half the body, then reset (RST)
    server.inject("GET", r"/me$", "hang", delay=1)    # accept, answer nothing for `delay` s, close
    server.inject("POST", r"/approve/", "hang_after", delay=1)  # process, then hang and close
    server.inject("GET", r"/job$", "body", status=200, body=b"{not json")  # this exact answer
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw_target: str

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), dict(headers or {}))


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    kind: str  # status | drop | drop_after | truncate | reset | stall | hang | hang_after | body
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # hang / hang_after / stall: seconds to stay silent before closing
    body: bytes | None = None  # body: the raw answer to send (with `status`)


class FakeServer:
    """Subclasses implement `handle(req) -> Reply`."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: no stale keep-alive sockets

            def _any(self) -> None:
                owner._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def inject(self, method: str, path_regex: str, kind: str, *, times: int = 1, status: int = 500,
               headers: dict[str, str] | None = None, delay: float = 0.0, body: bytes | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(method.upper(), re.compile(path_regex), kind, times, status,
                                     dict(headers or {}), delay, body))

    def _take_fault(self, req: Recorded) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method in (req.method, "*") and fault.pattern.search(req.path):
                    fault.times -= 1
                    return fault
        return None

    def handle(self, req: Recorded) -> Reply:  # pragma: no cover - overridden
        raise NotImplementedError

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Recorded(h.command, split.path, dict(parse_qsl(split.query, keep_blank_values=True)),
                       {k.lower(): v for k, v in h.headers.items()}, body, h.path)
        with self.lock:
            self.requests.append(req)
        fault = self._take_fault(req)
        if fault and fault.kind in ("drop", "hang"):
            time.sleep(fault.delay)
            _drop(h)
            return
        if fault and fault.kind == "status":
            reply = Reply.json({"message": f"injected {fault.status}"}, fault.status, fault.headers)
        elif fault and fault.kind == "body":
            reply = Reply(fault.status, fault.body or b"", dict(fault.headers))
        else:
            reply = self.handle(req)
        if fault and fault.kind in ("drop_after", "hang_after"):
            time.sleep(fault.delay)
            _drop(h)
            return
        h.send_response(reply.status)
        h.send_header("Content-Type", reply.content_type)
        h.send_header("Content-Length", str(len(reply.body)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        if fault and fault.kind in ("truncate", "reset", "stall"):
            h.wfile.write(reply.body[: len(reply.body) // 2])
            h.wfile.flush()
            if fault.kind == "stall":  # half the body, then silence: the client's read timeout
                time.sleep(fault.delay)
            if fault.kind == "reset":  # abortive close: the client sees ECONNRESET, not a clean EOF
                with contextlib.suppress(OSError):
                    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    h.connection.close()
                h.close_connection = True
                return
            _drop(h)
            return
        h.wfile.write(reply.body)

    def find(self, method: str, path_regex: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]


def _drop(h: BaseHTTPRequestHandler) -> None:
    h.close_connection = True
    with contextlib.suppress(OSError):
        h.connection.shutdown(socket.SHUT_RDWR)
