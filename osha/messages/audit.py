"""The audit of the cloud's state, as written to the ledger.

An audit (a plugin of the entry-point group ``osha.audits``, see :mod:`osha.audit`) looks
at the cloud read-only and reports what it finds left broken: a server in ERROR, a Rally
project left behind, a compute service disabled. A campaign audits twice, before it touches
anything (``when = before``) and after the teardown (``after``); ``osha audit`` audits on
demand (``on-demand``). Each audit writes, in ledger order::

    audit.start      the audit began (its id, plugin and time bound)
    audit.finding    one item it found, with its evidence (zero or more)
    audit.cleanup    one item osha itself made that a ``cleanup = true`` audit removed (or
                     failed to), after the campaign only
    audit.end        it finished: how many findings, whether it was cut short and why
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from osha.messages._base import Message, message

__all__ = ["AuditCleanup", "AuditEnd", "AuditFinding", "AuditStart", "AuditWhen", "Debris"]


class AuditWhen(enum.StrEnum):
    """When an audit ran: before the campaign touched anything, after its teardown, or on
    demand (``osha audit``)."""

    BEFORE = "before"
    AFTER = "after"
    ON_DEMAND = "on-demand"


@dataclass(frozen=True, slots=True, kw_only=True)
class Debris:
    """One item an audit found left broken: what an audit plugin yields, and the record
    nested in ``audit.finding``.

    ``kind`` is what it is (``server``, ``project``, ``nova-service``, ...), ``resource_id``
    the cloud's id (with ``kind`` and the audit's id, the item's identity from one sweep to
    the next), ``state`` what is wrong (``ERROR``, ``stuck:task:deleting``,
    ``forced-down``), ``evidence`` a line a human can check. ``since_s`` is the wall time the
    cloud says the item entered that state (e.g. a server's ``updated``), None if the cloud
    does not say: it ties the item to the fault whose window it falls in. ``osha_made``: osha
    created it (a load server), the only kind of item a cleanup may ever remove. Every field
    is given (a nested record has no defaults)."""

    kind: str
    resource_id: str
    state: str
    evidence: str
    since_s: float | None
    name: str
    osha_made: bool


@message("audit.start")
@dataclass(frozen=True, slots=True)
class AuditStart(Message):
    """An audit began. ``audit`` is its profile id (the plugin's name by default)."""

    audit: str
    plugin: str
    when: AuditWhen
    timeout_s: float


@message("audit.finding")
@dataclass(frozen=True, slots=True)
class AuditFinding(Message):
    """One item an audit found left broken (:class:`Debris`, sent as its fields inline)."""

    audit: str
    when: AuditWhen
    item: Debris


@message("audit.end")
@dataclass(frozen=True, slots=True)
class AuditEnd(Message):
    """An audit finished. ``ok=False``: it could not look (``error`` says why), so its
    findings are incomplete; ``truncated``: it stopped at its time or item bound;
    ``items_read``: how many items (servers, services, projects, ...) it read."""

    audit: str
    when: AuditWhen
    ok: bool
    findings: int
    elapsed_s: float
    truncated: bool = False
    error: str = ""
    items_read: int = 0


@message("audit.cleanup")
@dataclass(frozen=True, slots=True)
class AuditCleanup(Message):
    """A ``cleanup = true`` audit removed (``ok``) or failed to remove an item osha itself
    made (``osha_made``), found after the campaign. ``detail`` says what was done or why it
    failed."""

    audit: str
    kind: str
    resource_id: str
    ok: bool
    detail: str
