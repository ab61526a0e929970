"""The schedule model: expansion per mode, seeded determinism, targeting, validation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from osha.errors import PluginError
from osha.inventory import Host
from osha.schedule import (
    Mode,
    PlannedFault,
    RandomInterval,
    ScheduleConfig,
    TargetConfig,
    child_seed,
    expand,
    resolve_targets,
)
from osha.schema import build

HOSTS = [
    Host("ctl-1", "10.0.0.11", groups=("all", "controller")),
    Host("ctl-2", "10.0.0.12", groups=("all", "controller")),
    Host("ctl-3", "10.0.0.13", groups=("all", "controller")),
    Host("cmp-1", "10.0.0.21", groups=("all", "compute")),
]
CTL = ["ctl-1", "ctl-2", "ctl-3"]


def offsets(faults: list[PlannedFault]) -> list[tuple[float, str]]:
    return [(round(f.offset_s, 6), f.node) for f in faults]


def test_single_fault_by_default() -> None:
    faults = expand(ScheduleConfig(start_s=5, down_s=10), TargetConfig(), ["ctl-1"], seed=1)
    assert offsets(faults) == [(5.0, "ctl-1")]
    assert faults[0].down_s == 10


def test_sequential_spaces_targets_by_down_and_cooldown() -> None:
    sched = ScheduleConfig(start_s=2, times=2, down_s=10, cooldown_s=5)
    faults = expand(sched, TargetConfig(group="controller", pick="all"), CTL, seed=0)
    assert offsets(faults) == [
        (2.0, "ctl-1"), (17.0, "ctl-2"), (32.0, "ctl-3"),
        (47.0, "ctl-1"), (62.0, "ctl-2"), (77.0, "ctl-3"),
    ]  # fmt: skip
    assert [f.index for f in faults] == list(range(6))
    assert [f.round for f in faults] == [0, 0, 0, 1, 1, 1]


def test_parallel_strikes_all_targets_at_once_every_s() -> None:
    sched = ScheduleConfig(every_s=30, times=2, down_s=10, mode=Mode.PARALLEL)
    faults = expand(sched, TargetConfig(pick="all"), CTL, seed=0)
    assert offsets(faults) == [(0.0, n) for n in CTL] + [(30.0, n) for n in CTL]


def test_round_robin_cycles_one_target_per_round() -> None:
    sched = ScheduleConfig(every_s=20, stop_s=100, down_s=5, mode=Mode.ROUND_ROBIN)
    faults = expand(sched, TargetConfig(pick="all"), CTL, seed=0)
    assert offsets(faults) == [
        (0.0, "ctl-1"), (20.0, "ctl-2"), (40.0, "ctl-3"), (60.0, "ctl-1"), (80.0, "ctl-2"),
    ]  # fmt: skip


def test_seeded_random_is_reproducible_and_seed_dependent() -> None:
    sched = ScheduleConfig(random=RandomInterval(10, 60), times=8, down_s=5)
    target = TargetConfig(group="controller", pick="random")
    a = expand(sched, target, CTL, seed=42)
    b = expand(sched, target, CTL, seed=42)
    c = expand(sched, target, CTL, seed=43)
    assert a == b
    assert offsets(a) != offsets(c)
    gaps = [y.offset_s - x.offset_s for x, y in itertools.pairwise(a)]
    assert all(10 <= g <= 60 for g in gaps)
    assert {f.node for f in a} <= set(CTL)


def test_child_seed_is_stable_and_per_actor() -> None:
    assert child_seed(7, "kill-1") == child_seed(7, "kill-1")
    assert child_seed(7, "kill-1") != child_seed(7, "kill-2")


def test_overlapping_rounds_are_refused() -> None:
    sched = ScheduleConfig(every_s=15, times=3, down_s=10)
    with pytest.raises(PluginError, match="rounds overlap"):
        expand(sched, TargetConfig(pick="all"), CTL, seed=0)


def test_runaway_expansion_is_bounded() -> None:
    sched = ScheduleConfig(every_s=0.001, stop_s=1e9, down_s=0)
    with pytest.raises(PluginError, match="more than"):
        expand(sched, TargetConfig(), ["ctl-1"], seed=0)


@pytest.mark.parametrize(
    ("pick", "expected"),
    [("one", ["ctl-1"]), ("all", CTL), ("random", CTL), ("node:ctl-2", ["ctl-2"])],
)
def test_resolve_targets(pick: str, expected: list[str]) -> None:
    assert resolve_targets(TargetConfig(group="controller", pick=pick), HOSTS) == expected


def test_node_missing_from_inventory_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match="'ctl-9' is not in the inventory") as info:
        resolve_targets(TargetConfig(group="controller", pick="node:ctl-9"), HOSTS)
    assert "ctl-1" in info.value.hint


def test_node_outside_the_group_and_empty_group() -> None:
    with pytest.raises(PluginError, match="not in group"):
        resolve_targets(TargetConfig(group="controller", pick="node:cmp-1"), HOSTS)
    with pytest.raises(PluginError, match="no hosts") as info:
        resolve_targets(TargetConfig(group="storage"), HOSTS)
    assert "controller" in info.value.hint


def test_a_node_pick_in_a_group_the_inventory_lacks_lists_its_groups() -> None:
    """A kolla-style service group (``nova-scheduler``) missing from an older inventory: the
    error names the group and lists the inventory's groups, not an empty member list."""
    with pytest.raises(PluginError, match="'nova-scheduler' has no hosts") as info:
        resolve_targets(TargetConfig(group="nova-scheduler", pick="node:ctl-1"), HOSTS)
    assert info.value.hint == "groups in the inventory: all, compute, controller"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"every_s": 10, "down_s": 1}, "needs times = N or stop_s"),
        ({"every_s": 10, "random": {"min_s": 1, "max_s": 2}, "times": 2}, "not both"),
        ({"random": {"min_s": 5, "max_s": 1}, "times": 2}, "min_s <= max_s"),
        ({"times": 0}, "times must be >= 1"),
        ({"mode": "serial"}, "is not one of"),
    ],
)
def test_bad_schedules_give_clear_problems(table: dict[str, Any], problem: str) -> None:
    value, problems = build(ScheduleConfig, table, file="p.toml", key="schedule")
    assert value is None
    assert any(problem in p.problem for p in problems), problems


def test_bad_pick_is_a_problem() -> None:
    value, problems = build(TargetConfig, {"pick": "some"}, file="p.toml", key="target")
    assert value is None
    assert "node:NAME" in problems[0].problem
