"""Benchmark `reviewer fetch`: 200 artifacts from a local CircleCI whose every request takes 50 ms.

    .venv/bin/python benchmarks/fetch.py [--latency 0.05] [--artifacts 200] [--rounds 3]

Uses the CircleCI engineer's fakes (tests/fake_circleci.py: the API and its storage host, real
HTTP on 127.0.0.1) and the real fetch (reviewer.sources.circleci_fetch.fetch_report) with its
default concurrency, and the real CircleCIClient. Every request to either server is held for
`--latency` seconds before it is answered (an artifact costs two: the API's redirect and the
storage's blob). The report is BackstopJS-shaped: html_report/config.js and index.html plus
the PNGs it names, `--artifacts` files in all.

The ideal for a concurrency of C: the artifact listing (one request), then the page files and
then the images, each downloaded C at a time, two requests per file:

    ideal = latency * (1 + 2 * ceil(page_files / C) + 2 * ceil(images / C))

The target (issue 5) is a fetch within 2x of that ideal.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_circleci import FakeCircleCI, FakeStorage  # noqa: E402
from fake_http import Recorded, Reply  # noqa: E402

from reviewer.circleci import CircleCIClient  # noqa: E402
from reviewer.sources.circleci_fetch import DEFAULT_WORKERS, JobRef, fetch_report  # noqa: E402

SLUG = "gh/greenpeace/planet4-bench"


def tiny_png(seed: int) -> bytes:
    """A valid 8x8 RGB PNG, different for each seed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    raw = b"".join(b"\x00" + bytes((seed * 7 + y * 8 + x) % 256 for x in range(24)) for y in range(8))
    ihdr = (8).to_bytes(4, "big") * 2 + bytes((8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_report(folder: Path, files: int) -> tuple[int, int]:
    """A BackstopJS report of `files` artifacts: config.js, index.html and (files - 2) PNGs."""
    pairs = (files - 2) // 2
    tests = []
    for i in range(pairs):
        name = f"bench_Page{i}_0_document_{i % 6}_vp{i % 6}.png"
        (folder / "bitmaps_reference").mkdir(parents=True, exist_ok=True)
        (folder / "bitmaps_test" / "20261126-000000").mkdir(parents=True, exist_ok=True)
        (folder / "bitmaps_reference" / name).write_bytes(tiny_png(2 * i))
        (folder / "bitmaps_test" / "20261126-000000" / name).write_bytes(tiny_png(2 * i + 1))
        tests.append({"pair": {"reference": f"../bitmaps_reference/{name}",
                               "test": f"../bitmaps_test/20261126-000000/{name}",
                               "selector": "document", "fileName": name, "label": f"Page{i}",
                               "misMatchThreshold": 3, "url": "https://example.org/", "expect": 0,
                               "viewportLabel": f"vp{i % 6}", "diff": {"misMatchPercentage": "1.00"}},
                      "status": "fail"})
    (folder / "html_report").mkdir(parents=True, exist_ok=True)
    (folder / "html_report" / "config.js").write_text(
        "report(" + json.dumps({"testSuite": "BackstopJS", "tests": tests}) + ");")
    (folder / "html_report" / "index.html").write_text("<!doctype html><title>BackstopJS</title>")
    return 2, 2 * pairs


class Delayed:
    """Wraps a fake server's handler: each request waits `latency`, and the most requests
    waiting at once is recorded (the fetch's real concurrency)."""

    def __init__(self, handle: Callable[[Recorded], Reply], latency: float) -> None:
        self.handle, self.latency = handle, latency
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, req: Recorded) -> Reply:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.latency)
            return self.handle(req)
        finally:
            with self.lock:
                self.now -= 1


def one_round(latency: float, artifacts: int, workers: int) -> dict[str, Any]:
    token = "cci-" + secrets.token_hex(12)
    storage = FakeStorage()
    cci = FakeCircleCI(token, storage, page_size=1000)
    try:
        # Every request to either server waits `latency` before it is answered.
        slow_api, slow_storage = Delayed(cci.handle, latency), Delayed(storage.handle, latency)
        cci.handle = slow_api
        storage.handle = slow_storage
        cci.add_project(SLUG)
        with tempfile.TemporaryDirectory(prefix="fetch-bench-") as tmp:
            src = Path(tmp) / "src" / "backstop_data"
            page_files, images = make_report(src, artifacts)
            _p, wf = cci.add_release(SLUG, "v1.0.0", report=src)
            job = JobRef(SLUG, cci.job(wf, "visualtests-compare").job_number or 0, wf.id, "v1.0.0")
            client = CircleCIClient(token, cci.api_url)
            try:
                started = time.perf_counter()
                result = fetch_report(client, job, Path(tmp) / "out", workers=workers)
                seconds = time.perf_counter() - started
            finally:
                client.close()
            if not result.complete:
                raise RuntimeError("fetch incomplete: " + "; ".join(result.problems()))
            ideal = latency * (1 + 2 * math.ceil(page_files / workers) + 2 * math.ceil(images / workers))
            return {"seconds": seconds, "ideal": ideal, "files": result.downloaded,
                    "max_in_flight": max(slow_api.most, slow_storage.most)}
    finally:
        cci.close()
        storage.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="reviewer fetch against a local CircleCI with added latency")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--artifacts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = ap.parse_args(argv)
    runs = [one_round(args.latency, args.artifacts, args.workers) for _ in range(args.rounds)]
    seconds = statistics.median(r["seconds"] for r in runs)
    ideal = runs[0]["ideal"]
    print(f"{runs[0]['files']} files, concurrency {args.workers}, {args.latency * 1000:.0f} ms per request: "
          f"median {seconds:.2f} s over {args.rounds} runs, ideal {ideal:.2f} s, ratio {seconds / ideal:.2f} "
          f"(target <= 2.00: {'met' if seconds <= 2 * ideal else 'NOT met'}); "
          f"most downloads in flight at once: {max(r['max_in_flight'] for r in runs)}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "fetch-latest.json").write_text(json.dumps({"runs": runs, "median_seconds": seconds, "ideal": ideal,
                                                        "latency": args.latency, "workers": args.workers},
                                                       indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
