"""The campaign's phases, health gate, load, recovery and verdict, as written to the ledger.

A campaign writes, in ledger order::

    campaign.phase     validate start/end, preflight start, campaign.finding ..., preflight end,
                       load (campaign.census before, campaign.load per resource), baseline,
                       chaos, recovery (campaign.recovery), teardown (campaign.load deleted,
                       campaign.census after), verdict (campaign.verdict)
    campaign.stop      someone asked the campaign to stop (Ctrl-C, SIGTERM, `campaign stop`)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from osha.messages._base import Message, message

__all__ = [
    "CampaignCensus",
    "CampaignFinding",
    "CampaignLoad",
    "CampaignRecovery",
    "CampaignStop",
    "CampaignVerdict",
    "Phase",
    "PhaseChange",
]


class Phase(enum.StrEnum):
    """A campaign's phases, in order. A member equals its value (``Phase.CHAOS == "chaos"``),
    and decoding gives the member back."""

    VALIDATE = "validate"
    PREFLIGHT = "preflight"
    LOAD = "load"
    BASELINE = "baseline"
    CHAOS = "chaos"
    RECOVERY = "recovery"
    TEARDOWN = "teardown"
    VERDICT = "verdict"


@message("campaign.phase")
@dataclass(frozen=True, slots=True)
class PhaseChange(Message):
    """A phase started or ended. ``ok=False`` on an ending phase that failed or was aborted."""

    phase: Phase
    event: Literal["start", "end"]
    ok: bool = True
    detail: str = ""


@message("campaign.verdict")
@dataclass(frozen=True, slots=True)
class CampaignVerdict(Message):
    """The SLO verdict of the campaign: ``exit_code`` 0 pass, 1 an SLO violated, 3 aborted.
    ``slos`` maps each SLO name to ``{"threshold": ..., "value": ..., "passed": bool}``."""

    passed: bool
    exit_code: int
    slos: dict[str, Any]
    summary: str = ""


@message("campaign.finding")
@dataclass(frozen=True, slots=True)
class CampaignFinding(Message):
    """One result of the health gate (preflight). ``source`` is the actor id that checked
    (or ``ssh``, ``load``, ``rally``); ``ok=False`` blocks the campaign unless forced."""

    source: str
    target: str
    ok: bool
    message: str
    hint: str = ""


@message("campaign.load")
@dataclass(frozen=True, slots=True)
class CampaignLoad(Message):
    """One resource of the initial load: ``created``, ``failed`` (to create), ``deleted`` or
    ``delete_failed``. ``resource_id`` is the cloud's id (empty when creation failed)."""

    load: str  # the [[load]] entry's id
    kind: str  # "server"
    action: Literal["created", "failed", "deleted", "delete_failed"]
    name: str
    resource_id: str = ""
    elapsed_s: float = 0.0
    detail: str = ""


@message("campaign.census")
@dataclass(frozen=True, slots=True)
class CampaignCensus(Message):
    """How many resources the cloud had ``before`` the load and ``after`` the teardown
    (``counts``: servers, networks, volumes, ports), and which resources osha created that are
    still there (``leftovers``: ``kind:name:id``; empty after a clean teardown)."""

    when: Literal["before", "after"]
    counts: dict[str, Any]
    leftovers: tuple[str, ...] = ()


@message("campaign.recovery")
@dataclass(frozen=True, slots=True)
class CampaignRecovery(Message):
    """The end of the recovery wait: every watched target seen up again (``recovered``) after
    ``recovery_s`` (from the recovery phase's start), or the timeout with the targets
    ``still_down`` (bad: down or unreachable) and ``unseen`` (``unknown``: the monitor could
    not see them; see :data:`osha.messages.BAD_STATES`)."""

    recovered: bool
    recovery_s: float
    still_down: tuple[str, ...] = ()
    active_leases: int = 0
    unseen: tuple[str, ...] = ()


@message("campaign.stop")
@dataclass(frozen=True, slots=True)
class CampaignStop(Message):
    """A graceful stop was asked for: ``source`` is ``SIGINT``, ``SIGTERM``, ``control``
    (``osha campaign stop``) or ``supervisor`` (it escalated)."""

    source: str
    reason: str = ""
