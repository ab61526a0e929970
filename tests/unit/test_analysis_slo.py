"""SLOs: the profile's [slo] table, --slo FILE and --slo key=value, and the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.analysis import SloError, SloSpec, analyze, apply_overrides, load_slo_file
from osha.errors import ProfileError
from osha.schema import build
from osha.testing import SyntheticLedger


def _run(tmp_path: Path, profile: dict[str, object] | None = None) -> Path:
    led = SyntheticLedger(tmp_path / "run.osha", profile=profile)
    led.target("hs", "nova-api@ctl-1", end_s=300.0, down=[(100.0, 112.5)])
    led.target("api", "endpoint:compute", end_s=300.0)
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    led.runner("boot", end_s=300.0, errors=[(100.0, 113.0)], degraded=[(120.0, 150.0, 3.0)])
    return led.write(stop_s=301.0)


def test_schema_builds_the_spec_from_a_profile_table() -> None:
    table = {"max_downtime_s": {"endpoint:compute": 5}, "min_runner_success": 0.95,
             "max_recovery_s": 60}  # fmt: skip
    spec, problems = build(SloSpec, table, file="p.toml", key="slo")
    assert not problems
    assert spec is not None
    assert spec.max_downtime_s == {"endpoint:compute": 5.0}
    _, problems = build(SloSpec, {"min_runner_success": 1.5, "max_recovry_s": 1}, file="p.toml",
                        key="slo")  # fmt: skip
    assert any("max_recovery_s" in p.hint for p in problems)


def test_recorded_slos_are_the_default(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path, {"slo": {"max_downtime_s": {"nova-api@ctl-1": 5}}}))
    (result, reverted) = a.verdict.results
    assert result.name == "max_downtime_s[nova-api@ctl-1]"
    assert result.value == pytest.approx(12.5)
    assert not result.passed
    assert reverted.passed
    assert a.verdict.exit_code == 1
    assert a.verdict.summary.startswith("FAIL: 1/2 SLOs met")


def test_rejudge_with_overrides_and_patterns(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path, {"slo": {"max_downtime_s": {"nova-api@ctl-1": 5}}}))
    spec = apply_overrides(a.slo, ["max_downtime_s.nova-api@ctl-1=20", "max_recovery_s=60",
                                   "min_availability.*=0.9", "min_runner_success=0.9",
                                   "max_detection_s=1", "max_runner_mttr_s=45",
                                   "max_degradation_ratio=3.5",
                                   "max_actor_restarts=0"])  # fmt: skip
    v = a.rejudge(spec).verdict
    assert v.exit_code == 0, v.summary
    names = [r.name for r in v.results]
    assert "min_availability[endpoint:compute (by *)]" in names
    assert "max_recovery_s[kill nova-api@ctl-1 #f1]" in names
    assert "min_runner_success[boot]" in names
    # unset one again
    spec2 = apply_overrides(spec, ["max_recovery_s=none", "max_runner_mttr_s=10"])
    v2 = a.rejudge(spec2).verdict
    assert v2.exit_code == 1
    assert [r.name for r in v2.failed] == ["max_runner_mttr_s[boot]"]


def test_a_key_that_matches_nothing_fails(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path), slo=SloSpec(max_downtime_s={"endpoint:computer": 5}))
    assert a.verdict.exit_code == 1
    assert "matches no" in a.verdict.results[0].detail


def test_runner_downtime_slo(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path), slo=SloSpec(max_downtime_s={"runner:boot": 10}))
    result = a.verdict.results[0]
    assert result.name == "max_downtime_s[runner:boot]"
    assert result.value == pytest.approx(13.0)
    assert not result.passed


@pytest.mark.parametrize(
    "expr", ["max_recovery_s", "nope=1", "max_recovery_s=-1", "min_runner_success=[1,"]
)
def test_bad_overrides_are_invalid_input(expr: str) -> None:
    with pytest.raises(SloError) as info:
        apply_overrides(SloSpec(), [expr])
    assert info.value.exit_code == 2
    assert info.value.hint


def test_slo_file(tmp_path: Path) -> None:
    good = tmp_path / "slo.toml"
    good.write_text('[slo]\nmax_recovery_s = 30\nmax_downtime_s = { "endpoint:compute" = 5 }\n')
    assert load_slo_file(good) == SloSpec(max_recovery_s=30.0,
                                          max_downtime_s={"endpoint:compute": 5.0})  # fmt: skip
    (tmp_path / "none.toml").write_text("[campaign]\nname = 'x'\n")
    with pytest.raises(SloError, match="no \\[slo\\] table"):
        load_slo_file(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[slo]\nmin_availability = 3\n")
    with pytest.raises(ProfileError):
        load_slo_file(tmp_path / "bad.toml")
    with pytest.raises(SloError):
        load_slo_file(tmp_path / "missing.toml")


def test_verdict_is_deterministic(tmp_path: Path) -> None:
    from osha.report import render_verdict

    spec = SloSpec(max_downtime_s={"*": 20}, max_recovery_s=60, min_runner_success=0.9)
    run = _run(tmp_path)
    first, second = analyze(run, slo=spec), analyze(run, slo=spec)
    assert render_verdict(first.verdict) == render_verdict(second.verdict)
    assert first.verdict.slos_dict() == second.verdict.slos_dict()
