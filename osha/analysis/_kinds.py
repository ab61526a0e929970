"""The analysis's own closed vocabularies (the monitors' :class:`~osha.messages.State` and the
campaign's :class:`~osha.messages.Phase` come from :mod:`osha.messages`).

Each is a ``StrEnum``: a member equals, formats and serialises as its value, so the reports
print what they printed when these fields were plain strings.
"""

from __future__ import annotations

import enum

__all__ = ["FaultStatus", "RecoveryFrom"]


class FaultStatus(enum.StrEnum):
    """How a fault ended, as the ledger tells it."""

    REVERTED = "reverted"
    UNREVERTED = "unreverted"  # injected (or maybe injected) and never reverted
    REFUSED = "refused"  # the broker refused its lease
    PLANNED = "planned"  # planned, never injected (the run stopped first)
    FAILED = "failed"  # its inject failed before any lease was granted: nothing to revert
    HELD = "held"  # in flight within its revert deadline (judging a run still going)


class RecoveryFrom(enum.StrEnum):
    """What a target's time to recover is measured from."""

    REVERT = "revert"  # the fault's revert
    INJECT = "inject"  # the inject, for a self-healing fault (nothing to revert)
    NEVER = ""  # the target never recovered: no time to recover
