#!/usr/bin/env python3
"""The audits' time against a real cloud (issue 18: 500 servers audited in under 10 s).
Prints its figures; asserts nothing; only reads (every audit's session refuses writes).

For each audit (``servers``, ``services``, ``rally``) it runs R read-only sweeps and prints
the median and max time, the items read and found, the API calls sent, and whether a bound
(``timeout_s``, ``max_items``) cut it short. Boot the servers to audit first (in the lab,
nova's fake driver makes 500 cheap); this script creates nothing.

Written at stop 24, NOT YET RUN (no lab that stop).

Usage: .venv/bin/python scripts/bench_audit.py CLOUD [--clouds-yaml F] [--repeat R]
       [--page-size N]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from typing import Any

from osha.audit import AuditEntry, AuditRun, load_audit, sweep
from osha.messages import Message, stamp
from osha.messages.audit import AuditWhen
from osha.schema import build

GOAL_S = 10.0


def _entry(name: str, cloud: str, clouds_yaml: str, page_size: int) -> AuditEntry:
    cls = load_audit(name)
    raw = {"cloud": cloud, "clouds_yaml": clouds_yaml, "page_size": page_size,
           "timeout_s": 600.0, "max_items": 100_000}  # fmt: skip
    config, problems = build(cls.config_type, raw, file="bench", key=name)
    if config is None:
        raise SystemExit(f"bench_audit: {problems[0]}")
    return AuditEntry(name, name, config)


def _once(entry: AuditEntry) -> AuditRun:
    seq = itertools.count(1)

    def record(cls: type[Message], /, **fields: Any) -> Message:
        return stamp(cls, "bench", next(seq), **fields)

    (run,) = sweep([entry], AuditWhen.ON_DEMAND, record)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cloud")
    ap.add_argument("--clouds-yaml", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=200)
    args = ap.parse_args()
    print("audit     median_s  max_s    read  found  calls  status   "
          f"(goal: servers < {GOAL_S:g} s)")
    for name in ("servers", "services", "rally"):
        entry = _entry(name, args.cloud, args.clouds_yaml, args.page_size)
        runs = [_once(entry) for _ in range(max(1, args.repeat))]
        times = [r.elapsed_s for r in runs]
        last = runs[-1]
        calls = len(last.calls.sent) if last.calls is not None else 0
        status = "ok" if last.ok else f"FAILED: {last.error}"
        status += f" (truncated: {last.truncated})" if last.truncated else ""
        print(f"{name:<9} {statistics.median(times):8.2f}  {max(times):6.2f}  "
              f"{last.items_read:6d}  {len(last.found):5d}  {calls:5d}  {status}")  # fmt: skip


if __name__ == "__main__":
    main()
