"""The live judgement of a run still being written: each record is read once, however long
the run goes on.

A soak judges its ``abort_on_breach`` objectives at every cycle's end (:mod:`osha.soak.judge`).
Re-reading the whole ledger each time costs O(records so far) per cycle, O(N²) over a soak of
days. :class:`LiveJudge` keeps the one streaming pass (:class:`~osha.analysis._pass.LedgerPass`)
between judgements and feeds it only the records written since the last one: the reader
resumes where it stopped (a record boundary; a record still being written is read next time).
A judgement then computes, leaving the pass's state as it is:

- ``require_reverted``: the status of only the faults that a record touched since the last
  judgement, or that were held or unreverted then (a held fault turns unreverted when its
  deadline passes, with no record): flat over the soak;
- ``max_actor_restarts``: the actors' counters, one row per actor;
- ``max_downtime_s``, ``min_availability``: each target's totals at the run's end so far (a
  copy of its tracker without its list of outages), one row per target; ``max_downtime_s``
  also reads each target's state segments and the faults' windows (linear in the faults and
  state changes so far) for the blind time under faults (:mod:`osha.analysis._blind`);
- ``max_detection_s``, ``max_recovery_s`` and the runner objectives: attribution needs every
  outage and every fault, so these are computed as :func:`~osha.analysis.analyze` computes
  them, from the pass's state: no re-read, but linear in the faults, outages and runner
  iterations so far (not in the records).

Each result comes from the same code as :func:`~osha.analysis.analyze`'s verdict, judged
against the recorded ``[slo]`` restricted to the named objectives: the names that fail are
those that the full analysis of the same ledger, as of the same ``live_at_wall_s``, fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path

from osha.analysis._blind import fault_windows
from osha.analysis._faults import FaultRecord
from osha.analysis._impact import fault_reports
from osha.analysis._judge import evaluate
from osha.analysis._kinds import FaultStatus
from osha.analysis._pass import LedgerPass, no_cyclic_gc
from osha.analysis._result import (
    _actor_reports,
    _baseline_end,
    _phases,
    _run_info,
    _runner_reports,
    _slo_of,
)
from osha.analysis.model import ActorReport, FaultReport, RunnerReport, TargetReport
from osha.analysis.options import AnalysisOptions
from osha.analysis.slo import SloSpec, Verdict
from osha.ledger import LedgerReader, Position
from osha.ledger.segment import list_raw_segments

__all__ = ["LiveJudge"]

_TARGETS = frozenset({"max_downtime_s", "min_availability", "max_detection_s", "max_recovery_s"})
_ATTRIBUTED = frozenset({"max_detection_s", "max_recovery_s"})
_RUNNERS = frozenset(
    {"max_downtime_s", "min_runner_success", "max_runner_mttr_s", "max_degradation_ratio"}
)
_IN_FLIGHT = frozenset({FaultStatus.HELD, FaultStatus.UNREVERTED})


class LiveJudge:
    """Judges the named objectives of a ledger being written, as often as asked, reading
    each record once. :meth:`verdict` / :meth:`breached` read what was written since the
    last call first."""

    def __init__(
        self, run_dir: Path, slos: Iterable[str], options: AnalysisOptions | None = None
    ) -> None:
        self.names = frozenset(slos)
        self.options = options or AnalysisOptions()
        self._reader = LedgerReader(Path(run_dir))
        self._acc = LedgerPass(self.options, self._reader)
        self._acc.faults.touched = {}
        self._cursor: Position | None = None
        self._spec: SloSpec | None = None
        self._order: dict[str, int] = {}  # lease -> its place in the ledger (first record)
        self._in_flight: set[str] = set()  # leases held or unreverted at the last judgement

    @property
    def records(self) -> int:
        """Records read so far."""
        return self._acc.records

    def read(self) -> int:
        """Feed the pass the records written since the last read; how many there were."""
        acc, before = self._acc, self._acc.records
        acc.raw_present = {s.number for s in list_raw_segments(self._reader.directory)}
        with no_cyclic_gc():
            for segment, offsets, batch in self._reader.located_batches(self._cursor):
                acc.feed(segment, offsets, batch)
        self._cursor = self._reader.end
        if acc.header is None and acc.records:
            acc.header = self._reader.header_copy()  # the header record is damaged
            acc.t0 = acc.header.mono_s if acc.header is not None else 0.0
        return acc.records - before

    def breached(self, at_wall_s: float) -> list[str]:
        """The names of the failing results, sorted (``[]`` before the header is written)."""
        verdict = self.verdict(at_wall_s)
        return sorted(r.name for r in verdict.results if not r.passed) if verdict else []

    def verdict(self, at_wall_s: float) -> Verdict | None:
        """The named objectives judged on the ledger so far, as of ``at_wall_s`` (a fault
        held within its revert deadline then is in flight, not unreverted); None if not even
        the header is readable yet."""
        self.read()
        acc = self._acc
        if acc.header is None:
            return None
        if self._spec is None:
            self._spec = _restricted(_slo_of(acc.header), self.names)
        spec, need = self._spec, self.names
        opts = replace(self.options, live_at_wall_s=at_wall_s)
        end = acc.end_s
        phases = _phases(acc, end)
        targets: tuple[TargetReport, ...] = ()
        windows = None
        if need & _TARGETS:
            detail = bool(need & _ATTRIBUTED)
            blind = "max_downtime_s" in need  # judged with the blind time under faults
            order = sorted(acc.targets, key=lambda key: (key[1], key[0]))
            targets = tuple(
                acc.targets[k].report_at(end, episodes=detail, segments=blind) for k in order
            )
            if blind:
                spans = ((r.injected_s, r.reverted_s) for r in acc.faults.records.values())
                windows = fault_windows(spans, end)
        runners: Sequence[RunnerReport] = ()
        if need & _RUNNERS:
            runners, _ = _runner_reports(acc, phases, _baseline_end(phases, acc, end), end, opts)
        in_flight = self._settle(at_wall_s)
        faults: tuple[FaultReport, ...] = ()
        if need & _ATTRIBUTED:
            records = list(acc.faults.records.values())
            faults = fault_reports(records, targets, {}, end, opts, overlaps=False)
        elif spec.require_reverted:
            faults = fault_reports(in_flight, (), {}, end, opts, overlaps=False)
        actors: tuple[ActorReport, ...] = ()
        if spec.max_actor_restarts is not None:
            actors = _actor_reports(acc)
        return evaluate(
            spec,
            run=_run_info(acc, self._reader, phases, end),
            targets=targets,
            faults=faults,
            runners=runners,
            actors=actors,
            accept_damaged=opts.accept_damaged,
            windows=windows,
        )

    def _settle(self, at_wall_s: float) -> list[FaultRecord]:
        """The faults held or unreverted as of ``at_wall_s``, in ledger order, looking only at
        those touched since the last judgement and those in flight then (any other fault's
        status cannot have changed: only a record, or a deadline passing, changes it)."""
        table = self._acc.faults
        touched, table.touched = table.touched or {}, {}
        for lease in touched:
            self._order.setdefault(lease, len(self._order))
        check = self._in_flight.union(touched)
        records = table.records
        self._in_flight = {
            lease for lease in check if records[lease].status_at(at_wall_s) in _IN_FLIGHT
        }
        return [records[lease] for lease in sorted(self._in_flight, key=self._order.__getitem__)]


def _restricted(spec: SloSpec, names: frozenset[str]) -> SloSpec:
    """``spec`` with only the objectives in ``names`` set (the others unset, so not judged)."""
    kept = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name in names}
    kept.setdefault("require_reverted", False)
    return SloSpec(**kept)
