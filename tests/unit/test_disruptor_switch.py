"""The dead-man switch wired into the disruptor contract: armed before the inject, renewed
while the fault is held, collected after every revert (holder, broker, ``faults recover``).

The node is this machine (``sh -c`` is the transport, a temporary state directory the
switch's), the fault a marker file per node whose switch command deletes it. The heartbeat's
cadence is tested on a fake clock (:func:`test_renews_every_third_of_the_ttl_never_past_revert_by`);
the rest runs the real watchdog, every wait bounded by ``wait_for`` or a join timeout.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from osha.faults import FaultBroker, Lease, RetryPolicy, _switch, recover
from osha.faults._roles import ROLE_KEY
from osha.faults.deadman import DeadmanError, Runner, State, Status
from osha.ledger import LedgerReader, LedgerWriter
from osha.messages import (
    ActorCrashed,
    FaultDeadmanArmed,
    FaultDeadmanCollected,
    FaultDeadmanRenewFailed,
    FaultInjected,
    FaultInjectFailed,
    FaultLease,
    FaultRequest,
    FaultReverted,
    LedgerHeader,
)
from osha.testing import FakeContext, wait_for
from tests.unit.test_disruptor_base import Env, FileConfig, FileDisruptor, start
from tests.unit.test_disruptor_base import broker as broker  # noqa: PLC0414 - the fixture
from tests.unit.test_disruptor_base import config as file_config
from tests.unit.test_fault_recover import FAST, _lease, dead_run
from tests.unit.test_fault_support import BrokerContext, SyncSink
from tests.unit.test_roles import role_config


def local(script: str) -> tuple[int, str]:
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


class SwitchedDisruptor(FileDisruptor):
    """A marker-file fault that never heals by itself: its switch deletes the marker."""

    plugin_name = "switched"
    scripts: ClassVar[list[str]] = []  # every script sent to the "node", in order
    runner: ClassVar[Runner] = staticmethod(local)
    injected_with: ClassVar[list[list[str]]] = []  # the deadline files present at each inject

    def inject(self, lease: Lease) -> str:
        state = Path(type(self).switch_state_dir)
        type(self).injected_with.append(sorted(p.parent.name for p in state.glob("*/deadline")))
        return super().inject(lease)

    @classmethod
    def switch_command(cls, config: Any, lease: Lease) -> str | None:
        return f"rm -f {Path(config.markers) / lease.node}"

    @classmethod
    @contextmanager
    def node_runner(cls, config: Any, lease: Lease) -> Iterator[Runner]:
        def run(script: str) -> tuple[int, str]:
            cls.scripts.append(script)
            return cls.runner(script)

        yield run


@pytest.fixture
def switched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[SwitchedDisruptor]]:
    state = tmp_path / "deadman"
    monkeypatch.setattr(SwitchedDisruptor, "switch_state_dir", str(state))
    monkeypatch.setattr(SwitchedDisruptor, "scripts", [])
    monkeypatch.setattr(SwitchedDisruptor, "injected_with", [])
    monkeypatch.setattr(SwitchedDisruptor, "runner", staticmethod(local))
    yield SwitchedDisruptor
    local(f"pkill -f {state}/ || true")  # a watchdog a failed test left


def config(tmp_path: Path, *, revert_timeout_s: float = 120.0, **schedule: Any) -> FileConfig:
    return replace(file_config(tmp_path, **schedule), revert_timeout_s=revert_timeout_s)


def ops(scripts: list[str]) -> list[str]:
    """The switch operations sent, in order (each script starts ``set -- OP DIR ...``)."""
    return [s.split()[2] for s in scripts if s.startswith("set -- ")]


def tags(ctx: FakeContext) -> list[str]:
    return [m.TAG for m in ctx.emitted if m.TAG.startswith("fault.")]


def test_armed_before_the_inject_and_disarmed_after_the_revert(
    tmp_path: Path, broker: Env, switched: type[SwitchedDisruptor]
) -> None:
    b, _, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = switched(config(tmp_path, down_s=0.2, pick="one", revert_timeout_s=5.0), ctx)
    start(plugin).join(timeout=30)
    order = tags(ctx)
    armed = order.index("fault.deadman_armed")
    assert armed < order.index("fault.injected") < order.index("fault.reverted")
    assert order.index("fault.reverted") < order.index("fault.deadman_collected")
    assert len(switched.injected_with) == 1
    assert len(switched.injected_with[0]) == 1, "the watchdog's deadline was not there at inject"
    [arm] = ctx.of(FaultDeadmanArmed)
    assert arm.key.startswith("d1/0/")
    assert arm.pid > 0
    assert 4.0 < arm.ttl_s <= 5.2 + 0.2  # revert_by - now: down_s + revert_timeout_s
    [collected] = ctx.of(FaultDeadmanCollected)
    assert (collected.by, collected.state) == ("holder", "absent")  # disarmed, never fired
    assert ops(switched.scripts)[0] == "arm"
    assert ops(switched.scripts)[-1] == "disarm"
    assert list((tmp_path / "deadman").iterdir()) == []  # the lease's files are gone
    assert not (tmp_path / "markers" / "ctl-1").exists()


def test_a_failed_arm_injects_nothing_and_is_recorded(
    tmp_path: Path, broker: Env, switched: type[SwitchedDisruptor]
) -> None:
    b, _, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    switched.runner = staticmethod(lambda script: (21, "error: cannot create /run/osha\n"))
    plugin = switched(config(tmp_path, down_s=0.1, pick="one"), ctx)
    start(plugin).join(timeout=30)
    [failed] = ctx.of(FaultInjectFailed)
    assert failed.error.startswith("dead-man switch not armed, nothing injected: ")
    assert "cannot create /run/osha" in failed.error
    assert switched.injected_with == []  # inject never ran
    assert ctx.of(FaultInjected) == []
    assert ctx.of(FaultDeadmanArmed) == []
    assert ops(switched.scripts).count("arm") == 1  # never retried
    assert len(ctx.of(FaultReverted)) == 1  # reverted anyway, as any failed inject
    [collected] = ctx.of(FaultDeadmanCollected)
    assert collected.state == "error"


def test_a_renew_the_node_refuses_ends_the_hold(
    tmp_path: Path, broker: Env, switched: type[SwitchedDisruptor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The node reverted by itself during the hold (here: its deadline moved to the past):
    the next heartbeat is refused, recorded, and the hold ends long before down_s."""
    monkeypatch.setattr(_switch, "MAX_EVERY_S", 1.0)
    b, _, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    down_s = 60.0
    plugin = switched(config(tmp_path, down_s=down_s, pick="one", revert_timeout_s=5.0), ctx)
    began_s = time.monotonic()
    started = start(plugin)
    marker = tmp_path / "markers" / "ctl-1"
    def armed() -> list[Path]:
        return list((tmp_path / "deadman").glob("*/deadline"))

    [deadline] = wait_for(armed, timeout_s=10, what="the armed switch")
    wait_for(lambda: ctx.of(FaultInjected), timeout_s=10, what="the inject")
    deadline.write_text("1\n")  # the node's clock is past it: the watchdog fires
    wait_for(lambda: not marker.exists(), timeout_s=5, what="the node's own revert")
    started.join(timeout=20)
    assert time.monotonic() - began_s < down_s / 2, "the hold did not end early"
    [refused] = ctx.of(FaultDeadmanRenewFailed)
    assert refused.ended
    assert "reverted" in refused.error
    [collected] = ctx.of(FaultDeadmanCollected)
    assert (collected.state, collected.revert_status) == ("reverted", 0)
    assert "running the revert" in collected.log_tail


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic(self) -> float:
        return self.now_s

    def time(self) -> float:
        return self.now_s

    def wait(self, timeout_s: float) -> bool:
        self.now_s += timeout_s
        return False


class FakeWatchdog:
    def __init__(self, clock: FakeClock, remaining_s: float, fail: Exception | None = None):
        self.clock = clock
        self.armed = Status(State.ARMED, pid=7, deadline_s=remaining_s, now_s=0.0)
        self.renews: list[tuple[float, float]] = []  # (when, ttl)
        self.fail = fail

    def renew(self, ttl_s: float) -> Status:
        self.renews.append((self.clock.now_s, ttl_s))
        if self.fail is not None:
            raise self.fail
        return self.armed


def fake_lease(clock: FakeClock, down_s: float, revert_by_in_s: float) -> Lease:
    return Lease(lease_id="d1/0", holder="d1", plugin="switched", index=0, action="stop",
                 node="ctl-1", address="10.0.0.11", resource="svc", groups=("all",),
                 down_s=down_s, planned_wall_s=clock.now_s,
                 revert_by_wall_s=clock.now_s + revert_by_in_s,
                 revert={_switch.KEY: "d1/0/x"})  # fmt: skip


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The heartbeat's clocks and waits, faked: a hold of minutes runs in microseconds."""
    fake = FakeClock()
    monkeypatch.setattr(_switch, "time", fake)
    return fake


def hold(clock: FakeClock, watchdog: FakeWatchdog, lease: Lease, ctx: FakeContext) -> None:
    _switch.hold_renewing(watchdog, lease, clock.wait, ctx.emit)


def test_renews_every_third_of_the_ttl_never_past_revert_by(clock: FakeClock) -> None:
    t0 = clock.now_s
    # default window: down 25 s + revert 120 s: a renew every 10 s, each to 30 s from now
    lease = fake_lease(clock, 25.0, 145.0)
    watchdog = FakeWatchdog(clock, 145.0)
    hold(clock, watchdog, lease, FakeContext())
    assert [(round(t - t0, 3), ttl) for t, ttl in watchdog.renews] == [(10.0, 30.0), (20.0, 30.0)]
    assert clock.now_s - t0 == 25.0  # held down_s, not a beat more
    # a short window (down 20 s + revert 4 s): every 8 s, never past revert_by
    clock.now_s = t0 = 5000.0
    lease = fake_lease(clock, 20.0, 24.0)
    watchdog = FakeWatchdog(clock, 24.0)
    hold(clock, watchdog, lease, FakeContext())
    assert [round(t - t0, 3) for t, _ in watchdog.renews] == [8.0, 16.0]
    assert all(t + ttl <= lease.revert_by_wall_s + 1e-9 for t, ttl in watchdog.renews)
    assert watchdog.renews[-1][1] == pytest.approx(8.0)  # capped: revert_by - now


def test_a_transport_failure_is_recorded_and_the_hold_goes_on(clock: FakeClock) -> None:
    t0 = clock.now_s
    ctx = FakeContext()
    watchdog = FakeWatchdog(clock, 145.0, fail=OSError("ssh: connection reset"))
    hold(clock, watchdog, fake_lease(clock, 25.0, 145.0), ctx)
    assert clock.now_s - t0 == 25.0
    assert [(m.ended, "connection reset" in m.error) for m in ctx.of(FaultDeadmanRenewFailed)] \
        == [(False, True), (False, True)]  # fmt: skip
    refusing = FakeWatchdog(clock, 145.0, fail=DeadmanError("lease is reverted on the node"))
    clock.now_s = t0
    ctx = FakeContext()
    hold(clock, refusing, fake_lease(clock, 25.0, 145.0), ctx)
    assert clock.now_s - t0 == 10.0  # ended at the first refused beat
    assert [m.ended for m in ctx.of(FaultDeadmanRenewFailed)] == [True]


def test_the_broker_collects_the_switch_of_a_crashed_holder() -> None:
    sink = SyncSink()
    collected: list[str] = []

    def collect(lease: Lease) -> Status:
        collected.append(lease.lease_id)
        return Status(State.REVERTED, revert_status=0, log="deadline passed")

    b = FaultBroker(sink, max_down={}, revert=lambda lease: "started",
                    policy=RetryPolicy(0.01, 0.05, 0.1), collect=collect)  # fmt: skip
    ctx = BrokerContext(b, "d1")
    b.attach(lambda child, msg: ctx.deliver(msg))
    b.start()
    try:
        clock = FakeClock()
        clock.now_s = time.time()
        keyed = fake_lease(clock, 5, 60)
        old = replace(keyed, lease_id="d1/1", index=1, revert={})  # as an old ledger's lease
        for held in (keyed, old):
            ctx.request(FaultRequest, timeout_s=5, lease=held)
        b.observe(ActorCrashed("supervisor", 9, 0.0, 0.0, actor_id="d1", pid=1, incarnation=1,
                               reason="exit", exit_code=None, signal=9,
                               last_error=""))  # fmt: skip
        wait_for(lambda: not b.active(), timeout_s=5, what="the broker's reverts")
    finally:
        b.close(timeout_s=5)
    assert collected == ["d1/0"]  # the lease of an old ledger has no switch: nothing asked
    [record] = sink.of(FaultDeadmanCollected)
    assert (record.lease_id, record.by, record.state, record.revert_status) == (
        "d1/0", "broker", "reverted", 0)  # fmt: skip


def test_recover_collects_and_says_the_node_reverted_by_itself(tmp_path: Path) -> None:
    markers = tmp_path / "m"
    markers.mkdir()
    old_run = dead_run(tmp_path, markers)  # leases d1/0, d1/1 unrevoked, without a switch
    asked: list[str] = []

    def collect(lease: Lease) -> Status | None:
        asked.append(lease.lease_id)
        return Status(State.ABSENT)

    report = recover(old_run, revert=lambda lease: "started", policy=FAST, collect=collect)
    assert asked == []  # an old ledger's leases have no switch: the node is not asked
    assert all(i.reverted for i in report.items)
    # a new run's leases carry their switch's key; d1/0's fired on the node meanwhile
    run = keyed_run(tmp_path / "keyed.osha")
    answers = {"d1/0": Status(State.REVERTED, revert_status=0, log="ran the revert")}
    absent = Status(State.ABSENT)
    report = recover(run, revert=lambda lease: "started", policy=FAST,
                     collect=lambda lease: answers.get(lease.lease_id, absent))  # fmt: skip
    details = {i.lease.lease_id: i.detail for i in report.items}
    assert details["d1/0"] == "started; the node had reverted it by itself at its deadline (exit 0)"
    assert details["d1/1"] == "started; its dead-man switch disarmed"
    assert report.ledger is not None
    states = [(m.lease_id, m.state, m.by) for m in LedgerReader(report.ledger).messages()
              if isinstance(m, FaultDeadmanCollected)]  # fmt: skip
    assert sorted(states) == [("d1/0", "reverted", "recover"), ("d1/1", "absent", "recover")]


def keyed_run(run: Path) -> Path:
    """A ledger as a kill -9 leaves it, with two leases that carry a switch key."""
    header = LedgerHeader("osha", 1, 0.0, time.time(), schema_version=1, osha_version="t",
                          run_id="r2", host="h", started_wall_s=time.time(), seed=3,
                          profile={})  # fmt: skip
    writer = LedgerWriter.create(run, header)
    for index, node in enumerate(["n1", "n2"]):
        lease = _lease(node, index).lease
        revert = {**lease.revert, _switch.KEY: f"{lease.lease_id}/k"}
        writer.append(FaultLease("faults", index + 1, 0.0, time.time(),
                                 lease=replace(lease, revert=revert)))  # fmt: skip
    writer.sync()  # no close(): the run was killed
    return run


def test_a_fault_that_cuts_osha_off_is_held_without_renews(clock: FakeClock) -> None:
    """A link down on osha's own SSH path: a renew could only wait for its SSH timeout (and
    hold the revert back that long); the node reverts at revert_by as armed."""
    t0 = clock.now_s
    lease = fake_lease(clock, 25.0, 145.0)
    lease = replace(lease, revert={**lease.revert, _switch.CUT_OFF: True})
    watchdog = FakeWatchdog(clock, 145.0)
    ctx = FakeContext()
    hold(clock, watchdog, lease, ctx)
    assert watchdog.renews == []
    assert clock.now_s - t0 == 25.0  # held down_s
    assert ctx.emitted == []


def test_a_role_keeps_its_evidence_in_the_lease_with_a_switch(
    tmp_path: Path, broker: Env, switched: type[SwitchedDisruptor]
) -> None:
    """The switch's key joins the lease's revert data, the role's evidence stays: a network
    partition of ``pick = "rabbitmq-leader-heavy"`` lost it (found on the HA lab)."""
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    cfg = replace(role_config(tmp_path, "ctl-2", start_s=0, down_s=0.2), revert_timeout_s=5.0)
    start(switched(cfg, ctx)).join(timeout=30)
    [lease] = [m.lease for m in sink.of(FaultLease)]
    assert lease.node == "ctl-2"
    assert lease.revert[ROLE_KEY] == "resolved ctl-2: named in role"
    assert _switch.KEY in lease.revert
