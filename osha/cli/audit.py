"""``osha audit PROFILE|CLOUD``: one sweep of the audits, on demand, read-only.

With a profile, its ``[[audits]]`` (each with its own keys); with a cloud name (an entry of
clouds.yaml), every installed audit plugin with its defaults. Prints one row per audit and
every item found (``--json``: as data). Exit 0: nothing found; 1: something found, or an
audit could not look or was cut short by a bound; 2: bad input (a profile with problems, an
unknown cloud or audit).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from osha.audit import AuditEntry, AuditRun, available_audits, load_audit, sweep
from osha.errors import EXIT_FAILED, EXIT_INVALID, OshaError
from osha.messages import Message, stamp
from osha.messages.audit import AuditWhen
from osha.report.audit import sweep_lines
from osha.schema import build

__all__ = ["register"]

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="PROFILE|CLOUD",
        help="A profile (its [[audits]]) or a cloud name in clouds.yaml (every audit).",
    ),
]


def _looks_like_file(target: str) -> bool:
    return target.endswith(".toml") or "/" in target or Path(target).is_file()


def _from_profile(path: Path) -> list[AuditEntry]:
    from osha.profile import load  # noqa: PLC0415 - the profile loads the plugins it names

    prof = load(path)
    if not prof.audits:
        raise OshaError(
            f"{path}: the profile has no [[audits]]",
            hint='add one, e.g.\n  [[audits]]\n  plugin = "servers"\nor give a cloud name '
            "instead of the profile to run every audit",
            exit_code=EXIT_INVALID,
        )
    return list(prof.audits)


def _from_cloud(cloud: str, clouds_yaml: Path | None) -> list[AuditEntry]:
    entries = []
    raw: dict[str, Any] = {"cloud": cloud}
    if clouds_yaml is not None:
        raw["clouds_yaml"] = str(clouds_yaml.resolve())
    for name in sorted(available_audits()):
        cls = load_audit(name)
        if not cls.reads_cloud:
            continue
        config, problems = build(cls.config_type, raw, file="(command line)", key=name)
        if config is None:
            raise OshaError(str(problems[0]), exit_code=EXIT_INVALID)
        entries.append(AuditEntry(name, name, config))
    if not entries:
        raise OshaError("no audit plugin is installed", hint="pip install 'osha[openstack]'",
                        exit_code=EXIT_INVALID)  # fmt: skip
    return entries


def _check_cloud(entries: list[AuditEntry]) -> None:
    """Each audit's cloud is known (clouds.yaml is read; nothing is sent): a bad name is bad
    input, before anything runs."""
    for entry in entries:
        try:
            entry.build().connect()
        except OshaError as exc:
            raise OshaError(f"audit {entry.id}: {exc.message}", hint=exc.hint,
                            exit_code=EXIT_INVALID) from exc  # fmt: skip


def _select(entries: list[AuditEntry], only: list[str]) -> list[AuditEntry]:
    known = {e.id for e in entries}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise OshaError(
            f"--audit {unknown[0]!r}: no such audit here",
            hint=f"known: {', '.join(sorted(known))}",
            exit_code=EXIT_INVALID,
        )
    return [e for e in entries if not only or e.id in only]


def _as_data(runs: list[AuditRun]) -> list[dict[str, Any]]:
    return [
        {"audit": r.entry.id, "plugin": r.entry.plugin, "ok": r.ok, "error": r.error,
         "truncated": r.truncated, "elapsed_s": round(r.elapsed_s, 3),
         "items": [asdict(d) for d in r.found]}
        for r in runs
    ]  # fmt: skip


def audit(
    target: TargetArg,
    audit_names: Annotated[
        list[str] | None,
        typer.Option("--audit", metavar="ID", help="Run only this audit (repeatable)."),
    ] = None,
    clouds_yaml: Annotated[
        Path | None,
        typer.Option("--clouds-yaml", help="The clouds.yaml that holds CLOUD."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Audit the cloud once, read-only: servers left in ERROR or stuck, ports of deleted
    servers, placement allocations of no server, Rally projects and users left behind,
    services disabled or down. Exit 0 nothing found, 1 something found (or an audit could not
    look, or not to the end of its listings), 2 bad input."""
    if _looks_like_file(target):
        entries = _from_profile(Path(target))
    else:
        entries = _from_cloud(target, clouds_yaml)
    entries = _select(entries, audit_names or [])
    _check_cloud(entries)
    seq = itertools.count(1)

    def record(cls: type[Message], /, **fields: Any) -> Message:
        return stamp(cls, "audit", next(seq), **fields)  # on demand: shown, not recorded

    runs = sweep(entries, AuditWhen.ON_DEMAND, record)
    if as_json:
        typer.echo(json.dumps({"schema": "osha.audit/1", "audits": _as_data(runs)}, indent=2))
    else:
        typer.echo("\n".join(sweep_lines(runs)))
    if any(r.found or not r.ok or r.truncated for r in runs):  # cut short: not "nothing"
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``osha audit`` to the root app."""
    app.command(name="audit")(audit)
