"""Typed, frozen messages with dotted tags: everything actors say to each other and to the ledger.

Every message carries the same envelope:

- ``sender``: who said it (``"supervisor"``, or a child id such as ``"tick-1"``);
- ``seq``: the sender's sequence number, from 1 for each incarnation of the sender;
- ``mono_s``: the sender host's monotonic clock, for durations;
- ``wall_s``: the wall clock, for humans and for aligning hosts.

A message class is declared once, with ``@message("dotted.tag")``, and the codec in
:mod:`osha.wire` maps the tag to the class. Fields may only use the types the codec can check:
``str``, ``int``, ``float``, ``bool``, ``bytes``, ``None`` unions, ``Literal[...]`` of strings,
``enum.StrEnum`` subclasses (sent as their value, decoded back to the member, e.g.
:class:`State`, :class:`Phase`), ``tuple[X, ...]``, ``dict[str, Any]`` (plain data only) and
one level of nested record (a frozen, slotted dataclass of those, e.g. :class:`Lease`), sent
as its fields inline.

Emitting is type-checked: ``emit``/``stamp`` take the class as :data:`Build` (a ``ParamSpec``
over its constructor), so mypy checks every field's name and type.

Plugins build messages through their context (``ctx.emit(Sample, target=..., ...)``), which
fills in the envelope; core code stamps one with :func:`stamp` (``stamp(cls, sender, seq,
**fields)``); :func:`envelope` is the one place the clocks are read for one. Positional
construction follows the field order; prefer keywords.
"""

from __future__ import annotations

from osha.messages._base import (
    Build,
    Message,
    MessageSpec,
    envelope,
    message,
    registry,
    spec_of,
    stamp,
)
from osha.messages.actor import (
    ActorBoot,
    ActorCrashed,
    ActorFailed,
    ActorHeartbeat,
    ActorHello,
    ActorReady,
    ActorRestarting,
    ActorStarted,
    ActorStop,
    ActorStopped,
    SupervisorEscalated,
)
from osha.messages.audit import (
    AuditCleanup,
    AuditEnd,
    AuditFinding,
    AuditStart,
    AuditWhen,
)
from osha.messages.campaign import CampaignVerdict, Phase, PhaseChange
from osha.messages.fault import (
    FAULT_RECORDS,
    FaultAck,
    FaultDeadmanArmed,
    FaultDeadmanCollected,
    FaultDeadmanRenewFailed,
    FaultGrant,
    FaultInjected,
    FaultInjectFailed,
    FaultLease,
    FaultPlanned,
    FaultRefused,
    FaultRelease,
    FaultReleased,
    FaultRequest,
    FaultRevertAttempted,
    FaultReverted,
    FaultRevertFailed,
    FaultSync,
    FaultSynced,
    Lease,
)
from osha.messages.monitor import (
    BAD_STATES,
    RAW_TAGS,
    HostBoot,
    Metric,
    Sample,
    State,
    StateChange,
    VipMoved,
    is_bad,
    is_blind,
)
from osha.messages.run import LedgerHeader, RunStarted, RunStopped
from osha.messages.runner import RunnerIteration, RunnerStatus, RunnerUnfinished
from osha.messages.soak import (
    DiskFloorReached,
    LedgerResumed,
    RawBatch,
    RawRetained,
    Resources,
    SelfChaosKill,
    SoakCycle,
)

__all__ = [
    "BAD_STATES",
    "FAULT_RECORDS",
    "RAW_TAGS",
    "ActorBoot",
    "ActorCrashed",
    "ActorFailed",
    "ActorHeartbeat",
    "ActorHello",
    "ActorReady",
    "ActorRestarting",
    "ActorStarted",
    "ActorStop",
    "ActorStopped",
    "AuditCleanup",
    "AuditEnd",
    "AuditFinding",
    "AuditStart",
    "AuditWhen",
    "Build",
    "CampaignVerdict",
    "DiskFloorReached",
    "FaultAck",
    "FaultDeadmanArmed",
    "FaultDeadmanCollected",
    "FaultDeadmanRenewFailed",
    "FaultGrant",
    "FaultInjectFailed",
    "FaultInjected",
    "FaultLease",
    "FaultPlanned",
    "FaultRefused",
    "FaultRelease",
    "FaultReleased",
    "FaultRequest",
    "FaultRevertAttempted",
    "FaultRevertFailed",
    "FaultReverted",
    "FaultSync",
    "FaultSynced",
    "HostBoot",
    "Lease",
    "LedgerHeader",
    "LedgerResumed",
    "Message",
    "MessageSpec",
    "Metric",
    "Phase",
    "PhaseChange",
    "RawBatch",
    "RawRetained",
    "Resources",
    "RunStarted",
    "RunStopped",
    "RunnerIteration",
    "RunnerStatus",
    "RunnerUnfinished",
    "Sample",
    "SelfChaosKill",
    "SoakCycle",
    "State",
    "StateChange",
    "SupervisorEscalated",
    "VipMoved",
    "envelope",
    "is_bad",
    "is_blind",
    "message",
    "registry",
    "spec_of",
    "stamp",
]
