"""The soak's incremental judge: :class:`osha.analysis.LiveJudge` (each record read once,
however many cycles) and its child process (:class:`osha.soak.judge.JudgeChild`).

The ledger is written cycle by cycle, as a soak writes it, and judged at every cycle's end
both ways: the live judge reading only the new records, and a full re-read
(:func:`osha.analysis.analyze` with the same ``live_at_wall_s``). Their results must be equal,
result by result, at every cycle."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import pytest

from osha.analysis import AnalysisOptions, LiveJudge, SloResult, analyze
from osha.ledger import LedgerOptions, LedgerReader
from osha.messages import FaultRevertFailed, Sample
from osha.record import HEADER, MAGIC
from osha.soak.judge import JudgeChild
from osha.testing import SyntheticLedger
from osha.wire import encode

CYCLE_S = 10.0
CYCLES = 8
SLO = {
    "require_reverted": True,
    "max_downtime_s": {"nova-api@ctl-1": 9.0},
    "min_availability": {"nova-scheduler@ctl-2": 0.6},
    "max_detection_s": 1.0,
    "max_recovery_s": 3.0,
    "max_actor_restarts": 2,
}
NAMES = tuple(SLO)
#: without the objectives that need attribution, each is judged from what changed (flat cost)
FLAT = ("require_reverted", "max_downtime_s", "min_availability", "max_actor_restarts")


def _soak(path: Path, scenario: str) -> SyntheticLedger:
    """Cycles ``k = 1..8`` over ``[10k, 10k + 10)``: a self-healing kill of nova-api@ctl-1
    and a stop of nova-scheduler@ctl-2 per cycle; one self-chaos kill in cycles 2, 4, 6
    (``max_actor_restarts`` fails from cycle 6); cycle 6's stop recovers 4 s after its revert
    (``max_recovery_s`` fails from then on). ``early-breach``: cycle 2's pause fails to revert
    for good. ``held-across``: cycle 4's slow fault is reverted 1.5 s into cycle 5, within its
    deadline (in flight when cycle 4 is judged, not unreverted)."""
    led = SyntheticLedger(path, profile={"slo": SLO})
    end = CYCLE_S * (CYCLES + 1)
    sched_down = [(10 * k + 4.0, 10 * k + (11.0 if k == 6 else 7.0)) for k in range(1, CYCLES + 1)]
    led.target("hs", "nova-api@ctl-1", end_s=end, interval_s=0.2,
               down=[(10 * k + 2.0, 10 * k + 3.0) for k in range(1, CYCLES + 1)])  # fmt: skip
    led.target("hs", "nova-scheduler@ctl-2", end_s=end, interval_s=0.2, down=sched_down)
    for k in range(1, CYCLES + 1):
        base = CYCLE_S * k
        led.soak_cycle(k, base, base + CYCLE_S, planned_faults=2)
        led.fault(f"kill-api/{k}", inject_s=base + 1.9, revert_s=base + 8.0, node="ctl-1",
                  resource="nova-api")  # fmt: skip
        led.fault(f"stop-sched/{k}", inject_s=base + 3.9, revert_s=base + 7.0, action="stop",
                  node="ctl-2", resource="nova-scheduler")  # fmt: skip
        if k % 2 == 0:
            led.self_chaos(base + 5.0, "hs", kill=k // 2)
    if scenario == "early-breach":
        led.fault("pause/2", inject_s=22.5, revert_s=None, action="pause", node="cmp-1")
        led.add(25.0, "pause", FaultRevertFailed, lease_id="pause/2", attempt=3, by="holder",
                error="container gone", final=True)  # fmt: skip
    else:
        led.fault("slow/4", inject_s=49.0, revert_s=51.5, action="stop", node="ctl-3")
    return led


def _full(run_dir: Path, at_wall_s: float, names: tuple[str, ...]) -> list[SloResult]:
    """The landed judge's way: the whole ledger re-read and analysed."""
    verdict = analyze(run_dir, options=AnalysisOptions(live_at_wall_s=at_wall_s)).verdict
    return [r for r in verdict.results if r.slo in names]


@pytest.mark.parametrize("scenario", ["early-breach", "held-across"])
def test_the_incremental_verdict_equals_a_full_re_read_at_every_cycle(
    tmp_path: Path, scenario: str
) -> None:
    led = _soak(tmp_path / "soak.osha", scenario)
    run_dir = led.write_upto(5.0, LedgerOptions(segment_size_bytes=8192))  # many segments
    judge, flat = LiveJudge(run_dir, NAMES), LiveJudge(run_dir, FLAT)
    breached: list[list[str]] = []
    for k in range(1, CYCLES + 1):
        at = CYCLE_S * (k + 1)
        led.write_upto(at + 0.3)  # what the monitors wrote while the cycle's end was judged
        for live, names in ((judge, NAMES), (flat, FLAT)):
            verdict = live.verdict(led.wall(at))
            assert verdict is not None
            full = _full(run_dir, led.wall(at), names)
            assert list(verdict.results) == full, f"cycle {k}, {names}"
            assert live.read() == 0  # nothing new: the verdict read it all, each record once
            assert live.records == len(list(LedgerReader(run_dir).payloads()))
        breached.append(sorted(r.name for r in full if not r.passed))
    assert len(list(run_dir.glob("*.seg"))) > 5
    early = "require_reverted" in breached[1]  # cycle 2's pause failed for good
    assert early == (scenario == "early-breach")
    assert all(("require_reverted" in b) == early for b in breached[1:])
    assert "require_reverted" not in breached[0]
    assert "max_actor_restarts" in breached[5]
    assert "max_actor_restarts" not in breached[4]
    assert "max_downtime_s[nova-api@ctl-1]" in breached[-1]
    if scenario == "held-across":  # in flight as cycle 4 ends, reverted in cycle 5
        held = analyze(run_dir, options=AnalysisOptions(live_at_wall_s=led.wall(50.0)))
        assert {f.lease_id: f.status for f in held.faults}["slow/4"] == "reverted"
        led4 = _soak(tmp_path / "again.osha", scenario)
        again = led4.write_upto(50.3)
        [status] = [f.status for f in analyze(again, options=AnalysisOptions(
            live_at_wall_s=led4.wall(50.0))).faults if f.lease_id == "slow/4"]  # fmt: skip
        assert status == "held"
        assert "require_reverted" not in LiveJudge(again, NAMES).breached(led4.wall(50.0))


def test_a_record_half_written_when_read_is_read_whole_next_time(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "tail.osha")
    led.target("hs", "nova-api@ctl-1", end_s=2.0, interval_s=0.2)
    run_dir = led.write_upto(1.0)
    judge = LiveJudge(run_dir, ["require_reverted"])
    first = judge.read()
    payload = encode(Sample("late", 1, led.mono(1.1), led.wall(1.1), target="nova-api@ctl-1",
                            count=1, failures=0))  # fmt: skip
    record = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
    [segment] = run_dir.glob("*.seg")
    with segment.open("ab") as f:  # the writer is in the middle of this record
        f.write(record[:9])
    assert judge.read() == 0
    with segment.open("ab") as f:
        f.write(record[9:])
    assert judge.read() == 1
    assert judge.records == first + 1 == len(list(LedgerReader(run_dir).payloads()))


def test_the_judge_child_keeps_its_analysis_and_restarts_after_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    led = _soak(tmp_path / "soak.osha", "early-breach")
    run_dir = led.write_upto(20.3)
    child = JudgeChild(run_dir, ("require_reverted", "max_actor_restarts"), timeout_s=120)
    try:
        assert child.breached(led.wall(20.0)) == []
        led.write_upto(30.3)
        assert child.breached(led.wall(30.0)) == ["require_reverted"]
        assert child.started == 1  # one child, asked twice
    finally:
        child.close()
    gone = JudgeChild(tmp_path / "nowhere.osha", ("require_reverted",), timeout_s=120)
    try:
        with caplog.at_level(logging.ERROR, logger="osha.campaign"):
            assert gone.breached(led.wall(20.0)) is None
        assert "cannot judge the ledger" in caplog.text
        assert "nowhere.osha" in caplog.text  # the child's own error, from its stderr
        assert gone.breached(led.wall(20.0)) is None
        assert gone.started == 2  # a fresh child for the next judgement
    finally:
        gone.close()
