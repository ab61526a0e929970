"""The supervisor with real child processes: crashes, hangs, restarts, escalation, order."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.testing.commands import TestCrash, TestHang
from osha.errors import EscalationError, PluginError
from osha.messages import (
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    ActorStopped,
    Sample,
    SupervisorEscalated,
)
from osha.supervisor import (
    ChildInfo,
    ChildSpec,
    ChildState,
    Restart,
    StopReason,
    Strategy,
    Supervisor,
    SupervisorFlags,
    SupervisorSpec,
    run_supervised,
)
from osha.testing import MemorySink, wait_for

pytestmark = pytest.mark.timeout(30)

Factory = Callable[..., tuple[Supervisor, MemorySink]]


def tick(child_id: str = "tick", **config: Any) -> ChildSpec:
    return ChildSpec(child_id, "monitor", "ticker", {"interval_s": 0.05, **config})


def crasher(
    child_id: str = "crash", restart: Restart = Restart.PERMANENT, **config: Any
) -> ChildSpec:
    return ChildSpec(child_id, "runner", "crasher", config, restart=restart, shutdown_s=2.0)


def info(sup: Supervisor, child_id: str) -> ChildInfo:
    return next(c for c in sup.children() if c.id == child_id)


def running_again(sup: Supervisor, child_id: str, incarnation: int) -> Callable[[], bool]:
    def check() -> bool:
        child = info(sup, child_id)
        return child.incarnation >= incarnation and child.state is ChildState.RUNNING

    return check


def crashes(sink: MemorySink, child_id: str) -> list[ActorCrashed]:
    return [
        m
        for m in sink.messages(ActorCrashed)
        if isinstance(m, ActorCrashed) and m.actor_id == child_id
    ]


def test_sigkill_is_recorded_and_restarted(supervise: Factory) -> None:
    sup, sink = supervise(tick(), crasher())
    victim = info(sup, "crash")
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(running_again(sup, "crash", 2), timeout_s=10, what="crash restarted")
    [crash] = crashes(sink, "crash")
    assert (crash.reason, crash.signal, crash.exit_code) == ("exit", signal.SIGKILL, None)
    assert crash.pid == victim.pid
    assert "SIGKILL" in crash.last_error
    [restarting] = sink.messages(ActorRestarting)
    assert restarting.delay_s == 0.0  # type: ignore[attr-defined]
    assert info(sup, "crash").pid != victim.pid
    assert info(sup, "tick").incarnation == 1  # one_for_one: the sibling was left alone


def test_sigstop_is_a_missed_heartbeat(supervise: Factory) -> None:
    sup, sink = supervise(tick())
    hung = info(sup, "tick")
    os.kill(hung.pid, signal.SIGSTOP)
    wait_for(running_again(sup, "tick", 2), timeout_s=10, what="hung ticker restarted")
    [crash] = crashes(sink, "tick")
    assert (crash.reason, crash.signal) == ("heartbeat", signal.SIGKILL)
    assert "heartbeat" in crash.last_error
    count = len(sink.messages(Sample))
    wait_for(lambda: len(sink.messages(Sample)) > count, timeout_s=5, what="samples again")


def test_gil_holding_hang_is_a_missed_heartbeat(supervise: Factory) -> None:
    sup, sink = supervise(crasher())
    assert sup.send("crash", TestHang("test", 0, 0.0, 0.0, hold_s=30.0))
    wait_for(running_again(sup, "crash", 2), timeout_s=10, what="hung crasher restarted")
    assert [c.reason for c in crashes(sink, "crash")] == ["heartbeat"]


def test_actor_failed_text_reaches_last_error(supervise: Factory) -> None:
    sup, sink = supervise(crasher())
    assert sup.send("crash", TestCrash("test", 0, 0.0, 0.0, exit_code=4, raise_error=True))
    wait_for(running_again(sup, "crash", 2), timeout_s=10, what="failed crasher restarted")
    [crash] = crashes(sink, "crash")
    assert crash.reason == "failed"
    assert crash.exit_code == 70
    assert crash.last_error == "PluginError: crasher: crash requested (exit code 4)"


def test_exit_code_is_recorded(supervise: Factory) -> None:
    sup, sink = supervise(crasher())
    assert sup.send("crash", TestCrash("test", 0, 0.0, 0.0, exit_code=9))
    wait_for(running_again(sup, "crash", 2), timeout_s=10, what="crasher restarted")
    [crash] = crashes(sink, "crash")
    assert (crash.reason, crash.exit_code, crash.signal) == ("exit", 9, None)


def test_temporary_child_is_not_restarted(supervise: Factory) -> None:
    sup, sink = supervise(tick(), crasher(restart=Restart.TEMPORARY))
    os.kill(info(sup, "crash").pid, signal.SIGKILL)
    wait_for(lambda: info(sup, "crash").state is ChildState.STOPPED, timeout_s=10, what="stopped")
    assert len(crashes(sink, "crash")) == 1
    assert not sink.messages(ActorRestarting)
    stopped = [m for m in sink.messages(ActorStopped) if m.actor_id == "crash"]  # type: ignore[attr-defined]
    assert [m.clean for m in stopped] == [False]  # type: ignore[attr-defined]
    assert info(sup, "crash").incarnation == 1
    assert sup.outcome is None  # the ticker still runs


def test_transient_child_restarts_only_after_a_crash(supervise: Factory) -> None:
    sup, sink = supervise(crasher("quitter", Restart.TRANSIENT, finish_after_s=0.2), crasher())
    wait_for(lambda: info(sup, "quitter").state is ChildState.STOPPED, timeout_s=10, what="quit")
    assert not crashes(sink, "quitter")
    [stopped] = sink.messages(ActorStopped)
    assert stopped.clean  # type: ignore[attr-defined]
    assert info(sup, "quitter").incarnation == 1


def test_every_child_ended_completes_the_run(
    tmp_path: Path, no_children_left: Callable[[], None]
) -> None:
    spec = SupervisorSpec(children=(crasher("a", Restart.TRANSIENT, finish_after_s=0.1),))
    outcome = run_supervised(spec, MemorySink(), duration_s=20.0, run_dir=tmp_path)
    assert outcome.reason is StopReason.COMPLETED


def test_restart_storm_escalates(tmp_path: Path, no_children_left: Callable[[], None]) -> None:
    sink = MemorySink()
    spec = SupervisorSpec(
        children=(tick("first"), crasher(crash_after_s=0.0, exit_code=3), tick("last")),
        flags=SupervisorFlags(
            intensity=2,
            period_s=30.0,
            backoff_initial_s=0.01,
            heartbeat_interval_s=0.1,
            heartbeat_timeout_s=1.0,
        ),
    )
    with pytest.raises(EscalationError) as caught:
        run_supervised(spec, sink, duration_s=20.0, run_dir=tmp_path, run_id="storm")
    assert "'crash'" in str(caught.value)
    assert "exited with code 3" in str(caught.value)
    assert caught.value.exit_code == 3
    assert len(crashes(sink, "crash")) == 3
    assert [r.restarts_in_period for r in sink.messages(ActorRestarting)] == [1, 2]  # type: ignore[attr-defined]
    [escalated] = sink.messages(SupervisorEscalated)
    assert escalated.actor_id == "crash"  # type: ignore[attr-defined]
    # records are intact and in order: escalation, then every child stopped in reverse order
    tags = [m.TAG for m in sink.messages() if not isinstance(m, Sample)]
    after = tags[tags.index("supervisor.escalated") :]
    assert after == ["supervisor.escalated", "actor.stopped", "actor.stopped", "run.stopped"]
    stopped = [m.actor_id for m in sink.messages(ActorStopped)]  # type: ignore[attr-defined]
    assert stopped == ["last", "first"]
    seqs = [m.seq for m in sink.messages() if m.sender == "supervisor"]
    assert seqs == list(range(1, len(seqs) + 1))
    no_children_left()


def test_start_forward_and_stop_reverse(
    tmp_path: Path, no_children_left: Callable[[], None]
) -> None:
    sink = MemorySink()
    ids = ("a", "b", "c")
    spec = SupervisorSpec(children=tuple(tick(i) for i in ids))
    sup = Supervisor(spec, sink, run_dir=tmp_path)
    sup.start()
    pids = [info(sup, i).pid for i in ids]
    outcome = sup.stop(StopReason.INTERRUPT)
    assert outcome.reason is StopReason.INTERRUPT
    started = sink.messages(ActorStarted)
    assert [m.actor_id for m in started] == list(ids)  # type: ignore[attr-defined]
    assert [m.pid for m in started] == pids  # type: ignore[attr-defined]
    stopped = sink.messages(ActorStopped)
    assert [m.actor_id for m in stopped] == list(reversed(ids))  # type: ignore[attr-defined]
    assert all(m.clean for m in stopped)  # type: ignore[attr-defined]
    monos = [m.mono_s for m in started + stopped]
    assert monos == sorted(monos)
    no_children_left()


def test_rest_for_one_restarts_the_later_children(supervise: Factory) -> None:
    sup, sink = supervise(tick("a"), crasher("b"), tick("c"), strategy=Strategy.REST_FOR_ONE)
    os.kill(info(sup, "b").pid, signal.SIGKILL)
    wait_for(running_again(sup, "c", 2), timeout_s=10, what="c restarted")
    wait_for(running_again(sup, "b", 2), timeout_s=10, what="b restarted")
    assert info(sup, "a").incarnation == 1
    restarted = [m.actor_id for m in sink.messages(ActorStarted)][3:]  # type: ignore[attr-defined]
    assert restarted == ["b", "c"]


def test_one_for_all_restarts_everyone(supervise: Factory) -> None:
    sup, sink = supervise(tick("a"), crasher("b"), strategy=Strategy.ONE_FOR_ALL)
    os.kill(info(sup, "b").pid, signal.SIGKILL)
    wait_for(running_again(sup, "b", 2), timeout_s=10, what="b restarted")
    assert info(sup, "a").incarnation == 2
    restarted = [m.actor_id for m in sink.messages(ActorStarted)][2:]  # type: ignore[attr-defined]
    assert restarted == ["a", "b"]


def test_a_child_that_cannot_start_fails_the_run_clearly(
    tmp_path: Path, no_children_left: Callable[[], None]
) -> None:
    sink = MemorySink()
    spec = SupervisorSpec(children=(tick("ok"), crasher("bad", fail_setup=True)))
    with pytest.raises(PluginError, match=r"'bad'.*did not start: PluginError: crasher: setup"):
        run_supervised(spec, sink, duration_s=5.0, run_dir=tmp_path)
    assert [m.actor_id for m in sink.messages(ActorStopped)] == ["ok"]  # type: ignore[attr-defined]
    [crash] = sink.messages(ActorCrashed)
    assert crash.reason == "failed"  # type: ignore[attr-defined]
    no_children_left()


def test_bad_config_names_keys_not_values(
    tmp_path: Path, no_children_left: Callable[[], None]
) -> None:
    spec = SupervisorSpec(children=(crasher("bad", password="hunter2"),))  # noqa: S106 - a fake secret
    with pytest.raises(PluginError) as caught:
        run_supervised(spec, MemorySink(), duration_s=5.0, run_dir=tmp_path)
    assert "password" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in (tmp_path / "logs" / "bad.log").read_text()
