"""Messages of long unattended runs: osha's own resources, raw-lane bookkeeping of the ledger,
retention, resume after a crash, and soak cycles.

Ledger bookkeeping (``ledger.*``) is written by the ledger writer itself (sender ``"ledger"``),
never by an actor; see :mod:`osha.ledger.retention` for the raw lane it describes.
"""

from __future__ import annotations

from dataclasses import dataclass

from osha.messages._base import Message, message

__all__ = [
    "DiskFloorReached",
    "LedgerResumed",
    "RawBatch",
    "RawRetained",
    "Resources",
    "SelfChaosKill",
    "SoakCycle",
]


@message("osha.resources")
@dataclass(frozen=True, slots=True)
class Resources(Message):
    """osha's own footprint at one instant: one record per sampled process.

    ``process`` is ``"main"`` or an actor id; ``cpu_s`` is user+system CPU time since the
    process started (a counter: rates are differences of two records).
    ``disk_free_bytes`` is the free space of the ledger's file system (main record only).
    """

    process: str
    pid: int
    rss_bytes: int
    cpu_s: float
    threads: int = 0
    disk_free_bytes: int | None = None


@message("osha.disk_floor")
@dataclass(frozen=True, slots=True)
class DiskFloorReached(Message):
    """Free space on the ledger's file system fell below the configured floor: osha asks for
    a clean stop of the run (written once, before the stop)."""

    path: str
    free_bytes: int
    floor_bytes: int


@message("osha.self_chaos")
@dataclass(frozen=True, slots=True)
class SelfChaosKill(Message):
    """Self-chaos (``--self-chaos-every-s``) is about to SIGKILL actor ``actor_id``. The
    crash and restart that follow are the supervisor's ``actor.crashed``/``actor.restarting``."""

    actor_id: str
    pid: int
    kill: int  # 1 for the first kill of the run


@message("ledger.raw")
@dataclass(frozen=True, slots=True)
class RawBatch(Message):
    """A pointer in the main lane: ``count`` raw records of ``source`` were written to raw
    segment ``segment`` at byte ``offset``, at this point of the record order."""

    source: str
    segment: int
    offset: int
    count: int


@message("ledger.retained")
@dataclass(frozen=True, slots=True)
class RawRetained(Message):
    """Raw segment ``segment`` (``records`` records, ``size_bytes`` bytes) is deleted by the
    retention policy right after this record is durable. ``rule`` is ``segments``, ``bytes``
    or ``age``."""

    segment: int
    records: int
    size_bytes: int
    rule: str
    first_wall_s: float = 0.0
    last_wall_s: float = 0.0


@message("ledger.resumed")
@dataclass(frozen=True, slots=True)
class LedgerResumed(Message):
    """The ledger was reopened after its writer died (``osha campaign resume``). The gap is
    from ``last_wall_s`` (the last record of the previous part) to this record's ``wall_s``."""

    previous_records: int
    previous_segment: int
    last_wall_s: float
    tear_bytes: int = 0
    reason: str = ""


@message("soak.cycle")
@dataclass(frozen=True, slots=True)
class SoakCycle(Message):
    """A soak cycle started (``phase="start"``) or ended (``phase="end"``).

    A start says how late it started (``late_s``: the chaos clock was held past its planned
    start, to judge or to wait for the previous cycle's overruns) and how many of the faults
    held back meanwhile were ``skipped`` (their disruptor stopped waiting for a grant). An end
    counts the ``overruns`` (faults still held at the cycle's end, within their revert
    deadline) and how long the soak waited for their reverts (``overrun_wait_s``)."""

    cycle: int
    phase: str
    planned_faults: int = 0
    ok: bool = True
    detail: str = ""
    late_s: float = 0.0
    skipped: int = 0
    overruns: int = 0
    overrun_wait_s: float = 0.0
