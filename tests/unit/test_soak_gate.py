"""The broker's chaos gate: held back while a soak judges, granted late or skipped, closed
for good once a stop is decided. No lease is granted while the gate is held or closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from osha.faults import FaultBroker
from osha.messages import ActorCrashed, FaultGrant, FaultLease, FaultRefused, FaultRequest
from osha.plugin import RequestTimeout
from osha.testing import holds_for, wait_for
from tests.unit.test_fault_broker import FAST, lease
from tests.unit.test_fault_support import BrokerContext, SyncSink

Env = tuple[FaultBroker, SyncSink, dict[str, BrokerContext]]


@pytest.fixture
def env() -> Iterator[Env]:
    sink = SyncSink()
    broker = FaultBroker(sink, max_down={"controller": 2}, revert=lambda held: "ok", policy=FAST)
    contexts = {name: BrokerContext(broker, name) for name in ("d1", "d2")}
    broker.attach(lambda child, msg: contexts[child].deliver(msg))
    broker.start()
    yield broker, sink, contexts
    broker.close(timeout_s=5)


class Asking:
    """A request in its own thread (the disruptor waits for its grant meanwhile)."""

    def __init__(self, ctx: BrokerContext, node: str, *, wait_s: float = 10.0) -> None:
        self.reply: FaultGrant | None = None
        self.error: Exception | None = None
        held = lease(node, ctx.actor_id)
        self._thread = threading.Thread(target=self._ask, args=(ctx, held, wait_s), daemon=True)
        self._thread.start()

    def _ask(self, ctx: BrokerContext, held: Any, wait_s: float) -> None:
        try:
            reply = ctx.request(FaultRequest, timeout_s=wait_s, wait_s=wait_s, lease=held)
        except RequestTimeout as exc:
            self.error = exc
            return
        assert isinstance(reply, FaultGrant)
        self.reply = reply

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


def _parked(broker: FaultBroker) -> bool:
    return broker.held_back > 0


def test_a_held_gate_parks_requests_and_grants_them_late_on_resume(env: Env) -> None:
    broker, sink, ctx = env
    broker.hold("judging cycle 1")
    asking = Asking(ctx["d1"], "ctl-1")
    wait_for(lambda: _parked(broker), timeout_s=5, what="the request held back")
    assert holds_for(lambda: not asking.done, duration_s=0.3, interval_s=0.05)  # no grant yet
    assert not sink.of(FaultLease)
    assert broker.resume() == 0  # none skipped
    wait_for(lambda: asking.done, timeout_s=5, what="the late grant")
    assert asking.reply is not None
    assert asking.reply.granted
    [granted] = sink.of(FaultLease)
    assert granted.lease.lease_id == "d1/0"


def test_a_closed_gate_refuses_what_it_held_and_every_later_request(env: Env) -> None:
    broker, sink, ctx = env
    broker.hold("judging cycle 3")
    first = Asking(ctx["d1"], "ctl-1")
    wait_for(lambda: _parked(broker), timeout_s=5, what="the request held back")
    broker.close_gate("slo: cycle 3: min_availability breached")
    wait_for(lambda: first.done, timeout_s=5, what="the refusal")
    later = Asking(ctx["d2"], "ctl-2")
    wait_for(lambda: later.done, timeout_s=5, what="the second refusal")
    for asking in (first, later):
        assert asking.reply is not None
        assert not asking.reply.granted
        assert "stopping (slo: cycle 3" in asking.reply.reason
    assert not sink.of(FaultLease)  # nothing was granted after the hold
    assert [r.holder for r in sink.of(FaultRefused)] == ["d1", "d2"]
    assert broker.resume() == 0  # a closed gate stays closed
    third = Asking(ctx["d1"], "ctl-3")
    wait_for(lambda: third.done, timeout_s=5, what="the third refusal")
    assert third.reply is not None
    assert not third.reply.granted
    assert not sink.of(FaultLease)


def test_a_request_held_longer_than_its_holder_waits_is_skipped_not_granted_late(
    env: Env,
) -> None:
    broker, sink, ctx = env
    broker.hold("waiting for cycle 7's overrun")
    asking = Asking(ctx["d1"], "ctl-1", wait_s=1.2)
    wait_for(lambda: asking.done, timeout_s=10, what="the holder to give up")
    assert isinstance(asking.error, RequestTimeout)
    assert broker.resume() == 1  # skipped: granting it now would leave a lease nobody holds
    [refused] = sink.of(FaultRefused)
    assert "held back" in refused.reason
    assert "skipped" in refused.reason
    assert not sink.of(FaultLease)
    assert not broker.active()


def test_a_holder_that_crashed_while_held_back_gets_nothing(env: Env) -> None:
    broker, sink, ctx = env
    broker.hold("judging cycle 2")
    Asking(ctx["d1"], "ctl-1", wait_s=3.0)
    wait_for(lambda: _parked(broker), timeout_s=5, what="the request held back")
    broker.observe(ActorCrashed("supervisor", 1, time.monotonic(), time.time(), actor_id="d1",
                                pid=2, incarnation=1, reason="exit", exit_code=None, signal=9,
                                last_error=""))  # fmt: skip
    wait_for(lambda: sink.of(FaultRefused), timeout_s=5, what="the refusal")
    assert broker.resume() == 0
    [refused] = sink.of(FaultRefused)
    assert "crashed while its request was held back" in refused.reason
    assert not sink.of(FaultLease)


class SlowSync(SyncSink):
    """A sink whose lease fsync blocks until released: a grant in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.syncing = threading.Event()

    def sync(self, timeout_s: float = 10.0) -> int:
        self.syncing.set()
        self.release.wait(timeout_s)
        return super().sync(timeout_s)


def test_hold_returns_only_once_a_grant_in_flight_is_out() -> None:
    sink = SlowSync()
    broker = FaultBroker(sink, max_down={}, revert=lambda held: "ok", policy=FAST)
    events: list[str] = []
    ctx = BrokerContext(broker, "d1")

    def deliver(child: str, msg: Any) -> bool:
        events.append("grant")
        return ctx.deliver(msg)

    broker.attach(deliver)
    broker.start()
    try:
        asking = Asking(ctx, "ctl-1")
        assert sink.syncing.wait(5)
        holder = threading.Thread(
            target=lambda: (broker.hold("judging"), events.append("held")), daemon=True
        )
        holder.start()
        assert holds_for(holder.is_alive, duration_s=0.3, interval_s=0.05)  # a grant in flight
        sink.release.set()
        wait_for(lambda: not holder.is_alive() and asking.done, timeout_s=5, what="the hold")
        assert events == ["grant", "held"]
    finally:
        sink.release.set()
        broker.close(timeout_s=5)
