"""``osha report --aggregate``: per fault n, mean, sd and 95 % t-interval over the runs of one
profile, the runs needed for a target half-width, and the refusal of ledgers of different
profiles. Expected values are computed by hand below from the definitions (sample sd with
n - 1; half-width t_{0.975,n-1}·sd/√n; t from the standard table), not from the code."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from osha.analysis import AnalysisOptions
from osha.analysis.aggregate import Aggregate, CiTarget, Figure, aggregate, repetitions
from osha.errors import OshaError
from osha.testing import SyntheticLedger

PROFILE = {"campaign": {"name": "agg", "seed": 7}, "slo": {"max_downtime_s": {"*": 60}}}
#: Student's t, two-sided 95 %, from the standard table
T_975 = {2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 15: 2.131, 16: 2.120, 17: 2.110}


def _run(
    tmp_path: Path,
    name: str,
    *,
    inject_s: float,
    down_s: float,
    revert_before_up_s: float,
    slow_s: float,
    seed: int = 7,
    profile: dict[str, object] | None = None,
) -> Path:
    """One run: a target sampled every 0.5 s, down over [100, 100 + down_s); the fault
    injected at ``inject_s`` and reverted ``revert_before_up_s`` before the target is up;
    a runner 1 s per iteration, failing over [100, 113) and ``slow_s`` per iteration over
    [120, 150)."""
    prof = json.loads(json.dumps(profile or PROFILE))
    prof["campaign"]["seed"] = seed
    led = SyntheticLedger(tmp_path / f"{name}.osha", run_id=name, profile=prof)
    led.target("host-services", "nova-api@ctl-1", end_s=300, down=[(100.0, 100.0 + down_s)])
    led.fault("f1", inject_s=inject_s, revert_s=100.0 + down_s - revert_before_up_s,
              holder="kill-api", resource="nova-api")  # fmt: skip
    led.runner("boot", end_s=300, errors=[(100.0, 113.0)], degraded=[(120.0, 150.0, slow_s)])
    return led.write(stop_s=301.0)


def _three(tmp_path: Path) -> list[Path]:
    # (name, inject, down, revert before up, slow duration, seed): each run its own seed, as
    # --repeat gives them (the aggregate ignores the seed when it compares profiles)
    plan = [("r1", 99.9, 10.0, 2.0, 2.0, 7), ("r2", 99.8, 12.0, 3.0, 3.0, 11),
            ("r3", 99.7, 14.0, 4.0, 4.0, 12)]  # fmt: skip
    return [
        _run(tmp_path, name, inject_s=i, down_s=d, revert_before_up_s=r, slow_s=slow, seed=seed)
        for name, i, d, r, slow, seed in plan
    ]


def _fig(agg: Aggregate, metric: str, fault: str = "kill-api kill") -> Figure:
    return next(f for f in agg.figures if f.fault == fault and f.metric == metric)


def test_three_runs_give_mean_sd_and_t_interval_per_fault(tmp_path: Path) -> None:
    agg = aggregate(_three(tmp_path))
    assert [r.run_id for r in agg.runs] == ["r1", "r2", "r3"]
    assert agg.exit_code == 0

    # detection: the first bad observation is at 100.0; injects at 99.9, 99.8, 99.7
    # -> 0.1, 0.2, 0.3 s; mean 0.2; sd = sqrt((0.1² + 0 + 0.1²) / 2) = 0.1;
    # half-width = 4.303 · 0.1 / √3 = 0.2484
    det = _fig(agg, "detection")
    assert det.n == 3
    assert det.values == pytest.approx((0.1, 0.2, 0.3))
    assert det.mean == pytest.approx(0.2)
    assert det.sd == pytest.approx(0.1)
    assert det.half_width == pytest.approx(0.2484, abs=2e-4)
    assert det.interval == pytest.approx((0.2 - 0.2484, 0.2 + 0.2484), abs=2e-4)

    # downtime: down [100, 100 + L) sampled every 0.5 s: from midway 99.5..100.0 to midway
    # (100 + L - 0.5)..(100 + L): L exactly -> 10, 12, 14; mean 12; sd = sqrt((4+0+4)/2) = 2;
    # half-width = 4.303 · 2 / √3 = 4.9683
    down = _fig(agg, "downtime")
    assert down.values == pytest.approx((10.0, 12.0, 14.0))
    assert (down.mean, down.sd) == pytest.approx((12.0, 2.0))
    assert down.half_width == pytest.approx(4.9683, abs=2e-3)

    # time to recover: the revert, recorded r = 2, 3, 4 s before the first up observation,
    # took 0.1 s (elapsed_s), so it started r + 0.1 s before; the target was up midway
    # between the last bad observation (0.5 s before the first good) and the first good:
    # r + 0.1 - 0.25 -> 1.85, 2.85, 3.85; mean 2.85, sd 1, half-width 4.303 / √3 = 2.4842
    ttr = _fig(agg, "time to recover")
    assert ttr.values == pytest.approx((1.85, 2.85, 3.85))
    assert (ttr.mean, ttr.sd) == pytest.approx((2.85, 1.0))
    assert ttr.half_width == pytest.approx(2.4842, abs=2e-3)

    # runner degradation: 2, 3, 4 s per iteration against a baseline of 1 s (± 0.02 s
    # wobble): about 1, 2, 3 s absolute (mean 2, sd 1) and 2x, 3x, 4x relative (mean 3, sd 1)
    deg = _fig(agg, "boot degradation")
    assert deg.mean == pytest.approx(2.0, abs=0.03)
    assert deg.sd == pytest.approx(1.0, abs=0.03)
    assert deg.half_width == pytest.approx(2.484, abs=0.08)
    ratio = _fig(agg, "boot degradation ratio")
    assert ratio.unit == "x"
    assert ratio.mean == pytest.approx(3.0, abs=0.05)
    assert ratio.sd == pytest.approx(1.0, abs=0.05)
    # runner MTTR: slow for starts in [120, 150): 30 s each (± 1 s, an iteration's spacing)
    mttr = _fig(agg, "boot MTTR")
    assert mttr.mean == pytest.approx(30.0, abs=1.0)


def test_repetitions_follow_the_formula() -> None:
    # sd 2, target 1 s: n = 17 gives 2.120 · 2 / √17 = 1.028 > 1; n = 18 gives
    # 2.110 · 2 / √18 = 0.995 <= 1 -> 18
    assert T_975[16] * 2 / math.sqrt(17) > 1.0
    assert T_975[17] * 2 / math.sqrt(18) <= 1.0
    assert repetitions(2.0, 1.0) == 18
    # sd 0.1, target 0.1 s: n = 6: 2.571 · 0.1 / √6 = 0.105 > 0.1; n = 7: 2.447 · 0.1 / √7
    # = 0.0925 -> 7
    assert repetitions(0.1, 0.1) == 7
    # no spread: two runs are the fewest that give an interval at all
    assert repetitions(0.0, 1.0) == 2
    # sd 1, target 2 s: n = 2: 12.706 / √2 = 8.98 > 2; n = 3: 4.303 / √3 = 2.484 > 2;
    # n = 4: 3.182 / 2 = 1.591 -> 4
    assert repetitions(1.0, 2.0) == 4
    assert repetitions(1e9, 1.0) is None  # more than a million runs


def test_ci_target_plans_runs_in_seconds_and_relative(tmp_path: Path) -> None:
    runs = _three(tmp_path)
    agg = aggregate(runs, target=CiTarget.parse(["1s", "10%"]))
    assert agg.needed(_fig(agg, "downtime")) == 18  # sd 2, target 1 s (see above)
    assert agg.needed(_fig(agg, "time to recover")) == 7  # sd 1 target 1 s: 2.447/√7 = 0.925
    # the ratio (no seconds) takes 10 % of its mean, about 0.3x, with sd about 1:
    # (1.96 · 1 / 0.3)² = 42.7 -> about 46 with t
    ratio = _fig(agg, "boot degradation ratio")
    half = 0.1 * abs(ratio.mean or 0.0)
    n = agg.needed(ratio)
    assert n is not None
    assert T_975.get(n - 1, 2.0) * (ratio.sd or 0.0) / math.sqrt(n) <= half
    # relative only: the seconds figures take 10 % of their mean too (downtime: 1.2 s)
    rel = aggregate(runs, target=CiTarget.parse(["10%"]))
    # sd 2, target 1.2: n = 13: 2.179 · 2 / √13 = 1.209 > 1.2; n = 14: 2.160 · 2 / √14 = 1.155
    assert rel.needed(_fig(rel, "downtime")) == 14


@pytest.mark.parametrize("text", ["1", "0s", "-1s", "abc%", "nan s", "inf%"])
def test_a_bad_ci_target_is_invalid_input(text: str) -> None:
    with pytest.raises(OshaError) as err:
        CiTarget.parse([text])
    assert err.value.exit_code == 2
    assert "--ci-target" in err.value.message


def test_an_undegraded_runner_counts_zero_and_a_missing_fault_lowers_n(tmp_path: Path) -> None:
    runs = _three(tmp_path)[:2]
    led = SyntheticLedger(tmp_path / "calm.osha", run_id="calm", profile=PROFILE)
    led.target("host-services", "nova-api@ctl-1", end_s=300)
    led.fault("f1", inject_s=99.9, revert_s=105.0, holder="kill-api", resource="nova-api")
    led.fault("f2", inject_s=150.0, revert_s=155.0, holder="kill-api", resource="nova-api")
    led.runner("boot", end_s=300)
    runs.append(led.write(stop_s=301.0))
    agg = aggregate(runs)
    # the calm run: nobody saw the fault (no detection), nothing went down (0 s), the runner
    # had a baseline and did not slow down (0 s, 1.00x, MTTR 0 s)
    assert _fig(agg, "detection").n == 2
    assert _fig(agg, "downtime").values[-1] == 0.0
    assert _fig(agg, "boot degradation").values[-1] == 0.0
    assert _fig(agg, "boot degradation ratio").values[-1] == 1.0
    assert _fig(agg, "boot MTTR").values[-1] == 0.0
    # its second kill is the 2nd of kill-api's in that run only: n = 1, no interval
    second = _fig(agg, "downtime", fault="kill-api kill (2)")
    assert (second.n, second.runs, second.missing) == (1, 3, 2)
    assert second.sd is None
    assert second.interval is None
    # a runner without a baseline (warm-up above its length) has no degradation value
    short = aggregate(runs, options=AnalysisOptions(warm_up=1000))
    assert _fig(short, "boot degradation").n == 0


def test_ledgers_of_different_profiles_are_refused(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", inject_s=99.9, down_s=10.0, revert_before_up_s=2.0, slow_s=2.0)
    other = {"campaign": {"name": "agg", "seed": 7, "chaos_s": 99}}
    b = _run(tmp_path, "b", inject_s=99.9, down_s=10.0, revert_before_up_s=2.0, slow_s=2.0,
             profile=other)  # fmt: skip
    with pytest.raises(OshaError) as err:
        aggregate([a, b])
    assert err.value.exit_code == 2
    assert "campaign.chaos_s" in err.value.message
    result = subprocess.run(
        [sys.executable, "-m", "osha", "report", "--aggregate", str(a), str(b)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "ran another profile" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_writes_terminal_json_junit_and_html(tmp_path: Path) -> None:
    runs = [str(p) for p in _three(tmp_path)]
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "osha", "report", "--aggregate", *runs, "--ci-target", "1s",
         "--json", str(out / "a.json"), "--junit", str(out / "a.xml"), "--html",
         str(out / "a.html")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "aggregate of 3 run(s) of campaign 'agg'" in result.stdout
    assert "12.000 ± 4.968 s [7.032, 16.968]" in result.stdout  # downtime, as computed above
    assert "18 (≤ 1.000 s; 15 more)" in result.stdout
    data = json.loads((out / "a.json").read_text())
    assert data["schema"] == "osha.aggregate/1"
    down = next(f for f in data["figures"] if f["metric"] == "downtime")
    assert (down["n"], down["runs_needed"]) == (3, 18)
    assert down["half_width"] == pytest.approx(4.9683, abs=2e-3)
    xml = (out / "a.xml").read_text()
    assert 'classname="osha.aggregate.kill-api kill" name="downtime"' in xml
    assert "runs needed 18" in xml
    html = (out / "a.html").read_text()
    assert "12.000 ± 4.968 s" in html
    assert "<script" not in html


def test_more_than_two_ledgers_need_aggregate(tmp_path: Path) -> None:
    runs = [str(p) for p in _three(tmp_path)]
    for args in (runs, [runs[0], "--ci-target", "1s"]):
        result = subprocess.run(
            [sys.executable, "-m", "osha", "report", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stdout
        assert "--aggregate" in result.stderr
