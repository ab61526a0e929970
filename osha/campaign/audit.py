"""The campaign's audits: a sweep of its ``[[audits]]`` before it touches anything (right
after the health gate) and one after its teardown (the actors stopped, Rally's cleanup done,
the load deleted), so that what the run left broken can be told from what was there before.

Both sweeps are recorded (``audit.*``, :mod:`osha.messages.audit`); the verdict judges them
from the ledger (``max_new_debris``), like everything else. An audit never changes the cloud
and never stops the campaign: one that fails is recorded as not complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from osha.audit import AuditEntry, AuditRun, Record, sweep
from osha.messages.audit import AuditWhen

__all__ = ["CampaignAudit"]


class CampaignAudit:
    """The two sweeps of one campaign; a no-op without ``[[audits]]``."""

    def __init__(
        self,
        entries: Sequence[AuditEntry],
        record: Record,
        note: Callable[[str], None],
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.entries = tuple(entries)
        self._record = record
        self._note = note
        self._stopped = stopped

    def before(self, *, resumed: bool = False) -> None:
        """The sweep before the load: what is already broken is pre-existing. Not again in a
        resumed run: its ledger has the sweep from before the run began, and one now would
        count what the run broke before osha died as pre-existing. A stop asked for meanwhile
        ends the wait for it (the audits not finished are recorded as not complete)."""
        if not resumed:
            self._sweep(AuditWhen.BEFORE, self._stopped)

    def after(self) -> None:
        """The sweep after the teardown: what is new was left by the run. An audit with
        ``cleanup = true`` then removes what osha itself made, recorded."""
        self._sweep(AuditWhen.AFTER)

    def _sweep(self, when: AuditWhen, stopped: Callable[[], bool] | None = None) -> list[AuditRun]:
        if not self.entries:
            return []
        self._note(f"audit {when}: {', '.join(e.id for e in self.entries)}")
        runs = sweep(self.entries, when, self._record, clean=when is AuditWhen.AFTER,
                     stopped=stopped)  # fmt: skip
        said = [f"{r.entry.id} {len(r.found)}" + ("" if r.ok else " (incomplete)") for r in runs]
        self._note(f"audit {when}: found {', '.join(said)}")
        return runs
