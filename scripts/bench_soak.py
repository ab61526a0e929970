#!/usr/bin/env python3
"""Synthetic soaks, no lab: osha's own memory and cost over time. Prints its figures; asserts
nothing (the goals are in the README and the notes).

``--case flood``: 1 million+ monitor events through the full actor pipeline (ticker children
-> supervisor -> recorder -> durable ledger). For each of two ledgers, one without retention
and one with a raw lane keeping two raw segments, it floods ``--rounds`` rounds of
``--events-per-round`` samples (``test.flood``, spread over 4 tickers) and after each round
samples osha's own processes (``osha.resources``):

- osha's RSS, round by round; growth from round 2 (after warm-up) to the last: goal < 5 MB;
- ledger bytes per event: on-disk size after the run / events;
- CPU per 1,000 events: main process, actors, and both, median over the rounds.

``--case restarts``: ``osha campaign start`` of a soak of 30 s cycles (a ticker monitor, a
noop disruptor) with ``--self-chaos-every-s 1``: an actor SIGKILLed and restarted every second
for ``--minutes``. ``--case cycles``: a soak of 3 s cycles, each with three faults of the
``marker`` disruptor (leased, injected, held, reverted; one on a random node, one with a slow
revert) watched by the ``marker`` monitor, judged at every cycle's end (``abort_on_breach``,
in a child process), no self-chaos. Both print what the soak's acceptance asks for
(:func:`osha.soak.soak_figures`): cycles, faults, kills and restarts, and the slope of the main
process's RSS per hour from cycle 5 and over the second half. Goal: < 5 MiB/h.

``--case judge``: the per-cycle judgement of ``abort_on_breach`` over a long soak, no campaign:
a synthetic soak ledger (3 s cycles, 3 faults each, 5 targets sampled every 0.2 s) is written
cycle by cycle, ``--cycles`` of them, and judged at every cycle's end by the judge child
(:class:`osha.soak.judge.JudgeChild`: it keeps its analysis, reads only the new records);
around cycle 10 and at the last cycles, the landed way is timed too (a fresh child re-reading
and analysing the whole ledger). Prints the median judgement time per cycle near cycle 10 and
near cycle N, both ways, side by side. Goal: flat (the same at cycle 10 and cycle N).

Usage: .venv/bin/python scripts/bench_soak.py [--case all|flood|restarts|cycles|judge]
       [--minutes 10] [--rounds 10] [--events-per-round 100000] [--cycles 2000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from actors.testing.commands import TestFlood
from osha import __version__
from osha.faults import Lease
from osha.ledger import (
    LedgerOptions,
    LedgerReader,
    LedgerWriter,
    RetentionPolicy,
    new_header,
    verify,
)
from osha.messages import Resources
from osha.runtree import BrokerSpec, RunTree, TreeSpec
from osha.selfmon import SelfMonitor
from osha.soak import soak_figures
from osha.soak.judge import JudgeChild
from osha.supervisor import ChildSpec, StopReason, SupervisorSpec
from osha.testing import SyntheticLedger

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
    ids = [f"tick-{i}" for i in range(CHILDREN)]
    spec = SupervisorSpec(
        children=tuple(ChildSpec(i, "monitor", "ticker", {"interval_s": 3600.0}) for i in ids)
    )
    tree = RunTree(
        TreeSpec(
            supervisor=spec,
            broker=BrokerSpec(max_down={}, revert=_no_fault),
            run_dir=root / f"{name}-logs",
            run_id=f"bench-{name}",
            recorder_close_s=120.0,
        )
    )
    recorder = tree.open(writer)
    tree.start()
    sup = tree.supervisor
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
        tree.close(StopReason.REQUESTED)  # the tickers, then the ledger
    result.disk_bytes = sum(p.stat().st_size for p in run_dir.glob("*.seg"))
    result.written_bytes = result.disk_bytes + _retained_bytes(run_dir)
    report = verify(run_dir)
    result.verify_text = report.render(counts=False).splitlines()[-1]
    return result


def _no_fault(lease: Lease) -> str:
    raise AssertionError(f"no disruptor in this benchmark, yet {lease.lease_id} is held")


def _cpu(records: list[Resources]) -> float:
    return sum(r.cpu_s for r in records)


def _retained_bytes(run_dir: Path) -> int:
    from osha.messages import RawRetained  # noqa: PLC0415 - only for this figure

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


def flood(root: Path, rounds: int, per_round: int) -> None:
    print(f"[flood] {rounds} rounds x {per_round:,} events, {CHILDREN} ticker actors")
    plain = soak(root, "no-retention", LedgerOptions(), rounds, per_round)
    _print(plain)
    kept = LedgerOptions(retention=RetentionPolicy(keep_segments=2, segment_size_bytes=4 * MIB))
    retained = soak(root, "raw-lane-keep-2x4MB", kept, rounds, per_round)
    _print(retained)


RESTARTS = """\
[campaign]
name = "bench-restarts"
mode = "soak"
cycles = {cycles}
warmup_s = 0
baseline_s = 1
cycle_baseline_s = 0
chaos_s = 10
cycle_recovery_s = 20
recovery_timeout_s = 30
recovery_hold_s = 1

[supervisor]
intensity = 1000000  # self-chaos kills an actor every second: never escalate, restart at once
period_s = 10
backoff_max_s = 0.05

[ledger]
resources_interval_s = 5

[[monitors]]
id = "tick"
plugin = "ticker"
interval_s = 0.1
targets = ["nova-api@ctl-1", "nova-scheduler@ctl-1"]

[[disruptors]]
id = "noop"
plugin = "noop"
"""

CYCLES = """\
[campaign]
name = "bench-cycles"
mode = "soak"
cycles = {cycles}
warmup_s = 0
baseline_s = 1
cycle_baseline_s = 0.3
chaos_s = 1.2
cycle_recovery_s = 1.5
recovery_timeout_s = 30
recovery_hold_s = 1
abort_on_breach = ["require_reverted"]

[guard]
max_down = {{ controller = 2, compute = 1 }}

[ledger]
resources_interval_s = 2

[[monitors]]
id = "hosts"
plugin = "marker"
markers = "{markers}"
interval_s = 0.2
targets = ["nova-scheduler@ctl-1", "nova-scheduler@ctl-2", "nova-scheduler@ctl-3",
           "nova-conductor@ctl-2", "nova_compute@cmp-1"]

[[disruptors]]
id = "kill-scheduler"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
resource = "nova-scheduler"
target = {{ group = "controller", pick = "random" }}
schedule = {{ start_s = 0.1, times = 1, down_s = 0.3 }}

[[disruptors]]
id = "stop-conductor"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
resource = "nova-conductor"
revert_s = 0.3
target = {{ group = "controller", pick = "node:ctl-2" }}
schedule = {{ start_s = 0.2, times = 1, down_s = 0.5 }}

[[disruptors]]
id = "pause-compute"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
resource = "nova_compute"
target = {{ group = "compute", pick = "one" }}
schedule = {{ start_s = 0.3, times = 1, down_s = 0.5 }}

[slo]
require_reverted = true
"""

INVENTORY = """\
[controller]
ctl-1 ansible_host=192.0.2.11
ctl-2 ansible_host=192.0.2.12
ctl-3 ansible_host=192.0.2.13
[compute]
cmp-1 ansible_host=192.0.2.21
"""


def campaign(root: Path, case: str, minutes: float) -> None:
    """Run one no-lab soak with ``osha campaign start`` and print its figures."""
    folder = root / case
    folder.mkdir()
    (folder / "inventory.ini").write_text(INVENTORY)
    cycle_s = 30.0 if case == "restarts" else 3.0
    cycles = max(10, round(minutes * 60 / cycle_s))
    text = (RESTARTS if case == "restarts" else CYCLES).format(
        cycles=cycles, markers=folder / "markers", inventory=folder / "inventory.ini")
    (folder / "soak.toml").write_text(text)
    argv = [sys.executable, "-m", "osha", "campaign", "start", str(folder / "soak.toml"),
            "--plain", "--ledger-dir", str(folder / "runs")]
    if case == "restarts":
        argv += ["--self-chaos-every-s", "1"]
    print(f"[{case}] {cycles} cycles of {cycle_s:g} s (about {cycles * cycle_s / 60:.0f} min)"
          + (", an actor SIGKILLed every second" if case == "restarts" else
             ", 3 marker faults and a judgement per cycle"), flush=True)
    began = time.monotonic()
    with (folder / "osha.out").open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False,
                              timeout=cycles * cycle_s * 3 + 600, stdin=subprocess.DEVNULL)
    runs = sorted((folder / "runs").glob("*.osha"))
    if done.returncode != 0 or not runs:
        tail = (folder / "osha.out").read_text()[-2000:]
        print(f"  osha exited {done.returncode} after {time.monotonic() - began:.0f} s:\n{tail}")
        if not runs:
            return
    print("  " + soak_figures(runs[-1]).render().replace("\n", "\n  "))


#: the landed judge (before the incremental one): a fresh child, the whole ledger analysed
LANDED_JUDGE = """\
import json, sys
from osha.analysis import AnalysisOptions, analyze
run_dir, at, slos = sys.argv[1], float(sys.argv[2]), set(sys.argv[3:])
verdict = analyze(run_dir, options=AnalysisOptions(live_at_wall_s=at)).verdict
print(json.dumps({"breached": sorted(r.name for r in verdict.results
                                     if r.slo in slos and not r.passed)}))
"""
JUDGE_SLOS = {
    "require_reverted": ("require_reverted",),
    "+ attributed": ("require_reverted", "max_recovery_s", "max_downtime_s"),
}
JUDGE_CYCLE_S = 3.0
WINDOW = 10  # cycles per median


def _judge_ledger(path: Path, cycles: int) -> SyntheticLedger:
    """The bench-cycles soak's shape: per 3 s cycle, a kill of nova-scheduler@ctl-k that
    heals, a stop of nova-conductor@ctl-2, a pause of nova_compute@cmp-1; 5 targets."""
    slo = {"require_reverted": True, "max_recovery_s": 30.0, "max_downtime_s": {"*": 1e9}}
    led = SyntheticLedger(path, profile={"slo": slo})
    end = JUDGE_CYCLE_S * (cycles + 1)
    starts = [JUDGE_CYCLE_S * k for k in range(1, cycles + 1)]
    for name in ("validate", "preflight", "load", "baseline"):
        led.phase(name, 0.0, 0.5)
    led.phase("chaos", 0.5, None)  # the soak is still in its chaos phase when judged
    for i in (1, 2, 3):
        down = [(s + 0.3, s + 0.9) for k, s in enumerate(starts) if k % 3 == i - 1]
        led.target("hosts", f"nova-scheduler@ctl-{i}", end_s=end, interval_s=0.2, down=down)
    led.target("hosts", "nova-conductor@ctl-2", end_s=end, interval_s=0.2,
               down=[(s + 0.5, s + 1.3) for s in starts])  # fmt: skip
    led.target("hosts", "nova_compute@cmp-1", end_s=end, interval_s=0.2,
               down=[(s + 0.7, s + 1.5) for s in starts])  # fmt: skip
    for k, s in enumerate(starts, start=1):
        led.soak_cycle(k, s, s + JUDGE_CYCLE_S, planned_faults=3)
        led.fault(f"kill-scheduler/{k}", inject_s=s + 0.25, revert_s=s + 0.6,
                  node=f"ctl-{(k - 1) % 3 + 1}", resource="nova-scheduler")  # fmt: skip
        led.fault(f"stop-conductor/{k}", inject_s=s + 0.45, revert_s=s + 1.3, action="stop",
                  node="ctl-2", resource="nova-conductor")  # fmt: skip
        led.fault(f"pause-compute/{k}", inject_s=s + 0.65, revert_s=s + 1.5, action="pause",
                  node="cmp-1", resource="nova_compute")  # fmt: skip
        led.resources(s + 2.9, 64 * MIB)
    return led


def judge(root: Path, cycles: int) -> None:
    """Judge a synthetic soak at every cycle's end: the judge child vs the landed re-read."""
    print(f"[judge] {cycles} cycles of {JUDGE_CYCLE_S:g} s, 3 faults and 5 targets each, "
          f"judged at every cycle's end", flush=True)
    led = _judge_ledger(root / "judge.osha", cycles)
    run_dir = led.write_upto(0.0)
    children = {name: JudgeChild(run_dir, slos) for name, slos in JUDGE_SLOS.items()}
    early = range(6, 6 + WINDOW)
    late = range(cycles - WINDOW + 1, cycles + 1)
    asked = {*early, *late, early[0] - 1, late[0] - 1}
    times: dict[str, dict[str, list[float]]] = {
        f"{name} {kind}": {"early": [], "late": []}
        for name in [*JUDGE_SLOS, "landed"] for kind in ("wall", "cpu")
    }  # fmt: skip
    try:
        for k in range(1, cycles + 1):
            at = JUDGE_CYCLE_S * (k + 1)
            led.write_upto(at + 0.3)
            where = "early" if k in early else "late" if k in late else ""
            for name, child in children.items():
                # the attributed objectives cost more as the soak grows: asked only around the
                # measured windows (the first ask reads the backlog, untimed), to keep it short
                if name != "require_reverted" and k not in asked:
                    continue
                began = time.perf_counter()
                if child.breached(led.wall(at)) is None:
                    raise SystemExit(f"the judge child failed at cycle {k}")
                if where:
                    times[f"{name} wall"][where].append(time.perf_counter() - began)
                    times[f"{name} cpu"][where].append(float(child.last["cpu_s"]))
            if where and k % 2 == 0:  # the landed way, every other cycle of the windows
                began, cpu = time.perf_counter(), _children_cpu_s()
                subprocess.run([sys.executable, "-c", LANDED_JUDGE, str(run_dir),
                                repr(led.wall(at)), "require_reverted"], check=True,
                               capture_output=True, timeout=600)  # fmt: skip
                times["landed wall"][where].append(time.perf_counter() - began)
                times["landed cpu"][where].append(_children_cpu_s() - cpu)
    finally:
        for child in children.values():
            child.close()
    records = sum(1 for _ in LedgerReader(run_dir).payloads())
    print(f"  ledger: {records:,} records at cycle {cycles}; median judgement per cycle, "
          f"cycles {early[0]}-{early[-1]} vs {late[0]}-{late[-1]} (wall: round trip on this "
          "loaded machine; CPU: the judging process's own)")
    for name, label in (("landed", "before: landed (fresh child, full re-read)"),
                        *((n, f"after: judge child, {n}") for n in JUDGE_SLOS)):  # fmt: skip
        for kind in ("wall", "cpu"):
            a, b = (statistics.median(times[f"{name} {kind}"][w]) * 1000 for w in ("early", "late"))
            print(f"  {label:<50} {kind:>4} {a:9.1f} ms {b:9.1f} ms  x{b / a:.2f}")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case", choices=("all", "flood", "restarts", "cycles", "judge"),
                        default="all")
    parser.add_argument("--cycles", type=int, default=2000,
                        help="cycles of the judge case's synthetic soak (default 2000)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="how long the restarts and cycles cases run (default 10)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events-per-round", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="osha-bench-soak-"))
    print(f"osha {__version__} soak benchmark ({psutil.cpu_count()} CPUs)")
    try:
        if args.case in ("all", "flood"):
            flood(root, args.rounds, args.events_per_round)
        for case in ("restarts", "cycles"):
            if args.case in ("all", case):
                campaign(root, case, args.minutes)
        if args.case in ("all", "judge"):
            judge(root, args.cycles)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
