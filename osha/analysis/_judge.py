"""Judge the metrics against an :class:`~osha.analysis.slo.SloSpec`: one result per objective
and subject, in a fixed order (the spec's field order, subjects sorted), so the verdict of the
same ledger always reads the same."""

from __future__ import annotations

from collections.abc import Sequence

from osha.analysis._blind import blind_under_faults, fault_windows
from osha.analysis._kinds import FaultStatus
from osha.analysis.model import ActorReport, FaultReport, RunInfo, RunnerReport, TargetReport
from osha.analysis.slo import SloResult, SloSpec, Verdict, match
from osha.audit import AuditOutcome

__all__ = ["evaluate"]


def _label(fault: FaultReport) -> str:
    return f"{fault.label} #{fault.lease_id}"


def _name(slo: str, key: str, subject: str) -> str:
    return f"{slo}[{subject}]" if key == subject else f"{slo}[{subject} (by {key})]"


def _target_names(targets: Sequence[TargetReport]) -> dict[str, list[TargetReport]]:
    out: dict[str, list[TargetReport]] = {}
    for rep in targets:
        out.setdefault(rep.target, []).append(rep)
    return out


def _downtime(
    spec: SloSpec,
    targets: Sequence[TargetReport],
    runners: Sequence[RunnerReport],
    windows: Sequence[tuple[float, float]],
    end_s: float,
) -> list[SloResult]:
    by_name = _target_names(targets)
    runner_by = {f"runner:{r.runner}": r for r in runners}
    out = []
    for key, subject, limit in match(spec.max_downtime_s, [*by_name, *runner_by]):
        if not subject:
            out.append(
                SloResult(
                    f"max_downtime_s[{key}]", "max_downtime_s", key, limit, None, False,
                    "matches no monitored target or runner (check the name; "
                    "`osha report` lists them)",
                )
            )  # fmt: skip
            continue
        if subject in runner_by:
            r = runner_by[subject]
            value = sum(c.length_s for c in r.error_clusters)
            bound = sum(c.bound_s for c in r.error_clusters)
            detail = f"{len(r.error_clusters)} error cluster(s), ±{bound:.3f} s"
            out.append(
                SloResult(_name("max_downtime_s", key, subject), "max_downtime_s", subject,
                          limit, value, value <= limit, detail)
            )  # fmt: skip
            continue
        reps = by_name[subject]
        for rep in reps:
            who = subject if len(reps) == 1 else f"{subject} by {rep.monitor}"
            blind_s = blind_under_faults(rep.segments, windows, end_s)
            name = _name("max_downtime_s", key, who)
            out.append(_target_downtime(name, who, limit, rep, blind_s))
    return out


def _target_downtime(
    name: str, who: str, limit: float, rep: TargetReport, blind_s: float
) -> SloResult:
    """The seen downtime is the value; the verdict judges the worst case, seen downtime plus
    the time the monitor was blind under faults (:mod:`osha.analysis._blind`)."""
    detail = f"{rep.episode_count} outage(s), ±{rep.downtime_bound_s:.3f} s"
    worst_s = rep.downtime_s + blind_s
    if blind_s > 0:
        detail += (
            f"; blind for {blind_s:.3f} s while faults were on, so down for up to "
            f"{worst_s:.3f} s" + ("" if worst_s <= limit else ": not proven within the limit")
        )
    return SloResult(name, "max_downtime_s", who, limit, rep.downtime_s, worst_s <= limit, detail)


def _availability(spec: SloSpec, targets: Sequence[TargetReport]) -> list[SloResult]:
    by_name = _target_names(targets)
    out = []
    for key, subject, limit in match(spec.min_availability, by_name):
        if not subject:
            out.append(
                SloResult(f"min_availability[{key}]", "min_availability", key, limit, None,
                          False, "matches no monitored target")
            )  # fmt: skip
            continue
        reps = by_name[subject]
        for rep in reps:
            who = subject if len(reps) == 1 else f"{subject} by {rep.monitor}"
            value = rep.availability
            ok = value is not None and value >= limit
            detail = "never observed" if value is None else f"up {rep.up_s:.1f} s"
            out.append(
                SloResult(_name("min_availability", key, who), "min_availability", who, limit,
                          value, ok, detail)
            )  # fmt: skip
    return out


def _per_fault(spec: SloSpec, faults: Sequence[FaultReport]) -> list[SloResult]:
    injected = [f for f in faults if f.injected_s is not None]
    out: list[SloResult] = []
    if spec.max_detection_s is not None:
        limit = spec.max_detection_s
        if not injected:
            out.append(SloResult("max_detection_s", "max_detection_s", "", limit, None, True,
                                 "no fault was injected"))  # fmt: skip
        for f in injected:
            seen = f.detection_s
            best = min(f.detections, key=lambda d: d.detection_s, default=None)
            detail = (
                f"first seen by {best.monitor} on {best.target}" if best else "no monitor saw it"
            )
            out.append(
                SloResult(f"max_detection_s[{_label(f)}]", "max_detection_s", _label(f), limit,
                          seen, seen is not None and seen <= limit, detail)
            )  # fmt: skip
    if spec.max_recovery_s is not None:
        limit = spec.max_recovery_s
        if not injected:
            out.append(SloResult("max_recovery_s", "max_recovery_s", "", limit, None, True,
                                 "no fault was injected"))  # fmt: skip
        for f in injected:
            value: float | None = 0.0
            unrecovered = [t for t in f.targets if not t.recovered]
            if unrecovered:
                value, detail = None, f"{unrecovered[0].target} never recovered"
            elif f.targets:
                worst = max(f.targets, key=lambda t: t.recovery_s or 0.0)
                value = worst.recovery_s
                detail = f"slowest: {worst.target}, from {worst.recovery_from}"
            else:
                detail = "no target went down"
            ok = value is not None and value <= limit
            out.append(SloResult(f"max_recovery_s[{_label(f)}]", "max_recovery_s", _label(f),
                                 limit, value, ok, detail))  # fmt: skip
    return out


def _runners(spec: SloSpec, runners: Sequence[RunnerReport]) -> list[SloResult]:
    out: list[SloResult] = []
    if spec.min_runner_success is not None:
        limit = spec.min_runner_success
        if not runners:
            out.append(SloResult("min_runner_success", "min_runner_success", "", limit, None,
                                 False, "no runner recorded any iteration"))  # fmt: skip
        for r in runners:
            success = r.success
            ok = success is not None and success >= limit
            detail = f"{r.iterations - r.failures}/{r.iterations} iterations succeeded"
            if r.failure:
                detail += f"; the workload failed: {r.failure}"
            out.append(SloResult(f"min_runner_success[{r.runner}]", "min_runner_success",
                                 r.runner, limit, success, ok, detail))  # fmt: skip
    for slo, bound in (
        ("max_runner_mttr_s", spec.max_runner_mttr_s),
        ("max_degradation_ratio", spec.max_degradation_ratio),
    ):
        if bound is None:
            continue
        for r in runners:
            judged: float | None
            if r.threshold_s is None:
                judged = None
                detail = (
                    f"cannot judge: {r.baseline_count} baseline iteration(s); a baseline needs "
                    "2 or more after the warm-up"
                )
            elif slo == "max_runner_mttr_s":
                judged = max((s.length_s for s in r.degraded), default=0.0)
                detail = f"{len(r.degraded)} degraded stretch(es)"
            else:
                judged = max((s.degradation_ratio or 1.0 for s in r.degraded), default=1.0)
                detail = f"baseline mean {r.baseline_mean_s or 0.0:.3f} s"
            ok = judged is not None and judged <= bound
            out.append(SloResult(f"{slo}[{r.runner}]", slo, r.runner, bound, judged, ok, detail))
    return out


def _debris_detail(o: AuditOutcome) -> str:
    """``2 new (1 tied to kill nova-conductor@ctl-1), 3 pre-existing, 1 healed``."""
    c = o.compared
    if c is None:
        return ""
    new = c.new
    tied = [j.fault for j in new if j.fault]
    ties = f" ({len(tied)} tied to {', '.join(sorted(set(tied)))})" if tied else ""
    unknown = sum(1 for j in new if j.origin == "unknown")
    doubt = f", {unknown} of unknown origin (no complete audit before)" if unknown else ""
    pre = len(c.after) - len(new)
    return f"{len(new)} new{ties}{doubt}, {pre} pre-existing, {len(c.healed)} healed"


def _debris(spec: SloSpec, audits: Sequence[AuditOutcome]) -> list[SloResult]:
    by_id = {o.audit: o for o in audits}
    out = []
    for key, subject, limit in match(spec.max_new_debris, by_id):
        name = _name("max_new_debris", key, subject or key)
        if not subject:
            out.append(SloResult(name, "max_new_debris", key, limit, None, False,
                                 "matches no [[audits]] id that ran"))  # fmt: skip
            continue
        o = by_id[subject]
        count = o.new_count
        if count is None:
            why = (o.after.error if o.after is not None else "") or "no audit after the run"
            out.append(SloResult(name, "max_new_debris", subject, limit, None, False,
                                 f"not judged: {why}"))  # fmt: skip
            continue
        out.append(SloResult(name, "max_new_debris", subject, limit, float(count),
                             count <= limit, _debris_detail(o)))  # fmt: skip
    return out


def evaluate(
    spec: SloSpec,
    *,
    run: RunInfo,
    targets: Sequence[TargetReport],
    faults: Sequence[FaultReport],
    runners: Sequence[RunnerReport],
    actors: Sequence[ActorReport],
    accept_damaged: bool = False,
    windows: Sequence[tuple[float, float]] | None = None,
    audits: Sequence[AuditOutcome] | None = None,
) -> Verdict:
    """The verdict: every objective of ``spec`` judged, in a fixed order; a damaged ledger
    (``run.damage``) is not a pass unless ``accept_damaged``. ``windows``: the faults'
    merged windows (:func:`~osha.analysis._blind.fault_windows`), by default from
    ``faults``. ``audits``: the run's audits (None: not judged, e.g. a live judgement while
    the run goes on, before its audit after the teardown)."""
    if windows is None:
        windows = fault_windows(((f.injected_s, f.reverted_s) for f in faults), run.end_s)
    results = [
        *_downtime(spec, targets, runners, windows, run.end_s),
        *_availability(spec, targets),
        *_per_fault(spec, faults),
        *_runners(spec, runners),
    ]
    if spec.max_actor_restarts is not None:
        restarts = sum(a.restarts for a in actors)
        who = ", ".join(f"{a.actor_id}x{a.restarts}" for a in actors if a.restarts) or "none"
        results.append(
            SloResult("max_actor_restarts", "max_actor_restarts", "", spec.max_actor_restarts,
                      float(restarts), restarts <= spec.max_actor_restarts, f"restarted: {who}")
        )  # fmt: skip
    if spec.require_reverted:
        left = [f.lease_id for f in faults if f.status == FaultStatus.UNREVERTED]
        detail = f"not reverted: {', '.join(left)}" if left else "every fault was reverted"
        results.append(SloResult("require_reverted", "require_reverted", "", True,
                                 float(len(left)), not left, detail))  # fmt: skip
    if audits is not None:
        results.extend(_debris(spec, audits))
    return Verdict.of(
        results,
        aborted=run.aborted,
        abort_reason=run.abort_reason,
        damage=run.damage,
        accept_damaged=accept_damaged,
    )
