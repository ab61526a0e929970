"""The JSON report: stable and versioned.

Schema ``osha.report/1`` (a new field may appear within a version; a field is never renamed,
removed or changed in meaning without a new version). Times named ``*_s`` that are instants are
run seconds since the ledger header (monotonic clock); ``started_wall_s`` turns them into
wall-clock times (Unix seconds). Durations are seconds; ``*_bound_s`` is the ± precision.
``null`` means "no value" (e.g. never recovered, never observed). Top-level keys::

    schema        "osha.report/1"
    methodology   where the metric definitions come from
    run           run_id, host, osha_version, seed, profile_path, started_wall_s, end_s,
                  records, complete, aborted, abort_reason, stop_reason, tear, corruptions,
                  phases [{name, start_s, end_s, ok, derived}], recorded_verdict,
                  damage {problems, count, by_kind [[kind, n]], skipped_records,
                  skipped_bytes} (count 0: the ledger was read whole), campaign_name
    options       the analysis parameters (window, k, warm_up, ...)
    slo           the objectives judged (the [slo] table)
    verdict       passed, exit_code, aborted, abort_reason, summary, accepted_damage,
                  results [{name, slo, subject, threshold, value, passed, detail}]
    faults        [{lease_id, label, holder, plugin, action, node, resource, planned_s,
                    injected_s, inject_error, refused, reverted_s, reverted_by,
                    revert_attempts, revert_error, released, status, overlaps, granted_s,
                    holder_lost_s, takeover_s, guard_note,
                    detection_s, detections [{monitor, target, detection_s, reported_s,
                    state}], targets [{monitor, target, episodes, downtime_s,
                    downtime_bound_s, recovered, recovery_s, recovery_bound_s,
                    recovery_from}], runners [{runner, errors, downtime_s, downtime_bound_s,
                    mttr_s, mttr_bound_s, degradation_s, degradation_ratio,
                    degradation_bound_s, degradation_ratio_bound, atomics [atomic]}]}]
    targets       [{monitor, target, availability, up_s, bad_s, unknown_s, downtime_s,
                    downtime_bound_s, episode_count, final_state, first_seen_s,
                    last_seen_s, samples, sample_failures, episodes [{start_s, end_s,
                    downtime_s, bound_s, first_bad_s, last_bad_s, last_good_s,
                    first_good_s, recovered, worst, blind, reported_s}]}]
    runners       [{runner, workload, iterations, failures, success, baseline {count,
                    mean_s, std_s, threshold_s, pace_s, short: null or {iterations,
                    warm_up, window, pace_s, baseline_s, pace_source, needed,
                    suggested_baseline_s, text}}, phases [{phase, iterations, failures,
                    success, mean_s, p50_s, p95_s, p99_s, max_s}], error_clusters
                    [stretch], degraded [stretch], statuses, failure, atomics [{action,
                    count, mean_s, std_s}], atomics_dropped, unfinished [start_s]}]
                  stretch = {start_s, end_s, length_s, bound_s, iterations, first_s,
                    mean_duration_s, degradation_s, degradation_ratio, window_span_s,
                    degradation_bound_s, degradation_ratio_bound, atomics [atomic]}
                  atomic = {action, iterations, mean_s, degradation_s, degradation_bound_s,
                    degradation_ratio, degradation_ratio_bound}: one atomic action in a
                    degraded stretch against its own baseline
                  runner atomics are each atomic action's baseline (Rally's nova.boot_server,
                    ...); *_bound_s and *_ratio_bound of a degradation are the half-widths
                    of its 95 % t-interval (null: too few iterations)
    actors        [{actor_id, kind, plugin, starts, crashes, restarts, crash_reasons,
                    escalated}]
    soak          null when the ledger holds no soak.cycle record, else {cycles [{cycle,
                    start_s, end_s, duration_s, ok, detail, planned_faults, injected,
                    reverted, revert_failed, crashes, self_chaos_kills, targets_down,
                    downtime_s, recovery_s, availability, osha_rss_bytes, overruns,
                    overrun_wait_s, late_s, skipped}], cycles_ok,
                    cycles_failed, cycles_unfinished, cycles_unrecovered, mttr_mean_s,
                    mttr_max_s, trends {mttr_s_per_cycle, downtime_s_per_cycle,
                    availability_per_cycle, rss_from_cycle, rss_to_cycle,
                    rss_growth_bytes, rss_slope_bytes_per_h}, overruns, skipped}
                  a cycle's ok and end_s are null while it is unfinished; recovery_s (its
                  MTTR) is the longest recovery_s of the target impacts of the faults
                  injected in it (0 if none), null if one never recovered; trends are
                  least-squares slopes per cycle over the finished cycles (null with fewer
                  than two); rss_growth_bytes is osha's main-process RSS from cycle
                  rss_from_cycle (the 5th, or the 1st when there are five or fewer) to
                  rss_to_cycle (the last with a sample), rss_slope_bytes_per_h the
                  least-squares slope of those samples over the cycles' end times; overruns
                  are faults still held at a cycle's end within their revert deadline
                  (overrun_wait_s: the wait for their reverts, the chaos clock held), late_s
                  how late a cycle started, skipped its faults refused meanwhile
    audits        absent when the run had no [[audits]]; else [{audit, plugin, before,
                    after ({ok, findings, elapsed_s, truncated, error} or null), new_count
                    (null: not audited after, or that sweep failed or was cut short),
                    items [{origin (new, pre-existing, unknown), kind, resource_id, name,
                    state, evidence, since_s, first_seen_s, fault, osha_made}], healed
                    [{kind, resource_id, name, state}], cleaned [{kind, resource_id, ok,
                    detail}] (cleanup = true: what osha made, removed or not)}]:
                    osha.report.audit
    vip_moves     absent when no VIP moved (``monitor.vip_moved``); else [{target, address,
                    from_node, to_node, last_seen_s, first_seen_s, monitor, within_s}]

A comparison (``osha report A B --json``) is ``{"schema": "osha.compare/1", "a": <report>,
"b": <report>, "rows": [{section, subject, metric, unit, a, b, delta, better, change}]}``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from osha.analysis import Analysis, Comparison, Episode, SoakSummary, Stretch
from osha.analysis.shortfall import BaselineShortfall
from osha.report.audit import audits_to_dict

__all__ = ["COMPARE_SCHEMA", "METHODOLOGY", "SCHEMA", "comparison_to_dict", "dumps", "to_dict"]

SCHEMA = "osha.report/1"
COMPARE_SCHEMA = "osha.compare/1"
METHODOLOGY = (
    "OpenStack performance-docs, 'OpenStack reliability testing, version 2' (service downtime, "
    "MTTR by the sliding-window method, absolute and relative performance degradation with "
    "95 % t-intervals, per Rally atomic action too), "
    "extended by osha with detection time, availability and per-target time to recover"
)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj


def _episode(e: Episode) -> dict[str, Any]:
    return {
        "start_s": e.start_s, "end_s": e.end_s, "downtime_s": e.downtime_s, "bound_s": e.bound_s,
        "first_bad_s": e.first_bad_s, "last_bad_s": e.last_bad_s, "last_good_s": e.last_good_s,
        "first_good_s": e.first_good_s, "recovered": e.recovered, "worst": e.worst,
        "blind": e.blind, "reported_s": e.reported_s,
    }  # fmt: skip


def _short(s: BaselineShortfall | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {**_plain(s), "needed": s.needed, "suggested_baseline_s": s.suggested_baseline_s,
            "text": s.text}  # fmt: skip


def _stretch(s: Stretch) -> dict[str, Any]:
    return {**_plain(s), "length_s": s.length_s}


def _soak(s: SoakSummary | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "cycles": [{**_plain(r), "duration_s": r.duration_s} for r in s.cycles],
        "cycles_ok": s.cycles_ok,
        "cycles_failed": s.cycles_failed,
        "cycles_unfinished": s.cycles_unfinished,
        "cycles_unrecovered": s.cycles_unrecovered,
        "mttr_mean_s": s.mttr_mean_s,
        "mttr_max_s": s.mttr_max_s,
        "trends": {
            "mttr_s_per_cycle": s.mttr_trend_s,
            "downtime_s_per_cycle": s.downtime_trend_s,
            "availability_per_cycle": s.availability_trend,
            "rss_from_cycle": s.rss_from_cycle,
            "rss_to_cycle": s.rss_to_cycle,
            "rss_growth_bytes": s.rss_growth_bytes,
            "rss_slope_bytes_per_h": s.rss_slope_bytes_per_h,
        },
        "overruns": s.overruns,
        "skipped": s.skipped,
    }


def to_dict(a: Analysis) -> dict[str, Any]:
    """The report as plain JSON-able data (schema ``osha.report/1``)."""
    run = _plain(a.run)
    faults = []
    for f in a.faults:
        item = _plain(f)
        item["label"] = f.label
        item["detection_s"] = f.detection_s
        faults.append(item)
    targets = []
    for t in a.targets:
        item = _plain(t)
        item.pop("segments", None)
        item["availability"] = t.availability
        item["episodes"] = [_episode(e) for e in t.episodes]
        targets.append(item)
    runners = []
    for r in a.runners:
        runners.append({
            "runner": r.runner, "workload": r.workload, "iterations": r.iterations,
            "failures": r.failures, "success": r.success,
            "baseline": {"count": r.baseline_count, "mean_s": r.baseline_mean_s,
                         "std_s": r.baseline_std_s, "threshold_s": r.threshold_s,
                         "pace_s": r.pace_s, "short": _short(r.baseline_short)},
            "phases": [{**_plain(p), "success": p.success} for p in r.phases],
            "error_clusters": [_stretch(s) for s in r.error_clusters],
            "degraded": [_stretch(s) for s in r.degraded],
            "statuses": list(r.statuses),
            "failure": r.failure,
            "atomics": _plain(r.atomics),
            "atomics_dropped": r.atomics_dropped,
            "unfinished": list(r.unfinished),
        })  # fmt: skip
    v = a.verdict
    return {
        "schema": SCHEMA,
        "methodology": METHODOLOGY,
        "run": run,
        "options": _plain(a.options),
        "slo": a.slo.to_table(),
        "verdict": {
            "passed": v.passed,
            "exit_code": v.exit_code,
            "aborted": v.aborted,
            "abort_reason": v.abort_reason,
            "summary": v.summary,
            "accepted_damage": v.accepted_damage,
            "results": [_plain(r) for r in v.results],
        },
        "faults": faults,
        "targets": targets,
        "runners": runners,
        "actors": _plain(a.actors),
        "soak": _soak(a.soak),
        **({"audits": audits_to_dict(a.audits)} if a.audits else {}),
        **(
            {"vip_moves": [{**_plain(m), "within_s": m.within_s} for m in a.vip_moves]}
            if a.vip_moves
            else {}
        ),
    }


def comparison_to_dict(c: Comparison) -> dict[str, Any]:
    """Two reports and the paired rows (schema ``osha.compare/1``)."""
    rows = [{**_plain(r), "delta": r.delta, "change": r.change} for r in c.rows]
    return {"schema": COMPARE_SCHEMA, "a": to_dict(c.a), "b": to_dict(c.b), "rows": rows}


def dumps(data: dict[str, Any]) -> str:
    """Stable text: sorted keys are *not* used (the order above is the documented one), two
    spaces of indent, no NaN."""
    return json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"
