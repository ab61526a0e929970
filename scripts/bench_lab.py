#!/usr/bin/env python3
"""Benchmark: how fast the lab answers (issue 12, "Fast"). Prints the median and p95 of each
call over ``--count`` repetitions; asserts nothing.

- token issue: a keystone password login (POST /v3/auth/tokens), a new session each time;
- token validation: GET /v3/auth/tokens with X-Subject-Token (keystone, cached after the first);
- nova GET /flavors: a validated call through keystonemiddleware (its token cache warm);
- neutron network list: GET /v2.0/networks, validated the same way;
- with ``--rally N``: a Rally ``NovaServers.boot_and_delete_server`` iteration (the demo's
  task, profiles/rally/boot-and-delete.yaml), N iterations one at a time (at ``--concurrency
  C``: C at a time, and the pace, wall seconds per iteration, that a campaign's baseline
  gets), then the median and p95 of its two halves, Rally's atomic actions
  ``nova.boot_server`` (POST to ACTIVE) and ``nova.delete_server``. Rally's own context setup
  and cleanup are not in the figures;
- with ``--campaign PROFILE`` (repeatable): runs ``osha campaign start PROFILE`` and prints
  the seconds of each phase of the run (validate, preflight, load, baseline, chaos,
  recovery, teardown; issue 12's phase goals are the demo's preflight <= 10 s, load <= 30 s,
  teardown <= 20 s) and its verdict; with ``--phases LEDGER`` (repeatable) the same figures
  from a ledger already recorded, without running anything.

Each request goes to the catalog's endpoints (the VIP in the HA topology, ctl-1 otherwise),
the way osha's own openstack-api monitor reaches them. Run it against a lab that `scripts/lab
status` calls healthy; the lab's topology and the machine's load average are printed with the
figures, since both move them.

Usage: OSHA_LAB_INSTANCE=N nice -n 19 .venv/bin/python scripts/bench_lab.py [--count 30]
       [--rally 10 [--concurrency 1]] [--campaign profiles/lab-nova-scheduler.toml]
       .venv/bin/python scripts/bench_lab.py --phases runs/RUN-ID.osha   (no lab needed)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
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


REPO = Path(__file__).resolve().parents[1]
#: a hang guard of the Rally benchmark: Rally's context setup and cleanup plus the iterations
#: at the slowest pace measured on the loaded machine (about 90 s a boot, issue 12)
RALLY_S_PER_ITERATION, RALLY_FIXED_S = 120.0, 300.0


def rally_iterations(desc: dict[str, Any], times: int, concurrency: int) -> list[dict[str, Any]]:
    """Run the demo's Rally task ``times`` times, ``concurrency`` at a time; its iterations
    (Rally's report: duration, timestamp, error)."""
    rally = desc["rally"]
    base = [rally["bin"], "--config-file", rally["config_file"]]
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    task_args = json.dumps({"times": times, "concurrency": concurrency, "image": "tiny"})
    hang_s = RALLY_FIXED_S + RALLY_S_PER_ITERATION * times / concurrency
    subprocess.run(
        [*base, "task", "start", str(REPO / "profiles" / "rally" / "boot-and-delete.yaml"),
         "--task-args", task_args, "--tag", tag, "--env", rally["env"], "--no-use"],
        check=True, capture_output=True, timeout=hang_s,
    )  # fmt: skip
    # --env: without it Rally lists the default environment of ~/.rally/globals, which every
    # Rally on the machine shares (another lab's may name one this database does not have)
    listed = subprocess.run([*base, "task", "list", "--tag", tag, "--env", rally["env"],
                             "--uuids-only"],
                            check=True, capture_output=True, text=True, timeout=120)  # fmt: skip
    [task] = listed.stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        subprocess.run([*base, "task", "report", "--uuid", task, "--json", "--out", str(out)],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        report = json.loads(out.read_text())
    [workload] = report["tasks"][0]["subtasks"][0]["workloads"]
    data: list[dict[str, Any]] = workload["data"]
    return data


def print_rally(desc: dict[str, Any], times: int, concurrency: int) -> None:
    data = rally_iterations(desc, times, concurrency)
    good = [d["duration"] for d in data if not d["error"]]
    span_s = max(d["timestamp"] + d["duration"] for d in data) - min(d["timestamp"] for d in data)
    name = f"rally boot_and_delete_server x{concurrency}"
    if not good:
        print(f"  {name:34s} every iteration of {len(data)} failed")
        return
    print(
        f"  {name:34s} median {statistics.median(good):7.2f} s    p95 {p95(good):7.2f} s"
        f"   {len(good)}/{len(data)} ok, pace {span_s / len(data):.2f} s per iteration,"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    for action in ("nova.boot_server", "nova.delete_server"):  # the iteration's two halves
        spans = [atomic_s(d["atomic_actions"], action) for d in data if not d["error"]]
        found = [s for s in spans if s is not None]
        if found:
            print(f"    {action:32s} median {statistics.median(found):7.2f} s    p95 "
                  f"{p95(found):7.2f} s")  # fmt: skip


def atomic_s(actions: list[dict[str, Any]], name: str) -> float | None:
    """Seconds of the atomic action ``name`` (Rally's report: started_at, finished_at)."""
    for action in actions:
        if action["name"] == name:
            return float(action["finished_at"]) - float(action["started_at"])
    return None


#: the phases whose time the campaign itself spends (issue 12: "a campaign's fixed phases")
FIXED_PHASES = ("preflight", "load", "teardown")
#: a hang guard of a benchmarked campaign: the longest shipped lab profile's planned time
#: (baseline + chaos + recovery timeout, about 10 min) plus its fixed phases at load
CAMPAIGN_HANG_S = 1800.0


def ledger_phases(ledger: Path) -> tuple[list[tuple[str, float]], str]:
    """The ``(phase, seconds)`` of a recorded run, in order, and its verdict line
    (``osha report --json``: run.phases, verdict.summary)."""
    done = subprocess.run([str(REPO / ".venv" / "bin" / "osha"), "report", str(ledger),
                           "--json", "-"], check=False, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    if not done.stdout.strip():
        raise SystemExit(f"bench_lab: osha report {ledger} wrote no JSON "
                         f"(exit {done.returncode}): {done.stderr.strip()[-400:]}")  # fmt: skip
    report = json.loads(done.stdout)
    phases = [(p["name"], p["end_s"] - p["start_s"]) for p in report["run"]["phases"]
              if p.get("end_s") is not None]  # fmt: skip
    return phases, str(report["verdict"]["summary"])


def print_phases(ledger: Path, wall_s: float | None = None) -> None:
    phases, verdict = ledger_phases(ledger)
    print(f"  campaign {ledger.name}" + (f" ({wall_s:.0f} s wall)" if wall_s else ""))
    print("    " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases))
    fixed = {name: seconds for name, seconds in phases if name in FIXED_PHASES}
    each = ", ".join(f"{name} {seconds:.1f}" for name, seconds in fixed.items())
    print(f"    fixed phases {sum(fixed.values()):.1f} s ({each}); verdict: {verdict}")


def run_campaign(profile: Path) -> None:
    """``osha campaign start PROFILE`` into a fresh ledger directory, then its phases."""
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        started = time.monotonic()
        done = subprocess.run([str(REPO / ".venv" / "bin" / "osha"), "campaign", "start",
                               str(profile), "--plain", "--ledger-dir", tmp],
                              check=False, capture_output=True, text=True,
                              timeout=CAMPAIGN_HANG_S)  # fmt: skip
        wall_s = time.monotonic() - started
        ledgers = sorted(Path(tmp).glob("*.osha"))
        if not ledgers:
            raise SystemExit(f"bench_lab: {profile} made no ledger (exit {done.returncode}): "
                             f"{done.stderr.strip()[-400:]}")  # fmt: skip
        print_phases(ledgers[-1], wall_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30, help="calls per figure (default 30)")
    parser.add_argument(
        "--rally",
        type=int,
        default=0,
        metavar="N",
        help="also N Rally boot_and_delete_server iterations (default 0: none)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="Rally iterations at a time (default 1)"
    )
    parser.add_argument("--campaign", type=Path, action="append", default=[],
                        metavar="PROFILE", help="also run this campaign and print its phase "
                        "times (repeatable)")  # fmt: skip
    parser.add_argument("--phases", type=Path, nargs="+", default=[], metavar="LEDGER",
                        help="only print the phase times of these recorded runs (no lab "
                        "needed)")  # fmt: skip
    args = parser.parse_args()
    if args.phases:
        print(f"phase times of {len(args.phases)} recorded run(s)")
        for ledger in args.phases:
            print_phases(ledger)
        return 0
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
    if args.rally > 0:
        print_rally(desc, args.rally, args.concurrency)
    for profile in args.campaign:
        print(f"campaign {profile}: phase times (load average {os.getloadavg()[0]:.1f})")
        run_campaign(profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
