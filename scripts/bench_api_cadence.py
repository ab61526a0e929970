#!/usr/bin/env python3
"""Benchmark: ``openstack-api``'s probe cadence of an answering endpoint while another
endpoint hangs, this checkout's monitor against the one of a git ref (default ``main``), in
the same run. Prints figures; asserts nothing.

Two APIs on 127.0.0.1 (``tests/unit/local_api.py``): ``network`` answers at once,
``compute`` holds every request unanswered (as a keep-alive connection to a powered-off
VIP holder does), so every compute probe waits for its read timeout (``--timeout``). The
monitor polls every ``--interval`` seconds on an absolute schedule, as the actor host does.
Figures per case: the gaps between the network API's request arrivals (median, p95, max),
probes per second, and the polls skipped for the hung endpoint. "healthy": both answer.

Usage: nice -n 19 .venv/bin/python scripts/bench_api_cadence.py [--ref main] [--seconds 10]
    [--interval 0.2] [--timeout 2.0]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.monitors import openstack_api  # noqa: E402
from osha import schema  # noqa: E402
from osha.testing import FakeContext, holds_for  # noqa: E402
from tests.unit.local_api import catalog_session, driven, local_api, patched_connect  # noqa: E402


def module_at(ref: str) -> types.ModuleType:
    """``actors/monitors/openstack_api.py`` as of ``ref``, imported beside this checkout's."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:actors/monitors/openstack_api.py"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    name = f"actors.monitors._openstack_api_at_{ref.replace('-', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses and the schema resolve annotations through it
    exec(compile(source, f"{ref}:actors/monitors/openstack_api.py", "exec"), module.__dict__)  # noqa: S102 - our own file at a ref
    return module


def run_case(module: types.ModuleType, *, hang: bool, args: argparse.Namespace) -> dict[str, Any]:
    data = {
        "cloud": "bench",
        "interval_s": args.interval,
        "timeout_s": args.timeout,
        "compute_services": False,
        "network_agents": False,
    }
    cfg, problems = schema.build(module.OpenStackApiConfig, data, file="bench")
    assert cfg is not None, problems
    with local_api(hang=hang) as compute, local_api(hang=False) as network:
        session = catalog_session({"compute": compute.url + "/v2.1", "network": network.url})
        with patched_connect(module, session):
            mon = module.OpenStackApiMonitor(cfg, FakeContext())
            mon.setup()
        try:
            with driven(mon.poll, args.interval):
                # the run's length: nothing to wait for, the cadence is what is measured
                holds_for(lambda: True, duration_s=args.seconds, interval_s=args.seconds)
        finally:
            mon.teardown()
    gaps = network.gaps_s()
    lanes = getattr(mon, "lanes", None)
    skipped = lanes.skipped().get("endpoint:compute", 0) if lanes is not None else "-"
    return {
        "median": statistics.median(gaps),
        "p95": statistics.quantiles(gaps, n=20, method="inclusive")[18],
        "max": max(gaps),
        "rate": len(network.arrivals_mono_s) / args.seconds,
        "skipped": skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="main", help="git ref of the monitor to compare")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    variants = {args.ref: module_at(args.ref), "this checkout": openstack_api}
    print(
        f"openstack-api probe cadence of an answering endpoint; interval {args.interval} s, "
        f"timeout {args.timeout} s, {args.seconds:.0f} s per case"
    )
    print(f"{'monitor':<16}{'case':<12}{'median s':>9}{'p95 s':>8}{'max s':>8}"
          f"{'probes/s':>10}{'skipped':>9}")  # fmt: skip
    for label, module in variants.items():
        for case, hang in (("healthy", False), ("one hung", True)):
            r = run_case(module, hang=hang, args=args)
            print(
                f"{label:<16}{case:<12}{r['median']:>9.3f}{r['p95']:>8.3f}{r['max']:>8.3f}"
                f"{r['rate']:>10.2f}{r['skipped']!s:>9}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
