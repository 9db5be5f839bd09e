"""Command line: one module per command group; each parses, calls the library once, prints.

Exit codes (every command):
  0  the decision is approve / the action succeeded
  1  the report could not be analysed, or an action failed
  2  bad usage: wrong option, unreadable config
  3  the decision is hold (or an approval was refused)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from reviewer.errors import Interrupted, ReviewerError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HOLD = 0, 1, 2, 3

HELP = """Review BackstopJS visual-regression reports before a Planet 4 release goes to production.

Start here, on a report on your disk (a backstop_data folder, its html_report, or a .zip):

    reviewer analyze path/to/backstop_data --out reports/mine

then open reports/mine/index.html. For a CircleCI release: reviewer review planet4-<nro> --tag TAG.

Exit codes: 0 approve/success, 1 could not analyse or action failed, 2 bad usage, 3 hold.
Add --debug to any command for a traceback when something goes wrong."""

app = typer.Typer(
    name="reviewer",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"reviewer {version('reviewer')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("reviewer (not installed: run scripts/setup.sh)")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                     help="print the version and exit")] = False) -> None:
    pass


def short_help(fn: Callable[..., None]) -> str:
    """A command's first docstring sentence, whole: the command list must not cut it mid-sentence."""
    first = (fn.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split())


def _register() -> None:
    from reviewer.cli import analyze_cmd, browser_cmds, circleci_cmds

    for module in (analyze_cmd, circleci_cmds, browser_cmds):
        for name, fn in module.COMMANDS.items():
            app.command(name, short_help=short_help(fn))(fn)
    from reviewer.cli import fleet_cmds  # a command group (fleet, fleet approve, fleet serve)

    fleet_cmds.register(app)


_register()


def _on_sigint(signum: int, frame: object) -> None:
    # Raised instead of KeyboardInterrupt so the CLI library does not swallow it: the user
    # gets one clear line and exit code 130.
    raise Interrupted()


def main() -> None:
    import signal

    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        # Standalone mode: the CLI library reports usage errors itself (exit 2).
        app()
    except (ReviewerError, Interrupted) as exc:
        _fail(f"error: {exc}", exc.exit_code, debug)
    except Exception as exc:  # last line of defence: say what happened, never a raw traceback
        _fail(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)", EXIT_FAILED, debug)
    finally:
        # The outcome is settled: a Ctrl-C now must not kill the interpreter while it exits
        # (it would turn a finished run's exit code into "killed by SIGINT").
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _fail(message: str, code: int, debug: bool) -> None:
    from reviewer.redact import redact

    if debug:
        import traceback

        typer.echo(redact(traceback.format_exc()), err=True)
    typer.echo(redact(message), err=True)
    sys.exit(code)
