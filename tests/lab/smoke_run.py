"""The lab tier's one clean campaign, run once and shared (issue 20: a whole CI run under
45 minutes; one campaign serves several assertions).

``profiles/lab-smoke.toml`` (Rally and the monitors, no fault) plus a ``node`` disruptor
whose one power-cycle is planned an hour after the run's end: its health gate and setup read
the BMC password and talk to the BMC, and it never touches the lab, so the run stays clean.
Two modules look at it instead of running a campaign each (measured before, on a loaded
machine: the smoke campaign 125 s, the secrets test's own run of the same profile 129 s):

- ``tests/lab/test_campaign.py``: the smoke campaign passes and leaves nothing (servers,
  audits' debris); an allocation of no consumer planted before it is reported pre-existing;
- ``tests/lab/test_hardening.py``: none of the lab's passwords (clouds.yaml, the BMCs') is in
  any file of the finished run, and every file is private.

The conftest's ``smoke_run`` fixture (session scope) runs it the first time a test asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.lab.client import Lab
from tests.lab.scheduler_run import plant_allocation, remove_allocation
from tests.lab.test_campaign import _profile, _start
from tests.lab.test_disruptors_support import power_table

PROFILE = "lab-smoke.toml"
#: the node disruptor's fault: an hour after the start, far beyond the smoke run's end
LATER_S = 3600


@dataclass(frozen=True)
class SmokeRun:
    code: int
    run_dir: Path
    out: str  # stdout and stderr of `osha campaign start --plain`
    servers_before: int  # every project's servers before the run
    servers_after: int  # and after it
    planted_consumer: str  # an allocation of no consumer planted before it (pre-existing)


def run_once(lab: Lab, tmp_path: Path) -> SmokeRun:
    cloud = lab.cloud()
    before = len(list(cloud.compute.servers(all_projects=True)))
    path = _profile(tmp_path, PROFILE, {})
    path.write_text(
        path.read_text()
        + f"""
[[disruptors]]
id = "cycle-later"
plugin = "node"
action = "power-cycle"
target = {{ group = "compute", pick = "node:cmp-2" }}
schedule = {{ start_s = {LATER_S}, times = 1, down_s = 5 }}
{power_table(lab, "cmp-2")}
"""
    )
    consumer = plant_allocation(lab)  # debris from before the run: pre-existing, not new
    try:
        code, run_dir, out = _start(path, tmp_path)
    finally:
        remove_allocation(lab, consumer)
    after = len(list(cloud.compute.servers(all_projects=True)))
    return SmokeRun(code, run_dir, out, before, after, consumer)
