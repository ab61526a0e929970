"""Benchmarks of the supervised core, for ``scripts/bench_core.py``.

- :func:`events_per_s`: ``children`` tickers each flood ``events_per_child`` samples
  (``test.flood``) through their handles into ``sink``; one rate per repeat.
- :func:`restart_latencies_s`: SIGKILL a ``crasher`` child and time until its next
  ``actor.started`` (the child said ``actor.ready``); one latency per sample.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from osha.child import RecordSink
from osha.messages import ActorStarted, Message, TestFlood
from osha.supervisor._run import Supervisor
from osha.supervisor._spec import ChildSpec, SupervisorFlags, SupervisorSpec

__all__ = ["CountingSink", "events_per_s", "restart_latencies_s"]


class CountingSink:
    """Counts framed records without decoding them; keeps the supervisor's own records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.records: list[Message] = []

    def write_framed(self, blob: bytes, count: int) -> None:
        with self._lock:
            self.count += count

    def write(self, msg: Message) -> None:
        with self._lock:
            self.records.append(msg)


def _wait(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline_s = time.monotonic() + timeout_s
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline_s:
            raise TimeoutError(f"benchmark condition not met within {timeout_s:g} s")
        pause.wait(0.001)


def events_per_s(
    run_dir: Path,
    *,
    sink: RecordSink | None = None,
    count: Callable[[], int] | None = None,
    children: int = 4,
    events_per_child: int = 250_000,
    repeats: int = 5,
    timeout_s: float = 120.0,
) -> list[float]:
    """Events per second through the supervisor into ``sink`` (default: a CountingSink).
    With another sink, ``count()`` must say how many records it has received so far."""
    counting = CountingSink()
    target: RecordSink = sink if sink is not None else counting
    received = count if count is not None else (lambda: counting.count)
    ids = [f"tick-{i}" for i in range(children)]
    spec = SupervisorSpec(
        children=tuple(ChildSpec(i, "monitor", "ticker", {"interval_s": 3600.0}) for i in ids)
    )
    sup = Supervisor(spec, target, run_dir=run_dir)
    sup.start()
    rates: list[float] = []
    try:
        for _ in range(repeats):
            start = received()
            began_s = time.perf_counter()
            for child_id in ids:
                sup.send(child_id, TestFlood("bench", 0, 0.0, 0.0, count=events_per_child))
            total = children * events_per_child
            _wait(lambda: received() - start >= total, timeout_s)  # noqa: B023 - used at once
            rates.append(total / (time.perf_counter() - began_s))
    finally:
        sup.stop()
    return rates


def restart_latencies_s(
    run_dir: Path, *, samples: int = 30, timeout_s: float = 10.0
) -> list[float]:
    """Seconds from SIGKILL of a child until it is ready again, for the first restart in a
    period (no backoff: a tiny ``period_s`` makes every restart the first)."""
    sink = CountingSink()
    spec = SupervisorSpec(
        children=(ChildSpec("crash", "runner", "crasher"),),
        flags=SupervisorFlags(intensity=samples + 1, period_s=0.001),
    )
    sup = Supervisor(spec, sink, run_dir=run_dir)
    sup.start()
    latencies: list[float] = []
    try:
        for _ in range(samples):
            [child] = sup.children()
            seen = len(sink.records)
            began_s = time.perf_counter()
            os.kill(child.pid, signal.SIGKILL)

            def restarted(seen: int = seen, incarnation: int = child.incarnation) -> bool:
                return any(
                    isinstance(m, ActorStarted) and m.incarnation > incarnation
                    for m in sink.records[seen:]
                )

            _wait(restarted, timeout_s)
            latencies.append(time.perf_counter() - began_s)
    finally:
        sup.stop()
    return latencies
