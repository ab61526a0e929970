"""Per-cycle soak metrics from a synthetic ledger, trends, and the atomic status file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osha.messages import Resources, SelfChaosKill, SoakCycle
from osha.soak.cycles import cycle_rows, trend
from osha.soak.status import (
    CycleVerdict,
    NextFault,
    SoakStatus,
    read_status,
    write_status,
)
from osha.testing import SyntheticLedger


def test_cycle_rows_count_faults_outages_recovery_and_rss(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "soak.osha")
    downs = [(100.0 * c + 11.0, 100.0 * c + 20.0 + 2.0 * c) for c in range(3)]  # MTTR grows
    led.target("host-services", "nova-api@ctl-1", end_s=300, down=downs)
    for c in range(3):
        t0 = 100.0 * c
        led.add(t0 + 0.1, "campaign", SoakCycle, cycle=c + 1, phase="start", planned_faults=1)
        led.fault(f"f{c}", inject_s=t0 + 10.0, revert_s=t0 + 20.0, resource="nova-api")
        led.add(t0 + 50.0, "osha", Resources, process="main", pid=1, rss_bytes=(40 + c) << 20,
                cpu_s=1.0)  # fmt: skip
        if c == 1:
            led.add(t0 + 60.0, "self-chaos", SelfChaosKill, actor_id="tick", pid=2, kill=1)
        led.add(t0 + 99.0, "campaign", SoakCycle, cycle=c + 1, phase="end")
    rows = cycle_rows(led.write(stop_s=300.0))
    assert [r.cycle for r in rows] == [1, 2, 3]
    assert [r.injected for r in rows] == [1, 1, 1]
    assert [r.reverted for r in rows] == [1, 1, 1]
    assert [r.targets_down for r in rows] == [1, 1, 1]
    assert [r.self_chaos_kills for r in rows] == [0, 1, 0]
    assert [r.osha_rss_bytes for r in rows] == [40 << 20, 41 << 20, 42 << 20]
    recoveries = [r.recovery_s for r in rows]
    assert all(r is not None for r in recoveries)
    for c, rec in enumerate(recoveries):
        assert rec == pytest.approx(2.0 * c, abs=1.0)  # up again (truth) minus revert at +20
    slope = trend([r or 0.0 for r in recoveries])
    assert slope is not None
    assert slope == pytest.approx(2.0, abs=0.6)  # MTTR grows by about 2 s per cycle


def test_a_target_still_down_at_the_cycle_end_has_no_recovery(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "soak.osha")
    led.target("m", "t", end_s=100, down=[(10.0, 90.0)])
    led.add(1.0, "campaign", SoakCycle, cycle=1, phase="start")
    led.add(50.0, "campaign", SoakCycle, cycle=1, phase="end")
    [row] = cycle_rows(led.write(stop_s=100.0))
    assert row.recovery_s is None
    assert row.targets_down == 1


def test_trend_needs_two_points() -> None:
    assert trend([]) is None
    assert trend([3.0]) is None
    assert trend([1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_status_file_is_replaced_atomically_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    status = SoakStatus(run_id="r", ledger="runs/r.osha", state="running", cycles_planned=30)
    for c in range(15):
        status.cycle = c + 1
        status.add_verdict(CycleVerdict(c + 1, ok=c != 3, detail=f"cycle {c + 1}"))
    status.next_fault = NextFault("kill nova-scheduler@ctl-1", 1_700_000_123.0)
    write_status(path, status)
    data = json.loads(path.read_text())
    assert data["schema"] == 1
    assert len(data["last_verdicts"]) == 10  # bounded
    assert not (tmp_path / "status.json.tmp").exists()
    back = read_status(path)
    assert back.cycle == 15
    assert back.next_fault == status.next_fault
    assert back.last_verdicts[-1] == CycleVerdict(15, True, "cycle 15")
