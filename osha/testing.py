# Over 400 lines (460): the public testing API for plugin authors only (wait_for,
# FakeContext, SyntheticLedger, framing helpers); issue 13 §5 moved the benches and test
# commands out, and what is left is one import for a plugin author's tests.
"""Helpers for osha's own tests and for plugin authors' tests.

- :func:`wait_for` polls a condition with a timeout: synchronise on conditions, never sleep.
- :class:`MemorySink` collects what a supervisor would record, decoded, for assertions.
- :class:`SyntheticLedger` writes a ledger with known ground truth (outages, faults, runner
  errors and slow stretches, soak cycles, osha's own RSS), for the analysis and report tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from osha.ledger import LedgerOptions, LedgerWriter
from osha.messages import (
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    Build,
    FaultInjected,
    FaultLease,
    FaultReleased,
    FaultReverted,
    Lease,
    LedgerHeader,
    Message,
    PhaseChange,
    Resources,
    RunnerIteration,
    RunStopped,
    Sample,
    SelfChaosKill,
    SoakCycle,
    StateChange,
    stamp,
)
from osha.plugin import PluginContext
from osha.record import HEADER, MAGIC, scan_records
from osha.wire import decode

__all__ = [
    "FakeContext",
    "MemorySink",
    "SyntheticLedger",
    "WaitTimeout",
    "holds_for",
    "wait_for",
]

T = TypeVar("T")
M = TypeVar("M", bound=Message)
F = ParamSpec("F")


class WaitTimeout(AssertionError):
    """The condition did not hold within the timeout."""


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout_s: float,
    interval_s: float = 0.02,
    what: str = "condition",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Bounded in time (``timeout_s``) and so in count (``timeout_s / interval_s`` polls).
    An exception of a ``retry_on`` type counts as "not yet" (the thing polled may be
    rebooting); the last one is named in the timeout. Raises :class:`WaitTimeout`, naming
    ``what``, when the time runs out.
    """
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except retry_on as exc:
            last_error, value = exc, None  # "not yet"
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(
                f"timed out after {timeout_s} s waiting for {what}"
                + (f" (last error: {last_error!r})" if last_error is not None else "")
            )
        pause.wait(min(interval_s, remaining))


def holds_for(
    predicate: Callable[[], object], *, duration_s: float, interval_s: float = 0.5
) -> bool:
    """True if ``predicate`` stays truthy at every poll for ``duration_s`` (bounded in time and
    count); False at the first poll where it does not."""
    deadline = time.monotonic() + duration_s
    pause = threading.Event()
    while True:
        if not predicate():
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        pause.wait(min(interval_s, remaining))


def split_framed(blob: bytes) -> list[bytes]:
    """The payloads of a blob of framed records (see :mod:`osha.record`). No CRC check."""
    out, end, problem = scan_records(blob, check_crc=False)
    if end != len(blob):
        raise ValueError(f"bad record at offset {end}: {problem or 'cut short'}")
    return out


class MemorySink:
    """A thread-safe record sink that keeps decoded messages in memory, for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def write_framed(self, blob: bytes, count: int) -> None:
        payloads = split_framed(blob)
        if len(payloads) != count:
            raise AssertionError(f"blob holds {len(payloads)} records, sender said {count}")
        decoded = [decode(p) for p in payloads]
        with self._lock:
            self._messages.extend(decoded)

    def write(self, msg: Message) -> None:
        with self._lock:
            self._messages.append(msg)

    def messages(self, cls: type[Message] | None = None) -> list[Message]:
        with self._lock:
            snapshot = list(self._messages)
        return snapshot if cls is None else [m for m in snapshot if isinstance(m, cls)]


class FakeContext(PluginContext):
    """A plugin context for testing one plugin in-process: ``emitted`` keeps every message.

    The envelope is filled as the real host fills it (sender, seq from 1, both clocks), so a
    plugin's behaviour can be asserted without spawning a child process.
    """

    def __init__(self, actor_id: str = "test-actor", *, seed: int = 0) -> None:
        self.emitted: list[Message] = []
        self._seq = 0
        self._lock = threading.Lock()
        super().__init__(actor_id=actor_id, seed=seed, emit=self._emit, stopping=threading.Event())

    def _emit(self, cls: Build[F, M], /, *args: F.args, **fields: F.kwargs) -> M:
        with self._lock:
            self._seq += 1
            msg = stamp(cls, self.actor_id, self._seq, *args, **fields)
            self.emitted.append(msg)
        return msg

    def of(self, cls: type[M]) -> list[M]:
        """The emitted messages of one class."""
        with self._lock:
            return [m for m in self.emitted if isinstance(m, cls)]


# -- synthetic ledgers with known ground truth (for the analysis and report tests) ----------


class SyntheticLedger:
    """Build a ledger whose truth is known: monitored targets that go down at given times,
    runners with error and degraded stretches, faults, phases and actor crashes.

    Times are run seconds from the ledger header (``t = 0``); the envelope clocks are
    ``mono_s = mono0_s + t`` and ``wall_s = wall0_s + t``. Messages are sorted by time (ties
    keep the order they were added) and numbered per sender before they are written::

        led = SyntheticLedger(tmp_path / "run.osha")
        led.target("host-services", "nova-api@ctl-1", end_s=200, down=[(100.0, 112.5)])
        led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
        led.runner("boot", end_s=200, errors=[(100, 113)], degraded=[(120, 150, 3.0)])
        run_dir = led.write()
    """

    def __init__(
        self,
        directory: Path,
        *,
        run_id: str = "synthetic",
        profile: dict[str, Any] | None = None,
        mono0_s: float = 5_000.0,
        wall0_s: float = 1_700_000_000.0,
    ) -> None:
        self.directory = Path(directory)
        self.run_id = run_id
        self.profile = dict(profile or {})
        self.mono0_s = mono0_s
        self.wall0_s = wall0_s
        self._events: list[tuple[float, int, str, type[Message], dict[str, Any]]] = []
        # the writer once writing began (:meth:`write_upto`), its per-sender seqs, the events
        # in time order and how many of them are written
        self._live: LedgerWriter | None = None
        self._live_seqs: dict[str, int] = {"supervisor": 1}
        self._live_events: list[tuple[float, int, str, type[Message], dict[str, Any]]] | None = (
            None
        )
        self._live_done = 0

    def add(self, t: float, sender: str, cls: type[Message], **fields: Any) -> None:
        """Any message at run time ``t`` (the envelope is filled in at :meth:`write`)."""
        self._events.append((t, len(self._events), sender, cls, fields))

    def mono(self, t: float) -> float:
        return self.mono0_s + t

    def wall(self, t: float) -> float:
        return self.wall0_s + t

    def _crash(self, monitor: str, lo: float, hi: float) -> None:
        """``monitor`` crashes at ``lo`` (``actor.crashed``, ``actor.restarting``) and is
        started again at ``hi`` (``actor.started``)."""
        self.add(
            lo,
            "supervisor",
            ActorCrashed,
            actor_id=monitor,
            pid=1,
            incarnation=1,
            reason="exit",
            exit_code=1,
            signal=None,
            last_error="synthetic crash",
        )
        self.add(
            lo,
            "supervisor",
            ActorRestarting,
            actor_id=monitor,
            restarts_in_period=1,
            delay_s=hi - lo,
        )
        self.add(hi, "supervisor", ActorStarted, actor_id=monitor, plugin="synthetic",
                 kind="monitor", pid=2, incarnation=2, config={})  # fmt: skip

    def target(
        self,
        monitor: str,
        target: str,
        *,
        end_s: float,
        start_s: float = 0.0,
        interval_s: float = 0.5,
        down: Sequence[tuple[float, float]] = (),
        bad_state: str = "down",
        sample_every: int = 2,
        report_delay_s: float = 0.0,
        blind: Sequence[tuple[float, float]] = (),
    ) -> None:
        """Observe ``target`` every ``interval_s`` from ``start_s`` to ``end_s``: bad while
        ``t`` is in a ``[from, to)`` of ``down``, up otherwise. During ``blind`` stretches
        ``[from, to)`` the monitor is crashed (``actor.crashed`` then ``actor.restarting`` at
        ``from``, ``actor.started`` at ``to``), observes nothing and starts again ``unknown``.
        One ``monitor.sample`` per ``sample_every`` observations."""
        for lo, hi in blind:
            self._crash(monitor, lo, hi)
        state = "unknown"
        last_t: float | None = None
        count = failures = 0
        steps = round((end_s - start_s) / interval_s)
        for k in range(steps + 1):
            t = round(start_s + k * interval_s, 9)
            if any(lo <= t < hi for lo, hi in blind):
                if state != "unknown":
                    state, last_t = "unknown", None
                continue
            bad = any(lo <= t < hi for lo, hi in down)
            new = bad_state if bad else "up"
            if new != state:
                self.add(t + report_delay_s, monitor, StateChange, target=target, state=new,
                         previous=state, last_good_mono_s=None if last_t is None else
                         self.mono(last_t), first_bad_mono_s=self.mono(t))  # fmt: skip
                state = new
            last_t = t
            count += 1
            failures += bad
            if count == sample_every:
                self.add(
                    t,
                    monitor,
                    Sample,
                    target=target,
                    count=count,
                    failures=failures,
                    latency_min_s=0.001,
                    latency_median_s=0.002,
                    latency_max_s=0.003,
                )
                count = failures = 0

    def fault(
        self,
        lease_id: str,
        *,
        inject_s: float,
        revert_s: float | None,
        action: str = "kill",
        node: str = "ctl-1",
        resource: str = "",
        holder: str = "disruptor-1",
        report_delay_s: float = 0.05,
    ) -> None:
        """A fault leased just before ``inject_s``, injected at ``inject_s`` (recorded
        ``report_delay_s`` later) and reverted at ``revert_s`` (None: never)."""
        self.add(inject_s - 0.01, "supervisor", FaultLease, lease=Lease(
            lease_id, holder, "synthetic", 0, action, node, "192.0.2.1", resource, (),
            (revert_s or inject_s) - inject_s, self.wall(inject_s), self.wall(inject_s + 600), {},
        ))  # fmt: skip
        self.add(inject_s + report_delay_s, holder, FaultInjected, lease_id=lease_id, index=0,
                 action=action, node=node, resource=resource,
                 planned_wall_s=self.wall(inject_s), actual_wall_s=self.wall(inject_s))  # fmt: skip
        if revert_s is not None:
            self.add(revert_s, holder, FaultReverted, lease_id=lease_id, attempt=1, by="holder",
                     detail="", elapsed_s=0.1)  # fmt: skip
            self.add(revert_s, "supervisor", FaultReleased, lease_id=lease_id, holder=holder,
                     reverted=True, by="holder")  # fmt: skip

    def runner(
        self,
        runner: str,
        *,
        end_s: float,
        start_s: float = 0.0,
        every_s: float = 1.0,
        duration_s: float = 1.0,
        noise_s: float = 0.02,
        errors: Sequence[tuple[float, float]] = (),
        degraded: Sequence[tuple[float, float, float]] = (),
        workload: str = "Synthetic.scenario",
    ) -> None:
        """One iteration every ``every_s`` starting at ``start_s``: duration ``duration_s`` plus
        a deterministic ``noise_s`` wobble; failed while its start is in an ``errors`` range;
        lasting the given duration while its start is in a ``degraded`` range. Each iteration
        is recorded when it ends."""
        steps = round((end_s - start_s) / every_s)
        for i in range(steps + 1):
            t = round(start_s + i * every_s, 9)
            dur = duration_s + noise_s * math.sin(i * 1.7)
            for lo, hi, slow in degraded:
                if lo <= t < hi:
                    dur = slow
            ok = not any(lo <= t < hi for lo, hi in errors)
            self.add(t + dur, runner, RunnerIteration, runner=workload, iteration=i + 1,
                     started_wall_s=self.wall(t), duration_s=dur, ok=ok, atomic={},
                     error_type="" if ok else "TimeoutException",
                     error="" if ok else "synthetic error")  # fmt: skip

    def phase(self, name: str, start_s: float, end_s: float | None, ok: bool = True) -> None:
        """A campaign phase from ``start_s`` to ``end_s`` (None: never ends)."""
        self.add(start_s, "campaign", PhaseChange, phase=name, event="start")
        if end_s is not None:
            self.add(end_s, "campaign", PhaseChange, phase=name, event="end", ok=ok)

    def soak_cycle(
        self,
        cycle: int,
        start_s: float,
        end_s: float | None,
        *,
        ok: bool = True,
        detail: str = "",
        planned_faults: int = 1,
    ) -> None:
        """Soak cycle ``cycle`` from ``start_s`` to ``end_s`` (None: it never ends), as the
        campaign records it (``soak.cycle`` start and end)."""
        self.add(start_s, "campaign", SoakCycle, cycle=cycle, phase="start",
                 planned_faults=planned_faults)  # fmt: skip
        if end_s is not None:
            self.add(end_s, "campaign", SoakCycle, cycle=cycle, phase="end", ok=ok,
                     detail=detail)  # fmt: skip

    def resources(
        self, t: float, rss_bytes: int, *, process: str = "main", cpu_s: float = 1.0
    ) -> None:
        """osha's self-monitor sampled ``process`` (``"main"`` or an actor id) at ``t``."""
        self.add(t, "osha", Resources, process=process, pid=1, rss_bytes=rss_bytes, cpu_s=cpu_s)

    def self_chaos(self, t: float, actor_id: str, *, kill: int = 1) -> None:
        """Self-chaos SIGKILLs ``actor_id`` at ``t``: the kill record, then the supervisor's
        ``actor.crashed`` and ``actor.restarting`` (the actor starts again right away)."""
        self.add(t, "self-chaos", SelfChaosKill, actor_id=actor_id, pid=2, kill=kill)
        self.add(t, "supervisor", ActorCrashed, actor_id=actor_id, pid=2, incarnation=1,
                 reason="exit", exit_code=None, signal=9, last_error="")  # fmt: skip
        self.add(t, "supervisor", ActorRestarting, actor_id=actor_id, restarts_in_period=1,
                 delay_s=0.0)  # fmt: skip

    def write(self, *, stop_s: float | None = None, torn: bool = False) -> Path:
        """Write the ledger. ``stop_s``: end with ``run.stopped`` there and close cleanly.
        ``torn``: leave it as ``kill -9`` would (no close, half a record at the end)."""
        writer = self._live_writer()
        seqs = self._live_seqs
        self.write_upto(math.inf)
        if stop_s is not None and not torn:
            seqs["supervisor"] += 1
            writer.append(RunStopped("supervisor", seqs["supervisor"], self.mono(stop_s),
                                     self.wall(stop_s), self.run_id, "duration", 0))  # fmt: skip
            writer.close()
            return self.directory
        if torn:
            last = sorted(self.directory.glob("*.seg"))[-1]
            with last.open("ab") as f:
                f.write(HEADER.pack(MAGIC, 4096, 0) + b"\x93\xa4half")
        return self.directory

    def write_upto(self, until_s: float, options: LedgerOptions | None = None) -> Path:
        """Write the messages up to run time ``until_s`` (inclusive) and sync, leaving the
        ledger open: a later call appends the next ones, as a run that is still going does
        (``options``: the writer's, on the first call). Add every message before the first."""
        writer = self._live_writer(options)
        if self._live_events is None:
            self._live_events = sorted(self._events, key=lambda e: (e[0], e[1]))
        events, seqs = self._live_events, self._live_seqs
        batch: list[Message] = []
        while self._live_done < len(events) and events[self._live_done][0] <= until_s:
            t, _order, sender, cls, fields = events[self._live_done]
            self._live_done += 1
            seqs[sender] = seqs.get(sender, 0) + 1
            batch.append(cls(sender=sender, seq=seqs[sender], mono_s=self.mono(t),
                             wall_s=self.wall(t), **fields))  # fmt: skip
            if len(batch) >= 1000:
                writer.append_many(batch)
                batch = []
        writer.append_many(batch)
        writer.sync()
        return self.directory

    def _live_writer(self, options: LedgerOptions | None = None) -> LedgerWriter:
        if self._live is None:
            header = LedgerHeader(
                "supervisor",
                1,
                self.mono(0.0),
                self.wall(0.0),
                1,
                "synthetic",
                self.run_id,
                "synthetic-host",
                self.wall(0.0),
                42,
                self.profile,
            )
            self._live = LedgerWriter.create(self.directory, header, options=options)
        return self._live
