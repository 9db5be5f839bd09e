"""Benchmark `reviewer fleet`: 49 sites from review.json artifacts, every request 50 ms late.

    .venv/bin/python benchmarks/fleet.py [--latency 0.05] [--sites 49] [--concurrency 8]
                                         [--rounds 3] [--local 4]

Uses the CircleCI fakes of tests/ (the API and its storage host, real HTTP on 127.0.0.1, with
CircleCI's page size of 20) and the real fleet: `reviewer.fleet.run.run_fleet` with its shared
limiter, the real CircleCIClient and the real `reviewer ci` outputs as each site's stored
artifacts (tests/fleet_sites.py: reports derived from the fixture report's screenshots, the
same button colour change on every site). Every request to either server waits `--latency`
before it is answered.

The ideal at a concurrency of C: every request the fleet made, C at a time, each taking the
latency and nothing else:

    ideal = latency * ceil(requests / C)

The target (issue 12) is a fleet within 2x of that ideal. Then `--local` sites whose compare
job stored no review.json are gathered the same way: each is fetched and analysed here, and
its time is reported per site.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from fake_circleci import FakeCircleCI, FakeStorage, openapi  # noqa: E402
from fetch import Delayed  # noqa: E402
from fleet_sites import analysed_report  # noqa: E402

from reviewer.config import Settings  # noqa: E402
from reviewer.fleet.gather import FleetOptions  # noqa: E402
from reviewer.fleet.limiter import SharedLimiter  # noqa: E402
from reviewer.fleet.run import fleet_client, run_fleet  # noqa: E402

TAG = "v2.31.0"


def build(base: Path, sites: int, local: int) -> tuple[dict[str, Path], dict[str, Path]]:
    stored = {f"site{i:02}": analysed_report(base / f"site{i:02}", "theme", i) for i in range(sites)}
    bare = {f"local{i:02}": analysed_report(base / f"local{i:02}", "theme", 100 + i, with_review=False)
            for i in range(local)}
    return stored, bare


def one_round(reports: dict[str, Path], latency: float, concurrency: int, settings: Settings) -> dict[str, Any]:
    token = "cci-" + secrets.token_hex(12)
    storage = FakeStorage()
    cci = FakeCircleCI(token, storage, page_size=20)
    try:
        slow_api, slow_storage = Delayed(cci.handle, latency), Delayed(storage.handle, latency)
        cci.handle = slow_api  # type: ignore[method-assign]
        storage.handle = slow_storage  # type: ignore[method-assign]
        for name, root in reports.items():
            slug = f"gh/greenpeace/planet4-{name}"
            cci.add_release(slug, "v2.30.0", compare="success", hold="success")
            cci.add_pipeline(slug, None, branch="develop")
            cci.add_release(slug, TAG, report=root)
        limiter = SharedLimiter(concurrency)
        with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
            opts = FleetOptions(out=Path(tmp), concurrency=concurrency, settings=settings)
            with fleet_client(token, cci.api_url, limiter) as client:
                started = time.perf_counter()
                run = run_fleet(client, list(reports), opts, limiter=limiter)
                seconds = time.perf_counter() - started
        requests = len(cci.requests) + len(storage.requests)
        statuses = sorted({s["status"] for s in run.data["sites"]})
        if cci.violations:
            raise RuntimeError("requests that do not match openapi.json: " + "; ".join(cci.violations[:3]))
        return {"seconds": seconds, "ideal": latency * math.ceil(requests / concurrency), "requests": requests,
                "sites": len(reports), "statuses": statuses, "groups": len(run.data["groups"]),
                "largest_group": len(run.data["groups"][0]["sites"]) if run.data["groups"] else 0,
                "max_in_flight": max(slow_api.most, slow_storage.most),
                "per_site": {s["name"]: s["seconds"] for s in run.data["sites"]},
                "sources": sorted({str(s["source"]) for s in run.data["sites"]})}
    finally:
        cci.close()
        storage.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="reviewer fleet against a local CircleCI with added latency")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--sites", type=int, default=49)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--local", type=int, default=4, help="sites analysed here (no review.json stored)")
    args = ap.parse_args(argv)
    settings = Settings(workers=1)
    # The fake validates every request against CircleCI's spec; loading the spec takes seconds
    # the first time, which is the fake's cost, not the fleet's: load it before timing.
    openapi()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-reports-") as tmp:
        stored, bare = build(Path(tmp), args.sites, args.local)
        runs = [one_round(stored, args.latency, args.concurrency, settings) for _ in range(args.rounds)]
        local = one_round(bare, args.latency, args.concurrency, settings) if bare else None
    seconds = statistics.median(r["seconds"] for r in runs)
    ideal = statistics.median(r["ideal"] for r in runs)
    first = runs[0]
    print(f"{first['sites']} sites from review.json artifacts, concurrency {args.concurrency}, "
          f"{args.latency * 1000:.0f} ms per request, {first['requests']} requests: median {seconds:.2f} s over "
          f"{args.rounds} runs, ideal {ideal:.2f} s, ratio {seconds / ideal:.2f} (target <= 2.00: "
          f"{'met' if seconds <= 2 * ideal else 'NOT met'}); most requests in flight at once: "
          f"{max(r['max_in_flight'] for r in runs)}; {first['groups']} group(s), the largest of "
          f"{first['largest_group']} sites; sources {first['sources']}")
    if local is not None:
        per = local["per_site"]
        print(f"local-analysis fallback ({len(per)} sites without review.json, fetched and analysed here, "
              f"{args.concurrency} at a time): " + ", ".join(f"{n} {s:.2f} s" for n, s in per.items())
              + f"; median {statistics.median(per.values()):.2f} s per site, {local['seconds']:.2f} s in all")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "fleet-latest.json").write_text(json.dumps({
        "runs": runs, "median_seconds": seconds, "ideal": ideal, "latency": args.latency,
        "concurrency": args.concurrency, "local": local}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
