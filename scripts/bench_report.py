#!/usr/bin/env python3
"""Benchmark of ``osha report``: analysis time and peak RSS on synthetic ledgers.

Goals (issue 7): >= 300,000 records/s, peak RSS < 300 MB at 5 million records, linear cost.

Each ledger mimics a long soak: 20 monitored targets summarised every second (88 % of the
records), 3 Rally-like runners (10 %), state changes of flapping targets, and a fault every
~20,000 records with its lease, inject, revert and release. Each measurement runs in a fresh
child process (``analyze`` + the terminal summary), so the peak RSS is that of one report.

A second case (``--wide``, issue 11) bounds the report's memory by what a ledger *names*,
not only by how long it is: 1,000,000 runner iterations and 100,000 monitored targets
(one sample each, every tenth with an outage), goal: peak RSS < 300 MB.

A third case (``--aggregate``, issue 17) times ``osha report --aggregate`` over 10 ledgers of
1,000,000 records each (one built, copied nine times: the aggregate analyses each in turn,
keeping one analysis in memory), goal: >= 300,000 records/s and peak RSS < 300 MB.

Usage: .venv/bin/python scripts/bench_report.py [--sizes 100000 1000000 5000000] [--repeats 3]
       .venv/bin/python scripts/bench_report.py --wide [--iterations 1000000 --targets 100000]
       .venv/bin/python scripts/bench_report.py --aggregate [--ledgers 10 --sizes 1000000]
Prints medians over the repeats; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osha.analysis import analyze
from osha.analysis.aggregate import CiTarget, aggregate
from osha.ledger import LedgerWriter
from osha.messages import (
    FaultInjected,
    FaultLease,
    FaultReleased,
    FaultReverted,
    Lease,
    LedgerHeader,
    Message,
    RunnerIteration,
    RunStopped,
    Sample,
    StateChange,
)
from osha.report import render_summary
from osha.report.aggregate import render_aggregate
from osha.wire import encode

TARGETS = 20
RUNNERS = 3
MONO0, WALL0 = 10_000.0, 1_700_000_000.0


def build(directory: Path, records: int) -> None:
    """Write a synthetic soak ledger of about ``records`` records."""
    slo = {"max_downtime_s": {"*": 60}, "min_runner_success": 0.9}
    header = LedgerHeader("supervisor", 1, MONO0, WALL0, 1, "bench", "bench", "bench", WALL0, 0,
                          {"slo": slo})  # fmt: skip
    writer = LedgerWriter.create(directory, header)
    seq = {"hs": 0, "disruptor": 0, "supervisor": 1, **{f"run-{r}": 0 for r in range(RUNNERS)}}
    state = ["up"] * TARGETS
    last = [0.0] * TARGETS
    batch: list[bytes] = []
    written = 1
    t = 0.0
    step = 1.0 / (TARGETS + RUNNERS * 0.5)  # one "tick" of records per second
    k = 0

    def add(sender: str, cls: type[Message], at: float, **fields: object) -> None:
        nonlocal written
        seq[sender] += 1
        msg = cls(sender=sender, seq=seq[sender], mono_s=MONO0 + at, wall_s=WALL0 + at,
                  **fields)  # fmt: skip
        batch.append(encode(msg))
        written += 1

    while written < records - 1:
        k += 1
        t += step
        target = k % TARGETS
        name = f"svc-{target}@ctl-{target % 3}"
        down = state[target] == "down"
        add("hs", Sample, t, target=name, count=5, failures=5 if down else 0,
            latency_min_s=0.001, latency_median_s=0.002, latency_max_s=0.004)  # fmt: skip
        if k % 331 == 0:  # a target flips
            new = "up" if down else "down"
            add("hs", StateChange, t, target=name, state=new, previous=state[target],
                last_good_mono_s=MONO0 + last[target], first_bad_mono_s=MONO0 + t)  # fmt: skip
            state[target] = new
        last[target] = t
        if k % 9 == 0:
            r = (k // 9) % RUNNERS
            dur = 1.0 + 0.05 * math.sin(k) + (3.0 if k % 20_000 < 400 else 0.0)
            add(f"run-{r}", RunnerIteration, t, runner="NovaServers.boot_and_delete_server",
                iteration=k, started_wall_s=WALL0 + t - dur, duration_s=dur, ok=k % 97 != 0,
                atomic={"nova.boot_server": dur * 0.6})  # fmt: skip
        if k % 20_000 == 0:
            lease = f"lease-{k}"
            terms = Lease(lease, "disruptor", "bench", k, "kill", "ctl-1", "192.0.2.1", "svc-1",
                          (), 10.0, WALL0 + t, WALL0 + t + 60, {})  # fmt: skip
            add("supervisor", FaultLease, t, lease=terms)
            add("disruptor", FaultInjected, t, lease_id=lease, index=k, action="kill",
                node="ctl-1", resource="svc-1", planned_wall_s=WALL0 + t,
                actual_wall_s=WALL0 + t)  # fmt: skip
            add("disruptor", FaultReverted, t + 10, lease_id=lease, attempt=1, by="holder",
                detail="", elapsed_s=0.1)  # fmt: skip
            add("supervisor", FaultReleased, t + 10, lease_id=lease, holder="disruptor",
                reverted=True, by="holder")  # fmt: skip
        if len(batch) >= 5000:
            writer.append_payloads(batch)
            batch = []
    writer.append_payloads(batch)
    writer.append(RunStopped("supervisor", seq["supervisor"] + 1, MONO0 + t, WALL0 + t, "bench",
                             "duration", 0))  # fmt: skip
    writer.close()


def build_wide(directory: Path, iterations: int, targets: int) -> None:
    """A ledger that names many things: ``iterations`` runner iterations (3 runners) and
    ``targets`` targets, each sampled once, every tenth with a 5 s outage."""
    header = LedgerHeader("supervisor", 1, MONO0, WALL0, 1, "bench-wide", "bench", "bench",
                          WALL0, 0, {"slo": {"min_runner_success": 0.9}})  # fmt: skip
    writer = LedgerWriter.create(directory, header)
    seq: dict[str, int] = {"hs": 0, "supervisor": 1, **{f"run-{r}": 0 for r in range(RUNNERS)}}
    batch: list[bytes] = []

    def add(sender: str, cls: type[Message], at: float, **fields: object) -> None:
        seq[sender] += 1
        batch.append(encode(cls(sender=sender, seq=seq[sender], mono_s=MONO0 + at,
                                wall_s=WALL0 + at, **fields)))  # fmt: skip
        if len(batch) >= 5000:
            writer.append_payloads(batch)
            batch.clear()

    span_s = 3600.0
    for n in range(targets):
        t = span_s * n / targets
        name = f"svc-{n}@node-{n % 500}"
        add("hs", Sample, t, target=name, count=1, failures=0)
        if n % 10 == 0:
            add("hs", StateChange, t + 1, target=name, state="down", previous="up",
                last_good_mono_s=MONO0 + t, first_bad_mono_s=MONO0 + t + 1)  # fmt: skip
            add("hs", StateChange, t + 6, target=name, state="up", previous="down",
                last_good_mono_s=MONO0 + t + 5, first_bad_mono_s=MONO0 + t + 6)  # fmt: skip
    for k in range(iterations):
        t = span_s * k / iterations
        dur = 1.0 + 0.05 * math.sin(k)
        add(f"run-{k % RUNNERS}", RunnerIteration, t, runner="NovaServers.boot_and_delete_server",
            iteration=k, started_wall_s=WALL0 + t - dur, duration_s=dur, ok=k % 97 != 0,
            atomic={"nova.boot_server": dur * 0.6})  # fmt: skip
    writer.append_payloads(batch)
    writer.append(RunStopped("supervisor", seq["supervisor"] + 1, MONO0 + span_s, WALL0 + span_s,
                             "bench-wide", "duration", 0))  # fmt: skip
    writer.close()


def child(directory: str) -> None:
    """Analyse one ledger (or aggregate every ledger in ``directory`` if it is not one);
    print seconds, records and peak RSS (MiB)."""
    started = time.perf_counter()
    path = Path(directory)
    if (path / "header.rec").exists() or any(path.glob("*.seg")):
        analysis = analyze(path)
        render_summary(analysis)
        records = analysis.run.records
    else:
        agg = aggregate(sorted(path.glob("*.osha")), target=CiTarget(absolute_s=1.0))
        render_aggregate(agg)
        records = sum(r.records for r in agg.runs)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib = usage.ru_maxrss / 1024
    print(f"{elapsed} {records} {peak_mib} {usage.ru_utime + usage.ru_stime}")


def measure(directory: Path) -> tuple[float, int, float, float]:
    """Seconds (wall), records, peak RSS (MiB) and CPU seconds of one report, in a child."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(directory)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds, records, peak, cpu = out.stdout.split()
    return float(seconds), int(records), float(peak), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--wide", action="store_true", help="many iterations and targets")
    parser.add_argument("--iterations", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--aggregate", action="store_true", help="aggregate several ledgers")
    parser.add_argument("--ledgers", type=int, default=10)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.aggregate:
        sizes = args.sizes if "--sizes" in sys.argv else [1_000_000]
        for size in sizes:
            aggregated(args.ledgers, size, args.repeats)
        return
    if args.wide:
        wide(args.iterations, args.targets, args.repeats)
        return
    base = Path(tempfile.mkdtemp(prefix="osha-bench-report-"))
    try:
        print(f"{'records':>10} {'build s':>8} {'report s':>9} {'records/s':>10} "
              f"{'peak RSS MiB':>13} {'us/record':>10}")  # fmt: skip
        for size in args.sizes:
            directory = base / f"{size}.osha"
            started = time.perf_counter()
            build(directory, size)
            built = time.perf_counter() - started
            runs = [measure(directory) for _ in range(args.repeats)]
            seconds = statistics.median(r[0] for r in runs)
            records = runs[0][1]
            peak = statistics.median(r[2] for r in runs)
            print(f"{records:>10} {built:>8.1f} {seconds:>9.2f} {records / seconds:>10,.0f} "
                  f"{peak:>13.1f} {1e6 * seconds / records:>10.2f}")  # fmt: skip
            shutil.rmtree(directory)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def aggregated(ledgers: int, size: int, repeats: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="osha-bench-report-agg-"))
    try:
        started = time.perf_counter()
        build(base / "run-00.osha", size)
        for i in range(1, ledgers):
            shutil.copytree(base / "run-00.osha", base / f"run-{i:02d}.osha")
        built = time.perf_counter() - started
        print(f"build {built:.1f} s; the machine's load: compare the aggregate with the one "
              "ledger measured beside it, and records per CPU second")  # fmt: skip
        print(f"{'ledgers':>7} {'records':>10} {'report s':>9} {'records/s':>10} "
              f"{'CPU s':>7} {'rec/CPU s':>10} {'peak RSS MiB':>13}")  # fmt: skip
        for count, target in ((1, base / "run-00.osha"), (ledgers, base)):
            runs = [measure(target) for _ in range(repeats)]
            seconds = statistics.median(r[0] for r in runs)
            records = runs[0][1]
            peak = statistics.median(r[2] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            print(f"{count:>7} {records:>10} {seconds:>9.2f} {records / seconds:>10,.0f} "
                  f"{cpu:>7.2f} {records / cpu:>10,.0f} {peak:>13.1f}")  # fmt: skip
        print("goal (aggregate): >= 300,000 records/s, peak RSS < 300 MB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def wide(iterations: int, targets: int, repeats: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="osha-bench-report-wide-"))
    try:
        directory = base / "wide.osha"
        started = time.perf_counter()
        build_wide(directory, iterations, targets)
        built = time.perf_counter() - started
        runs = [measure(directory) for _ in range(repeats)]
        seconds = statistics.median(r[0] for r in runs)
        peak = statistics.median(r[2] for r in runs)
        print(f"{'iterations':>10} {'targets':>8} {'records':>9} {'build s':>8} {'report s':>9} "
              f"{'peak RSS MiB':>13}")  # fmt: skip
        print(f"{iterations:>10} {targets:>8} {runs[0][1]:>9} {built:>8.1f} {seconds:>9.2f} "
              f"{peak:>13.1f}   (goal < 300 MB)")  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
