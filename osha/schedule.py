"""One schedule model for every disruptor, and the planned fault timeline it expands to.

A disruptor's profile entry holds a ``target`` (which nodes) and a ``schedule`` (when)::

    target = { group = "controller", pick = "random" }
    schedule = { start_s = 10, every_s = 60, times = 3, down_s = 20, cooldown_s = 5,
                 mode = "sequential" }

- ``pick``: ``"one"`` (the group's first host, in inventory order), ``"all"``, ``"random"``
  (one host per round, drawn from the group with the seed), ``"node:NAME"``, or a role
  (``"vip-holder"``, ``"not-vip-holder"``, ``"galera-writer"``: one host per round, the
  group's host that has the role when the fault is due; :mod:`osha.roles`), with the
  resolver's keys in ``role = { ... }``.
- Rounds: the first starts at ``start_s`` (seconds after the chaos start). The next one
  ``every_s`` later, or a seeded ``random = { min_s, max_s }`` later, or, with neither, as
  soon as the previous round and its cooldown are over. ``times`` rounds, or every round
  that starts before ``stop_s`` (with neither: one round).
- ``mode`` over a round's targets: ``"sequential"`` (one after the other, each held
  ``down_s`` then ``cooldown_s``), ``"parallel"`` (all at once) or ``"round-robin"`` (one
  target per round, cycling through them).

:func:`expand` is pure: the same config, hosts and seed give the same timeline, so a dry run
(``osha faults plan``) prints exactly what the run will do.

**Cycles** (a soak): a :class:`ChaosClock` repeats the timeline every ``cycle_s``. Cycle ``k``
draws its timeline with :func:`cycle_seed` (cycle 0 with the disruptor's own seed, so a
single run is unchanged) and numbers its faults from ``k * stride`` (:func:`in_cycle`), so
every fault of a soak has its own lease id, also across a resume. Each disruptor draws from
``random.Random(seed)`` with its own seed, derived from the campaign seed and its id
(:func:`child_seed`), as the supervisor gives it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from osha.errors import PluginError
from osha.inventory import Host
from osha.roles import ROLE_PREFIX, available_roles
from osha.schema import Command
from osha.supervisor import child_seed  # one formula, shared with the supervisor

__all__ = [
    "STRIDE",
    "ChaosClock",
    "Mode",
    "PlannedFault",
    "RandomInterval",
    "ScheduleConfig",
    "TargetConfig",
    "child_seed",
    "cycle_seed",
    "expand",
    "in_cycle",
    "resolve_targets",
]

_MAX_ROUNDS = 100_000  # a bound on any expansion: a typo like every_s = 0.001 fails loudly


class Mode(enum.StrEnum):
    """How a round strikes its targets."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    ROUND_ROBIN = "round-robin"


@dataclass(frozen=True, slots=True)
class RandomInterval:
    """``random = { min_s = 30, max_s = 90 }``: a seeded uniform gap between rounds."""

    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError(f"random needs 0 < min_s <= max_s, got {self.min_s}, {self.max_s}")


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """``schedule = { ... }``: when faults strike and how long each is held."""

    start_s: float = 0.0
    times: int | None = None
    every_s: float | None = None
    random: RandomInterval | None = None
    stop_s: float | None = None
    down_s: float = 10.0
    cooldown_s: float = 0.0
    mode: Mode = Mode.SEQUENTIAL

    def __post_init__(self) -> None:
        if self.start_s < 0 or self.down_s < 0 or self.cooldown_s < 0:
            raise ValueError("start_s, down_s and cooldown_s must be >= 0")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1, got {self.times}")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError(f"every_s must be > 0, got {self.every_s}")
        if self.every_s is not None and self.random is not None:
            raise ValueError("give every_s or random, not both")
        repeating = self.every_s is not None or self.random is not None
        if repeating and self.times is None and self.stop_s is None:
            raise ValueError("a repeating schedule needs times = N or stop_s = S to end")
        if self.stop_s is not None and self.stop_s <= self.start_s:
            raise ValueError(f"stop_s ({self.stop_s}) must be after start_s ({self.start_s})")


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """``target = { group = "controller", pick = "one" }``: hosts from the inventory."""

    group: str = "all"
    pick: str = "one"
    # a role's options: values are commands for some roles, so ${OSHA_*} expand (schema)
    role: dict[str, Command] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pick not in ("one", "all", "random") and not (
            self.pick.startswith("node:") and len(self.pick) > len("node:")
        ) and self.pick not in available_roles():
            roles = ", ".join(f'"{r}"' for r in sorted(available_roles()))
            raise ValueError(
                f'pick = {self.pick!r}: use "one", "all", "random", "node:NAME" or a role'
                f" ({roles or 'none installed'})"
            )
        if self.role and self.pick not in available_roles():
            raise ValueError(f"role = {{ ... }} is for a role pick, not pick = {self.pick!r}")

    @property
    def is_role(self) -> bool:
        return self.pick in available_roles()


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """One fault of the timeline: ``offset_s`` after the chaos start, on ``node``."""

    index: int
    round: int
    node: str
    offset_s: float
    down_s: float


#: Fault indices of one cycle: cycle k numbers its faults k * STRIDE + i (i < STRIDE).
STRIDE = 1000


@dataclass(frozen=True, slots=True)
class ChaosClock:
    """When each cycle's fault window starts. A single run: one cycle, ``cycle_s = 0``.

    ``first_cycle``: the cycle that starts at ``start_wall_s`` (0, or where a resumed soak
    goes on); cycles ``first_cycle .. first_cycle + cycles - 1`` run."""

    start_wall_s: float
    cycle_s: float = 0.0
    first_cycle: int = 0
    cycles: int = 1

    def __post_init__(self) -> None:
        if self.cycles < 1 or self.first_cycle < 0 or self.cycle_s < 0:
            raise ValueError("need cycles >= 1, first_cycle >= 0 and cycle_s >= 0")
        if self.cycles > 1 and self.cycle_s <= 0:
            raise ValueError("several cycles need cycle_s > 0")

    def numbers(self) -> range:
        return range(self.first_cycle, self.first_cycle + self.cycles)

    def window_wall_s(self, cycle: int) -> float:
        """The wall time at which ``cycle``'s fault window starts."""
        return self.start_wall_s + (cycle - self.first_cycle) * self.cycle_s


def cycle_seed(seed: int, cycle: int) -> int:
    """The seed of ``cycle``'s timeline: the disruptor's own for cycle 0."""
    return seed if cycle == 0 else child_seed(seed, f"cycle:{cycle}")


def in_cycle(plan: Sequence[PlannedFault], cycle: int) -> list[PlannedFault]:
    """``plan`` numbered for ``cycle`` (indices from ``cycle * STRIDE``). PluginError if one
    cycle plans more than STRIDE faults."""
    if len(plan) > STRIDE:
        raise PluginError(
            f"one cycle plans {len(plan)} faults, more than {STRIDE}",
            hint="lower times or raise every_s: a soak repeats the schedule every cycle",
        )
    return [
        PlannedFault(cycle * STRIDE + p.index, p.round, p.node, p.offset_s, p.down_s)
        for p in plan
    ]


def resolve_targets(target: TargetConfig, hosts: Sequence[Host]) -> list[str]:
    """The candidate nodes of ``target``, in inventory order. PluginError with a hint if none.

    For ``pick = "random"`` these are the hosts one is drawn from each round.
    """
    names = [h.name for h in hosts]
    members = [h.name for h in hosts if target.group in h.groups or target.group == "all"]
    if not members:
        groups = sorted({g for h in hosts for g in h.groups})
        raise PluginError(
            f"target group {target.group!r} has no hosts in the inventory",
            hint=f"groups in the inventory: {', '.join(groups) or 'none'}",
        )
    if target.pick.startswith("node:"):
        node = target.pick.removeprefix("node:")
        if node not in names:
            raise PluginError(
                f"pick = {target.pick!r}: node {node!r} is not in the inventory",
                hint=f"known nodes: {', '.join(names) or 'none'}",
            )
        if node not in members:
            raise PluginError(
                f"pick = {target.pick!r}: node {node!r} is not in group {target.group!r}",
                hint=f"{target.group} has: {', '.join(members)}",
            )
        return [node]
    return members[:1] if target.pick == "one" else members


def expand(
    schedule: ScheduleConfig, target: TargetConfig, candidates: Sequence[str], seed: int
) -> list[PlannedFault]:
    """The full timeline, in order of ``offset_s``. Pure and seeded. PluginError if rounds
    would overlap (a fault on a target still held) or the timeline is absurdly long."""
    if not candidates:
        raise PluginError("no target nodes to plan faults on", hint="check target.group")
    rng = random.Random(seed)
    step_s = schedule.down_s + schedule.cooldown_s
    one_per_round = (
        schedule.mode is Mode.ROUND_ROBIN or target.pick == "random" or target.is_role
    )
    width = 1 if one_per_round else len(candidates)
    round_s = step_s * width if schedule.mode is Mode.SEQUENTIAL else step_s
    _check_overlap(schedule, round_s)
    faults: list[PlannedFault] = []
    start_s = schedule.start_s
    repeating = schedule.every_s is not None or schedule.random is not None
    times = schedule.times
    if times is None and not repeating and schedule.stop_s is None:
        times = 1
    for number in range(_MAX_ROUNDS + 1):
        if times is not None and number >= times:
            break
        if schedule.stop_s is not None and start_s >= schedule.stop_s:
            break
        if number == _MAX_ROUNDS:
            raise PluginError(
                f"the schedule expands to more than {_MAX_ROUNDS} rounds",
                hint="raise every_s or random.min_s, or set times",
            )
        nodes = (
            [ROLE_PREFIX + target.pick]  # resolved when due (osha.roles)
            if target.is_role
            else _round_targets(schedule.mode, target.pick, candidates, number, rng)
        )
        for j, node in enumerate(nodes):
            offset_s = start_s + (j * step_s if schedule.mode is Mode.SEQUENTIAL else 0.0)
            faults.append(PlannedFault(len(faults), number, node, offset_s, schedule.down_s))
        if schedule.every_s is not None:
            start_s += schedule.every_s
        elif schedule.random is not None:
            start_s += rng.uniform(schedule.random.min_s, schedule.random.max_s)
        else:
            start_s += round_s
    return faults


def _round_targets(
    mode: Mode, pick: str, candidates: Sequence[str], number: int, rng: random.Random
) -> list[str]:
    if pick == "random":
        return [rng.choice(list(candidates))]
    if mode is Mode.ROUND_ROBIN:
        return [candidates[number % len(candidates)]]
    return list(candidates)


def _check_overlap(schedule: ScheduleConfig, round_s: float) -> None:
    gap_s = schedule.every_s if schedule.every_s is not None else None
    if schedule.random is not None:
        gap_s = schedule.random.min_s
    if gap_s is not None and gap_s < round_s:
        raise PluginError(
            f"rounds overlap: a round takes {round_s:g} s (down_s + cooldown_s per sequential "
            f"target) but rounds start every {gap_s:g} s",
            hint='raise every_s (or random.min_s), lower down_s, or use mode = "parallel"',
        )
