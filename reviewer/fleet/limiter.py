"""One rate limit for the whole fleet: a 429 seen by one site's request pauses every site.

CircleCI's rate limit is per token, not per project: when one worker is told to wait
(429 + Retry-After), the others would be told the same a moment later, and hammering on
would only lengthen the penalty. The WebClient's own retry loop still retries each request;
this transport adds the shared pause and a bound on requests in flight across all workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from reviewer.webclient import parse_retry_after

DEFAULT_PAUSE = 1.0  # a 429 without a usable Retry-After still means "slow down"
MAX_PAUSE = 120.0  # as RetryPolicy.max_retry_after: beyond that the request itself gives up


class SharedLimiter:
    """At most `max_in_flight` requests at once; none starts before a 429's Retry-After ends."""

    def __init__(self, max_in_flight: int = 8, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.clock, self.sleep = clock, sleep
        self.pauses: list[float] = []  # each pause a 429 imposed, in seconds (shown in the summary)
        self.waited = 0.0  # seconds requests spent waiting for a pause to end, all workers together

    def acquire(self) -> None:
        while True:
            with self._lock:
                wait = self._not_before - self.clock()
            if wait <= 0:
                break
            with self._lock:
                self.waited += wait
            self.sleep(wait)
        self._slots.acquire()

    def release(self, response: httpx.Response | None) -> None:
        self._slots.release()
        if response is not None and response.status_code == 429:
            hint = parse_retry_after(response.headers.get("retry-after"))
            pause = min(MAX_PAUSE, DEFAULT_PAUSE if hint is None else hint)
            with self._lock:
                self._not_before = max(self._not_before, self.clock() + pause)
                self.pauses.append(pause)


class LimitedTransport(httpx.BaseTransport):
    """An httpx transport that passes every request through a SharedLimiter."""

    def __init__(self, inner: httpx.BaseTransport, limiter: SharedLimiter) -> None:
        self.inner, self.limiter = inner, limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.limiter.acquire()
        response: httpx.Response | None = None
        try:
            response = self.inner.handle_request(request)
            return response
        finally:
            # The slot is freed when the headers are in: a download's body is read afterwards
            # by the caller, and the bound is on requests waiting for CircleCI, not on bodies.
            self.limiter.release(response)

    def close(self) -> None:
        self.inner.close()
