"""HTTP plumbing shared by the CircleCI and GitHub clients: retries, safe redirects, downloads.

    call ──> token header only if the URL's origin is trusted ──> send (redirects NOT automatic)
     ^                                                               │
     │ retry with backoff: 429 (honouring Retry-After),              │ 3xx on GET: follow by hand,
     │ 5xx, dropped connections, truncated bodies (GET only)         │ re-deciding the header per hop
     └───────────────────────────────────────────────────────────────┘

Why by hand: httpx (like curl -L with -H) would carry our own headers to whatever host a
redirect names. CircleCI's artifact URLs redirect to storage hosts that must never see the
token, so every hop decides afresh whether its origin (scheme, host, port) is trusted.

Retrying a POST is not always safe: if the connection drops after the request was sent, or a
5xx comes back, CircleCI may or may not have acted. Such a request raises `OutcomeUnknown`
and the caller re-reads the state instead of sending it again. A 429 and a refused
connection are safe to retry: nothing happened.

Exceptions:

    ReviewerError
     └── HttpError            a request failed for good (exit 1)
          ├── GaveUp          still failing after the bounded retries
          ├── RateLimited     the server asks us to wait longer than we are willing to
          ├── OutcomeUnknown  a non-idempotent request may or may not have taken effect
          └── DownloadError   a file could not be downloaded complete and intact
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from reviewer.errors import ReviewerError
from reviewer.redact import redact

T = TypeVar("T")
Origin = tuple[str, str, int]

USER_AGENT = "reviewer (Planet 4 visual review; +https://github.com/greenpeace)"
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(ReviewerError):
    exit_code = 1


class GaveUp(HttpError):
    pass


class RateLimited(HttpError):
    pass


class OutcomeUnknown(HttpError):
    pass


class DownloadError(HttpError):
    pass


class _Transient(Exception):
    """Raised inside a try to ask the retry loop for another go."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def origin(url: httpx.URL | str) -> Origin:
    u = httpx.URL(url) if isinstance(url, str) else url
    scheme = u.scheme.lower()
    return scheme, (u.host or "").lower(), u.port or _DEFAULT_PORTS.get(scheme, 0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value)) if value.isascii() else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Tests pass tiny values and a `sleep` that records."""

    attempts: int = 6  # tries in all, the first included
    backoff: float = 0.5  # first wait in seconds; doubles on each retry (with jitter)
    max_wait: float = 30.0  # cap on one backoff wait
    max_retry_after: float = 120.0  # a longer Retry-After is not waited for: we stop and say so
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff_for(self, retry: int) -> float:
        # "Full jitter" between half and all of the exponential step, so parallel downloads
        # that failed together do not retry in lock-step.
        step = min(self.max_wait, self.backoff * (2.0**retry))
        return step * random.uniform(0.5, 1.0)


class WebClient:
    """One httpx.Client with per-origin auth headers, manual redirects and bounded retries.

    `auth_headers` are attached only to requests whose origin is `base_url`'s or one of
    `token_origins`. `transport` lets tests swap the network (httpx.MockTransport) or point
    at a real local server.
    """

    def __init__(
        self,
        base_url: str,
        auth_headers: dict[str, str],
        *,
        token_origins: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        accept: str = "application/json",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = dict(auth_headers)
        self._trusted = {origin(self.base_url)} | {origin(u) for u in token_origins}
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": accept},
        )

    def __repr__(self) -> str:  # never show the headers
        return f"{type(self).__name__}({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def trusted(self, url: httpx.URL | str) -> bool:
        return origin(url) in self._trusted

    # -- one exchange ------------------------------------------------------------------------

    def _open(self, method: str, url: httpx.URL, *, json: Any = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        """Send, following GET redirects by hand; returns an open (streaming) response."""
        for _hop in range(MAX_REDIRECTS + 1):
            hdrs = dict(headers or {})
            if self.trusted(url):
                hdrs.update(self._auth)
            request = self._http.build_request(method, url, json=json, headers=hdrs)
            response = self._http.send(request, stream=True)
            location = response.headers.get("location")
            if method == "GET" and response.status_code in (301, 302, 303, 307, 308) and location:
                response.close()
                url = url.join(location)
                if url.scheme not in ("http", "https"):
                    raise HttpError(f"refusing a redirect to a {url.scheme!r} URL")
                continue
            return response
        raise HttpError(f"more than {MAX_REDIRECTS} redirects for {method} {url.copy_with(query=None)}")

    # -- the retry loop ----------------------------------------------------------------------

    def with_retries(self, what: str, call: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run `call`, retrying transient failures within the policy's bounds.

        `call` raises `_Transient` for 429/5xx (see `check_status`); httpx transport errors are
        classified here. For non-idempotent calls only failures that prove nothing was sent
        (connection refused, 429) are retried; the rest raise OutcomeUnknown.
        """
        policy = self.retry
        tries = 0
        while True:
            tries += 1
            try:
                return call()
            except _Transient as exc:
                reason, retry_after = exc.reason, exc.retry_after
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                reason, retry_after = f"cannot connect ({type(exc).__name__}: {exc})", None
            except (httpx.TransportError, TruncatedBody) as exc:
                detail = f"{type(exc).__name__}: {exc}"
                if not idempotent:
                    raise OutcomeUnknown(redact(f"{what}: the connection failed after the request was sent "
                                                f"({detail}); it may or may not have taken effect")) from None
                reason, retry_after = f"connection problem ({detail})", None
            if tries >= policy.attempts:
                raise GaveUp(redact(f"{what}: still failing after {tries} tries: {reason}. "
                                    "Try again later.")) from None
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise RateLimited(redact(
                    f"{what}: rate limited; the server asks to wait {retry_after:.0f} s, more than the "
                    f"{policy.max_retry_after:.0f} s this command waits. Try again later.")) from None
            policy.sleep(retry_after if retry_after is not None else policy.backoff_for(tries - 1))

    @staticmethod
    def check_status(response: httpx.Response, *, idempotent: bool, what: str) -> None:
        """Turn a retryable status into `_Transient` (or OutcomeUnknown for a 5xx to a POST)."""
        status = response.status_code
        if status == 429 or (status == 403 and _rate_limited(response)):
            # GitHub signals rate limits with 403 plus Retry-After or an exhausted X-RateLimit.
            response.close()
            raise _Transient(f"{status} rate limited", _wait_hint(response))
        if status >= 500:
            response.close()
            if not idempotent:
                raise OutcomeUnknown(f"{what}: the server answered {status}; the request may or may not "
                                     "have taken effect")
            raise _Transient(f"server error {status}", parse_retry_after(response.headers.get("retry-after")))

    # -- public calls ------------------------------------------------------------------------

    def url(self, path: str, params: dict[str, Any] | None = None) -> httpx.URL:
        url = httpx.URL(self.base_url + path)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return url.copy_merge_params(clean) if clean else url

    def request(self, method: str, path_or_url: str, *, params: dict[str, Any] | None = None,
                json: Any = None, idempotent: bool | None = None, what: str | None = None) -> httpx.Response:
        """A complete (read) response; any final status is returned, retryable ones are retried."""
        method = method.upper()
        idem = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") if idempotent is None else idempotent
        url = httpx.URL(path_or_url) if "://" in path_or_url else self.url(path_or_url, params)
        label = what or f"{method} {url.copy_with(query=None)}"

        def call() -> httpx.Response:
            response = self._open(method, url, json=json)
            try:
                self.check_status(response, idempotent=idem, what=label)
                response.read()
            finally:
                response.close()
            return response

        return self.with_retries(label, call, idempotent=idem)

    @contextlib.contextmanager
    def stream(self, url: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """A GET whose body is read by the caller; retryable statuses are retried before yielding."""
        target = httpx.URL(url)
        label = f"GET {target.copy_with(query=None)}"

        def call() -> httpx.Response:
            response = self._open("GET", target, headers=headers)
            self.check_status(response, idempotent=True, what=label)
            return response

        response = self.with_retries(label, call)
        try:
            yield response
        finally:
            response.close()

    def download(self, url: str, dest: Path, *, verify: Callable[[Path], str | None] | None = None,
                 max_bytes: int = 2 * 1024**3) -> int:
        """GET `url` into `dest` atomically; return its size.

        The body goes to a temporary file next to `dest`, is checked against Content-Length and
        by `verify` (returns a problem or None), and only then renamed into place, so `dest`
        either does not exist or is complete. A truncated or failed transfer is retried whole.
        """
        label = f"download {httpx.URL(url).copy_with(query=None)}"
        # Hidden, marked .part, and keeping the real suffix so `verify` can tell what it checks.
        tmp = dest.with_name(f".{dest.stem}.{uuid.uuid4().hex[:8]}.part{dest.suffix}")

        def call() -> int:
            try:
                with self.stream(url, headers={"Accept-Encoding": "identity", "Accept": "*/*"}) as resp:
                    if resp.status_code != 200:
                        hint = ""
                        if resp.status_code in (401, 403) and not self.trusted(resp.request.url):
                            hint = (f" ({resp.request.url.host} asked for credentials; the token is only ever sent "
                                    "to the API's own host)")
                        raise DownloadError(f"{label}: the server answered {resp.status_code}{hint}")
                    expected = _content_length(resp)
                    written = 0
                    with tmp.open("wb") as fh:
                        for chunk in resp.iter_bytes():
                            fh.write(chunk)
                            written += len(chunk)
                            if written > max_bytes:
                                raise DownloadError(f"{label}: larger than {max_bytes} bytes; refusing")
                    on_wire = resp.num_bytes_downloaded  # before any decoding: what Content-Length counts
                if expected is not None and on_wire != expected:
                    raise TruncatedBody(f"received {on_wire} of {expected} bytes")
                problem = verify(tmp) if verify else None
                if problem:
                    raise TruncatedBody(f"the file is damaged: {problem}")
                os.replace(tmp, dest)
                return written
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        return self.with_retries(label, call)


class TruncatedBody(Exception):
    """The body ended early or failed its check: retried like a dropped connection."""


def _rate_limited(response: httpx.Response) -> bool:
    h = response.headers
    return "retry-after" in h or h.get("x-ratelimit-remaining") == "0"


def _wait_hint(response: httpx.Response) -> float | None:
    """Retry-After, else an X-RateLimit-Reset / RateLimit-Reset hint, else None (use backoff)."""
    h = response.headers
    wait = parse_retry_after(h.get("retry-after"))
    if wait is not None:
        return wait
    if h.get("x-ratelimit-remaining") == "0" and (h.get("x-ratelimit-reset") or "").isdigit():
        return max(0.0, float(h["x-ratelimit-reset"]) - time.time())  # GitHub: epoch seconds
    reset = h.get("ratelimit-reset")
    if reset and reset.isdigit():
        return float(reset)  # IETF draft: seconds until the window resets
    return None


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
