"""The run tree: started recorder -> broker -> supervisor -> children, stopped in reverse, and
the recorder closes last, after the broker's last revert is recorded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from osha.faults import Lease
from osha.ledger import LedgerReader, LedgerWriter, new_header
from osha.messages import (
    ActorStarted,
    ActorStopped,
    FaultGrant,
    FaultLease,
    FaultRequest,
    FaultReverted,
    Message,
    RunStopped,
)
from osha.runtree import BrokerSpec, RunTree, TreeSpec
from osha.supervisor import ChildSpec, StopReason, SupervisorSpec
from osha.testing import wait_for

pytestmark = pytest.mark.timeout(60)


def _lease(holder: str) -> Lease:
    return Lease(
        lease_id=f"{holder}/0", holder=holder, plugin="fake", index=0, action="stop",
        node="ctl-1", address="10.0.0.1", resource="nova-scheduler", groups=("all",),
        down_s=1.0, planned_wall_s=time.time(), revert_by_wall_s=time.time() + 60,
        revert={"marker": "ctl-1"},
    )  # fmt: skip


def _tree(tmp_path: Path, reverts: list[str]) -> tuple[RunTree, Path]:
    run_dir = tmp_path / "order.osha"
    spec = TreeSpec(
        supervisor=SupervisorSpec(
            children=(
                ChildSpec("first", "monitor", "ticker", {"interval_s": 0.05}),
                ChildSpec("second", "monitor", "ticker", {"interval_s": 0.05}),
            )
        ),
        broker=BrokerSpec(max_down={}, revert=lambda held: reverts.append(held.lease_id) or "ok"),
        run_dir=tmp_path / "logs",
        run_id="order",
    )
    tree = RunTree(spec)
    tree.open(LedgerWriter.create(run_dir, new_header("order")))
    return tree, run_dir


def test_the_tree_starts_in_order_and_stops_in_reverse_recorder_last(tmp_path: Path) -> None:
    reverts: list[str] = []
    tree, run_dir = _tree(tmp_path, reverts)
    tree.start()
    # A lease its holder will not revert (a monitor holds it): the broker reverts it at the
    # end. The request comes as the supervisor hands a child's request to the broker.
    held = _lease("second")
    tree.broker.observe(
        FaultRequest("second", 0, time.monotonic(), time.time(), request_id="r1", lease=held)
    )
    wait_for(lambda: tree.active_leases() == 1, timeout_s=10, what="the lease granted")
    tree.close(StopReason.REQUESTED)

    assert reverts == ["second/0"]
    reader = LedgerReader(run_dir)
    assert reader.closed_cleanly
    order: list[str] = []
    for msg in reader.messages():
        if isinstance(msg, ActorStarted | ActorStopped):
            order.append(f"{msg.TAG} {msg.actor_id}")
        elif isinstance(msg, FaultLease | FaultReverted | RunStopped):
            order.append(msg.TAG)
    assert order == [
        "actor.started first",
        "actor.started second",
        "fault.lease",
        "actor.stopped second",  # children stop in reverse order,
        "actor.stopped first",
        "run.stopped",  # then the supervisor,
        "fault.reverted",  # then the broker reverts what is held,
    ]  # and the recorder closes last: the revert is in the ledger, which closed cleanly


def test_a_gate_closed_before_the_actors_start_refuses_their_faults(tmp_path: Path) -> None:
    """The campaign may decide to stop while it builds the actors: the broker started after
    that refuses every fault."""
    tree, _ = _tree(tmp_path, [])
    tree.close_gate("stopped during the load")
    tree.start()
    held = _lease("second")
    replies: list[Message] = []
    tree.broker.attach(lambda child, msg: replies.append(msg) or True)
    tree.broker.observe(FaultRequest("second", 0, time.monotonic(), time.time(), request_id="r1",
                                    lease=held))  # fmt: skip
    wait_for(lambda: bool(replies), timeout_s=10, what="the broker's answer")
    [reply] = replies
    assert isinstance(reply, FaultGrant)
    assert not reply.granted
    assert tree.active_leases() == 0
    tree.close(StopReason.REQUESTED)
