"""The ``osha`` command line.

Errors: commands raise :class:`~osha.errors.OshaError`; :func:`main` prints one screen (the
message and a hint) and exits with the error's code. A traceback appears only with ``--debug``.
Exit codes: 0 ok, 1 a check failed, 2 invalid input, 3 aborted.
"""

from __future__ import annotations

import sys
import traceback

import typer

from osha import __version__
from osha.cli._state import state
from osha.cli.audit import register as register_audit
from osha.cli.faults import app as faults_app
from osha.cli.ledger import app as ledger_app
from osha.cli.report import register as register_report
from osha.cli.run import register as register_run_commands
from osha.errors import OshaError
from osha.wire import SCHEMA_VERSION

__all__ = ["app", "main"]

app = typer.Typer(
    rich_markup_mode="markdown",
    name="osha",
    help="High-availability testing for OpenStack clouds.\n\n"
    "osha disrupts a cloud on a schedule (kills services, reboots nodes, pauses containers) "
    "while monitors watch it and Rally runs load, and records everything in a replayable "
    "ledger. Exit codes: 0 ok, 1 a check failed, 2 invalid input, 3 aborted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    state.debug = debug


@app.command()
def version() -> None:
    """Print osha's version and the ledger schema version."""
    typer.echo(f"osha {__version__} (ledger schema {SCHEMA_VERSION})")


app.add_typer(ledger_app, name="ledger", help="Inspect, verify and export recorded ledgers.")
app.add_typer(faults_app, name="faults", help="Plan, check and recover faults.")
register_run_commands(app)
register_report(app)
register_audit(app)


def _print_error(exc: OshaError) -> None:
    if state.debug:
        traceback.print_exception(exc, file=sys.stderr)
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)
    if not state.debug:
        typer.echo("(run with --debug for a traceback)", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``osha`` console script."""
    state.debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, prog_name="osha")
    except OshaError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
