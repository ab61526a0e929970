"""``osha report`` on the ledger of a real campaign against the lab.

Runs ``osha campaign start profiles/lab-nova-scheduler.toml`` (short phases), then:

- the downtime the report computes for the killed ``nova-scheduler@ctl-1`` agrees with the
  node's ground truth (its ``exit`` and next ``start`` events: kill time and new PID time)
  within ± (monitor interval + 0.2 s);
- the verdict the campaign printed and recorded equals ``osha report``'s verdict on its ledger;
- the HTML report renders from the real ledger.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from osha.analysis import analyze
from osha.ledger import LedgerReader
from osha.report import render_verdict
from osha.report.html import render_html
from tests.lab.bounds import PREFLIGHT_S, WARMUP_S
from tests.lab.conftest import REPO, Lab

PROFILE = REPO / "profiles" / "lab-nova-scheduler.toml"
TARGET = "nova-scheduler@ctl-1"


def _process_monitor(profile: dict[str, object]) -> tuple[str, float]:
    """(id, interval) of the profile's host-services monitor: it watches the process itself,
    which is what the node's ground truth records (the API monitor sees nova's own view,
    which lags by nova's service_down_time)."""
    monitors = profile.get("monitors")
    for m in monitors if isinstance(monitors, list) else []:
        if isinstance(m, dict) and m.get("plugin") == "host-services":
            return str(m["id"]), float(m.get("interval_s", 1.0))
    raise AssertionError(f"{PROFILE} has no host-services monitor")


@pytest.mark.lab
@pytest.mark.timeout(1600)  # a hang guard: preflight, warm-up and the phases on a loaded machine
def test_report_of_a_real_campaign(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    assert PROFILE.exists(), f"the campaign's lab profile is missing: {PROFILE}"
    runs = tmp_path / "runs"
    # the shipped profile, with a preflight timeout and warm-up for the loaded test machine
    # (bounds.py)
    shutil.copytree(PROFILE.parent / "rally", tmp_path / "rally", dirs_exist_ok=True)
    profile = tmp_path / PROFILE.name
    text = PROFILE.read_text()
    text = text.replace("[campaign]\n", f"[campaign]\npreflight_timeout_s = {PREFLIGHT_S}\n", 1)
    profile.write_text(re.sub(r"(?m)^warmup_s = [0-9.]+", f"warmup_s = {WARMUP_S}", text, count=1))
    done = subprocess.run(
        [sys.executable, "-m", "osha", "campaign", "start", str(profile), "--plain",
         "--ledger-dir", str(runs), "--baseline-s", "30", "--chaos-s", "60",
         "--recovery-timeout-s", "120"],
        capture_output=True, text=True, timeout=1500, check=False, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    a = analyze(run_dir)

    # the live verdict is the replayed verdict
    recorded = a.run.recorded_verdict
    assert recorded is not None
    assert recorded["summary"] == a.verdict.summary
    assert recorded["exit_code"] == a.verdict.exit_code == done.returncode
    assert a.verdict.summary in done.stdout
    for line in render_verdict(a.verdict).splitlines()[:3]:
        assert line.strip() in done.stdout

    # downtime of the killed service against the node's ground truth
    events = [e for e in lab.events("ctl-1") if e.name == "nova-scheduler"]
    start_wall = a.run.started_wall_s
    injected = [f for f in a.faults if f.injected_s is not None and f.node == "ctl-1"]
    assert injected, [f.label for f in a.faults]
    header = LedgerReader(run_dir).header()
    monitor, interval_s = _process_monitor(header.profile if header is not None else {})
    tolerance = interval_s + 0.2
    for fault in injected:
        impact = next(
            (t for t in fault.targets if t.target == TARGET and t.monitor == monitor), None
        )
        assert impact is not None, f"{fault.label}: no outage of {TARGET} attributed"
        # the frozen scheduler on ctl-2 must not take the ctl-1 outage from its own fault
        for other in a.faults:
            if other is not fault:
                assert TARGET not in {t.target for t in other.targets}, other.label
        t_inject = start_wall + (fault.injected_s or 0.0)
        exits = [e for e in events if e.kind == "exit" and e.time_s >= t_inject - 1.0]
        assert exits, "the node recorded no exit of nova-scheduler after the inject"
        exit_ev = exits[0]
        start_ev = next(e for e in events if e.kind == "start" and e.time_s > exit_ev.time_s)
        truth_s = start_ev.time_s - exit_ev.time_s
        print(  # noqa: T201 - the measured figure is part of the report
            f"\n{fault.label}: downtime {impact.downtime_s:.3f} ± {impact.downtime_bound_s:.3f} s,"
            f" ground truth {truth_s:.3f} s"
        )
        assert abs(impact.downtime_s - truth_s) <= tolerance

    html = render_html(a)
    assert TARGET in html
    assert "fault-band-" in html
