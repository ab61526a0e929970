#!/usr/bin/env python3
"""Dead-man switch figures, with this machine as the node and ``sh -c`` as the transport.
Prints its figures; asserts nothing.

  (a) lateness of the revert after the deadline, on the node's clock (``/proc/uptime``),
      over N leases whose ttls spread their deadlines over the poll step; goal: max <= poll_s
      plus scheduling (the bound :func:`osha.faults.deadman.expiry_bound_s` allows 2 s);
  (b) the time of one ``arm`` call (it waits for the watchdog's pid file) and one ``renew``.

Usage: .venv/bin/python scripts/bench_deadman.py [LEASES]   (default 20)
State goes to a temporary directory that is removed at the end; every watchdog is disarmed
or has fired by then.
"""

from __future__ import annotations

import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osha.faults import deadman
from osha.testing import wait_for


def run(script: str) -> tuple[int, str]:
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


def _read(marker: Path) -> str:
    return marker.read_text().strip() if marker.exists() else ""


def lateness(leases: int, poll_s: float, state_dir: Path) -> None:
    arms: list[float] = []
    pending: list[tuple[deadman.Watchdog, Path]] = []
    for i in range(leases):
        marker = state_dir / f"ran-{poll_s}-{i}"
        ttl_s = 2.0 + 0.037 * i  # deadlines at every phase of the poll step
        started = time.monotonic()
        watchdog = deadman.arm(run, f"bench/{poll_s}/{i}",
                               f"read -r up _ < /proc/uptime; echo $up > {marker}", ttl_s,
                               state_dir=str(state_dir), poll_s=poll_s)  # fmt: skip
        arms.append(time.monotonic() - started)
        pending.append((watchdog, marker))
    late: list[float] = []
    for watchdog, marker in pending:
        text = wait_for(functools.partial(_read, marker), what="a revert",
                        timeout_s=deadman.expiry_bound_s(3.0, poll_s) + 30)  # fmt: skip
        assert watchdog.deadline_s is not None
        late.append(float(text) - watchdog.deadline_s)
        watchdog.disarm()  # collect the result, remove the lease's files
    print(f"poll_s={poll_s}: {leases} leases: revert after the deadline (node clock): "
          f"{_ms(late)}, min {min(late) * 1000:.0f} ms; arm call: {_ms(arms)}")  # fmt: skip


def renew(state_dir: Path, count: int = 20) -> None:
    watchdog = deadman.arm(run, "bench/renew", "true", 60.0, state_dir=str(state_dir))
    times: list[float] = []
    for _ in range(count):
        started = time.monotonic()
        watchdog.renew(60.0)
        times.append(time.monotonic() - started)
    watchdog.disarm()
    print(f"renew call ({count}): {_ms(times)}")


def main() -> None:
    leases = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    state_dir = Path(tempfile.mkdtemp(prefix="osha-t15-bench-"))
    try:
        for poll_s in (0.1, deadman.DEFAULT_POLL_S):
            lateness(leases, poll_s, state_dir)
        renew(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
