"""`reviewer fleet serve`: the fleet page on 127.0.0.1 with Approve clean sites / Accept group.

The buttons run `reviewer fleet approve --clean` and `--accept GROUP --reason TEXT`
(reviewer.fleet.act: each site re-read in CircleCI, the same checks as `reviewer approve`, one
audit line per site). Everything about who may press them is reviewer.serve's: the server
answers only to this machine's names (or --allow-host), a POST must come from the page's own
origin, carry the per-session secret in a header and be JSON; the token stays in this process.
Only the request body differs: {"action": "approve-clean"} or {"action": "accept",
"groups": [...], "reason": "..."}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from reviewer.actions import CommitLookup
from reviewer.circleci import CircleCIClient
from reviewer.errors import UsageError
from reviewer.fleet.act import approve_fleet, load_fleet
from reviewer.fleet.render import render_html
from reviewer.fleet.run import FLEET_JSON
from reviewer.serve import (
    ENDPOINT,
    ActionHandler,
    RequestHandler,
    ReviewServer,
    ServeConfig,
    allowed_hosts,
    new_secret,
)

FLEET_ACTIONS = ("approve-clean", "accept")
_GROUP_ID = re.compile(r"^[a-z]+-[0-9a-f]{8}(-[0-9]+)?$")
MAX_GROUPS = 50


class _FleetHandler(RequestHandler):
    def _body(self) -> tuple[str, str | None, bool] | None:
        """(action, reason, False): `accept` carries its groups in the action, "accept ID ID"."""
        parsed = self._action_data(FLEET_ACTIONS)
        if parsed is None:
            return None
        data, reason = parsed
        action = str(data["action"])
        if action == "accept":
            groups = data.get("groups")
            if (not isinstance(groups, list) or not groups or len(groups) > MAX_GROUPS
                    or not all(isinstance(g, str) and _GROUP_ID.match(g) for g in groups)):
                self._refuse(HTTPStatus.BAD_REQUEST, "accept needs \"groups\": a list of group ids such as "
                                                     "colour-1a2b3c4d")
                return None
            action = " ".join(["accept", *groups])
        return action, reason, False


def fleet_handler(client: CircleCIClient, fleet_json: Path, *, audit_log: Path,
                  commit_lookup: CommitLookup | None = None) -> ActionHandler:
    def handle(action: str, reason: str | None, _force: bool) -> dict[str, Any]:
        kind, *groups = action.split()
        data = load_fleet(fleet_json)  # what the page shows: written by the `reviewer fleet` run served
        if kind == "accept" and not reason:
            raise UsageError("accepting a group needs a reason: say what you inspected")
        results = approve_fleet(client, data, clean=kind == "approve-clean", accept=groups, reason=reason,
                                dry_run=False, audit_log=audit_log, commit_lookup=commit_lookup)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return {"ok": not counts.get("failed"), "refused": bool(counts.get("refused")), "action": kind,
                "message": " · ".join(f"{n} {k}" for k, n in counts.items()) or "no sites",
                "sites": [{"name": r.name, "outcome": r.outcome, "message": r.message, "groups": list(r.groups)}
                          for r in results if r.outcome != "skipped"]}

    return handle


def make_fleet_server(fleet_dir: Path, *, client: CircleCIClient, audit_log: Path, host: str = "127.0.0.1",
                      port: int = 0, allow_host: tuple[str, ...] = (), commit_lookup: CommitLookup | None = None,
                      log: Callable[[str], None] | None = None) -> ReviewServer:
    hosts = allowed_hosts(host, allow_host)
    data = load_fleet(fleet_dir / FLEET_JSON)
    secret = new_secret()
    # Images are served below /images/ (the folder is the fleet's: crops under sites/).
    page = render_html(data, actions={"endpoint": ENDPOINT, "secret": secret}, image_prefix="images/")
    cfg = ServeConfig(page=page, images=fleet_dir, review_json=fleet_dir / FLEET_JSON, secret=secret,
                      allowed_hosts=hosts, log=log,
                      handler=fleet_handler(client, fleet_dir / FLEET_JSON, audit_log=audit_log,
                                            commit_lookup=commit_lookup))
    # The same checks as the review page's server; only the body of an action differs.
    return ReviewServer(cfg, host, port, handler_class=_FleetHandler)
