"""``osha faults plan|recover``: the planned fault timeline, and recovery after a crash.

``app`` is a typer sub-app; the main CLI mounts it as ``osha faults``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from osha import profile, registry
from osha.errors import EXIT_FAILED, OshaError, PluginError
from osha.faults import Guard, Lease, recover
from osha.plugin import PluginContext
from osha.schedule import child_seed

__all__ = ["PlanRow", "app", "plan_rows"]

app = typer.Typer(
    help="Plan faults (dry run) and recover faults a dead run left behind.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One planned fault of a profile, with the guard's verdict for it."""

    offset_s: float
    disruptor: str
    index: int
    round: int
    action: str
    node: str
    resource: str
    down_s: float
    refused: str  # "" if the guard would let it through

    def render(self) -> str:
        what = f"{self.resource}@{self.node}" if self.resource else self.node
        line = (
            f"T+{self.offset_s:10.3f}s  {self.disruptor:<20} #{self.index:<3} "
            f"{self.action:<11} {what:<32} down {self.down_s:g}s"
        )
        return f"{line}  REFUSED: {self.refused}" if self.refused else line


def plan_rows(prof: profile.Profile, seed: int) -> list[PlanRow]:
    """Every planned fault of every disruptor of ``prof`` with campaign seed ``seed``, in time
    order, each checked against the guard as if the faults before it were held for their
    ``down_s``. Reads the inventory; touches no node."""
    rows: list[tuple[PlanRow, tuple[str, ...]]] = []
    for entry in prof.actors:
        if entry.kind != "disruptor":
            continue
        cls: Any = registry.load("disruptor", entry.plugin)
        timeline = getattr(cls, "timeline", None)  # a fixed name: fault disruptors have it
        if timeline is None:
            continue
        plugin = cls(entry.config, _NoContext(entry.id))
        hosts = _hosts(cls, entry.config)
        for p in timeline(entry.config, child_seed(seed, entry.id)):
            row = PlanRow(
                p.offset_s, entry.id, p.index, p.round, plugin.action(), p.node,
                plugin.resource(), p.down_s, "",
            )  # fmt: skip
            rows.append((row, hosts[p.node].groups))
    rows.sort(key=lambda r: (r[0].offset_s, r[0].disruptor, r[0].index))
    guard = Guard(prof.guard.max_down)
    held: list[tuple[float, Lease]] = []
    out: list[PlanRow] = []
    for row, groups in rows:
        held = [(end, lease) for end, lease in held if end > row.offset_s]
        lease = Lease(
            f"{row.disruptor}/{row.index}", row.disruptor, "", row.index, row.action, row.node,
            "", row.resource, groups, row.down_s, row.offset_s, 0.0, {},
        )  # fmt: skip
        refusal = guard.check([lease for _, lease in held], lease)
        if refusal is None:
            held.append((row.offset_s + row.down_s, lease))
            out.append(row)
        else:
            out.append(PlanRow(**{**_fields(row), "refused": refusal.reason}))
    return out


class _NoContext:
    """Enough of a context to ask a plugin for its labels; a dry run runs nothing."""

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        self.seed = 0


def _hosts(cls: Any, config: Any) -> dict[str, Any]:
    from actors.disruptors._base import load_hosts  # noqa: PLC0415 - plugins are optional

    del cls
    return load_hosts(config)


def _fields(row: PlanRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in PlanRow.__dataclass_fields__}


@app.command("plan")
def plan(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")],
    seed: Annotated[
        int | None, typer.Option(help="The campaign seed (default: [campaign] seed).")
    ] = None,
) -> None:
    """Print the full planned fault timeline of a profile (a dry run: nothing is touched)."""
    prof = profile.load(profile_path)
    used = prof.campaign.seed if seed is None else seed
    try:
        rows = plan_rows(prof, used)
    except PluginError as exc:
        raise OshaError(f"cannot plan {profile_path}: {exc.message}", hint=exc.hint) from None
    typer.echo(f"{profile_path}: seed {used}, {len(rows)} planned fault(s)")
    for row in rows:
        typer.echo(row.render())


@app.command("check")
def check(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE.toml", help="The profile.")],
) -> None:
    """Pre-flight every disruptor of a profile: targets, services, containers, SSH, power.
    Reads only (no fault is injected); exit 1 if any check fails."""
    prof = profile.load(profile_path)
    failed = 0
    for entry in prof.actors:
        if entry.kind != "disruptor":
            continue
        cls: Any = registry.load("disruptor", entry.plugin)
        ctx = PluginContext(
            actor_id=entry.id,
            seed=child_seed(prof.campaign.seed, entry.id),
            emit=_no_emit,
            stopping=threading.Event(),
        )
        plugin = cls(entry.config, ctx)
        try:
            findings = plugin.check()
        finally:
            plugin.teardown()
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


def _no_emit(cls: Any, /, **fields: Any) -> Any:
    raise AssertionError("a check emits nothing")


@app.command("recover")
def recover_cmd(
    run_dir: Annotated[Path, typer.Argument(help="The run directory, like runs/<id>.osha.")],
    profile_path: Annotated[
        Path | None,
        typer.Option("--profile", help="The profile of the run (default: the one it recorded)."),
    ] = None,
) -> None:
    """Revert every fault lease of a dead run that was never reverted, and report."""
    report = recover(run_dir, profile_path=profile_path)
    typer.echo(report.render())
    if report.failed:
        raise OshaError(
            f"{len(report.failed)} fault(s) could not be reverted",
            hint="fix what the errors say, then run osha faults recover again",
            exit_code=EXIT_FAILED,
        )
