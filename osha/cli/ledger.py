"""``osha ledger show|tail|export|verify``: inspect, follow, export and verify a ledger.

``app`` is a typer sub-app; the main CLI mounts it as ``osha ledger``. It can also run on its
only through the main CLI (``python -m osha ledger …`` works too). Importing it has no side effects.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from osha.cli._checks import finite
from osha.errors import EXIT_FAILED, EXIT_INVALID, OshaError, WireError
from osha.ledger import LedgerReader, Position, RawRecord, verify
from osha.ledger.sequence import MAX_LISTED
from osha.messages import LedgerHeader, Message
from osha.report import terminal_safe
from osha.wire import decode, peek_tag

__all__ = ["app", "message_to_json"]

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Inspect, verify and export recorded ledgers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_RUN_DIR = typer.Argument(..., help="The run directory, like runs/RUN-ID.osha.", show_default=False)
MAX_TAIL = 1_000_000  # records `tail -n` keeps in memory; `export` writes any number


def message_to_json(msg: Message) -> dict[str, Any]:
    """A message as a JSON-able dict: ``tag`` first, then its fields; bytes as base64."""
    out: dict[str, Any] = {"tag": msg.TAG}
    for field in dataclasses.fields(msg):
        value = getattr(msg, field.name)
        out[field.name] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return out


def _line(msg: Message) -> str:
    stamp = datetime.fromtimestamp(msg.wall_s).strftime("%H:%M:%S.%f")[:-3]
    fields = message_to_json(msg)
    for key in ("tag", "sender", "seq", "mono_s", "wall_s"):
        fields.pop(key)
    body = json.dumps(fields, separators=(",", ":"), default=str)
    return f"{stamp} {msg.sender}#{msg.seq} {msg.TAG} {body}"


@app.command()
def show(run_dir: Path = _RUN_DIR) -> None:
    """Header, record counts by tag and sender, time span, and whether the run closed cleanly.
    Exit 1 when the ledger has problems (it prints FAILED), like verify."""
    report = verify(run_dir)
    if report.header is not None and report.header.profile_path:
        typer.echo(terminal_safe(f"profile: {report.header.profile_path}"))
    typer.echo(terminal_safe(report.render()))
    code = report.exit_code()
    if code:
        raise typer.Exit(code)


@app.command()
def verify_(
    run_dir: Path = _RUN_DIR,
    strict: bool = typer.Option(
        False, "--strict", help="Also fail on a torn tail or a run that did not close cleanly."
    ),
    resync: bool = typer.Option(
        True,
        "--resync/--stop-at-corruption",
        help="Read past a corrupt record to the next good one, or stop at the first.",
    ),
) -> None:
    """Check every CRC, segment header and per-sender sequence. Exit 0 when clean, else 1."""
    report = verify(run_dir, resync=resync)
    typer.echo(terminal_safe(report.render(strict=strict)))
    code = report.exit_code(strict=strict)
    if code:
        raise typer.Exit(code)


verify_.__name__ = "verify"
app.registered_commands[-1].name = "verify"


@app.command()
def tail(
    run_dir: Path = _RUN_DIR,
    lines: int = typer.Option(
        10, "-n", "--lines", min=0, max=MAX_TAIL, help="How many records to show."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new records."),
    poll_s: float = typer.Option(
        0.2, "--poll-s", min=0.01, max=3600, callback=finite, help="Poll interval for --follow."
    ),
    follow_for_s: float | None = typer.Option(
        None, "--follow-for-s", hidden=True, help="Stop following after this long (tests)."
    ),
) -> None:
    """The last records, one line each; with --follow, new records as they arrive (Ctrl-C)."""
    reader = LedgerReader(run_dir)
    last: deque[RawRecord] = deque(maxlen=lines)
    for rec in reader.records():
        last.append(rec)
    for rec in last:
        _echo_record(rec)
    _warn_damage(reader)
    if not follow:
        return
    position = reader.end
    deadline = None if follow_for_s is None else time.monotonic() + follow_for_s
    try:
        while deadline is None or time.monotonic() < deadline:
            position = _follow_once(reader, position)
            time.sleep(poll_s)
    except KeyboardInterrupt:
        return


def _follow_once(reader: LedgerReader, position: Position) -> Position:
    for rec in reader.records(position):
        _echo_record(rec)
    sys.stdout.flush()
    return reader.end


def _echo_record(rec: RawRecord) -> None:
    """One record as one line, its strings made safe for the terminal; a record that does
    not decode is a warning on stderr, not the end of the command."""
    try:
        msg = decode(rec.payload)
    except WireError as exc:
        typer.echo(f"warning: damaged record at {Position(rec.segment, rec.offset)}: "
                   f"{terminal_safe(exc.message)}", err=True)  # fmt: skip
        return
    typer.echo(terminal_safe(_line(msg)))


def _warn_damage(reader: LedgerReader) -> None:
    for problem in [*reader.corruptions, *reader.raw_problems]:
        typer.echo(f"warning: {problem}", err=True)
    if reader.tear is not None:
        typer.echo(f"warning: {reader.tear}", err=True)


def _parse_time(value: str | None, start_wall_s: float, option: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None  # not a number: an ISO date-time, then
    if seconds is not None:
        if not math.isfinite(seconds):
            raise OshaError(
                f"{option} {value!r} is not a finite number of seconds",
                hint=f"use e.g. {option} 90 or {option} 2025-01-31T12:00:00",
                exit_code=EXIT_INVALID,
            )
        return start_wall_s + seconds
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise OshaError(
            f"{option} {value!r} is neither seconds from the start nor an ISO date-time",
            hint=f"use e.g. {option} 90 or {option} 2025-01-31T12:00:00",
            exit_code=EXIT_INVALID,
        ) from None


def _matching(
    reader: LedgerReader,
    *,
    tags: list[str],
    senders: list[str],
    since_s: float | None,
    until_s: float | None,
    damaged: list[str],
) -> Iterator[Message]:
    for rec in reader.records():
        try:
            if tags and not any(fnmatchcase(peek_tag(rec.payload), t) for t in tags):
                continue
            msg = decode(rec.payload)
        except WireError as exc:
            damaged.append(f"damaged record at {Position(rec.segment, rec.offset)}: {exc}")
            continue
        if senders and not any(fnmatchcase(msg.sender, s) for s in senders):
            continue
        if since_s is not None and msg.wall_s < since_s:
            continue
        if until_s is not None and msg.wall_s > until_s:
            continue
        yield msg


@app.command()
def export(
    run_dir: Path = _RUN_DIR,
    *,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only these tags (glob, repeatable).")
    ] = None,
    sender: Annotated[
        list[str] | None, typer.Option("--sender", help="Only these senders (glob, repeatable).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Wall-clock ISO time, or seconds from the start of the run."),
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Like --since.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write records as JSON lines, filtered by tag, sender and time range. Damaged records
    are skipped with a warning each (the rest is exported) and the exit code is then 1."""
    reader = LedgerReader(run_dir)
    header = reader.header()  # the header's copy if the first record is damaged
    start_wall_s = header.started_wall_s if isinstance(header, LedgerHeader) else 0.0
    since_s = _parse_time(since, start_wall_s, "--since")
    until_s = _parse_time(until, start_wall_s, "--until")
    tags, senders = tag or [], sender or []
    damaged: list[str] = []
    records = _matching(
        reader, tags=tags, senders=senders, since_s=since_s, until_s=until_s, damaged=damaged
    )
    if output is None:
        _write_lines(sys.stdout, records)
    else:
        with _open_output(output) as out:
            count = _write_lines(out, records)
        typer.echo(f"wrote {count} records to {output}", err=True)
    for problem in damaged[:MAX_LISTED]:
        typer.echo(f"warning: {terminal_safe(problem)}", err=True)
    if len(damaged) > MAX_LISTED:
        typer.echo(f"warning: ... {len(damaged) - MAX_LISTED} more damaged records", err=True)
    _warn_damage(reader)
    if damaged or reader.corruptions or reader.raw_problems:
        raise typer.Exit(EXIT_FAILED)


def _open_output(path: Path) -> TextIO:
    """``path`` opened for writing, or a clean error saying why it cannot be."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        why = "it is a folder" if path.is_dir() else exc.strerror or str(exc)
        raise OshaError(
            f"cannot write the export to {path}: {why}",
            hint="give -o a file path in a folder that exists, e.g. -o run.jsonl",
            exit_code=EXIT_INVALID,
        ) from exc


def _write_lines(out: TextIO, msgs: Iterator[Message]) -> int:
    count = 0
    for msg in msgs:
        out.write(json.dumps(message_to_json(msg), separators=(",", ":"), default=str))
        out.write("\n")
        count += 1
    return count
