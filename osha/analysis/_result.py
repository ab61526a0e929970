"""``analyze``: one streaming pass, then the metrics, then the verdict."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from osha.analysis._impact import fault_reports
from osha.analysis._judge import evaluate
from osha.analysis._pass import LedgerPass, no_cyclic_gc, run_pass
from osha.analysis._vips import VipMove
from osha.analysis.model import (
    ActorReport,
    FaultReport,
    PhaseSpan,
    RunInfo,
    RunnerReport,
    SoakSummary,
    Stretch,
    TargetReport,
)
from osha.analysis.options import AnalysisOptions
from osha.analysis.shortfall import shortfall
from osha.analysis.slo import SloSpec, Verdict, slo_from_table
from osha.audit import AuditOutcome, FaultWindow
from osha.errors import ProfileError
from osha.ledger import LedgerReader
from osha.messages import LedgerHeader, Phase

__all__ = ["Analysis", "analyze", "recorded_slo"]

#: A campaign phase that ends not ok aborts the run: its figures cannot pass it.
_ABORTING = (Phase.VALIDATE, Phase.PREFLIGHT, Phase.LOAD, Phase.BASELINE, Phase.CHAOS)
_ABORT_REASONS = ("interrupt", "signal", "escalated")
_ORDER = tuple(Phase)  # the phases in their order


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything ``osha report`` shows, computed from one ledger."""

    run_dir: Path
    run: RunInfo
    slo: SloSpec
    options: AnalysisOptions
    targets: tuple[TargetReport, ...]
    faults: tuple[FaultReport, ...]
    runners: tuple[RunnerReport, ...]
    actors: tuple[ActorReport, ...]
    verdict: Verdict
    soak: SoakSummary | None = None  # the soak's cycles and trends; None: not a soak
    audits: tuple[AuditOutcome, ...] = ()  # the [[audits]], before and after the campaign
    vip_moves: tuple[VipMove, ...] = ()  # monitor.vip_moved, in ledger order (latest 10,000)

    def rejudge(self, slo: SloSpec) -> Analysis:
        """The same metrics judged against other objectives (no second pass)."""
        verdict = evaluate(
            slo,
            run=self.run,
            targets=self.targets,
            faults=self.faults,
            runners=self.runners,
            actors=self.actors,
            accept_damaged=self.options.accept_damaged,
            audits=self.audits,
        )
        return replace(self, slo=slo, verdict=verdict)

    def phase(self, name: Phase) -> PhaseSpan | None:
        return next((p for p in self.run.phases if p.name == name), None)


def analyze(
    run_dir: Path, *, slo: SloSpec | None = None, options: AnalysisOptions | None = None
) -> Analysis:
    """Replay a ledger into metrics and a verdict, in one pass with bounded memory.

    ``slo`` defaults to the ``[slo]`` table of the profile recorded in the ledger header (and
    to no objectives if it has none). Raises :class:`~osha.errors.LedgerError` (exit 2) if
    ``run_dir`` is not a readable ledger, :class:`~osha.errors.WireError` (exit 2) for a
    record that does not decode, and :class:`~osha.errors.ProfileError` (exit 2) if the
    recorded ``[slo]`` table is invalid.
    """
    opts = options or AnalysisOptions()
    with no_cyclic_gc():
        return _analyze(Path(run_dir), slo, opts)


def _analyze(run_dir: Path, slo: SloSpec | None, opts: AnalysisOptions) -> Analysis:
    acc, reader = run_pass(run_dir, opts)
    if slo is None:
        slo = _slo_of(acc.header)
    end = acc.end_s
    phases = _phases(acc, end)
    run = _run_info(acc, reader, phases, end)
    # each tracker is dropped as its report is made: memory peaks at one of the two, not both
    acc.by_monitor.clear()
    order = sorted(acc.targets, key=lambda key: (key[1], key[0]))
    targets = tuple(acc.targets.pop(key).finish(end) for key in order)
    runner_reports, stretches = _runner_reports(acc, phases, _baseline_end(phases, acc, end),
                                                end, opts)  # fmt: skip
    faults = fault_reports(list(acc.faults.records.values()), targets, stretches, end, opts)
    actors = _actor_reports(acc)
    runners = tuple(runner_reports)
    audits = acc.audits.outcomes(_fault_windows(faults, run.started_wall_s))
    verdict = evaluate(
        slo,
        run=run,
        targets=targets,
        faults=faults,
        runners=runners,
        actors=actors,
        accept_damaged=opts.accept_damaged,
        audits=audits,
    )
    soak = acc.cycles.finish(end, faults)  # per-cycle MTTR from the per-fault impacts
    return Analysis(
        Path(run_dir),
        run,
        slo,
        opts,
        targets,
        faults,
        runners,
        actors,
        verdict,
        soak=soak,
        audits=audits,
        vip_moves=tuple(acc.vips.moves),
    )


def _fault_windows(faults: tuple[FaultReport, ...], wall0_s: float) -> list[FaultWindow]:
    """The injected faults' windows on the wall clock (the cloud's timestamps are wall
    time): run seconds plus the run's start."""
    return [
        FaultWindow(f"{f.label} #{f.lease_id}", wall0_s + f.injected_s,
                    None if f.reverted_s is None else wall0_s + f.reverted_s)
        for f in faults if f.injected_s is not None
    ]  # fmt: skip


def _actor_reports(acc: LedgerPass) -> tuple[ActorReport, ...]:
    return tuple(
        ActorReport(
            actor_id=k,
            kind=a.kind,
            plugin=a.plugin,
            starts=a.starts,
            crashes=a.crashes,
            restarts=a.restarts,
            crash_reasons=tuple(a.reasons),
            escalated=a.escalated,
        )
        for k, a in sorted(acc.actors.items())
    )


def _runner_reports(
    acc: LedgerPass,
    phases: tuple[PhaseSpan, ...],
    baseline_end: float,
    end: float,
    opts: AnalysisOptions,
) -> tuple[list[RunnerReport], dict[str, tuple[list[Stretch], list[Stretch]]]]:
    """Each runner's report, and its error clusters and degraded stretches (for the faults)."""
    reports: list[RunnerReport] = []
    first = next((p for p in phases if p.name == Phase.BASELINE), None)
    baseline_s = baseline_end - first.start_s if first is not None else None
    stretches: dict[str, tuple[list[Stretch], list[Stretch]]] = {}
    for name in sorted(acc.runners):
        series = acc.runners[name]
        series.sort()
        base = series.baseline(baseline_end, opts)
        pace_s = series.pace_s(baseline_end)
        errors = series.error_clusters(opts)
        degraded = series.degraded(base, opts)
        stretches[name] = (errors, degraded)
        reports.append(
            RunnerReport(
                runner=name,
                workload=series.workload,
                iterations=len(series.dur),
                failures=series.failures,
                baseline_count=base.count,
                baseline_mean_s=base.mean,
                baseline_std_s=base.std,
                threshold_s=base.threshold,
                phases=tuple(
                    series.phase_stats(p, end)
                    for p in phases
                    if p.name in (Phase.BASELINE, Phase.CHAOS, Phase.RECOVERY)
                ),
                error_clusters=tuple(errors),
                degraded=tuple(degraded),
                statuses=tuple(series.statuses),
                points=series.thinned(opts.max_plot_points),
                failure=acc.runner_failures.get(name, ""),
                pace_s=pace_s,
                baseline_short=shortfall(
                    series.baseline_size(baseline_end, opts),
                    warm_up=opts.warm_up,
                    window=opts.window,
                    pace_s=pace_s,
                    baseline_s=baseline_s,
                ),
                atomics=base.atomic_reports(),
                atomics_dropped=len(series.atomics_dropped),
                unfinished=tuple(sorted(series.unfinished)),
            )
        )
    return reports, stretches


def recorded_slo(run_dir: Path) -> SloSpec:
    """The objectives of the profile recorded in a ledger's header, or in its copy if the
    header record is damaged (no objectives if neither is readable)."""
    return _slo_of(LedgerReader(Path(run_dir)).header())


def _slo_of(header: LedgerHeader | None) -> SloSpec:
    """The ``[slo]`` table of the profile recorded in the ledger header, or no objectives."""
    profile = header.profile if header is not None else {}
    table = profile.get("slo") if isinstance(profile, dict) else None
    if not isinstance(table, dict):
        return SloSpec()
    try:
        return slo_from_table(table, file="(profile recorded in the ledger)")
    except ProfileError as exc:
        exc.hint = "judge the run with other objectives: osha report RUN --slo FILE"
        raise


def _phases(acc: LedgerPass, end: float) -> tuple[PhaseSpan, ...]:
    if acc.phases:
        spans = [
            PhaseSpan(name, p.start_s, p.end_s, p.ok)
            for name, p in sorted(
                acc.phases.items(),
                key=lambda kv: (kv[1].start_s, _ORDER.index(kv[0]) if kv[0] in _ORDER else 99),
            )
        ]
        return tuple(spans)
    injected = acc.faults.injected()
    if not injected:
        return (PhaseSpan(Phase.BASELINE, 0.0, end, True, derived=True),)
    first = injected[0].injected_s or 0.0
    reverts = [f.reverted_s for f in injected if f.reverted_s is not None]
    last = max(reverts) if len(reverts) == len(injected) else end
    spans = [
        PhaseSpan(Phase.BASELINE, 0.0, first, True, True),
        PhaseSpan(Phase.CHAOS, first, last, True, True),
    ]
    if last < end:
        spans.append(PhaseSpan(Phase.RECOVERY, last, end, True, True))
    return tuple(spans)


def _baseline_end(phases: tuple[PhaseSpan, ...], acc: LedgerPass, end: float) -> float:
    chaos = next((p for p in phases if p.name == Phase.CHAOS), None)
    if chaos is not None:
        return chaos.start_s
    injected = acc.faults.injected()
    if not injected:
        return end
    return injected[0].injected_s or 0.0


def _run_info(
    acc: LedgerPass, reader: LedgerReader, phases: tuple[PhaseSpan, ...], end: float
) -> RunInfo:
    header = acc.header
    assert header is not None
    stop_reason = acc.stopped.reason if acc.stopped is not None else ""
    aborted, reason = False, ""
    if acc.phases:
        complete = acc.cut_s is not None or (
            Phase.TEARDOWN in acc.phases and acc.phases[Phase.TEARDOWN].end_s is not None
        )
        failed = [n for n in _ABORTING if n in acc.phases and not acc.phases[n].ok]
        if failed:
            detail = acc.phases[failed[0]].detail
            aborted, reason = (
                True,
                f"the {failed[0]} phase failed" + (f": {detail}" if detail else ""),
            )
        elif not complete:
            inside = next((p.name for p in reversed(phases) if p.end_s is None), "")
            where = f" inside the {inside} phase" if inside else ""
            aborted, reason = True, f"the ledger ends{where}: the campaign did not finish (killed?)"
    else:
        complete = acc.stopped is not None
        if not complete:
            aborted, reason = True, "the ledger ends without run.stopped: the run was killed"
        elif stop_reason in _ABORT_REASONS:
            aborted, reason = True, f"the run stopped on {stop_reason}"
    if acc.escalated and not aborted:
        aborted, reason = True, "the supervisor escalated: too many actor restarts"
    recorded = None
    if acc.verdict is not None:
        recorded = {
            "passed": acc.verdict.passed,
            "exit_code": acc.verdict.exit_code,
            "summary": acc.verdict.summary,
        }
    return RunInfo(
        run_id=header.run_id,
        host=header.host,
        osha_version=header.osha_version,
        seed=header.seed,
        profile_path=header.profile_path,
        started_wall_s=header.wall_s,
        end_s=end,
        records=acc.records,
        complete=complete,
        aborted=aborted,
        abort_reason=reason,
        stop_reason=stop_reason,
        tear=str(reader.tear) if reader.tear else "",
        corruptions=len(reader.corruptions),
        phases=phases,
        recorded_verdict=recorded,
        damage=acc.damage.result(),
        campaign_name=_campaign_name(header),
    )


def _campaign_name(header: LedgerHeader) -> str:
    section = header.profile.get("campaign")
    name = section.get("name") if isinstance(section, dict) else None
    return name if isinstance(name, str) else ""
