"""Runner degradation with 95 % t-intervals and per atomic action (issue 17 §2, §3), on a
synthetic series whose figures are worked out by hand below from the method's definitions
(performance-docs "Reliability testing, version 2", rally-runners ``analytics.py``):

Iteration ``i`` starts at ``t = i`` s. Outside the slow stretch an even ``i`` runs
``nova.boot_server`` 0.5 s and ``nova.delete_server`` 0.5 s (1.0 s in all), an odd ``i`` 1.0 s
and 0.25 s (1.25 s). Iterations 20..23 boot three times slower (1.5 s, 3.0 s, 1.5 s, 3.0 s)
and delete as usual (0.5, 0.25, 0.5, 0.25): 2.0, 3.25, 2.0, 3.25 s in all. Iteration 15
fails after its boot (no delete). Every value is a binary fraction, exact in float32.

Options: warm-up 2, window 3, k = 4 (gaps 6, width 3: the defaults). The baseline ends at
10.5 s: iterations 2..9 (9 ends at 10.25 s, 10 at 11.0 s), four of 1.0 s and four of 1.25 s:
mean 1.125, population variance 0.125² = 0.015625, sd 0.125; threshold 1.125 + 4·0.125 = 1.625.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from osha.analysis import AnalysisOptions, analyze
from osha.analysis._runners import MAX_ATOMICS, RunnerSeries
from osha.messages import RunnerIteration
from osha.report import render_summary, to_dict
from osha.report.html import render_html
from osha.testing import SyntheticLedger

BOOT, DELETE = "nova.boot_server", "nova.delete_server"
OPTIONS = AnalysisOptions(warm_up=2, window=3)
BASELINE_END_S = 10.5
T_975_DOF_10 = 2.228139  # Student's t table, two-sided 95 %, 10 degrees of freedom


def _iterations(count: int = 41) -> list[tuple[float, float, bool, dict[str, object]]]:
    out: list[tuple[float, float, bool, dict[str, object]]] = []
    for i in range(count):
        boot, delete = (0.5, 0.5) if i % 2 == 0 else (1.0, 0.25)
        if 20 <= i <= 23:
            boot *= 3
        if i == 15:
            out.append((float(i), boot, False, {BOOT: boot}))
            continue
        out.append((float(i), boot + delete, True, {BOOT: boot, DELETE: delete}))
    return out


def _series() -> RunnerSeries:
    series = RunnerSeries("boot", "NovaServers.boot_and_delete_server")
    for start, dur, ok, atomic in _iterations():
        series.add(start, dur, ok, atomic)
    series.sort()
    return series


def test_degraded_stretch_and_its_confidence_intervals_match_the_hand_computation() -> None:
    series = _series()
    base = series.baseline(BASELINE_END_S, OPTIONS)
    assert (base.count, base.mean, base.std, base.threshold) == (8, 1.125, 0.125, 1.625)
    # Windows of 3 good iterations: starting at 18 (1.0 + 1.25 + 2.0)/3 = 1.417 is below the
    # threshold; 19..23 are above (2.167, 2.417, 2.833, 2.083, 1.833); 24 (1.0 + 1.25 + 1.0)/3
    # is below. The windows span iterations 19..25; the ones above 1.625 alone are 20..23.
    (s,) = series.degraded(base, OPTIONS)
    assert s.iterations == 4
    # edges widened by half the 1 s gap on each side: 19.5 .. 23.5, ± 1.0
    assert (s.start_s, s.end_s, s.bound_s) == (19.5, 23.5, 1.0)
    # stretch: 2.0, 3.25, 2.0, 3.25: mean 2.625, population variance 0.625² = 0.390625
    assert s.mean_duration_s == 2.625
    assert s.degradation_s == pytest.approx(2.625 - 1.125)  # 1.5 s
    # se = √(0.390625/4 + 0.015625/8) = √0.099609375 = 0.315610; dof = 8 + 4 - 2 = 10
    half = T_975_DOF_10 * math.sqrt(0.390625 / 4 + 0.015625 / 8)  # = 0.703221
    assert s.degradation_bound_s == pytest.approx(half, rel=1e-6)
    assert s.degradation_bound_s == pytest.approx(0.70322, abs=1e-5)
    assert s.degradation_ratio == pytest.approx(2.625 / 1.125)  # 2.333x
    assert s.degradation_ratio_bound == pytest.approx(half / 1.125, rel=1e-6)  # ± 0.625


def test_each_atomic_action_has_its_baseline_and_its_degradation() -> None:
    series = _series()
    base = series.baseline(BASELINE_END_S, OPTIONS)
    # baseline boots: 0.5 and 1.0, four each: mean 0.75, sd 0.25; deletes 0.5 and 0.25:
    # mean 0.375, sd 0.125 (iteration 15, failed, is not in the baseline anyway)
    reports = {b.action: b for b in base.atomic_reports()}
    assert list(reports) == [BOOT, DELETE]  # the order the workload ran them
    assert (reports[BOOT].count, reports[BOOT].mean_s, reports[BOOT].std_s) == (8, 0.75, 0.25)
    assert (reports[DELETE].count, reports[DELETE].mean_s, reports[DELETE].std_s) == (
        8, 0.375, 0.125)  # fmt: skip
    (s,) = series.degraded(base, OPTIONS)
    atomics = {d.action: d for d in s.atomics}
    boot, delete = atomics[BOOT], atomics[DELETE]
    # boot in the stretch: 1.5, 3.0, 1.5, 3.0: mean 2.25, variance 0.75² = 0.5625; tripled
    assert boot.iterations == 4
    assert boot.mean_s == 2.25
    assert boot.degradation_s == pytest.approx(1.5)
    assert boot.degradation_ratio == pytest.approx(3.0)
    # se = √(0.5625/4 + 0.0625/8) = √0.1484375 = 0.385279; dof 10; half = 0.858452
    boot_half = T_975_DOF_10 * math.sqrt(0.5625 / 4 + 0.0625 / 8)
    assert boot.degradation_bound_s == pytest.approx(boot_half, rel=1e-6)
    assert boot.degradation_ratio_bound == pytest.approx(boot_half / 0.75, rel=1e-6)  # ± 1.145
    # delete in the stretch: 0.5, 0.25, 0.5, 0.25: mean 0.375, as in the baseline: no move
    assert delete.degradation_s == pytest.approx(0.0)
    assert delete.degradation_ratio == pytest.approx(1.0)
    # se = √(0.015625/4 + 0.015625/8) = √0.005859375 = 0.076547; half = 0.170558
    del_half = T_975_DOF_10 * math.sqrt(0.015625 / 4 + 0.015625 / 8)
    assert delete.degradation_bound_s == pytest.approx(del_half, rel=1e-6)
    assert delete.degradation_bound_s == pytest.approx(0.17056, abs=1e-5)
    # the interval of boot's degradation excludes 0, delete's holds it
    assert boot.degradation_s - boot_half > 0
    assert delete.degradation_s - del_half < 0 < delete.degradation_s + del_half


def test_atomic_actions_are_kept_compact_padded_and_capped() -> None:
    series = _series()
    # one 4-byte float per iteration and action, NaN where the iteration did not run it
    assert series.atomics[DELETE].itemsize == 4
    assert len(series.atomics[DELETE]) == len(series.dur) == 41
    assert math.isnan(series.atomics[DELETE][15])
    capped = RunnerSeries("many", "Synthetic.scenario")
    names = {f"action ({n})": 0.5 for n in range(MAX_ATOMICS + 5)}
    capped.add(0.0, 1.0, True, {"not a number": "slow", "a flag": True, "inf": math.inf,
                                "too big": 1e300, **names})  # fmt: skip
    assert len(capped.atomics) == MAX_ATOMICS
    assert len(capped.atomics_dropped) == 5  # counted, not kept; the bad values ignored


def _ledger(tmp_path: Path) -> Path:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.fault("f1", inject_s=BASELINE_END_S, revert_s=19.0, node="ctl-1",
              resource="nova-scheduler")  # fmt: skip
    for i, (start, dur, ok, atomic) in enumerate(_iterations()):
        led.add(start + dur, "rally", RunnerIteration,
                runner="NovaServers.boot_and_delete_server", iteration=i + 1,
                started_wall_s=led.wall(start), duration_s=dur, ok=ok, atomic=atomic,
                error_type="" if ok else "TimeoutException")  # fmt: skip
    return led.write(stop_s=45.0)


def test_the_reports_carry_the_intervals_and_the_atomic_actions(tmp_path: Path) -> None:
    a = analyze(_ledger(tmp_path), options=OPTIONS)
    (impact,) = a.faults[0].runners
    half = T_975_DOF_10 * math.sqrt(0.390625 / 4 + 0.015625 / 8)
    assert impact.degradation_s == pytest.approx(1.5)
    assert impact.degradation_bound_s == pytest.approx(half, rel=1e-6)
    assert {d.action: d.degradation_ratio for d in impact.atomics} == {
        BOOT: pytest.approx(3.0), DELETE: pytest.approx(1.0)}  # fmt: skip
    data = to_dict(a)
    runner = data["runners"][0]
    assert runner["atomics"][0] == {"action": BOOT, "count": 8, "mean_s": 0.75, "std_s": 0.25}
    stretch = runner["degraded"][0]
    assert stretch["degradation_bound_s"] == pytest.approx(half, rel=1e-6)
    assert [x["action"] for x in stretch["atomics"]] == [BOOT, DELETE]
    assert data["faults"][0]["runners"][0]["atomics"][0]["degradation_ratio"] == (
        pytest.approx(3.0))  # fmt: skip
    text = render_summary(a)
    # fault impact: +1.500 ± 0.703 s (2.33x ± 0.63); the runner's worst ratio with its CI
    assert "degradation +1.500 ± 0.703 s (2.33x ± 0.63)" in text
    runner_line = next(line for line in text.splitlines() if line.startswith("  rally   40/41"))
    assert "2.33x ± 0.63" in runner_line
    atomic_lines = text.split("atomic actions")[1].splitlines()
    boot_line = next(line for line in atomic_lines if BOOT in line)
    delete_line = next(line for line in atomic_lines if DELETE in line)
    assert "0.750 ± 0.250 s (n=8)" in boot_line
    assert "+1.500 ± 0.858 s" in boot_line
    assert "3.00x ± 1.14" in boot_line
    assert "+0.000 ± 0.171 s" in delete_line
    assert "1.00x ± 0.45" in delete_line
    html = render_html(a)
    atomic_table = html.split('id="atomics"')[1]
    assert "3.00x ± 1.14" in atomic_table
    assert "1.00x ± 0.45" in atomic_table


def test_without_atomic_actions_there_is_no_atomic_table(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.runner("boot", end_s=60.0)
    a = analyze(led.write(stop_s=61.0))
    assert a.runners[0].atomics == ()
    assert "atomic actions" not in render_summary(a)
    assert 'id="atomics"' not in render_html(a)
