"""Repeated experiments against the lab (issue 17 §4, §5): ``osha campaign start --repeat 3``
of a short scheduler-kill profile, then ``osha report --aggregate --ci-target``.

The profile has no Rally runner: a runner's degradation needs a baseline of warm-up + window
(31) iterations, minutes of lab time per run, and the unit tests cover the runner figures on
synthetic series. Here every figure (detection, downtime, time to recover of the one fault)
must have n = 3 and a 95 % interval, and the runs needed for ``--ci-target 1s`` must be the
smallest n of the formula t_{0.975,n-1}·sd/√n <= 1 s.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from osha.analysis.student import t_quantile
from osha.campaign.repeat import repeat_seed
from osha.ledger import LedgerReader
from tests.lab.bounds import COMMAND_S, OSHA_START_S, PREFLIGHT_S
from tests.lab.client import Lab

pytestmark = pytest.mark.lab

EVIDENCE = Path("/work/coord/evidence/17c")
SEED = 42
BASELINE_S, CHAOS_S, RECOVERY_S = 10, 20, 60
PROFILE = f"""\
[campaign]
name = "sched-kill-repeat"
seed = {SEED}
preflight_timeout_s = {PREFLIGHT_S}
warmup_s = 0
baseline_s = {BASELINE_S}
chaos_s = {CHAOS_S}
recovery_timeout_s = {RECOVERY_S}
recovery_hold_s = 3

[cloud]
cloud = "lab"
clouds_yaml = "${{OSHA_LAB_DIR:-/var/lib/osha-lab}}/clouds.yaml"
inventory = "${{OSHA_LAB_DIR:-/var/lib/osha-lab}}/inventory.ini"
known_hosts = "${{OSHA_LAB_DIR:-/var/lib/osha-lab}}/known_hosts"
ssh_key = "${{OSHA_LAB_DIR:-/var/lib/osha-lab}}/id_ed25519"

[[monitors]]
id = "hosts"
plugin = "host-services"
interval_s = 0.2
limit = ["nova-scheduler"]
services = {{ nova-scheduler = ["nova-scheduler"] }}

[[disruptors]]
id = "stop-sched-ctl1"
plugin = "process"
service = "nova-scheduler"
action = "stop"
target = {{ group = "nova-scheduler", pick = "node:ctl-1" }}
schedule = {{ start_s = 3, times = 1, down_s = 8 }}

[slo]
require_reverted = true
"""
#: A hang guard per run: the profile's own bounds (preflight, baseline, chaos, recovery) plus
#: osha's start and a stop/start of the service over SSH (tests/lab/bounds.py), each doubled
#: for the loaded 2-core machine.
RUN_S = 2 * (PREFLIGHT_S + OSHA_START_S + BASELINE_S + CHAOS_S + RECOVERY_S + 2 * COMMAND_S)


def _osha(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "osha", *args], capture_output=True, text=True,
                          timeout=timeout_s, check=False)  # fmt: skip


def _smallest_n(sd: float, target_s: float) -> int:
    """The formula, independently: the first n >= 2 with t_{0.975,n-1}·sd/√n <= target."""
    n = 2
    while t_quantile(0.975, n - 1) * sd / math.sqrt(n) > target_s:
        n += 1
        assert n < 100_000, (sd, target_s)
    return n


@pytest.mark.timeout(3 * RUN_S + 120)  # a hang guard above the three runs' and the report's
def test_repeat_3_then_aggregate_with_ci_target(healthy_lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "sched-kill.toml"
    path.write_text(PROFILE)
    runs_dir = tmp_path / "runs"
    start = _osha("campaign", "start", str(path), "--plain", "--ledger-dir", str(runs_dir),
                  "--repeat", "3", timeout_s=3 * RUN_S)  # fmt: skip
    out = start.stdout + start.stderr
    assert start.returncode == 0, out
    runs = sorted(runs_dir.glob("*.osha"), key=lambda p: p.stat().st_mtime)
    assert len(runs) == 3, out
    seeds = [h.seed for h in (LedgerReader(r).header() for r in runs) if h is not None]
    assert seeds == [repeat_seed(SEED, i) for i in (1, 2, 3)]
    assert "aggregate of 3 run(s)" in start.stdout

    report = _osha("report", "--aggregate", *map(str, runs), "--ci-target", "1s", "--json",
                   "-", timeout_s=120)  # fmt: skip
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    figures = data["figures"]
    metrics = {(f["fault"], f["metric"]) for f in figures}
    assert metrics == {("stop-sched-ctl1 stop", m)
                       for m in ("detection", "downtime", "time to recover")}, metrics
    for fig in figures:
        assert fig["n"] == 3, fig
        assert fig["half_width"] is not None, fig
        assert fig["low"] <= fig["mean"] <= fig["high"], fig
        half = t_quantile(0.975, 2) * fig["sd"] / math.sqrt(3)
        assert fig["half_width"] == pytest.approx(half, rel=1e-6), fig
        assert fig["runs_needed"] == _smallest_n(fig["sd"], 1.0), fig
    # the fault held ctl-1's scheduler down 8 s: the downtime is about that on every run
    down = next(f for f in figures if f["metric"] == "downtime")
    assert all(4.0 < v < 8.0 + 2 * COMMAND_S for v in down["values"]), down

    text = _osha("report", "--aggregate", *map(str, runs), "--ci-target", "1s", timeout_s=120)
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    (EVIDENCE / "lab-repeat-aggregate.txt").write_text(out + "\n---\n" + text.stdout)
