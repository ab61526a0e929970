"""What the operator sees: a live view (rich, about once a second) on a terminal, plain
timestamped lines otherwise, and the findings and verdict tables.

Both views only read :meth:`LiveState.snapshot` (a :class:`~osha.campaign.status.Status`);
they never decide anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from osha.campaign.preflight import Checked
from osha.campaign.status import SoakStatus, Status
from osha.campaign.verdict import Judgement
from osha.messages import is_bad, is_blind

__all__ = ["PlainView", "RichView", "View", "findings_table", "make_view", "verdict_table"]

Snapshot = Callable[[], Status]
_STATE_STYLE = {"up": "green", "down": "red", "unreachable": "red", "unknown": "yellow"}


class View(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}:{seconds:02d}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def render(snap: Status) -> RenderableType:
    """The live view of one snapshot."""
    head = Text.assemble(
        ("osha campaign ", "bold"),
        (snap.run_id, "cyan"),
        "  phase ",
        (snap.phase, "bold magenta"),
        f"  elapsed {_fmt_s(snap.phase_elapsed_s)}",
        f"  left {_fmt_s(snap.phase_left_s)}" if snap.phase_left_s is not None else "",
        ("  STOPPING: " + snap.stopping, "bold red") if snap.stopping else "",
    )
    actors = ", ".join(
        f"{a} {state}" + (f" (restarts {snap.restarts[a]})" if snap.restarts.get(a) else "")
        for a, state in snap.actors.items()
    )
    parts: list[RenderableType] = [head]
    if snap.soak:
        parts.append(Text(soak_line(snap.soak)))
    nxt = snap.next_fault
    if nxt:
        left = _fmt_s(nxt.at_wall_s - snap.updated_wall_s)
        parts.append(Text(f"next fault: {nxt.what} in {left}"))
    parts += [_targets_table(snap), _leases_table(snap), _runners_table(snap)]
    parts.append(Text(f"actors: {actors}"))
    parts += [Text(n, style="dim") for n in snap.notes]
    return Group(*parts)


def _targets_table(snap: Status) -> Table:
    targets = Table(title="targets", title_justify="left", expand=False, box=None)
    for col in ("target", "state", "for", "changes"):
        targets.add_column(col)
    for name, t in snap.targets.items():
        style = _STATE_STYLE.get(t.state, "")
        since = _fmt_s(snap.updated_wall_s - t.since_wall_s)
        targets.add_row(name, Text(t.state, style=style), since, str(t.changes))
    return targets


def _leases_table(snap: Status) -> Table:
    faults = snap.faults
    leases = Table(
        title=(
            f"faults: {faults.injected} injected, {faults.reverted} reverted, "
            f"{faults.refused} refused, {faults.failed} failed"
        ),
        title_justify="left",
        box=None,
    )
    for col in ("lease", "fault", "holder", "held", "down_s"):
        leases.add_column(col)
    for lid, lease in snap.leases.items():
        leases.add_row(lid, lease.what, lease.holder, _fmt_s(lease.held_s), f"{lease.down_s:g}")
    return leases


def _runners_table(snap: Status) -> Table:
    runners = Table(title="runners", title_justify="left", box=None)
    for col in ("runner", "ok", "failed", "success", "last", "last error"):
        runners.add_column(col)
    for name, r in snap.runners.items():
        runners.add_row(
            name,
            str(r.ok),
            str(r.failed),
            _rate(r.success_rate),
            f"{r.last_duration_s:.1f} s",
            r.last_error[:60],
        )
    return runners


def soak_line(soak: SoakStatus) -> str:
    """``soak: cycle 12 of 30; last cycles: 8 ok, 9 ok, 10 FAILED (...), 11 ok``."""
    last = ", ".join(
        f"{v.cycle} ok" if v.ok else f"{v.cycle} FAILED ({v.detail[:60]})"
        for v in soak.last_verdicts[-5:]
    )
    return f"soak: cycle {soak.cycle} of {soak.cycles_planned}" + (
        f"; last cycles: {last}" if last else ""
    )


class RichView:
    """A rich ``Live`` display, refreshed about once a second."""

    def __init__(self, snapshot: Snapshot, console: Console) -> None:
        self._snapshot = snapshot
        self._live = Live(
            get_renderable=lambda: render(self._snapshot()),
            console=console,
            refresh_per_second=1,
            transient=False,
        )

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()


class PlainView:
    """Timestamped lines: every phase, target state change, fault and runner change, and a
    summary line every ``summary_s``."""

    def __init__(self, snapshot: Snapshot, console: Console, *, summary_s: float = 10.0) -> None:
        self._snapshot = snapshot
        self._console = console
        self._summary_s = summary_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osha-view", daemon=True)
        self._seen: dict[str, Any] = {
            "phase": None, "phases_done": 0, "targets": {}, "leases": set(), "notes": []
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)
        self._emit_changes(self._snapshot())

    def _say(self, text: str) -> None:
        self._line(f"{time.strftime('%H:%M:%S')} {text}")

    def _line(self, text: str) -> None:
        """One plain line, written as it is: no rich rendering (it caches every distinct word
        it measures, a growing cache in a soak that prints lines for days)."""
        out = self._console.file
        out.write(text + "\n")
        out.flush()

    def _run(self) -> None:
        next_summary_s = time.monotonic() + self._summary_s
        while not self._done.wait(1.0):
            snap = self._snapshot()
            self._emit_changes(snap)
            if time.monotonic() >= next_summary_s:
                next_summary_s += self._summary_s
                self._summary(snap)

    def _emit_changes(self, snap: Status) -> None:
        seen = self._seen
        for done in snap.phases_done[seen["phases_done"] :]:
            result = "ok" if done.ok else "FAILED"
            self._say(f"phase {done.phase} ended {result}: {done.detail}".rstrip(": "))
        seen["phases_done"] = len(snap.phases_done)
        ended = snap.phases_done and snap.phases_done[-1].phase == snap.phase
        if snap.phase != seen["phase"] and not ended:
            seen["phase"] = snap.phase
            left = snap.phase_left_s
            self._say(f"phase {snap.phase}" + (f" ({left:g} s)" if left else ""))
        for name, t in snap.targets.items():
            if seen["targets"].get(name) != t.state:
                seen["targets"][name] = t.state
                self._say(f"target {name} {t.state}")
        leases = set(snap.leases)
        for lid in sorted(leases - seen["leases"]):
            lease = snap.leases[lid]
            self._say(f"fault {lease.what} (lease {lid}, {lease.holder})")
        for lid in sorted(seen["leases"] - leases):
            self._say(f"fault lease {lid} released")
        seen["leases"] = leases
        for verdict in snap.soak.last_verdicts if snap.soak else ():
            if verdict.cycle > seen.get("cycle", 0):
                seen["cycle"] = verdict.cycle
                result = "ok" if verdict.ok else "FAILED"
                self._say(f"cycle {verdict.cycle} ended {result}: {verdict.detail}")
        for note in snap.notes:
            if note not in seen["notes"]:
                self._line(note)
        seen["notes"] = list(snap.notes)

    def _summary(self, snap: Status) -> None:
        runners = ", ".join(f"{n} {r.ok} ok/{r.failed} failed" for n, r in snap.runners.items())
        down = [n for n, t in snap.targets.items() if is_bad(t.state)]
        blind = [n for n, t in snap.targets.items() if is_blind(t.state)]
        up = len(snap.targets) - len(down) - len(blind)
        restarts = sum(snap.restarts.values())
        self._say(
            f"{snap.phase} {_fmt_s(snap.phase_elapsed_s)}: "
            f"{up}/{len(snap.targets)} targets up"
            + (f" (down: {', '.join(down)})" if down else "")
            + (f" (not seen: {', '.join(blind)})" if blind else "")
            + f"; {len(snap.leases)} faults held"
            + (f"; runners: {runners}" if runners else "")
            + (f"; {restarts} actor restarts" if restarts else "")
        )


def make_view(snapshot: Snapshot, console: Console, *, live: bool | None = None) -> View:
    """The rich view on a terminal, plain lines otherwise (``live`` forces either)."""
    use_live = console.is_terminal if live is None else live
    return RichView(snapshot, console) if use_live else PlainView(snapshot, console)


def findings_table(checked: Sequence[Checked]) -> Table:
    """The health gate's findings, failed ones first."""
    table = Table(title="health gate (preflight)", title_justify="left")
    for col in ("", "source", "target", "finding", "hint"):
        table.add_column(col, overflow="fold")
    for c in sorted(checked, key=lambda c: (c.finding.ok, c.source, c.finding.target)):
        mark = Text("ok", style="green") if c.finding.ok else Text("FAIL", style="bold red")
        table.add_row(mark, c.source, c.finding.target, c.finding.message, c.finding.hint)
    return table


def verdict_table(judgement: Judgement, phases: Sequence[Any] = ()) -> Group:
    """The final summary: phases, SLOs and the verdict."""
    out: list[RenderableType] = []
    if phases:
        ptable = Table(title="phases", title_justify="left", box=None)
        for col in ("phase", "took", "result"):
            ptable.add_column(col)
        for phase, start_s, end_s, ok in phases:
            ptable.add_row(
                phase,
                f"{end_s - start_s:.1f} s",
                Text("ok", style="green") if ok else Text("failed/aborted", style="red"),
            )
        out.append(ptable)
    if judgement.rendered:
        # The same text `osha report` prints for this ledger: one renderer, one verdict.
        out.append(Text(judgement.rendered, no_wrap=True, overflow="ignore"))
    style = "bold green" if judgement.passed else "bold red"
    word = "PASSED" if judgement.passed else ("ABORTED" if judgement.exit_code == 3 else "FAILED")
    out.append(Text.assemble(("verdict: ", "bold"), (word, style), f" ({judgement.summary})"))
    return Group(*out)
