"""What runners report: one record per load iteration, as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha.messages._base import Message, message

__all__ = ["RunnerIteration", "RunnerStatus", "RunnerUnfinished"]


@message("runner.iteration")
@dataclass(frozen=True, slots=True)
class RunnerIteration(Message):
    """One iteration of a runner's workload (e.g. one Rally scenario iteration).

    ``started_wall_s`` is when the iteration began (Rally's own timestamp where it has one);
    ``duration_s`` its total duration; ``atomic`` the durations of its atomic actions in
    seconds, by name (``{"nova.boot_server": 3.2}``). A failed iteration has ``ok=False`` and
    the error's type and message (secrets redacted)."""

    runner: str  # the workload, e.g. "NovaServers.boot_and_delete_server"
    iteration: int
    started_wall_s: float
    duration_s: float
    ok: bool
    atomic: dict[str, Any]
    error_type: str = ""
    error: str = ""


@message("runner.status")
@dataclass(frozen=True, slots=True)
class RunnerStatus(Message):
    """A runner's workload changed state: ``started``, ``finished``, ``aborted`` or ``failed``."""

    runner: str
    status: str
    detail: str = ""


@message("runner.unfinished")
@dataclass(frozen=True, slots=True)
class RunnerUnfinished(Message):
    """An iteration that started and never finished: the workload was stopped while it ran
    (e.g. Rally killed when it did not stop within its abort timeout), so it has no duration
    and no outcome, only its start. Not a failure and not a success; an operator sees what
    the stop cut off.

    ``iteration`` is the workload's own number for it (Rally's ``ITER: N``), not a
    :class:`RunnerIteration`'s count; ``started_wall_s`` when it began (the workload's own
    timestamp); ``reason`` why it never finished."""

    runner: str  # the workload, e.g. "boot-and-delete.yaml"
    iteration: int
    started_wall_s: float
    reason: str
