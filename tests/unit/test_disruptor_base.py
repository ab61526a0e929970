"""FaultDisruptor's life cycle in-process, against a broker, with a local file as the target.

The fault is a marker file per node ("down" while it exists): the unit tier has no nodes. What
is under test is the order lease → inject → hold → revert → release, the records, stopping in
the middle of a hold, a failed inject (never retried, still reverted), and refusals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from osha.faults import FaultBroker, Lease, RetryPolicy
from osha.faults.disruptor import FaultConfig, FaultDisruptor
from osha.messages import (
    FaultInjected,
    FaultInjectFailed,
    FaultLease,
    FaultPlanned,
    FaultRefused,
    FaultReleased,
    FaultReverted,
)
from osha.schedule import ChaosClock, Mode, ScheduleConfig, TargetConfig, cycle_seed, in_cycle
from osha.schema import FilePath
from osha.testing import wait_for
from tests.unit.test_fault_support import BrokerContext, SyncSink

Env = tuple[FaultBroker, SyncSink, dict[str, BrokerContext]]

INVENTORY = """[controller]
ctl-1 ansible_host=10.0.0.11
ctl-2 ansible_host=10.0.0.12
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileConfig(FaultConfig):
    markers: str = ""
    fail_inject: bool = False


class FileDisruptor(FaultDisruptor[FileConfig]):
    """Test disruptor: a fault is a marker file."""

    config_type = FileConfig
    plugin_name = "file"

    def action(self) -> str:
        return "mark"

    def inject(self, lease: Lease) -> str:
        if self.config.fail_inject:
            raise OSError("cannot write the marker")
        (Path(self.config.markers) / lease.node).touch()
        return "marked"

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        (Path(config.markers) / lease.node).unlink(missing_ok=True)
        return "unmarked"


def config(tmp_path: Path, **schedule: Any) -> FileConfig:
    inv = tmp_path / "inventory.ini"
    inv.write_text(INVENTORY)
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    fail = schedule.pop("fail_inject", False)
    pick = schedule.pop("pick", "all")
    return FileConfig(
        inventory=FilePath(str(inv)), markers=str(markers), fail_inject=fail,
        target=TargetConfig(group="controller", pick=pick), schedule=ScheduleConfig(**schedule),
    )  # fmt: skip


@pytest.fixture
def broker() -> Iterator[Env]:
    sink = SyncSink()
    contexts: dict[str, BrokerContext] = {}
    b = FaultBroker(sink, max_down={"controller": 1}, revert=lambda lease: "n/a",
                    policy=RetryPolicy(0.01, 0.05, 0.1))  # fmt: skip
    b.attach(lambda child, msg: contexts[child].deliver(msg))
    b.start()
    yield b, sink, contexts
    b.close(timeout_s=5)


class Started:
    """The plugin's run() in a thread; ``join`` waits for its schedule, then stops it."""

    def __init__(self, plugin: FileDisruptor) -> None:
        self.plugin = plugin
        plugin.setup()
        self.thread = threading.Thread(target=plugin.run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        assert self.plugin.schedule_done.wait(timeout), "the schedule did not finish"
        self.plugin.ctx.stopping.set()
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive()


def start(plugin: FileDisruptor) -> Started:
    return Started(plugin)


def test_sequential_faults_lease_inject_hold_revert_release(tmp_path: Path, broker: Env) -> None:
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(config(tmp_path, down_s=0.2, cooldown_s=0.05), ctx)
    start(plugin).join(timeout=10)
    assert not list((tmp_path / "markers").iterdir())
    assert [p.node for p in ctx.of(FaultPlanned)] == ["ctl-1", "ctl-2"]
    injected = ctx.of(FaultInjected)
    assert [m.node for m in injected] == ["ctl-1", "ctl-2"]
    assert all(m.actual_wall_s >= m.planned_wall_s - 0.01 for m in injected)
    assert [m.lease_id for m in ctx.of(FaultReverted)] == ["d1/0", "d1/1"]
    assert [m.lease.lease_id for m in sink.of(FaultLease)] == ["d1/0", "d1/1"]
    assert [m.by for m in sink.of(FaultReleased)] == ["holder", "holder"]
    assert b.active() == []


def test_a_sequential_round_without_cooldown_strikes_every_target_one_after_the_other(
    tmp_path: Path, broker: Env
) -> None:
    """``cooldown_s = 0`` (the default): the plan starts ctl-2 the moment ctl-1's hold ends,
    while ctl-1 still reverts. Started on the plan's time regardless, max_down = 1 refused
    ctl-2 every time (and a sequential round without a guard put two nodes down at once); it
    waits for ctl-1's release instead, late by the revert."""
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    start(FileDisruptor(config(tmp_path, down_s=0.1, cooldown_s=0.0), ctx)).join(timeout=10)
    assert sink.of(FaultRefused) == []
    injected = ctx.of(FaultInjected)
    assert [m.node for m in injected] == ["ctl-1", "ctl-2"]
    assert [m.lease.lease_id for m in sink.of(FaultLease)] == ["d1/0", "d1/1"]
    released, second = sink.of(FaultReleased)[0], sink.of(FaultLease)[1]
    assert released.lease_id == "d1/0"
    assert sink.messages().index(released) < sink.messages().index(second)


def test_stop_during_the_hold_reverts_at_once(tmp_path: Path, broker: Env) -> None:
    b, _, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(config(tmp_path, down_s=60, pick="one"), ctx)
    started = start(plugin)
    marker = tmp_path / "markers" / "ctl-1"
    wait_for(marker.exists, timeout_s=5, what="the fault")
    ctx.stopping.set()
    started.join(timeout=5)
    plugin.teardown()
    assert not (tmp_path / "markers" / "ctl-1").exists()
    assert [m.by for m in ctx.of(FaultReverted)] == ["holder"]
    wait_for(lambda: not b.active(), timeout_s=5, what="the lease released")


def test_failed_inject_is_recorded_never_retried_and_still_reverted(
    tmp_path: Path, broker: Env
) -> None:
    b, _, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(config(tmp_path, down_s=0.1, pick="one", fail_inject=True), ctx)
    start(plugin).join(timeout=10)
    [failed] = ctx.of(FaultInjectFailed)
    assert "cannot write the marker" in failed.error
    assert ctx.of(FaultInjected) == []
    assert len(ctx.of(FaultReverted)) == 1  # the half-done fault is undone anyway


def test_guard_refuses_the_second_parallel_fault(tmp_path: Path, broker: Env) -> None:
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(config(tmp_path, down_s=0.3, mode=Mode.PARALLEL), ctx)
    start(plugin).join(timeout=10)
    assert len(ctx.of(FaultInjected)) == 1
    [refused] = sink.of(FaultRefused)
    assert refused.limit == "controller"


def test_a_restarted_incarnation_skips_faults_already_attempted(
    tmp_path: Path, broker: Env
) -> None:
    b, sink, contexts = broker
    first = contexts["d1"] = BrokerContext(b, "d1")
    start(FileDisruptor(config(tmp_path, down_s=0.05, pick="one"), first)).join(timeout=10)
    second = contexts["d1"] = BrokerContext(b, "d1")
    start(FileDisruptor(config(tmp_path, down_s=0.05, pick="one"), second)).join(timeout=10)
    assert second.of(FaultInjected) == []
    assert len(sink.of(FaultLease)) == 1


def test_missing_inventory_and_check_findings(tmp_path: Path, broker: Env) -> None:
    b, _, _ = broker
    plugin = FileDisruptor(FileConfig(), BrokerContext(b, "d1"))
    [finding] = plugin.check()
    assert not finding.ok
    assert "no inventory" in finding.message
    good = FileDisruptor(config(tmp_path, pick="node:ctl-2"), BrokerContext(b, "d1"))
    assert [(f.target, f.ok) for f in good.check()] == [("mark@ctl-2", True)]
    missing = FileDisruptor(config(tmp_path, pick="node:ctl-9"), BrokerContext(b, "d1"))
    [finding] = missing.check()
    assert "not in the inventory" in finding.message
    assert "ctl-1" in finding.hint


def test_a_soak_repeats_the_timeline_every_cycle_with_its_own_indices(tmp_path: Path) -> None:
    sink = SyncSink()
    contexts: dict[str, BrokerContext] = {}
    b = FaultBroker(sink, max_down={"controller": 2}, revert=lambda lease: "n/a",
                    policy=RetryPolicy(0.01, 0.05, 0.1))  # fmt: skip
    b.attach(lambda child, msg: contexts[child].deliver(msg))
    # The disruptor skips a cycle already over when its loop reaches it (a restart mid-soak),
    # so the chaos starts ahead of the plugin's setup, thread start and fault.sync round trip
    # (6 ms median, 24 ms max on the loaded 2-core machine): with 1 s, cycle 2 is never over
    # before it is planned. Starting now left 0.3 s, one descheduling from a missing cycle.
    start_margin_s = 1.0
    b.start(ChaosClock(time.time() + start_margin_s, cycle_s=0.3, first_cycle=2, cycles=3))
    try:
        ctx = contexts["d1"] = BrokerContext(b, "d1")
        plugin = FileDisruptor(config(tmp_path, down_s=0.05, pick="random"), ctx)
        start(plugin).join(timeout=10)
    finally:
        b.close(timeout_s=5)
    # cycles 2, 3 and 4 (a resumed soak goes on from cycle 2), one fault each
    assert [m.lease.lease_id for m in sink.of(FaultLease)] == ["d1/2000", "d1/3000", "d1/4000"]
    planned = ctx.of(FaultPlanned)
    assert [p.index for p in planned] == [2000, 3000, 4000]
    windows = [p.chaos_start_wall_s for p in planned]
    assert windows[1] - windows[0] == pytest.approx(0.3)
    assert windows[2] - windows[1] == pytest.approx(0.3)
    # each cycle draws its own node, from its own seed: the same for the same cycle
    expected = [in_cycle(FileDisruptor.timeline(plugin.config, cycle_seed(ctx.seed, k)), k)[0].node
                for k in (2, 3, 4)]  # fmt: skip
    assert [p.node for p in planned] == expected
    assert len(ctx.of(FaultReverted)) == 3
    assert b.active() == []
