#!/usr/bin/env python3
"""Benchmark: how fast the lab answers (issue 12, "Fast"). Prints the median and p95 of each
call over ``--count`` repetitions; asserts nothing.

- token issue: a keystone password login (POST /v3/auth/tokens), a new session each time;
- token validation: GET /v3/auth/tokens with X-Subject-Token (keystone, cached after the first);
- nova GET /flavors: a validated call through keystonemiddleware (its token cache warm);
- neutron network list: GET /v2.0/networks, validated the same way.

Each request goes to the catalog's endpoints (the VIP in the HA topology, ctl-1 otherwise),
the way osha's own openstack-api monitor reaches them. Run it against a lab that `scripts/lab
status` calls healthy; the lab's topology and the machine's load average are printed with the
figures, since both move them.

Usage: OSHA_LAB_INSTANCE=N nice -n 19 .venv/bin/python scripts/bench_lab.py [--count 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack


def lab_json() -> dict[str, Any]:
    instance = int(os.environ.get("OSHA_LAB_INSTANCE", "0"))
    default = "/var/lib/osha-lab" if instance == 0 else f"/var/lib/osha-lab-{instance}"
    path = Path(os.environ.get("OSHA_LAB_DIR", default)) / "lab.json"
    desc: dict[str, Any] = json.loads(path.read_text())
    return desc


def timed(call: Callable[[], object], count: int) -> list[float]:
    """Seconds per call, ``count`` calls (one unmeasured warm-up first)."""
    call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30, help="calls per figure (default 30)")
    args = parser.parse_args()
    desc = lab_json()
    os.environ["OS_CLIENT_CONFIG_FILE"] = desc["clouds_yaml"]
    cloud = openstack.connect(cloud=desc["cloud"], api_timeout=30)
    token = cloud.session.get_token()
    identity = cloud.session.get_endpoint(service_type="identity", interface="public")

    def issue() -> None:
        fresh = openstack.connect(cloud=desc["cloud"], api_timeout=30)
        fresh.session.get_token()
        fresh.close()

    def validate() -> None:
        response = cloud.session.get(
            f"{identity.rstrip('/')}/auth/tokens",
            headers={"X-Subject-Token": token},
            endpoint_filter=None,
        )
        response.raise_for_status()

    def flavors() -> None:
        cloud.compute.get("/flavors").raise_for_status()

    def networks() -> None:
        cloud.network.get("/networks").raise_for_status()

    print(
        f"lab instance {desc['instance']}, topology {desc.get('topology', 'default')}, "
        f"{args.count} calls each, load average {os.getloadavg()[0]:.1f}"
    )
    for name, call in (
        ("token issue", issue),
        ("token validation", validate),
        ("nova GET /flavors (validated)", flavors),
        ("neutron network list (validated)", networks),
    ):
        times = timed(call, args.count)
        print(
            f"  {name:34s} median {statistics.median(times) * 1000:7.1f} ms"
            f"   p95 {p95(times) * 1000:7.1f} ms"
        )
    cloud.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
