"""What runners report: one record per load iteration, as it happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha.messages._base import Message, message

__all__ = ["RunnerIteration", "RunnerStatus"]


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
