"""Blind time under faults: a ``max_downtime_s`` pass is proven, never read from a monitor that
could not see the target while the faults were on."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.analysis import SloSpec, analyze
from osha.analysis._blind import blind_under_faults, fault_windows
from osha.testing import SyntheticLedger


def test_fault_windows_are_merged_and_an_unreverted_fault_lasts_to_the_end() -> None:
    spans = [(30.0, 40.0), (10.0, 20.0), (15.0, 25.0), (None, None), (50.0, None)]
    assert fault_windows(spans, 90.0) == ((10.0, 25.0), (30.0, 40.0), (50.0, 90.0))
    assert fault_windows([], 90.0) == ()


@pytest.mark.parametrize(
    ("segments", "windows", "expected"),
    [
        # blind 50..60, a fault from 55: unseen from the inject to the next observation
        ([(0.0, "up"), (50.0, "unknown"), (60.0, "up")], [(55.0, 58.0)], 5.0),
        # blind 50..60 and a fault from 45: unseen from the start of the blind stretch
        ([(0.0, "up"), (50.0, "unknown"), (60.0, "up")], [(45.0, 52.0)], 10.0),
        # no fault window touches the blind stretch
        ([(0.0, "up"), (50.0, "unknown"), (60.0, "up")], [(70.0, 80.0)], 0.0),
        # blind inside an outage: the outage already runs through it until the next up
        ([(0.0, "up"), (50.0, "down"), (52.0, "unknown"), (56.0, "up")], [(49.0, 55.0)], 0.0),
        # ... but not once the target was seen up again
        ([(0.0, "down"), (5.0, "up"), (50.0, "unknown"), (56.0, "up")], [(49.0, 55.0)], 6.0),
        # not observed yet when the fault came: blind from the inject to the first observation
        ([(10.0, "up")], [(5.0, 8.0)], 5.0),
        # blind at the end (the monitor stopped) under a fault never reverted
        ([(0.0, "up"), (90.0, "unknown")], [(95.0, 100.0)], 5.0),
        # two stretches under two windows, one stretch touching no window
        (
            [
                (0.0, "up"),
                (10.0, "unknown"),
                (12.0, "up"),
                (20.0, "unknown"),
                (21.0, "up"),
                (30.0, "unknown"),
                (33.0, "up"),
            ],
            [(11.0, 11.5), (29.0, 31.0)],
            1.0 + 3.0,
        ),
        # never observed at all: the whole fault is blind
        ([], [(5.0, 8.0)], 95.0),
    ],
)
def test_blind_under_faults(
    segments: list[tuple[float, str]], windows: list[tuple[float, float]], expected: float
) -> None:
    assert blind_under_faults(segments, windows, 100.0) == pytest.approx(expected)


def _run(tmp_path: Path, blind: list[tuple[float, float]]) -> Path:
    """nova-api@ctl-1 is killed from 99.9 to 110.0 s; its only monitor sees it up all along,
    except while the monitor is crashed (``blind``)."""
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-api@ctl-1", end_s=300.0, blind=blind)
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    return led.write(stop_s=301.0)


SPEC = SloSpec(max_downtime_s={"nova-api@ctl-1": 5.0})


def test_a_target_its_monitor_could_not_see_during_the_fault_is_not_a_pass(
    tmp_path: Path,
) -> None:
    a = analyze(_run(tmp_path, blind=[(99.0, 115.0)]), slo=SPEC)
    [row] = [r for r in a.verdict.results if r.slo == "max_downtime_s"]
    assert row.value == 0.0  # nothing seen down: the seen downtime is still the value
    assert not row.passed  # but 15 s blind under the fault cannot prove <= 5 s
    assert "blind for 15.100 s" in row.detail  # from the inject (99.9) to the restart (115.0)
    assert "not proven" in row.detail
    assert a.verdict.exit_code == 1


def test_a_short_blind_stretch_under_a_fault_passes_within_the_limit(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path, blind=[(101.0, 102.0)]), slo=SPEC)
    [row] = [r for r in a.verdict.results if r.slo == "max_downtime_s"]
    assert row.passed, row
    assert "blind for 1.000 s" in row.detail
    assert "not proven" not in row.detail


def test_a_blind_stretch_away_from_the_faults_changes_nothing(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path, blind=[(200.0, 230.0)]), slo=SPEC)
    [row] = [r for r in a.verdict.results if r.slo == "max_downtime_s"]
    assert row.passed, row
    assert "blind" not in row.detail
