"""A disruptor (re)started in the middle of a soak: the cycles that are over are neither
planned nor struck; only the cycles still to come are. A soak restarts its disruptors for days
(self-chaos), and planning every past cycle took ms each, and struck the faults of any old
cycle that no incarnation had asked for, in the wrong cycle."""

from __future__ import annotations

import time
from pathlib import Path

from osha.faults import FaultBroker, RetryPolicy
from osha.messages import FaultLease, FaultPlanned
from osha.schedule import STRIDE, ChaosClock
from tests.unit.test_disruptor_base import FileDisruptor, config, start
from tests.unit.test_fault_support import BrokerContext, SyncSink


def test_a_disruptor_started_mid_soak_plans_and_strikes_only_the_cycles_to_come(
    tmp_path: Path,
) -> None:
    sink = SyncSink()
    contexts: dict[str, BrokerContext] = {}
    broker = FaultBroker(sink, max_down={"controller": 2}, revert=lambda lease: "n/a",
                         policy=RetryPolicy(0.01, 0.05, 0.1))  # fmt: skip
    broker.attach(lambda child, msg: contexts[child].deliver(msg))
    # 203 cycles of 0.3 s that started 60 s ago: cycles 0-198 (at least) are over
    began_s = time.time() - 60.0
    broker.start(ChaosClock(began_s, cycle_s=0.3, first_cycle=0, cycles=203))
    try:
        ctx = contexts["d1"] = BrokerContext(broker, "d1")
        plugin = FileDisruptor(config(tmp_path, down_s=0.05, pick="random"), ctx)
        start(plugin).join(timeout=30)
    finally:
        broker.close(timeout_s=5)
    planned = [p.index // STRIDE for p in ctx.of(FaultPlanned)]
    leased = [int(m.lease.lease_id.split("/")[1]) // STRIDE for m in sink.of(FaultLease)]
    assert planned  # the cycles still to come were planned and struck
    assert min(planned) >= 199, planned[:5]
    assert leased == planned
