"""``osha campaign start|validate|status|stop|resume``: the product's main command.

``app`` is a typer sub-app; the root CLI mounts it as ``osha campaign`` (see
:mod:`osha.cli.run`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from osha import profile
from osha.audit import HARD_MARGIN_S
from osha.campaign.console import campaign_console
from osha.campaign.control import find_run, read_status, request_stop
from osha.campaign.repeat import repeat_seed, run_repeated
from osha.campaign.session import ResumeRequest, StartOptions, run_campaign
from osha.campaign.status import FinalVerdict
from osha.campaign.view import render
from osha.cli._checks import finite
from osha.cli._pace import baseline_warnings
from osha.errors import EXIT_ABORTED, EXIT_OK, OshaError
from osha.inputs import load_checked
from osha.profile import Profile
from osha.report import terminal_safe

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Run an HA campaign: health gate, load, baseline, chaos, recovery, verdict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProfileArg = Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")]
RunArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN", help="The run directory (runs/RUN-ID.osha), a run id, or 'latest'."
    ),
]
LiveOpt = Annotated[
    bool | None,
    typer.Option(
        "--live/--plain", help="The live view or plain lines (default: live on a terminal)."
    ),
]
SelfChaosOpt = Annotated[
    float | None,
    typer.Option(
        help="Test mode: SIGKILL one of osha's own actor processes every N s (each crash is "
        "recorded; the supervisor restarts the actor, the broker reverts its faults).",
        callback=finite,
        min=0,
    ),
]
# `osha campaign start`'s options (each parameter's name gives its flag, e.g. --chaos-s)
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Run even if the health gate finds problems.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the planned timeline; touch nothing.")
]
LedgerDirOpt = Annotated[
    Path | None, typer.Option(help="Where to create the run (default: [campaign] ledger_dir).")
]
BaselineOpt = Annotated[
    float | None, typer.Option(help="Override [campaign] baseline_s.", callback=finite, min=0)
]
ChaosOpt = Annotated[
    float | None, typer.Option(help="Override [campaign] chaos_s.", callback=finite, min=0)
]
RecoveryOpt = Annotated[
    float | None,
    typer.Option(help="Override [campaign] recovery_timeout_s.", callback=finite, min=0),
]
CyclesOpt = Annotated[
    int | None, typer.Option(help="A soak: override [campaign] cycles (and until).")
]
RepeatOpt = Annotated[
    int | None,
    typer.Option(
        "--repeat",
        min=1,
        help="Run N campaigns back to back (run 1 with the profile's seed, run i with "
        "child_seed(seed, 'repeat:i')), each its own ledger, then print their aggregate. "
        "Ctrl-C stops the current run gracefully and starts no other. Exit code: the worst.",
    ),
]
RunsDirOpt = Annotated[
    Path, typer.Option("--runs-dir", help="Where to look up a run id or 'latest'.")
]


def _describe(prof: Profile) -> str:
    c = prof.campaign
    kinds = ", ".join(f"{a.kind} {a.id} [{a.plugin}]" for a in prof.actors)
    loads = ", ".join(f"{entry.id} [{entry.plugin} x{entry.config.count}]" for entry in prof.loads)
    chaos = f"chaos {c.chaos_s:g} s"
    if c.soak:
        chaos = f"soak of {c.planned_cycles} cycles x {c.cycle_s:g} s"
    return (
        f"campaign {c.name!r}, seed {c.seed}: warm-up <= {c.warmup_s:g} s, baseline >= "
        f"{c.baseline_s:g} s, {chaos},"
        f" recovery up to {c.recovery_timeout_s:g} s\n  actors: {kinds or 'none'}\n"
        f"  load: {loads or 'none'}\n  slo: {'yes' if prof.slo is not None else 'none'}"
        + _audits(prof)
    )


def _audits(prof: Profile) -> str:
    """The dry run's audits line (none without ``[[audits]]``): each sweep's wait bound."""
    if not prof.audits:
        return ""
    each = ", ".join(f"{e.id} [{e.plugin}]" for e in prof.audits)
    bound_s = max(e.config.timeout_s for e in prof.audits) + HARD_MARGIN_S
    return (f"\n  audits: {each}; swept before the load and after the teardown, each sweep "
            f"at most {bound_s:g} s")  # fmt: skip


@app.command()
def validate(
    profile_path: ProfileArg,
    pace_from: Annotated[
        Path | None,
        typer.Option(
            "--pace-from",
            metavar="LEDGER",
            help="A previous run whose runners' pace (s per iteration) tells whether the "
            "baseline will hold enough iterations (default: an assumed pace, printed).",
        ),
    ] = None,
) -> None:
    """Check a profile completely (every key, type, plugin and id, and every file it names:
    inventory, clouds.yaml entry, Rally task, SSH key, known_hosts) without running anything.
    Warns (exit 0) when a runner's baseline is too short for the degradation method."""
    prof = load_checked(profile_path)
    warnings = baseline_warnings(prof, pace_from)  # a bad LEDGER is bad input: exit 2 first
    typer.echo(f"{profile_path}: valid\n  {_describe(prof)}")
    for warning in warnings:
        typer.echo(f"warning: {warning}")


def _dry_run(prof: Profile) -> None:
    from osha.faults import plan_rows  # noqa: PLC0415 - the plugins load only for a dry run

    c = prof.campaign
    typer.echo(f"{prof.path}: dry run, nothing is touched\n  {_describe(prof)}")
    typer.echo("\ntimeline (T = the chaos start):")
    typer.echo(
        f"  T-{c.warmup_s + c.baseline_s:g}s  the actors start; runners warm up (at most "
        f"{c.warmup_s:g} s); then the baseline: no faults"
    )
    if c.soak:
        typer.echo(
            f"  soak: {c.planned_cycles} cycles of {c.cycle_s:g} s (about "
            f"{c.planned_cycles * c.cycle_s / 3600:.1f} h): each {c.cycle_baseline_s:g} s "
            f"quiet, a {c.chaos_s:g} s fault window, {c.cycle_recovery_s:g} s to recover; "
            "cycle 1 below (every cycle draws its own random picks)"
        )
        typer.echo(f"  T+{c.cycle_baseline_s:g}s  cycle 1's fault window opens")
    shift_s = c.cycle_baseline_s if c.soak else 0.0
    for planned in plan_rows(prof, c.seed):
        row = dataclasses.replace(planned, offset_s=planned.offset_s + shift_s)
        typer.echo("  " + row.render())
        if planned.offset_s + planned.down_s > c.chaos_s:
            typer.echo(f"      ^ ends after the chaos window ({c.chaos_s:g} s)")
    end_s = c.planned_cycles * c.cycle_s if c.soak else c.chaos_s
    typer.echo(f"  T+{end_s:g}s  recovery: wait up to {c.recovery_timeout_s:g} s")
    if prof.guard.quorum:
        typer.echo(f"quorum guard: {prof.guard.describe_quorum()}; checked at each inject "
                   "against the cluster monitors' states, not in this plan")  # fmt: skip
    from osha.campaign.soak import overrun_risks  # noqa: PLC0415 - as plan_rows above

    for risk in overrun_risks(prof):
        typer.echo(f"warning: {risk}")


@app.command()
def start(
    profile_path: ProfileArg,
    *,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    live: LiveOpt = None,
    ledger_dir: LedgerDirOpt = None,
    baseline_s: BaselineOpt = None,
    chaos_s: ChaosOpt = None,
    recovery_timeout_s: RecoveryOpt = None,
    cycles: CyclesOpt = None,
    self_chaos_every_s: SelfChaosOpt = None,
    repeat: RepeatOpt = None,
) -> None:
    """Run a campaign: validate, health gate, load, baseline, chaos, recovery, teardown,
    verdict. Exit code 0: the SLOs passed; 1: an SLO was violated; 2: invalid input;
    3: aborted (health gate, Ctrl-C, `osha campaign stop`, escalation)."""
    prof = load_checked(profile_path)
    if dry_run:
        _dry_run(prof)
        if repeat is not None:
            seeds = [repeat_seed(prof.campaign.seed, i) for i in range(1, repeat + 1)]
            typer.echo(f"--repeat {repeat}: seeds {', '.join(map(str, seeds))}")
        return
    options = StartOptions(
        force=force,
        live=live,
        ledger_dir=ledger_dir,
        baseline_s=baseline_s,
        chaos_s=chaos_s,
        recovery_timeout_s=recovery_timeout_s,
        cycles=cycles,
        self_chaos_every_s=self_chaos_every_s,
    )
    if repeat is not None:
        _repeated(prof, options, repeat)
        return
    with campaign_console() as console:
        outcome = run_campaign(prof, options, console)
    if outcome.judgement.exit_code != EXIT_OK:
        raise typer.Exit(outcome.judgement.exit_code)


def _repeated(prof: Profile, options: StartOptions, count: int) -> None:
    """``--repeat``: the runs, then their aggregate; exit with the worst exit code."""
    from osha.analysis.aggregate import aggregate  # noqa: PLC0415 - only --repeat needs them
    from osha.report.aggregate import render_aggregate  # noqa: PLC0415

    with campaign_console() as console:
        outcomes = run_repeated(prof, options, console, count)
    agg = aggregate([o.run_dir for o in outcomes])
    typer.echo(terminal_safe(render_aggregate(agg)))
    dirs = " ".join(str(o.run_dir) for o in outcomes)
    typer.echo(f"report again: osha report --aggregate {dirs}")
    worst = max(o.judgement.exit_code for o in outcomes)
    if worst != EXIT_OK:
        raise typer.Exit(worst)


@app.command()
def resume(
    run: RunArg,
    runs_dir: RunsDirOpt = Path("runs"),
    *,
    end: Annotated[
        bool,
        typer.Option(
            "--end/--continue",
            help="End the run cleanly (teardown, verdict) or go on with the soak's cycles.",
        ),
    ] = False,
    profile_path: Annotated[
        Path | None,
        typer.Option("--profile", help="The profile (default: the one the ledger recorded)."),
    ] = None,
    live: LiveOpt = None,
    self_chaos_every_s: SelfChaosOpt = None,
) -> None:
    """Resume a run whose osha process died (kill -9, reboot): revert the faults it left,
    reopen its ledger (the gap is recorded), then go on with the soak from the next cycle,
    or end the run cleanly with --end. Exit codes as for start."""
    info = find_run(run, runs_dir)
    if info.alive:
        raise OshaError(
            f"campaign {info.run_id} is still running (pid {info.pid})",
            hint=f"stop it with osha campaign stop {info.run_dir}, or watch it with status",
        )
    path = profile_path or Path(info.profile)
    prof = profile.load(path)
    options = StartOptions(live=live, self_chaos_every_s=self_chaos_every_s)
    request = ResumeRequest(info.run_dir, end=end)
    with campaign_console() as console:
        outcome = run_campaign(prof, options, console, resume=request)
    if outcome.judgement.exit_code != EXIT_OK:
        raise typer.Exit(outcome.judgement.exit_code)


@app.command()
def status(
    run: RunArg = "latest",
    runs_dir: RunsDirOpt = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print status.json as it is.")] = False,
) -> None:
    """Show a campaign's live status (from another terminal), or how it ended."""
    info = find_run(run, runs_dir)
    snap = read_status(info.run_dir)
    if as_json:
        typer.echo(json.dumps(snap.to_json(), indent=1))
        return
    console = Console(highlight=False)
    console.print(render(snap))
    age_s = time.time() - snap.updated_wall_s
    if snap.finished:
        console.print(f"finished: {_ended(snap.verdict)}")
    elif not info.alive:
        raise OshaError(
            f"campaign {info.run_id} is not running any more (pid {info.pid} is gone; status "
            f"{age_s:.0f} s old) and did not finish",
            hint=f"revert what it left: osha faults recover {info.run_dir}",
            exit_code=EXIT_ABORTED,
        )
    else:
        console.print(f"running (pid {info.pid}; status {age_s:.1f} s old)")


@app.command()
def stop(
    run: RunArg = "latest",
    runs_dir: RunsDirOpt = Path("runs"),
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until the campaign has ended.")
    ] = True,
    timeout_s: Annotated[float, typer.Option(help="How long --wait waits.")] = 600.0,
) -> None:
    """Stop a running campaign gracefully: faults reverted, load deleted, verdict written."""
    info = find_run(run, runs_dir)
    done = read_status(info.run_dir)
    if done.finished:
        code = done.verdict.exit_code if done.verdict else None
        typer.echo(f"{info.run_id} has already finished: exit code {code}")
        return
    if not info.alive:
        raise OshaError(
            f"campaign {info.run_id} is not running (pid {info.pid}) and did not finish",
            hint=f"if it died, revert what it left: osha faults recover {info.run_dir}",
        )
    first = request_stop(info.run_dir, reason or "osha campaign stop")
    typer.echo(f"stop {'requested' if first else 'already requested'}: {info.run_id}")
    if not wait:
        return
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        snap = read_status(info.run_dir)
        if snap.finished:
            typer.echo(f"stopped: {_ended(snap.verdict)}")
            return
        if not find_run(str(info.run_dir), runs_dir).alive:
            raise OshaError(
                f"campaign {info.run_id} ended without finishing its status",
                hint=f"check it: osha ledger show {info.run_dir}",
                exit_code=EXIT_ABORTED,
            )
        time.sleep(0.5)
    raise OshaError(
        f"campaign {info.run_id} did not stop within {timeout_s:g} s",
        hint="it may still be reverting faults or deleting load; see osha campaign status",
        exit_code=EXIT_ABORTED,
    )


def _ended(verdict: FinalVerdict | None) -> str:
    """``exit code 0, PASS: 5/5 SLOs met`` (``?`` and nothing if no verdict was written)."""
    if verdict is None:
        return "exit code ?, "
    return f"exit code {verdict.exit_code}, {verdict.summary}"
