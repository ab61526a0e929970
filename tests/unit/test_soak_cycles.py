"""Per-cycle soak metrics from a synthetic ledger (through the soak-side ``cycle_rows``; the
analysis and the reports are in test_report_soak.py), trends, and the atomic status file."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.messages import FaultRevertFailed
from osha.soak.cycles import cycle_rows, trend
from osha.testing import SyntheticLedger

SAMPLE_S = 0.25 + 1e-9  # an outage's end is known to ± half the monitor's sample interval


def test_cycle_rows_count_faults_outages_recovery_and_rss(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "soak.osha")
    downs = [(100.0 * c + 11.0, 100.0 * c + 22.0 + 2.0 * c) for c in range(3)]  # MTTR grows
    led.target("host-services", "nova-api@ctl-1", end_s=300, down=downs)
    for c in range(3):
        t0 = 100.0 * c
        led.soak_cycle(c + 1, t0 + 0.1, t0 + 99.0)
        led.fault(f"f{c}", inject_s=t0 + 10.0, revert_s=t0 + 20.0, resource="nova-api")
        led.resources(t0 + 50.0, (40 + c) << 20)
        if c == 1:
            led.self_chaos(t0 + 60.0, "tick")
    rows = cycle_rows(led.write(stop_s=300.0))
    assert [r.cycle for r in rows] == [1, 2, 3]
    assert [r.injected for r in rows] == [1, 1, 1]
    assert [r.reverted for r in rows] == [1, 1, 1]
    assert [r.targets_down for r in rows] == [1, 1, 1]
    assert [r.crashes for r in rows] == [0, 1, 0]
    assert [r.self_chaos_kills for r in rows] == [0, 1, 0]
    assert [r.osha_rss_bytes for r in rows] == [40 << 20, 41 << 20, 42 << 20]
    assert [r.downtime_s for r in rows] == pytest.approx([11.0, 13.0, 15.0])
    recoveries = [r.recovery_s for r in rows]
    assert all(r is not None for r in recoveries)
    for c, rec in enumerate(recoveries):
        # up again at +22 + 2c (truth, ± 0.25 s by the samples) minus the revert's start (+19.9)
        assert rec == pytest.approx(2.1 + 2.0 * c, abs=SAMPLE_S)
    slope = trend([r or 0.0 for r in recoveries], [r.cycle for r in rows])
    assert slope == pytest.approx(2.0)  # MTTR grows by 2 s per cycle


def test_a_cycles_mttr_is_its_slowest_faults_time_to_recover(tmp_path: Path) -> None:
    """Per cycle, the longest time to recover of the targets its faults took down: from the
    inject for a self-healing fault, from the revert's start for one that lasts until it; None
    if one never recovers; 0 if none of its faults took a target down."""
    led = SyntheticLedger(tmp_path / "soak.osha")
    led.target("m", "nova-api@ctl-1", end_s=400, down=[(10.5, 14.0)])
    led.target("m", "nova-scheduler@ctl-2", end_s=400, down=[(110.5, 125.0), (310.5, 500.0)])
    for c in range(4):
        led.soak_cycle(c + 1, 100.0 * c, 100.0 * c + 99.0, planned_faults=2)
    # 1: a kill that init heals (up at 14) long before its revert (began 49.9), then a pause of
    # something unmonitored, reverted last: up at 14 - injected at 10
    led.fault("kill", inject_s=10.0, revert_s=50.0, node="ctl-1", resource="nova-api")
    led.fault("pause1", inject_s=60.0, revert_s=80.0, action="pause", node="ctl-3",
              resource="rabbitmq")  # fmt: skip
    # 2: a stop, down until after its revert began (119.9): up at 125 - 119.9
    led.fault("stop", inject_s=110.0, revert_s=120.0, action="stop", node="ctl-2",
              resource="nova-scheduler")  # fmt: skip
    # 3: a pause of something unmonitored: no target went down
    led.fault("pause3", inject_s=210.0, revert_s=220.0, action="pause", node="ctl-3",
              resource="rabbitmq")  # fmt: skip
    # 4: a stop whose target never comes back
    led.fault("stuck", inject_s=310.0, revert_s=320.0, action="stop", node="ctl-2",
              resource="nova-scheduler")  # fmt: skip
    one, two, three, four = cycle_rows(led.write(stop_s=400.0))
    assert one.recovery_s == pytest.approx(14.0 - 10.0, abs=SAMPLE_S)
    assert two.recovery_s == pytest.approx(125.0 - 119.9, abs=SAMPLE_S)
    assert (three.targets_down, three.recovery_s) == (0, 0.0)
    assert (four.targets_down, four.recovery_s) == (1, None)


def test_an_outage_that_no_fault_of_the_cycle_caused_has_no_mttr(tmp_path: Path) -> None:
    """MTTR is a fault's: a target down on its own still counts as down (and the campaign's
    judgement fails the cycle), but no fault of the cycle is there to recover from."""
    led = SyntheticLedger(tmp_path / "soak.osha")
    led.target("m", "t", end_s=100, down=[(10.0, 90.0)])
    led.soak_cycle(1, 1.0, 50.0, ok=False, detail="still down: t")
    [row] = cycle_rows(led.write(stop_s=100.0))
    assert row.recovery_s == 0.0
    assert row.targets_down == 1
    assert row.ok is False
    assert row.downtime_s == pytest.approx(80.0)  # the whole outage, though it outlived the cycle


def test_only_a_final_revert_failure_fails_a_cycle(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "soak.osha")
    led.soak_cycle(1, 0.0, 50.0)
    led.soak_cycle(2, 50.0, 100.0)
    led.fault("f1", inject_s=10.0, revert_s=21.0)
    led.add(20.0, "disruptor-1", FaultRevertFailed, lease_id="f1", attempt=1, by="holder",
            error="ssh: timeout", final=False, retry_in_s=1.0)  # fmt: skip
    led.fault("f2", inject_s=60.0, revert_s=None)
    led.add(70.0, "disruptor-1", FaultRevertFailed, lease_id="f2", attempt=3, by="holder",
            error="ssh: timeout", final=True)  # fmt: skip
    one, two = cycle_rows(led.write(stop_s=100.0))
    assert (one.reverted, one.revert_failed, one.ok) == (1, 0, True)
    assert (two.reverted, two.revert_failed, two.ok) == (0, 1, False)


def test_cycle_rows_of_a_ledger_that_is_not_a_soak(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.fault("f1", inject_s=10.0, revert_s=20.0)
    assert cycle_rows(led.write(stop_s=30.0)) == []


def test_trend_needs_two_points() -> None:
    assert trend([]) is None
    assert trend([3.0]) is None
    assert trend([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert trend([1.0, 2.0, 3.0], [2, 4, 6]) == pytest.approx(0.5)  # per unit of x
    assert trend([1.0, 5.0], [3, 3]) is None  # no spread in x
