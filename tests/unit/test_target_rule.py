"""One rule for what counts as down, shared by the live picture and the analysis: ``down`` and
``unreachable`` are bad, ``unknown`` is blind (neither up nor down). The soak's cycle verdict
says ``still down`` only for bad targets and lists the blind ones apart."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from osha.analysis._targets import TargetTracker
from osha.campaign.phases import Recorder
from osha.campaign.soak import CycleLoop, SoakControl
from osha.campaign.state import LiveState, NotUp
from osha.campaign.view import PlainView
from osha.messages import SoakCycle, StateChange, is_bad, is_blind
from osha.messages.monitor import State
from osha.schedule import ChaosClock
from osha.testing import MemorySink, wait_for


def _change(target: str, state: State, previous: State = "up") -> StateChange:
    now_s = time.time()
    return StateChange(
        "hosts", 1, 10.0, now_s, target=target, state=state, previous=previous,
        last_good_mono_s=9.0, first_bad_mono_s=10.0,
    )  # fmt: skip


def test_the_rule_names_every_state_once() -> None:
    states = set(State)  # every member of the enum
    assert {s for s in states if is_bad(s)} == {"down", "unreachable"}
    assert {s for s in states if is_blind(s)} == {"unknown"}
    assert {s for s in states if not is_bad(s) and not is_blind(s)} == {"up"}


@pytest.mark.parametrize("state", list(State))
def test_the_live_state_and_the_analysis_agree_on_what_is_down(state: State) -> None:
    """A target that went from ``up`` to ``state``: the live picture lists it as down exactly
    when the analysis counts an outage, and as blind exactly when the analysis counts the
    time as unknown (neither up nor down)."""
    live = LiveState("r", "runs/r.osha")
    live.observe(_change("nova-conductor@ctl-1", state))
    tracker = TargetTracker("hosts", "nova-conductor@ctl-1", max_episodes=10)
    tracker.change(State.UP, None, 0.0, 0.0)
    tracker.change(state, 9.0, 10.0, 10.0)
    report = tracker.finish(20.0)
    seen = live.not_up()
    assert bool(seen.down) == (report.episode_count == 1) == (report.bad_s > 0)
    assert bool(seen.blind) == (report.unknown_s > 0)
    assert bool(seen) == (state != "up")


def test_not_up_splits_the_bad_targets_from_the_blind_ones() -> None:
    live = LiveState("r", "runs/r.osha")
    live.observe(_change("node:ctl-1", "unreachable"))
    live.observe(_change("nova-api@ctl-1", "down"))
    live.observe(_change("nova-conductor@ctl-1", "unknown"))
    live.observe(_change("keystone@ctl-1", "up", previous="unknown"))
    assert live.not_up() == NotUp(
        down=("node:ctl-1 (hosts)", "nova-api@ctl-1 (hosts)"),
        blind=("nova-conductor@ctl-1 (hosts)",),
    )
    assert str(live.not_up()) == (
        "still down: node:ctl-1 (hosts), nova-api@ctl-1 (hosts); "
        "not seen (unknown): nova-conductor@ctl-1 (hosts)"
    )


def _one_cycle(tmp_path: Path, live: LiveState) -> SoakCycle:
    """Run one soak cycle with ``live`` as the campaign's live picture; its end record."""
    sink = MemorySink()
    loop = CycleLoop(
        ChaosClock(time.time(), cycle_s=0.01, cycles=1),
        cycle_baseline_s=0.0,
        recorder=Recorder(sink, live),
        state=live,
        control=SoakControl(
            wait_until=lambda wall_s, until: True,
            request_stop=lambda source, reason: None,
            held_leases=list,
            sync=lambda: None,
            hold=lambda reason: None,
            resume=lambda: 0,
        ),
        run_dir=tmp_path,
    )
    assert loop.run() == 1
    [end] = [m for m in sink.messages(SoakCycle) if isinstance(m, SoakCycle) and m.phase == "end"]
    return end


def test_a_cycle_says_still_down_only_for_bad_targets_and_lists_blind_ones_apart(
    tmp_path: Path,
) -> None:
    """Today's lab soak: the node was unreachable for a second and the monitor could not see
    the services on it; only the node is down."""
    live = LiveState("r", str(tmp_path))
    live.observe(_change("node:ctl-1", "unreachable"))
    live.observe(_change("nova-conductor@ctl-1", "unknown"))
    live.observe(_change("keystone@ctl-1", "up", previous="unknown"))
    end = _one_cycle(tmp_path, live)
    assert not end.ok
    assert end.detail == (
        "still down: node:ctl-1 (hosts); "
        "not seen at the cycle's end (unknown): nova-conductor@ctl-1 (hosts)"
    )


def test_a_cycle_whose_only_problem_is_blindness_is_not_ok_and_not_down(tmp_path: Path) -> None:
    """A target the monitor cannot see is no evidence of health: the cycle is not ok, and its
    detail says the target was not seen, not that it was down (README, soak section)."""
    live = LiveState("r", str(tmp_path))
    live.observe(_change("nova-conductor@ctl-1", "unknown"))
    end = _one_cycle(tmp_path, live)
    assert not end.ok
    assert end.detail == "not seen at the cycle's end (unknown): nova-conductor@ctl-1 (hosts)"


def test_a_cycle_with_every_target_seen_up_is_ok(tmp_path: Path) -> None:
    live = LiveState("r", str(tmp_path))
    live.observe(_change("nova-conductor@ctl-1", "up", previous="unknown"))
    end = _one_cycle(tmp_path, live)
    assert end.ok
    assert end.detail == "every target up, every fault reverted"


@pytest.mark.timeout(30)
def test_the_plain_views_summary_names_blind_targets_apart_from_down_ones() -> None:
    live = LiveState("r", "runs/r.osha")
    live.observe(_change("node:ctl-1", "unreachable"))
    live.observe(_change("nova-conductor@ctl-1", "unknown"))
    live.observe(_change("keystone@ctl-1", "up", previous="unknown"))
    out = io.StringIO()
    view = PlainView(live.snapshot, Console(file=out), summary_s=0.0)
    view.start()
    try:  # the view polls once a second; 10 s leaves room on a loaded machine
        line = wait_for(
            lambda: next((x for x in out.getvalue().splitlines() if "targets up" in x), ""),
            timeout_s=10.0,
            what="a summary line",
        )
    finally:
        view.stop()
    assert line.endswith(
        ": 1/3 targets up (down: node:ctl-1 (hosts)) "
        "(not seen: nova-conductor@ctl-1 (hosts)); 0 faults held"
    ), line
