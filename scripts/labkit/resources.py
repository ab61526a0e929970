"""What the lab costs the machine: memory and CPU of every process of the lab.

usage: resources.py [--proc DIR] WINDOW_S NAME=PID [NAME=PID ...]

Each NAME=PID is a root: a node's init (the first process of its PID namespace) or a host-side
process of the lab (the BMC). A root's processes are it and all its descendants, read from
/proc; containers and guests are descendants of their node's init, since orphans in a PID
namespace are adopted by its init.

- Memory: the sum of RSS (a process's resident pages, shared ones counted in each process) and
  of PSS (shared pages divided among their sharers: the lab's real share of RAM), from
  /proc/PID/smaps_rollup.
- CPU: the CPU time the roots' trees used during WINDOW_S, as a percentage of one core. A
  tree's time is, over its live processes, utime + stime + cutime + cstime: a process that
  exits within the window is reaped by a live process of its tree, whose c-times then carry
  its time, so nothing is lost or counted twice.

Prints one line per root and a total line, and the budget of issue 12 (8 GiB, 35 % of a
core idle) beside it. It reads only /proc: the lab is not touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BUDGET_MEMORY_GIB = 8.0
BUDGET_IDLE_CPU_PCT = 35.0


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


@dataclass(frozen=True)
class Usage:
    processes: int
    rss_kib: int
    pss_kib: int
    cpu_ticks: int


def read_stat(proc: Path, pid: int) -> Proc | None:
    """``None`` when the process is gone (it may exit while we read)."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the fields after it follow the last ')'
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); ppid is field 4, utime..cstime fields 14..17
    return Proc(pid=pid, ppid=int(fields[1]), cpu_ticks=sum(int(f) for f in fields[11:15]))


def read_memory_kib(proc: Path, pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; (0, 0) for a process that is gone or has no memory (a kernel
    thread) or that this user may not read."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    rss = pss = 0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Rss":
            rss = int(rest.split()[0])
        elif key == "Pss":
            pss = int(rest.split()[0])
    return rss, pss


def snapshot(proc: Path) -> dict[int, Proc]:
    procs = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            p = read_stat(proc, int(entry.name))
            if p is not None:
                procs[p.pid] = p
    return procs


def tree(procs: dict[int, Proc], root: int) -> list[int]:
    """``root`` and its descendants among ``procs`` (empty when root is gone)."""
    if root not in procs:
        return []
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = [], [root]
    while todo:  # bounded: each pid is visited once, parents form a tree
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def usage(proc: Path, procs: dict[int, Proc], root: int, memory: bool) -> Usage:
    pids = tree(procs, root)
    rss = pss = 0
    if memory:
        for pid in pids:
            r, p = read_memory_kib(proc, pid)
            rss, pss = rss + r, pss + p
    return Usage(len(pids), rss, pss, sum(procs[pid].cpu_ticks for pid in pids))


def parse_roots(specs: list[str]) -> dict[str, int]:
    roots = {}
    for spec in specs:
        name, sep, pid = spec.partition("=")
        if not sep or not pid.isdigit():
            raise SystemExit(f"resources.py: error: {spec!r} is not NAME=PID")
        roots[name] = int(pid)
    return roots


def gib(kib: int) -> str:
    return f"{kib / 2**20:.2f} GiB"


def report(
    roots: dict[str, int],
    before: dict[int, Proc],
    after: dict[int, Proc],
    *,
    proc: Path,
    window_s: float,
    ticks_per_s: int,
) -> list[str]:
    lines = []
    total = Usage(0, 0, 0, 0)
    total_cpu_s = 0.0
    for name, root in roots.items():
        start = usage(proc, before, root, memory=False)
        end = usage(proc, after, root, memory=True)
        if end.processes == 0:
            lines.append(f"    {name}: gone (pid {root})")
            continue
        cpu_s = max(0, end.cpu_ticks - start.cpu_ticks) / ticks_per_s
        total_cpu_s += cpu_s
        total = Usage(
            processes=total.processes + end.processes,
            rss_kib=total.rss_kib + end.rss_kib,
            pss_kib=total.pss_kib + end.pss_kib,
            cpu_ticks=0,
        )
        lines.append(
            f"    {name}: {end.processes} process(es), PSS {gib(end.pss_kib)}, "
            f"RSS {gib(end.rss_kib)}, CPU {100 * cpu_s / window_s:.1f} % of a core"
        )
    cpu_pct = 100 * total_cpu_s / window_s
    lines.append(
        f"    lab: {total.processes} process(es), PSS {gib(total.pss_kib)} (budget "
        f"{BUDGET_MEMORY_GIB:g} GiB), RSS {gib(total.rss_kib)}, CPU {cpu_pct:.1f} % of a core "
        f"over {window_s:g} s (budget {BUDGET_IDLE_CPU_PCT:g} % when idle)"
    )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resources.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--proc", default="/proc", help="the proc file system (tests: a copy)")
    parser.add_argument("window_s", type=float, help="seconds to measure CPU over")
    parser.add_argument("roots", nargs="+", metavar="NAME=PID")
    args = parser.parse_args(argv)
    if args.window_s <= 0:
        parser.error(f"WINDOW_S must be > 0, not {args.window_s:g}")
    roots = parse_roots(args.roots)
    proc = Path(args.proc)
    before = snapshot(proc)
    time.sleep(args.window_s)  # the measuring window itself, not a synchronisation
    after = snapshot(proc)
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    print(f"resources (CPU over {args.window_s:g} s, memory at its end):")
    print(
        "\n".join(
            report(roots, before, after, proc=proc, window_s=args.window_s, ticks_per_s=ticks_per_s)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
