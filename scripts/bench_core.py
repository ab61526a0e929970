#!/usr/bin/env python3
"""Benchmark of osha's core runtime. Prints its figures; asserts nothing (goals are in the
README and the notes, not in timed tests).

  (a) events/s from 4 child actors through the supervisor into a durable ledger
      (group commit), goal >= 200,000/s;
  (b) ledger replay (read + CRC + decode into typed messages), goal >= 500,000/s;
  (c) restart latency, SIGKILL until the child is ready again, p50 and p95, goal p50 <= 300 ms;
  (d) the supervisor process's RSS before and after 1 million events, goal < 5 MB growth.

Usage: .venv/bin/python scripts/bench_core.py [--events-per-child N] [--repeats R]
Every figure is a median over the repeats; machines are noisy, so compare ratios.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from actors.testing.commands import TestFlood
from osha import __version__
from osha.child import RecordSink
from osha.ledger import LedgerReader, LedgerWriter, new_header
from osha.messages import ActorStarted, Message
from osha.recorder import RecorderHandle
from osha.supervisor import ChildSpec, Supervisor, SupervisorFlags, SupervisorSpec

# -- (a) events through the supervisor; (c) restart latency ---------------------------------
# events_per_s: `children` tickers each flood `events_per_child` samples (test.flood) through
# their handles into `sink`, one rate per repeat. restart_latencies_s: SIGKILL a crasher child
# and time until its next actor.started (the child said actor.ready), one latency per sample.


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


def _mb(value: float) -> str:
    return f"{value / 2**20:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-child", type=int, default=250_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="osha-bench-core-"))
    me = psutil.Process()
    try:
        run_dir = root / "bench.osha"
        writer = LedgerWriter.create(run_dir, new_header("bench", sender="bench"))
        recorder = RecorderHandle.start(writer)
        gc.collect()
        # Warm up once (imports, first pages of the segment), then measure.
        events_per_s(
            root, sink=recorder, count=lambda: writer.records, repeats=1, events_per_child=20_000
        )
        rss_before = me.memory_info().rss
        rates = events_per_s(
            root,
            sink=recorder,
            count=lambda: writer.records,
            children=4,
            events_per_child=args.events_per_child,
            repeats=args.repeats,
        )
        gc.collect()
        rss_after = me.memory_info().rss
        total_events = 4 * args.events_per_child * args.repeats
        recorder.close(timeout_s=120)
        size = sum(p.stat().st_size for p in run_dir.glob("*.seg"))

        print(f"osha {__version__} core benchmark ({psutil.cpu_count()} CPUs)")
        print(
            f"(a) 4 children -> supervisor -> durable ledger: median"
            f" {statistics.median(rates):,.0f}"
            f" events/s over {len(rates)} runs (min {min(rates):,.0f}, max {max(rates):,.0f});"
            f" goal >= 200,000/s"
        )

        reader = LedgerReader(run_dir)
        replay: list[float] = []
        records = 0
        for _ in range(3):
            began = time.perf_counter()
            records = sum(1 for _ in reader.messages())
            replay.append(records / (time.perf_counter() - began))
        print(
            f"(b) replay (read + CRC + typed decode) of {records:,} records ({_mb(size)}): median "
            f"{statistics.median(replay):,.0f} records/s; goal >= 500,000/s"
        )

        latencies = sorted(restart_latencies_s(root, samples=args.restarts))
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        print(
            f"(c) restart SIGKILL -> ready over {len(latencies)} restarts: p50 {p50 * 1000:.0f} ms,"
            f" p95 {p95 * 1000:.0f} ms; goal p50 <= 300 ms"
        )
        print(
            f"(d) supervisor RSS: {_mb(rss_before)} before, {_mb(rss_after)} after {total_events:,}"
            f" events: growth {_mb(rss_after - rss_before)}; goal < 5 MB"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
