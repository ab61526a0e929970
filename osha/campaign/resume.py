"""Where a run whose osha process died left off, read from its ledger alone.

``osha campaign resume RUN`` first reverts the fault leases the dead run left (the same code
as ``osha faults recover``, which records in its own ledger under ``RUN/recover/``), then
reopens the run's ledger (:meth:`osha.ledger.LedgerWriter.resume`: a ``ledger.resumed``
record makes the gap visible) and either goes on with the soak from the cycle after the last
one that started, or ends the run cleanly (teardown and verdict), as the operator chooses.

The interrupted phase and cycle are closed in the ledger (``ok = false``, "interrupted"), and
each lease the recovery reverted is recorded there too (``fault.reverted`` by ``recover``), so
the run's own ledger tells the whole story.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from osha.campaign.phases import Recorder
from osha.errors import EXIT_INVALID, OshaError
from osha.faults import Lease
from osha.ledger import LedgerReader
from osha.messages import CampaignVerdict, FaultReleased, FaultReverted, LedgerHeader, SoakCycle
from osha.messages.campaign import PhaseChange
from osha.wire import decode, peek_tag

__all__ = ["LeftOff", "close_interrupted", "left_off"]

_TAGS = frozenset({PhaseChange.TAG, SoakCycle.TAG, CampaignVerdict.TAG})


@dataclass(slots=True)
class LeftOff:
    """What the dead run had done. ``open_phase``: the phase it was in (started, not ended);
    ``open_cycle``: the soak cycle it was in (1-based; 0: none); ``last_cycle``: the highest
    cycle that started."""

    header: LedgerHeader
    open_phase: str = ""
    open_cycle: int = 0
    last_cycle: int = 0
    #: the leases the recovery reverted, with its detail (filled in by the resume)
    reverted: list[tuple[Lease, str]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.header.run_id

    @property
    def next_cycle(self) -> int:
        """The 0-based cycle a continued soak starts with: the one after the last started."""
        return self.last_cycle


def left_off(run_dir: Path) -> LeftOff:
    """Read ``run_dir`` once (bounded memory). OshaError if it cannot be resumed."""
    reader = LedgerReader(run_dir)
    header = reader.header()
    if header is None:
        raise OshaError(
            f"{run_dir}: the ledger has no header; it is not a campaign's ledger",
            hint="pass the run directory osha campaign start printed (runs/<id>.osha)",
            exit_code=EXIT_INVALID,
        )
    out = LeftOff(header)
    judged = False
    for payload in reader.payloads():
        if peek_tag(payload) not in _TAGS:
            continue
        msg = decode(payload)
        if isinstance(msg, PhaseChange):
            if msg.event == "start":
                out.open_phase = msg.phase
            else:
                out.open_phase = ""
        elif isinstance(msg, SoakCycle):
            if msg.phase == "start":
                out.open_cycle = out.last_cycle = max(out.last_cycle, msg.cycle)
            else:
                out.open_cycle = 0
        elif isinstance(msg, CampaignVerdict):
            judged = True
    if judged:
        raise OshaError(
            f"{run_dir}: the run has its verdict already; there is nothing to resume",
            hint=f"read it: osha report {run_dir}",
            exit_code=EXIT_INVALID,
        )
    return out


def close_interrupted(rec: Recorder, where: LeftOff) -> None:
    """Record in the resumed ledger what the dead run left open, closed: the leases the
    recovery reverted, its soak cycle and its phase (``ok = false``, interrupted)."""
    for lease, detail in where.reverted:
        rec.record(
            FaultReverted, lease_id=lease.lease_id, attempt=1, by="recover",
            detail=f"by osha campaign resume: {detail}"[:2000], elapsed_s=0.0,
        )  # fmt: skip
        rec.record(
            FaultReleased, lease_id=lease.lease_id, holder=lease.holder, reverted=True,
            by="recover",
        )  # fmt: skip
    gap = "interrupted: the osha process died; resumed by osha campaign resume"
    if where.open_cycle:
        rec.record(SoakCycle, cycle=where.open_cycle, phase="end", ok=False, detail=gap)
    if where.open_phase:
        rec.record(PhaseChange, phase=where.open_phase, event="end", ok=False, detail=gap)
