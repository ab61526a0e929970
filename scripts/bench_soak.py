#!/usr/bin/env python3
"""Synthetic soak: 1 million+ monitor events through the full actor pipeline (ticker children
-> supervisor -> recorder -> durable ledger), no lab. Prints its figures; asserts nothing.

For each of two ledgers, one without retention and one with a raw lane keeping two raw
segments, it floods ``--rounds`` rounds of ``--events-per-round`` samples (``test.flood``,
spread over 4 tickers) and after each round samples osha's own processes with the
self-monitor (``osha.resources`` records, written to the same ledger):

- osha's RSS over time (main process, and the sum over actor processes), round by round;
  growth from round 2 (after warm-up) to the last round: goal flat (< 5 MB);
- ledger bytes per event: on-disk size after the run / events;
- CPU per 1,000 events: main process, actors, and both, median over the rounds.

Usage: .venv/bin/python scripts/bench_soak.py [--rounds 10] [--events-per-round 100000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from osha import __version__
from osha.ledger import LedgerOptions, LedgerWriter, RetentionPolicy, new_header, verify
from osha.messages import Resources, TestFlood
from osha.recorder import RecorderHandle
from osha.selfmon import SelfMonitor
from osha.supervisor import ChildSpec, Supervisor, SupervisorSpec

CHILDREN = 4
MIB = 2**20


@dataclass
class Result:
    name: str
    events: int = 0
    main_rss: list[int] = field(default_factory=list)
    actor_rss: list[int] = field(default_factory=list)
    cpu_main_per_k: list[float] = field(default_factory=list)
    cpu_actors_per_k: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    disk_bytes: int = 0
    written_bytes: int = 0
    verify_text: str = ""


def _wait(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark condition not met within {timeout_s} s")
        time.sleep(0.002)


def soak(root: Path, name: str, options: LedgerOptions, rounds: int, per_round: int) -> Result:
    result = Result(name)
    run_dir = root / f"{name}.osha"
    writer = LedgerWriter.create(run_dir, new_header("bench-soak", sender="bench"), options=options)
    recorder = RecorderHandle.start(writer)
    ids = [f"tick-{i}" for i in range(CHILDREN)]
    spec = SupervisorSpec(
        children=tuple(ChildSpec(i, "monitor", "ticker", {"interval_s": 3600.0}) for i in ids)
    )
    sup = Supervisor(spec, recorder, run_dir=root / f"{name}-logs", run_id=f"bench-{name}")
    sup.start()
    mon = SelfMonitor(recorder.write, children=lambda: [(c.id, c.pid) for c in sup.children()],
                      ledger_dir=run_dir)  # fmt: skip
    try:
        last = mon.sample_once()
        each = per_round // CHILDREN
        for _ in range(rounds):
            start = writer.records
            began = time.perf_counter()
            for child_id in ids:
                sup.send(child_id, TestFlood("bench", 0, 0.0, 0.0, count=each))
            _wait(lambda s=start: writer.records - s >= each * CHILDREN, 300)
            result.rates.append(each * CHILDREN / (time.perf_counter() - began))
            result.events += each * CHILDREN
            gc.collect()
            now = mon.sample_once()
            result.main_rss.append(now[0].rss_bytes)
            result.actor_rss.append(sum(r.rss_bytes for r in now[1:]))
            k = each * CHILDREN / 1000
            result.cpu_main_per_k.append((now[0].cpu_s - last[0].cpu_s) / k)
            result.cpu_actors_per_k.append((_cpu(now[1:]) - _cpu(last[1:])) / k)
            last = now
    finally:
        sup.stop()
        recorder.close(timeout_s=120)
    result.disk_bytes = sum(p.stat().st_size for p in run_dir.glob("*.seg"))
    result.written_bytes = result.disk_bytes + _retained_bytes(run_dir)
    report = verify(run_dir)
    result.verify_text = report.render(counts=False).splitlines()[-1]
    return result


def _cpu(records: list[Resources]) -> float:
    return sum(r.cpu_s for r in records)


def _retained_bytes(run_dir: Path) -> int:
    from osha.ledger import LedgerReader  # noqa: PLC0415 - only for this figure
    from osha.messages import RawRetained  # noqa: PLC0415

    return sum(m.size_bytes for m in LedgerReader(run_dir).messages()
               if isinstance(m, RawRetained))  # fmt: skip


def _print(r: Result) -> None:
    rss = ", ".join(f"{v / MIB:.1f}" for v in r.main_rss)
    growth = (r.main_rss[-1] - r.main_rss[min(1, len(r.main_rss) - 1)]) / MIB
    actors_growth = (r.actor_rss[-1] - r.actor_rss[min(1, len(r.actor_rss) - 1)]) / MIB
    print(f"[{r.name}] {r.events:,} events, median {statistics.median(r.rates):,.0f} events/s")
    print(f"  main RSS per round (MB): {rss}")
    print(f"  main RSS growth round 2 -> last: {growth:+.2f} MB; "
          f"actors (sum of {CHILDREN}) {actors_growth:+.2f} MB; goal flat (< 5 MB)")
    on_disk, written = r.disk_bytes, r.written_bytes
    print(f"  ledger on disk {on_disk / MIB:.1f} MB = {on_disk / r.events:.1f} bytes/event"
          f" (written {written / MIB:.1f} MB = {written / r.events:.1f} bytes/event)")
    main_k = statistics.median(r.cpu_main_per_k) * 1000
    actors_k = statistics.median(r.cpu_actors_per_k) * 1000
    print(f"  CPU per 1,000 events (median over rounds): main {main_k:.2f} ms, "
          f"actors {actors_k:.2f} ms, total {main_k + actors_k:.2f} ms")
    print(f"  verify: {r.verify_text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events-per-round", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="osha-bench-soak-"))
    print(f"osha {__version__} soak benchmark ({psutil.cpu_count()} CPUs), {args.rounds} rounds"
          f" x {args.events_per_round:,} events, {CHILDREN} ticker actors")
    try:
        plain = soak(root, "no-retention", LedgerOptions(), args.rounds, args.events_per_round)
        _print(plain)
        kept = LedgerOptions(retention=RetentionPolicy(keep_segments=2, segment_size_bytes=4 * MIB))
        retained = soak(root, "raw-lane-keep-2x4MB", kept, args.rounds, args.events_per_round)
        _print(retained)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
