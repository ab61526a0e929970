"""The live status: a typed :class:`Status` in the campaign, the same ``status.json`` on disk.

``data/status_7ea620c.json`` is what main 7ea620c (before :class:`Status`) wrote for the
story below, finished with the verdict of :data:`VERDICT`, at the same clock (made by running
this ``story`` on that commit's ``LiveState`` and ``ControlWatcher``): operators' scripts read
that shape, so it stays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from osha.campaign.control import ControlWatcher, read_status
from osha.campaign.state import LiveState
from osha.campaign.status import FinalVerdict, LeaseStatus, Status
from osha.errors import OshaError
from osha.faults import Lease
from osha.messages import (
    ActorRestarting,
    ActorStarted,
    FaultInjected,
    FaultLease,
    FaultPlanned,
    Phase,
    RunnerIteration,
    RunnerStatus,
    SoakCycle,
    State,
    StateChange,
)
from osha.messages.campaign import PhaseChange

DATA = Path(__file__).parent / "data"
T0 = 1_764_900_000.0  # the story's clock: wall seconds
SLOS = {"x": {"threshold": 1.0, "value": 2.5, "passed": False, "detail": "d"}}
VERDICT = FinalVerdict(False, 1, "FAIL: 1/2 SLOs met; violated: x", SLOS)


def story(state: LiveState) -> None:
    """A soak in its chaos phase: targets, runners, a planned and a held fault, actors."""
    state.cycles_planned = 3
    state.set_phase("chaos", 60.0)
    state.observe(PhaseChange("campaign", 1, 0.0, T0, phase="baseline", event="end"))
    state.observe(StateChange("mon", 2, 0.0, T0 + 1, target="ctl-1", state="down",
                              previous="up", last_good_mono_s=None,
                              first_bad_mono_s=1.0))  # fmt: skip
    state.observe(StateChange("api", 3, 0.0, T0 + 2, target="compute", state="unknown",
                              previous="up", last_good_mono_s=0.5,
                              first_bad_mono_s=2.0))  # fmt: skip
    state.observe(RunnerIteration("rally", 4, 0.0, T0 + 3, runner="boot", iteration=1,
                                  started_wall_s=T0, duration_s=2.345, ok=True,
                                  atomic={}))  # fmt: skip
    state.observe(RunnerIteration("rally", 5, 0.0, T0 + 4, runner="boot", iteration=2,
                                  started_wall_s=T0, duration_s=1.5, ok=False, atomic={},
                                  error_type="Timeout", error="no answer"))  # fmt: skip
    state.observe(RunnerStatus("rally", 6, 0.0, T0 + 4, runner="boot", status="running"))
    state.observe(SoakCycle("campaign", 7, 0.0, T0, cycle=1, phase="start"))
    state.observe(SoakCycle("campaign", 8, 0.0, T0, cycle=1, phase="end", ok=False,
                            detail="still down: ctl-1 (mon)"))  # fmt: skip
    state.observe(SoakCycle("campaign", 9, 0.0, T0, cycle=2, phase="start"))
    state.observe(FaultPlanned("kill", 10, 0.0, T0, index=8, round=0, action="kill",
                               node="ctl-2", resource="nova-api", planned_offset_s=30.0,
                               down_s=1.0, chaos_start_wall_s=T0))  # fmt: skip
    lease = Lease(lease_id="kill/7", holder="kill", plugin="process", index=7, action="kill",
                  node="ctl-1", address="10.0.0.1", resource="nova-scheduler",
                  groups=("controller",), down_s=2.0, planned_wall_s=T0 + 5.0,
                  revert_by_wall_s=T0 + 60.0, revert={})  # fmt: skip
    state.observe(FaultLease("broker", 11, 0.0, T0 + 5, lease=lease))
    state.observe(FaultInjected("kill", 12, 0.0, T0 + 6, lease_id="kill/7", index=7,
                                action="kill", node="ctl-1", resource="nova-scheduler",
                                planned_wall_s=T0 + 5, actual_wall_s=T0 + 6))  # fmt: skip
    state.observe(ActorStarted("supervisor", 13, 0.0, T0, actor_id="mon", plugin="p",
                               kind="monitor", pid=1, incarnation=1, config={}))  # fmt: skip
    state.observe(ActorRestarting("supervisor", 14, 0.0, T0, actor_id="mon",
                                  restarts_in_period=1, delay_s=0.5))  # fmt: skip
    state.notes = ["12:00:00 a note"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``time.time()`` of the story reads ``T0 + 10``."""
    monkeypatch.setattr(time, "time", lambda: T0 + 10.0)


def _live(clock: None) -> LiveState:
    state = LiveState("r1", "runs/r1.osha")
    story(state)
    state.finished = True
    state.verdict = VERDICT
    return state


def test_status_json_keeps_the_shape_main_7ea620c_wrote(clock: None, tmp_path: Path) -> None:
    state = _live(clock)
    watcher = ControlWatcher(tmp_path, state.snapshot, lambda _reason: None)
    watcher.write_status()
    written = json.loads((tmp_path / "status.json").read_text())
    old = json.loads((DATA / "status_7ea620c.json").read_text())
    assert json.dumps(written) == json.dumps(old)  # the same keys in the same order, same values


def test_reading_status_json_gives_the_status_it_was_written_from(
    clock: None, tmp_path: Path
) -> None:
    state = _live(clock)
    snap = state.snapshot()
    ControlWatcher(tmp_path, state.snapshot, lambda _reason: None).write_status()
    back = read_status(tmp_path)
    assert isinstance(back, Status)
    assert back == snap
    assert back.leases["kill/7"] == LeaseStatus("kill nova-scheduler@ctl-1", "kill", 5.0, 2.0, True)
    assert back.soak is not None
    assert [(v.cycle, v.ok) for v in back.soak.last_verdicts] == [(1, False)]
    assert back.faults.injected == 1
    assert back.verdict is not None
    assert back.verdict.exit_code == 1


def test_a_status_json_written_by_main_7ea620c_reads_back(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text((DATA / "status_7ea620c.json").read_text())
    back = read_status(tmp_path)
    assert back.phase is Phase.CHAOS
    assert back.targets["ctl-1 (mon)"].state is State.DOWN
    assert back.phases_done[0].phase is Phase.BASELINE
    assert back.runners["rally"].last_error == "Timeout: no answer"
    assert back.next_fault is not None
    assert back.next_fault.what == "kill nova-api@ctl-2"
    assert back.verdict == VERDICT


@pytest.mark.parametrize(
    ("damage", "key"),
    [
        (lambda d: d["faults"].update(injected="3"), "faults.injected"),
        (lambda d: d["targets"]["ctl-1 (mon)"].pop("state"), "targets.ctl-1 (mon).state"),
        (lambda d: d["soak"]["last_verdicts"][0].update(ok=1), "soak.last_verdicts[0].ok"),
        (lambda d: d.update(phase="chaso"), "phase"),
        (lambda d: d.update(extra=1), "extra"),
    ],
)
def test_a_damaged_status_json_is_one_clean_error_naming_its_key(
    tmp_path: Path, damage: Callable[[dict[str, Any]], object], key: str
) -> None:
    data = json.loads((DATA / "status_7ea620c.json").read_text())
    damage(data)
    (tmp_path / "status.json").write_text(json.dumps(data))
    with pytest.raises(OshaError, match="is damaged") as err:
        read_status(tmp_path)
    assert f": {key}: " in str(err.value)
