"""`reviewer fleet`: gather every site, group the changes, write fleet.json, fleet.md, fleet.html."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reviewer.analyze import write_text_atomic
from reviewer.circleci import CircleCIClient
from reviewer.fleet.gather import FleetOptions, Progress, SiteResult, gather_fleet
from reviewer.fleet.group import Group, group_regions
from reviewer.fleet.limiter import LimitedTransport, SharedLimiter
from reviewer.fleet.render import fleet_dict, render_html, render_markdown
from reviewer.redact import redact
from reviewer.webclient import RetryPolicy

FLEET_JSON, FLEET_MD, FLEET_HTML = "fleet.json", "fleet.md", "fleet.html"


@dataclass(frozen=True)
class FleetRun:
    sites: list[SiteResult]
    groups: list[Group]
    data: dict[str, Any]
    out: Path


def fleet_client(token: str, api_url: str, limiter: SharedLimiter, *, retry: RetryPolicy | None = None,
                 inner: httpx.BaseTransport | None = None) -> CircleCIClient:
    """One client for every site, its requests passing through the fleet's shared limiter."""
    return CircleCIClient(token, api_url, LimitedTransport(inner or httpx.HTTPTransport(), limiter), retry=retry)


def run_fleet(client: CircleCIClient, names: Sequence[str], opts: FleetOptions, *,
              limiter: SharedLimiter | None = None, progress: Progress | None = None) -> FleetRun:
    sites = gather_fleet(client, names, opts, progress)
    groups = group_regions([i for s in sites for i in s.items])
    rate = ({"pauses": len(limiter.pauses), "paused_s": round(sum(limiter.pauses), 3),
             "waited_s": round(limiter.waited, 3)} if limiter is not None else None)
    data = fleet_dict(sites, groups, tag=opts.tag, since=opts.since, rate_limit=rate)
    write_outputs(data, opts.out)
    return FleetRun(sites, groups, data, opts.out)


def write_outputs(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / FLEET_MD, render_markdown(data, page_link=FLEET_HTML))
    write_text_atomic(out / FLEET_HTML, render_html(data))
    # Last: its presence means the other two of that run are complete (as review.json).
    write_text_atomic(out / FLEET_JSON, redact(json.dumps(data, indent=1, ensure_ascii=False)) + "\n")
