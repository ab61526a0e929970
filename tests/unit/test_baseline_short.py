"""A runner baseline too short for the sliding-window method: every report says so and by how
much, and ``osha campaign validate`` warns before a run (issue 17 §1).

Truth of the short run: the baseline phase lasts 0..20 s, the chaos 20..100 s; the runner
starts an iteration every 3.0 s lasting exactly 3.0 s (no noise), so iterations 1..6 (ending at
3, 6, ..., 18 s) end inside the baseline and the 7th (18..21 s) does not. Expected, by hand:
6 iterations; the method needs warm-up 10 + window 21 = 31; the pace is (18 - 0) / 6 = 3.0 s
per iteration; baseline_s must grow by the 25 missing iterations x 3.0 s: 20 + 75 = 95 s.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from osha.analysis import AnalysisOptions, analyze
from osha.report import dumps, render_summary, to_dict
from osha.report.html import render_html
from osha.testing import SyntheticLedger
from tests.unit.test_bad_input import _osha  # the CLI in-process, no traceback allowed

REPO = Path(__file__).resolve().parents[2]
SHORT = (
    "baseline: 6 iterations, the method needs >= 31 (warm-up 10 + window 21): make "
    "baseline_s >= ~95 s at the observed 3.0 s per iteration, or lower --window"
)


def _short_run(path: Path, runner: str = "boot") -> Path:
    led = SyntheticLedger(path)
    led.phase("baseline", 0.0, 20.0)
    led.phase("chaos", 20.0, 100.0)
    led.runner(runner, end_s=99.0, every_s=3.0, duration_s=3.0, noise_s=0.0)
    return led.write(stop_s=103.0)


def test_short_baseline_is_explained_in_every_format(tmp_path: Path) -> None:
    a = analyze(_short_run(tmp_path / "run.osha"))
    (r,) = a.runners
    assert r.baseline_mean_s is None  # the figure the operator would see as "-"
    assert r.pace_s == pytest.approx(3.0)
    short = r.baseline_short
    assert short is not None
    assert (short.iterations, short.needed, short.suggested_baseline_s) == (6, 31, 95.0)
    assert short.text == SHORT
    assert f"boot: {SHORT}" in render_summary(a)
    assert f"boot: {escape(SHORT)}" in render_html(a)
    doc = json.loads(dumps(to_dict(a)))
    got = doc["runners"][0]["baseline"]["short"]
    assert got["iterations"] == 6
    assert got["needed"] == 31
    assert got["warm_up"] == 10
    assert got["window"] == 21
    assert got["suggested_baseline_s"] == 95.0
    assert got["pace_s"] == pytest.approx(3.0)
    assert got["text"] == SHORT


def test_exactly_enough_iterations_is_not_short(tmp_path: Path) -> None:
    # warm-up 2 + window 4 = 6: the 6 iterations that ended in the baseline are just enough
    enough = analyze(_short_run(tmp_path / "a.osha"), options=AnalysisOptions(warm_up=2, window=4))
    assert enough.runners[0].baseline_short is None
    assert "the method needs" not in render_summary(enough)
    # one more needed (window 5): short by one, 20 s + 1 x 3.0 s = 23 s
    short = analyze(_short_run(tmp_path / "b.osha"), options=AnalysisOptions(warm_up=2, window=5))
    s = short.runners[0].baseline_short
    assert s is not None
    assert (s.iterations, s.needed, s.suggested_baseline_s) == (6, 7, 23.0)
    assert "warm-up 2 + window 5" in s.text


def test_long_baseline_says_nothing(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.phase("baseline", 0.0, 100.0)
    led.phase("chaos", 100.0, 150.0)
    led.runner("boot", end_s=149.0)  # one a second: 99 iterations ended by 100 s
    a = analyze(led.write(stop_s=151.0))
    assert a.runners[0].baseline_short is None
    assert to_dict(a)["runners"][0]["baseline"]["short"] is None
    assert "the method needs" not in render_summary(a)


def _profile(tmp_path: Path, baseline_s: float) -> Path:
    """The shipped selftest profile (runner ``crash-once``) with another baseline_s."""
    text = (REPO / "profiles" / "selftest.toml").read_text()
    text = text.replace("baseline_s = 2.0", f"baseline_s = {baseline_s}", 1)
    assert f"baseline_s = {baseline_s}" in text
    path = tmp_path / "profiles" / "p.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_validate_warns_at_the_assumed_pace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # assumed 3 s per iteration: 70 s holds floor(70 / 3) = 23 < 31; 70 + 8 x 3 = 94 s
    code, out = _osha(capsys, "campaign", "validate", str(_profile(tmp_path, 70.0)))
    assert code == 0, out
    assert "valid" in out
    assert (
        "warning: runner crash-once, with baseline_s = 70 s: baseline: 23 iterations, the "
        "method needs >= 31 (warm-up 10 + window 21): make baseline_s >= ~94 s at the assumed "
        "3.0 s per iteration, or lower --window (assumed 3 s per iteration, about one Rally" in out
    )
    # 93 s holds 31: no warning
    code, out = _osha(capsys, "campaign", "validate", str(_profile(tmp_path, 93.0)))
    assert code == 0, out
    assert "warning" not in out


def test_validate_uses_the_pace_of_a_previous_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    led = SyntheticLedger(tmp_path / "prev.osha")
    led.phase("baseline", 0.0, 20.0)
    led.phase("chaos", 20.0, 40.0)
    led.runner("crash-once", end_s=39.0, every_s=2.0, duration_s=2.0, noise_s=0.0)
    ledger = led.write(stop_s=41.0)  # 2.0 s per iteration: (20 - 0) / 10
    profile = _profile(tmp_path, 70.0)  # 70 / 2 = 35 >= 31: no warning at the observed pace
    code, out = _osha(capsys, "campaign", "validate", str(profile), "--pace-from", str(ledger))
    assert code == 0, out
    assert "warning" not in out
    profile = _profile(tmp_path, 30.0)  # 30 / 2 = 15 < 31: 30 + 16 x 2 = 62 s
    code, out = _osha(capsys, "campaign", "validate", str(profile), "--pace-from", str(ledger))
    assert code == 0, out
    assert (
        "baseline: 15 iterations, the method needs >= 31 (warm-up 10 + window 21): make "
        "baseline_s >= ~62 s at the observed 2.0 s per iteration, or lower --window "
        f"(pace from {ledger})" in out
    )


def test_validate_pace_from_a_non_ledger_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _osha(
        capsys, "campaign", "validate", str(_profile(tmp_path, 30.0)), "--pace-from",
        str(tmp_path),
    )  # fmt: skip
    assert code == 2, out
    assert f"not an osha ledger directory: {tmp_path}" in out
    assert "p.toml: valid" not in out  # refused before the profile is declared valid
    assert "Traceback" not in out
