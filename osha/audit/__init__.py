"""The audit: what the faults left broken in the cloud.

An **audit plugin** (entry-point group ``osha.audits``, :class:`Audit`) looks at the cloud
read-only and returns what it finds broken (:class:`Debris`: a server in ERROR, a Rally
project left behind, a compute service forced down). A campaign with ``[[audits]]`` sweeps
them before it touches anything and again after its teardown (:func:`sweep`); each finding
is an ``audit.finding`` ledger record (:mod:`osha.messages.audit`). The comparison
(:func:`compare`) tells what is **new** from what was **pre-existing**, and ties each new
item to the fault whose window it appeared in; the SLO ``max_new_debris`` judges the count
per audit. ``osha audit PROFILE|CLOUD`` runs one sweep on demand. The audits of a sweep may
share a reading (:class:`Share`: one server listing for three audits), never across sweeps.
"""

from __future__ import annotations

from osha.audit._compare import Compared, FaultWindow, Judged, Origin, attribute, compare
from osha.audit._plugin import Audit, AuditConfig, Budget
from osha.audit._plugins import (
    AUDIT_GROUP,
    AuditEntry,
    audit_entries,
    available_audits,
    load_audit,
)
from osha.audit._readonly import READ_METHODS, AuditWriteRefused, Calls, guard
from osha.audit._share import Seat, Share
from osha.audit._sweep import HARD_MARGIN_S, AuditRun, Record, sweep
from osha.audit._tally import ATTRIBUTION_GRACE_S, AuditOutcome, AuditTally
from osha.messages.audit import Debris

__all__ = [
    "ATTRIBUTION_GRACE_S",
    "AUDIT_GROUP",
    "HARD_MARGIN_S",
    "READ_METHODS",
    "Audit",
    "AuditConfig",
    "AuditEntry",
    "AuditOutcome",
    "AuditRun",
    "AuditTally",
    "AuditWriteRefused",
    "Budget",
    "Calls",
    "Compared",
    "Debris",
    "FaultWindow",
    "Judged",
    "Origin",
    "Record",
    "Seat",
    "Share",
    "attribute",
    "audit_entries",
    "available_audits",
    "compare",
    "guard",
    "load_audit",
    "sweep",
]
