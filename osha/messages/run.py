"""Messages about the run as a whole: the ledger header, start and stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha.messages._base import Message, message

__all__ = ["LedgerHeader", "RunStarted", "RunStopped"]


@message("ledger.header")
@dataclass(frozen=True, slots=True)
class LedgerHeader(Message):
    """The first record of a ledger: enough to know what produced it and to replay it."""

    schema_version: int
    osha_version: str
    run_id: str
    host: str
    started_wall_s: float
    seed: int
    profile: dict[str, Any]
    profile_path: str = ""


@message("run.started")
@dataclass(frozen=True, slots=True)
class RunStarted(Message):
    """The supervisor is about to start its children."""

    run_id: str
    children: tuple[str, ...]


@message("run.stopped")
@dataclass(frozen=True, slots=True)
class RunStopped(Message):
    """The run ended. ``reason`` is ``duration``, ``interrupt``, ``signal`` or ``escalated``."""

    run_id: str
    reason: str
    exit_code: int
    error: str = ""
