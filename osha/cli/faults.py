"""``osha faults plan|recover``: the planned fault timeline, and recovery after a crash.

``app`` is a typer sub-app; the main CLI mounts it as ``osha faults``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osha import registry
from osha.errors import EXIT_FAILED, OshaError, PluginError
from osha.faults import plan_rows, recover
from osha.inputs import load_checked
from osha.plugin import check_offline
from osha.report import terminal_safe
from osha.rundir import private_umask
from osha.schedule import child_seed

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Plan faults (dry run) and recover faults a dead run left behind.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("plan")
def plan(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")],
    seed: Annotated[
        int | None, typer.Option(help="The campaign seed (default: [campaign] seed).")
    ] = None,
) -> None:
    """Print the full planned fault timeline of a profile (a dry run: nothing is touched)."""
    prof = load_checked(profile_path)
    used = prof.campaign.seed if seed is None else seed
    try:
        rows = plan_rows(prof, used)
    except PluginError as exc:
        raise OshaError(f"cannot plan {profile_path}: {exc.message}", hint=exc.hint) from None
    typer.echo(f"{profile_path}: seed {used}, {len(rows)} planned fault(s)")
    for row in rows:
        typer.echo(row.render())
    if prof.guard.quorum:
        typer.echo(f"quorum guard: {prof.guard.describe_quorum()}; checked at each inject "
                   "against the cluster monitors' states, not in this plan")  # fmt: skip


@app.command("check")
def check(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")],
) -> None:
    """Pre-flight every disruptor of a profile: targets, services, containers, SSH, power.
    Reads only (no fault is injected); exit 1 if any check fails."""
    prof = load_checked(profile_path)
    failed = 0
    for entry in prof.actors:
        if entry.kind != "disruptor":
            continue
        cls = registry.load("disruptor", entry.plugin)
        seed = child_seed(prof.campaign.seed, entry.id)
        findings = check_offline(cls, entry.config, actor_id=entry.id, seed=seed)
        for f in findings:
            failed += not f.ok
            mark = "ok  " if f.ok else "FAIL"
            typer.echo(f"{mark} {entry.id}: {f.target}: {f.message}")
            if f.hint and not f.ok:
                typer.echo(f"       hint: {f.hint}")
    if failed:
        raise OshaError(
            f"{failed} disruptor check(s) failed",
            hint="fix what each FAIL line says",
            exit_code=EXIT_FAILED,
        )


@app.command("recover")
def recover_cmd(
    run_dir: Annotated[Path, typer.Argument(help="The run directory, like runs/RUN-ID.osha.")],
    profile_path: Annotated[
        Path | None,
        typer.Option("--profile", help="The profile of the run (default: the one it recorded)."),
    ] = None,
) -> None:
    """Revert every fault lease of a dead run that was never reverted, and report."""
    with private_umask():  # its record of the reverts goes into the (private) run directory
        report = recover(run_dir, profile_path=profile_path)
    typer.echo(terminal_safe(report.render()))
    if report.failed:
        raise OshaError(
            f"{len(report.failed)} fault(s) could not be reverted",
            hint="fix what the errors say, then run osha faults recover again",
            exit_code=EXIT_FAILED,
        )
