"""The audits of a recorded run, gathered from its ledger records and judged: for each audit
id, the sweep before the campaign, the sweep after it, and their comparison
(:mod:`osha.audit._compare`). Memory is bounded by the number of findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from osha.audit._compare import Compared, FaultWindow, compare
from osha.messages import Message
from osha.messages.audit import AuditCleanup, AuditEnd, AuditFinding, AuditStart, AuditWhen

__all__ = ["ATTRIBUTION_GRACE_S", "AuditOutcome", "AuditTally"]

#: how long after a fault's revert an item entering a broken state is still tied to it: a
#: boot that was in flight when a conductor came back finishes (or fails) within a few
#: scheduler periods, and the cloud's clock may be a few seconds off osha's
ATTRIBUTION_GRACE_S = 120.0


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    """One audit of a run. ``before``/``after``: how its sweep ended (None: it did not run;
    otherwise the ``audit.end`` record, absent if the run died during the sweep: then the
    sweep reads as not complete). ``compared`` is None without a sweep after."""

    audit: str
    plugin: str
    before: AuditEnd | None
    after: AuditEnd | None
    compared: Compared | None
    ran_before: bool
    ran_after: bool
    cleaned: tuple[AuditCleanup, ...] = ()  # cleanup = true: what osha made, removed or not

    @property
    def new_count(self) -> int | None:
        """How many items are new (or of unknown origin); None if it was not audited after,
        or that sweep failed or was cut short by a bound (its count is a floor, not a
        figure: ``max_new_debris`` cannot pass on it)."""
        if self.compared is None or not _complete(self.after):
            return None
        return len(self.compared.new)


def _complete(end: AuditEnd | None) -> bool:
    return end is not None and end.ok and not end.truncated


@dataclass(slots=True)
class AuditTally:
    """Feed it every ``audit.*`` record of a ledger, in order; :meth:`outcomes` judges."""

    plugins: dict[str, str] = field(default_factory=dict)
    started: set[tuple[str, AuditWhen]] = field(default_factory=set)
    found: dict[tuple[str, AuditWhen], list[AuditFinding]] = field(default_factory=dict)
    ended: dict[tuple[str, AuditWhen], AuditEnd] = field(default_factory=dict)
    cleaned: dict[str, list[AuditCleanup]] = field(default_factory=dict)

    def feed(self, msg: Message) -> None:
        if isinstance(msg, AuditStart):
            self.plugins.setdefault(msg.audit, msg.plugin)
            self.started.add((msg.audit, msg.when))
            self.found[msg.audit, msg.when] = []  # a second sweep (a resumed run) replaces
            self.ended.pop((msg.audit, msg.when), None)
        elif isinstance(msg, AuditFinding):
            self.found.setdefault((msg.audit, msg.when), []).append(msg)
        elif isinstance(msg, AuditEnd):
            self.ended[msg.audit, msg.when] = msg
        elif isinstance(msg, AuditCleanup):
            self.cleaned.setdefault(msg.audit, []).append(msg)

    def outcomes(
        self, windows: Sequence[FaultWindow] = (), grace_s: float = ATTRIBUTION_GRACE_S
    ) -> tuple[AuditOutcome, ...]:
        """Every audit, by id, judged: after against before, new items tied to faults."""
        out = []
        for audit in sorted(self.plugins):
            b, a = (audit, AuditWhen.BEFORE), (audit, AuditWhen.AFTER)
            before_end, after_end = self.ended.get(b), self.ended.get(a)
            compared = None
            if a in self.started:
                prior = self.found.get(b, []) if _complete(before_end) else None
                compared = compare(prior, self.found.get(a, []), windows=windows,
                                   grace_s=grace_s)  # fmt: skip
            out.append(AuditOutcome(audit, self.plugins[audit], before_end, after_end,
                                    compared, b in self.started, a in self.started,
                                    tuple(self.cleaned.get(audit, ()))))  # fmt: skip
        return tuple(out)
