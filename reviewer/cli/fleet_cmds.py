"""`reviewer fleet`: one release across many Planet 4 sites; `reviewer fleet approve` acts on it.

    reviewer fleet [NAMES...] [--sites FILE] [--tag T | --since DATE]    (= reviewer fleet review ...)
    reviewer fleet approve --clean | --accept GROUP... --reason TEXT [--dry-run]
    reviewer fleet serve    the fleet page with Approve clean sites / Accept group buttons

Exit codes: 0 every site was reviewed (fleet) / every selected approval went through or was
already done (approve); 1 a site failed (fleet) or an approval failed; 2 bad usage;
3 some site holds (fleet) or an approval was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from reviewer.cli.output import EXIT_FAILED, EXIT_HOLD, EXIT_OK, note, say, serve_until_stopped
from reviewer.cli.output import err as _err
from reviewer.cli.output import out as _out
from reviewer.errors import UsageError
from reviewer.github import commit_lookup as github_commit_lookup

DEFAULT_OUT = Path("reports/fleet")
STYLE = {"approve": "green", "hold": "red", "wait": "yellow", "error": "red", "none": "dim", "approved": "dim"}


class _DefaultToReview(TyperGroup):
    """`reviewer fleet africa brasil` runs `reviewer fleet review africa brasil`: the names
    come first, and a group would otherwise take the first name for a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["review", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultToReview, no_args_is_help=False, add_completion=False, rich_markup_mode=None,
                  help="Review one release across many Planet 4 sites, each change once; approve the fleet.\n\n"
                  "`reviewer fleet [NAMES]... [OPTIONS]` is short for `reviewer fleet review ...`.")

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="the fleet's folder: fleet.json, fleet.md, fleet.html")]
ApiUrlOpt = Annotated[str | None, typer.Option("--api-url", envvar="CIRCLECI_API_URL",
                                               help="CircleCI API v2 base URL [default: https://circleci.com/api/v2]")]
AuditOpt = Annotated[Path, typer.Option("--audit-log", help="JSON-lines audit log to append to")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="reviewer.toml or pyproject.toml with settings")]


def _client(api_url: str | None, limiter: Any) -> Any:
    import os

    from reviewer.circleci import API_URL_ENV, DEFAULT_API_URL, token_from_env
    from reviewer.fleet.run import fleet_client

    return fleet_client(token_from_env(), api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL, limiter)


@app.command("review")
def review(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAMES", show_default=False,
        help="sites: an NRO (africa), planet4-<nro> or a full slug")] = None,
    sites: Annotated[Path | None, typer.Option("--sites", help="a file with one site a line (planet4-base's "
                                               "sites.txt)")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="the release tag, the same on every site "
                                            "[default: each site's newest release waiting on hold-production]")
                   ] = None,
    since: Annotated[str | None, typer.Option("--since", help="only releases created on or after DATE "
                                              "(2026-12-01 or 2026-12-01T09:00, UTC)")] = None,
    out: OutOpt = DEFAULT_OUT,
    concurrency: Annotated[int, typer.Option("--concurrency", "-j", min=1, max=32,
                                             help="sites, and CircleCI requests, at once")] = 8,
    local: Annotated[bool, typer.Option("--local/--no-local", help="fetch and analyse here when a compare job "
                                        "stored no usable review.json")] = True,
    config: ConfigOpt = None, api_url: ApiUrlOpt = None,
) -> None:
    """Review the release of every site: one line per site, each change grouped across sites.

    Sites: NAMES, --sites FILE, or `sites = [...]` in the [fleet] table of reviewer.toml.
    Per site: the newest release whose hold-production waits (or --tag / --since), its
    analysis from the review.json `reviewer ci` stored with visualtests-compare (checked
    against the report), or else fetched and analysed here. Writes OUT/fleet.json, fleet.md
    and fleet.html. Exit code: 0 every site reviewed and none holds, 3 some hold or wait,
    1 some site failed.

    Example: reviewer fleet --sites sites.txt --tag v2.31.0
    """
    from reviewer.config import load_settings
    from reviewer.fleet.gather import FleetOptions
    from reviewer.fleet.limiter import SharedLimiter
    from reviewer.fleet.run import FLEET_HTML, FLEET_MD, run_fleet
    from reviewer.fleet.sites import choose_sites

    if tag and since:
        raise UsageError("--tag and --since exclude each other: --tag names the release, --since finds it")
    chosen = choose_sites(list(names or []), sites, config)
    settings, _origin = load_settings(config)
    limiter = SharedLimiter(concurrency)
    opts = FleetOptions(out=out, tag=tag, since=since, concurrency=concurrency, settings=settings,
                        commit_lookup=github_commit_lookup, local_fallback=local)
    note(f"reviewing {len(chosen)} site(s), {concurrency} at a time, into {out}")
    cols: list[Any] = [TextColumn("sites"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                       TimeElapsedColumn()]
    with _client(api_url, limiter) as client, Progress(*cols, console=_err, transient=True,
                                                       disable=not _err.is_terminal) as bar:
        task = bar.add_task("", total=len(chosen))

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, description=name)

        run = run_fleet(client, chosen, opts, limiter=limiter, progress=progress)
    _print_sites(run.data)
    say(f"fleet page: {out / FLEET_HTML}   summary: {out / FLEET_MD}")
    decisions = {s["decision"] for s in run.data["sites"]}
    raise typer.Exit(EXIT_FAILED if "error" in decisions else EXIT_HOLD if decisions & {"hold", "wait"}
                     else EXIT_OK)


def _print_sites(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="fleet", show_lines=False)
    for col in ("site", "status", "tag", "changed", "noise", "error", "groups / why"):
        table.add_column(col)
    for s in data["sites"]:
        c = s["counts"]
        why = s["error"] or " ".join(s["groups"]) or s.get("blocker") or ""
        style = STYLE.get(s["decision"], "")
        table.add_row(escape(s["name"]), f"[{style}]{s['status']}[/]", escape(s["tag"] or ""),
                      str(c.get("changed", "")), str(c.get("noise", "")), str(c.get("error", "")), escape(why[:120]))
    _out.print(table)
    for g in data["groups"][:10]:
        say(f"group {g['id']}: {g['kind']}, {len(g['sites'])} site(s), {len(g['pages'])} page(s), "
            f"score {g['score']:.2f}")
    rate = data.get("rate_limit") or {}
    if rate.get("pauses"):
        note(f"CircleCI rate-limited the fleet {rate['pauses']} time(s); every site paused "
             f"{rate['paused_s']:.1f} s in all")


@app.command("approve")
def approve(
    clean: Annotated[bool, typer.Option("--clean", help="approve every site whose every check passed")] = False,
    accept: Annotated[list[str] | None, typer.Option(
        "--accept", metavar="GROUP", help="approve the sites whose only changes are in these groups (repeatable; "
        "needs --reason)")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="what you inspected (required with --accept)")
                      ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be approved; send nothing")] = False,
    only: Annotated[list[str] | None, typer.Option("--site", help="only this site (repeatable)")] = None,
    source: Annotated[Path, typer.Option("--from", help="the folder `reviewer fleet` wrote")] = DEFAULT_OUT,
    audit_log: AuditOpt = Path("reports/audit.jsonl"), api_url: ApiUrlOpt = None,
) -> None:
    """Approve hold-production of the fleet's sites, each through the same checks as `reviewer approve`.

    Acts on OUT/fleet.json, what `reviewer fleet` showed: --clean approves the sites whose
    every check passed; --accept GROUP --reason TEXT also approves the sites whose only
    changes are in the accepted groups ([HOLD], a running compare job or an approval not on
    hold still refuse). Each site is re-read in CircleCI first; one audit line per approval,
    naming the groups. Running it again approves nothing twice.
    Exit code: 0 all went through, 3 some refused, 1 some failed.

    Example: reviewer fleet approve --accept colour-1a2b3c4d --reason "new button colour of the theme, checked"
    """
    from reviewer.fleet.act import approve_fleet, load_fleet
    from reviewer.fleet.limiter import SharedLimiter
    from reviewer.fleet.run import FLEET_JSON

    data = load_fleet(source / FLEET_JSON)
    results = []
    with _client(api_url, SharedLimiter(4)) as client:
        def show(action: Any) -> None:
            style = {"approved": "green", "would approve": "green", "refused": "red", "failed": "red"}.get(
                action.outcome, "dim")
            groups = f" [{', '.join(action.groups)}]" if action.groups else ""
            _out.print(f"[{style}]{escape(action.outcome)}[/] {escape(action.name)}{escape(groups)}: "
                       f"{escape(action.message)}")

        results = approve_fleet(client, data, clean=clean, accept=list(accept or []), reason=reason,
                                dry_run=dry_run, audit_log=audit_log, commit_lookup=github_commit_lookup,
                                only=list(only or []), progress=show)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    say(" · ".join(f"{n} {k}" for k, n in counts.items()) or "no sites")
    if not dry_run and counts.get("approved"):
        say(f"audit: {audit_log}")
    raise typer.Exit(EXIT_FAILED if counts.get("failed") else EXIT_HOLD if counts.get("refused") else EXIT_OK)


@app.command("serve")
def serve(
    source: Annotated[Path, typer.Option("--from", help="the folder `reviewer fleet` wrote")] = DEFAULT_OUT,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="port (0: any free port)")] = 0,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="also answer requests for this host name (repeatable); needed to listen beyond "
                             "this machine")] = None,
    open_page: Annotated[bool, typer.Option("--open", help="open the page in the default browser")] = False,
    audit_log: AuditOpt = Path("reports/audit.jsonl"), api_url: ApiUrlOpt = None,
) -> None:
    """Serve the fleet page on 127.0.0.1 with Approve clean sites and Accept group buttons.

    The buttons run `reviewer fleet approve --clean` / `--accept GROUP --reason TEXT` on the
    fleet.json served, with the same checks and audit lines; the rules of `reviewer serve`
    apply (this machine only, the page's own origin, a per-session secret).

    Example: reviewer fleet serve --open
    """
    from reviewer.fleet.limiter import SharedLimiter
    from reviewer.fleet.serve import make_fleet_server

    client = _client(api_url, SharedLimiter(4))
    try:
        server = make_fleet_server(source, client=client, audit_log=audit_log, host=host, port=port,
                                   allow_host=tuple(allow_host or ()), commit_lookup=github_commit_lookup,
                                   log=note)
    except BaseException:
        client.close()
        raise
    server.on_close.append(client.close)
    serve_until_stopped(server, "fleet page", open_page)


def register(root: typer.Typer) -> None:
    # The command list shows this whole, not cut at click's 45 characters.
    root.add_typer(app, name="fleet", short_help="Review one release across many Planet 4 sites, each change once.")
