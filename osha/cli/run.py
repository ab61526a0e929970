"""``osha run-actors``: start the actors a profile lists and record a ledger.

A temporary command until ``osha campaign start`` (issue 6) takes its place: no health gate,
no load, no phases; just the supervised actors, until ``duration_s`` or Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from osha import __version__, profile
from osha.errors import EXIT_ABORTED, LedgerError, OshaError
from osha.ledger import LedgerOptions, LedgerWriter, verify
from osha.messages import LedgerHeader
from osha.recorder import RecorderFailed, RecorderHandle
from osha.redaction import redact_value
from osha.supervisor import (
    ChildSpec,
    Restart,
    StopReason,
    Supervisor,
    SupervisorSpec,
    run_supervised,
)
from osha.wire import SCHEMA_VERSION

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the run commands to the root app."""
    app.command("run-actors")(run_actors)
    app.command("validate")(validate)


ProfileArg = Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")]


def validate(profile_path: ProfileArg) -> None:
    """Check a profile completely (every key, type, plugin and id) without running anything."""
    prof = profile.load(profile_path)
    typer.echo(
        f"{profile_path}: valid ({len(prof.actors)} actors: "
        + ", ".join(f"{a.kind} {a.id} [{a.plugin}]" for a in prof.actors)
        + ")"
    )


def run_actors(
    profile_path: ProfileArg,
    duration_s: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds (overrides [campaign] duration_s)."),
    ] = None,
    ledger_dir: Annotated[
        Path | None,
        typer.Option(help="Where to create the run directory (overrides [campaign] ledger_dir)."),
    ] = None,
) -> None:
    """Start the monitors, disruptors and runners a profile lists, supervised, and record a
    ledger until the duration passes or Ctrl-C. Prints the run directory and a summary."""
    prof = profile.load(profile_path)
    run_id = _run_id(prof.campaign.name)
    base = ledger_dir if ledger_dir is not None else prof.resolve(prof.campaign.ledger_dir)
    run_dir = base / f"{run_id}.osha"
    duration = duration_s if duration_s is not None else prof.campaign.duration_s
    spec = _supervisor_spec(prof)

    header = LedgerHeader(
        sender="osha",
        seq=1,
        mono_s=time.monotonic(),
        wall_s=time.time(),
        schema_version=SCHEMA_VERSION,
        osha_version=__version__,
        run_id=run_id,
        host=socket.gethostname(),
        started_wall_s=time.time(),
        seed=prof.campaign.seed,
        profile=redact_value(prof.raw),
        profile_path=str(prof.path),
    )
    options = LedgerOptions(
        segment_size_bytes=prof.ledger.segment_size_bytes,
        flush_interval_s=prof.ledger.flush_interval_s,
        flush_records=prof.ledger.flush_records,
    )
    try:
        writer = LedgerWriter.create(run_dir, header, options=options)
    except OSError as exc:
        raise LedgerError(
            f"cannot create the ledger {run_dir}: {exc}",
            hint="check that ledger_dir is writable, or pass --ledger-dir",
        ) from exc

    typer.echo(f"run {run_id}: {len(spec.children)} actors, ledger {run_dir}")
    typer.echo("stop with Ctrl-C" + (f", or wait {duration:g} s" if duration else ""))
    stop = threading.Event()
    failures: list[RecorderFailed] = []

    def on_recorder_error(failure: RecorderFailed) -> None:
        failures.append(failure)
        stop.set()

    recorder = RecorderHandle.start(writer, on_error=on_recorder_error)
    outcome = None
    try:
        with _graceful_signals(stop) as reasons:
            outcome = run_supervised(
                spec,
                recorder,
                duration_s=duration,
                stop_event=stop,
                run_dir=run_dir,
                run_id=run_id,
                on_started=_announce,
            )
            if reasons:
                typer.echo(f"stopping: {reasons[-1]}")
    finally:
        recorder.close(timeout_s=30.0)
    if failures:
        raise failures[0].error
    _summarise(run_dir, outcome.reason if outcome else StopReason.INTERRUPT)


def _announce(sup: Supervisor) -> None:
    for child in sup.children():
        typer.echo(f"  started {child.id} (pid {child.pid})")


def _supervisor_spec(prof: profile.Profile) -> SupervisorSpec:
    return SupervisorSpec(
        children=tuple(
            ChildSpec(
                id=a.id,
                kind=a.kind,
                plugin=a.plugin,
                config=a.raw_config,
                restart=Restart(a.restart),
                shutdown_s=a.shutdown_s,
            )
            for a in prof.actors
        ),
        flags=prof.supervisor,
        seed=prof.campaign.seed,
    )


def _run_id(name: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


@contextmanager
def _graceful_signals(stop: threading.Event) -> Iterator[list[str]]:
    """SIGINT and SIGTERM set ``stop`` (a graceful stop) instead of raising; a second Ctrl-C
    while stopping is ignored: children are being stopped in order and the ledger closed."""
    reasons: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            os.write(2, f"\n{name} again: still stopping gracefully, please wait\n".encode())
            return
        reasons.append(name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield reasons
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _summarise(run_dir: Path, reason: StopReason) -> None:
    report = verify(run_dir)
    typer.echo(f"\nrun ended: {reason.value}")
    typer.echo(report.render())
    if report.exit_code() != 0:
        raise OshaError(
            f"the ledger {run_dir} did not verify cleanly",
            hint=f"run `osha ledger verify {run_dir}` for details",
            exit_code=EXIT_ABORTED,
        )
