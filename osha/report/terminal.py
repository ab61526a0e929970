"""The terminal summary of an analysis, and the verdict table the campaign prints.

Plain text with fixed precision: the same ledger always renders the same lines, so a live
verdict and ``osha report``'s verdict can be compared as text.
"""

from __future__ import annotations

from osha.analysis import Analysis, Comparison, CycleRow, SoakSummary, Verdict
from osha.report._fmt import (
    ATOMIC_HEADERS,
    SOAK_EDGE,
    SOAK_MAX_ROWS,
    VIP_HEADERS,
    atomic_rows,
    ci_ratio,
    ci_secs,
    clock_held,
    fault_times,
    mib,
    pct,
    pm,
    secs,
    soak_trends,
    table,
    unfinished_text,
    vip_rows,
)
from osha.report.audit import audit_lines

__all__ = ["damage_lines", "render_comparison", "render_summary", "render_verdict"]


def _value(value: float | bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.3f}"


def render_verdict(verdict: Verdict) -> str:
    """The SLO table and the one-line summary; deterministic."""
    rows = [
        [r.name, _value(r.threshold), _value(r.value), "pass" if r.passed else "FAIL", r.detail]
        for r in verdict.results
    ]
    body = (
        table(["SLO", "threshold", "value", "result", "detail"], rows)
        if rows
        else ("  (no SLOs: give them in the profile's [slo] table or with --slo)")
    )
    return f"{body}\n\nverdict: {verdict.summary} (exit {verdict.exit_code})"


def _run(a: Analysis) -> list[str]:
    run = a.run
    state = "complete" if run.complete else "INCOMPLETE"
    if run.aborted:
        state += f", ABORTED: {run.abort_reason}"
    lines = [
        f"run {run.run_id} on {run.host} (osha {run.osha_version}, seed {run.seed})",
        f"  ledger: {a.run_dir} — {run.records} records, {run.end_s:.1f} s analysed, {state}",
    ]
    if run.tear:
        lines.append(f"  warning: {run.tear}")
    lines += damage_lines(a)
    if run.phases:
        phases = ", ".join(
            f"{p.name} {p.start_s:.1f}-{'…' if p.end_s is None else f'{p.end_s:.1f}'}"
            + ("" if p.ok else " (failed)")
            for p in run.phases
        )
        lines.append(f"  phases (s): {phases}")
    return lines


def damage_lines(a: Analysis, indent: str = "  ") -> list[str]:
    """Where a damaged ledger is damaged and what was lost; [] for an intact one."""
    damage = a.run.damage
    if not damage.damaged:
        return []
    accepted = a.verdict.accepted_damage
    head = "judged anyway (--accept-damaged)" if accepted else "not judged as a pass"
    lines = [f"{indent}LEDGER DAMAGED ({head}): {damage.summary()}"]
    lines += [f"{indent}  - {problem}" for problem in damage.problems]
    if damage.count > len(damage.problems):
        lines.append(f"{indent}  … {damage.count - len(damage.problems)} more: "
                     f"osha ledger verify {a.run_dir} lists them")  # fmt: skip
    return lines


def _faults(a: Analysis) -> list[str]:
    if not a.faults:
        return ["faults: none"]
    rows = []
    impact_rows = []
    notes = [f"  {f.lease_id}: {f.note}" for f in a.faults if f.note]
    for f in a.faults:
        det = min(f.detections, key=lambda d: d.detection_s, default=None)
        rows.append([
            f.lease_id, f.label, *fault_times(f, a.run.started_wall_s), f.status,
            secs(det.detection_s) + f" ({det.monitor})" if det else "-",
            ", ".join(f.overlaps) or "-",
        ])  # fmt: skip
        for t in f.targets:
            ttr = pm(t.recovery_s, t.recovery_bound_s) if t.recovered else "never recovered"
            impact_rows.append(
                [
                    f.lease_id,
                    t.target,
                    t.monitor,
                    pm(t.downtime_s, t.downtime_bound_s),
                    f"{ttr} from {t.recovery_from}" if t.recovered else ttr,
                ]
            )
        for r in f.runners:
            impact_rows.append([f.lease_id, f"runner:{r.runner}", f"{r.errors} errors",
                                pm(r.downtime_s, r.downtime_bound_s),
                                f"MTTR {pm(r.mttr_s, r.mttr_bound_s)}, "
                                f"degradation {ci_secs(r.degradation_s, r.degradation_bound_s)} "
                                f"({ci_ratio(r.degradation_ratio, r.degradation_ratio_bound)})"
                                ])  # fmt: skip
    out = ["faults:", table(["lease", "fault", "injected", "held", "status", "detected after",
                             "overlaps"], rows), *notes]  # fmt: skip
    if impact_rows:
        out += [
            "",
            "impact per fault (downtime ± bound; time to recover):",
            table(["lease", "subject", "seen by", "downtime", "recovery"], impact_rows),
        ]
    return out


def _targets(a: Analysis) -> list[str]:
    if not a.targets:
        return ["targets: none monitored"]
    rows = [
        [t.target, t.monitor, pct(t.availability), pm(t.downtime_s, t.downtime_bound_s),
         str(t.episode_count), t.final_state]
        for t in a.targets
    ]  # fmt: skip
    return ["targets:", table(["target", "monitor", "availability", "downtime", "outages",
                               "final"], rows)]  # fmt: skip


def _runners(a: Analysis) -> list[str]:
    if not a.runners:
        return ["runners: none"]
    rows = []
    for r in a.runners:
        base = (
            "-"
            if r.baseline_mean_s is None
            else (
                f"{r.baseline_mean_s:.3f} ± {r.baseline_std_s or 0.0:.3f} s (n={r.baseline_count})"
            )
        )
        phases = "; ".join(
            f"{p.phase} {pct(p.success, 1)} p50 {secs(p.p50_s, 2)} p95 {secs(p.p95_s, 2)}"
            for p in r.phases
        )
        mttr = max((s.length_s for s in r.degraded), default=None)
        worst = max(r.degraded, key=lambda s: s.degradation_ratio or 0.0, default=None)
        degr = "-" if worst is None else ci_ratio(worst.degradation_ratio,
                                                  worst.degradation_ratio_bound)  # fmt: skip
        rows.append([r.runner, f"{r.iterations - r.failures}/{r.iterations}", base,
                     secs(mttr), degr, phases])  # fmt: skip
    failed = [f"  {r.runner}: the workload failed: {r.failure}" for r in a.runners if r.failure]
    short = [f"  {r.runner}: {r.baseline_short.text}" for r in a.runners if r.baseline_short]
    out = ["runners (baseline mean ± sd; longest degraded stretch; worst ratio ± 95 % CI):",
           table(["runner", "ok", "baseline", "MTTR", "degr.", "phases"], rows),
           *failed, *short, *(f"  {r.runner}: {unfinished_text(r)}" for r in a.runners
                              if r.unfinished)]  # fmt: skip
    return out + _atomics(a)


def _atomics(a: Analysis) -> list[str]:
    rows = [row for r in a.runners for row in atomic_rows(r)]
    if not rows:
        return []
    dropped = [f"  {r.runner}: {r.atomics_dropped} more atomic action name(s) not analysed "
               f"(at most {len(r.atomics)} a runner)"
               for r in a.runners if r.atomics_dropped]  # fmt: skip
    return ["", "atomic actions (baseline; in each degraded stretch, against it):",
            table(list(ATOMIC_HEADERS), rows), *dropped]  # fmt: skip


def _actors(a: Analysis) -> list[str]:
    trouble = [x for x in a.actors if x.crashes or x.restarts or x.escalated]
    if not trouble:
        return [f"actors: {len(a.actors)}, no crash or restart"]
    rows = [[x.actor_id, x.kind, str(x.crashes), str(x.restarts), ", ".join(x.crash_reasons),
             "yes" if x.escalated else ""] for x in trouble]  # fmt: skip
    return ["actors:", table(["actor", "kind", "crashes", "restarts", "reasons", "escalated"],
                             rows)]  # fmt: skip


def _cycle_row(r: CycleRow) -> list[str]:
    if r.end_s is None:
        ok, mttr = "…", "-"
    else:
        ok = "yes" if r.ok else "NO"
        mttr = "not recovered" if r.recovery_s is None else secs(r.recovery_s)
    return [str(r.cycle), ok, f"{r.injected}/{r.reverted}/{r.revert_failed}",
            f"{r.crashes}/{r.self_chaos_kills}", str(r.targets_down), secs(r.downtime_s), mttr,
            pct(r.availability), mib(r.osha_rss_bytes), clock_held(r)]  # fmt: skip


def _soak(s: SoakSummary) -> list[str]:
    counts = f"{len(s.cycles)} ({s.cycles_ok} ok, {s.cycles_failed} failed"
    counts += f", {s.cycles_unfinished} unfinished)" if s.cycles_unfinished else ")"
    mttr = f"MTTR mean {secs(s.mttr_mean_s)}, max {secs(s.mttr_max_s)}"
    if s.cycles_unrecovered:
        mttr += f", {s.cycles_unrecovered} cycle(s) with a target never recovered"
    if s.overruns or s.skipped:
        mttr += f"; {s.overruns} overrun(s), {s.skipped} fault(s) skipped"
    rows = list(s.cycles)
    hidden = 0
    if len(rows) > SOAK_MAX_ROWS:
        hidden = len(rows) - 2 * SOAK_EDGE
        rows = rows[:SOAK_EDGE] + rows[-SOAK_EDGE:]
    text = table(["cycle", "ok", "faults inj/rev/failed", "crashes/self-chaos", "targets down",
                  "downtime", "MTTR", "availability", "osha RSS", "overruns/late"],
                 [_cycle_row(r) for r in rows]).split("\n")  # fmt: skip
    if hidden:
        text.insert(2 + SOAK_EDGE, f"  … {hidden} more cycles")
    return [f"soak cycles: {counts}; {mttr}", *text, f"  trends: {soak_trends(s)}"]


def render_summary(a: Analysis) -> str:
    """The whole terminal report: run, faults and impacts, targets, runners, actors, soak
    cycles (for a soak), verdict."""
    moves = ["VIP moves:", table(VIP_HEADERS, vip_rows(a.vip_moves))] if a.vip_moves else []
    parts = [_run(a), _faults(a), *([moves] if moves else []), _targets(a), _runners(a),
             _actors(a),
             *([_soak(a.soak)] if a.soak is not None else []),
             *([audit_lines(a.audits)] if a.audits else []),
             ["SLOs:", render_verdict(a.verdict)]]  # fmt: skip
    if a.run.recorded_verdict is not None:
        rec = a.run.recorded_verdict
        parts.append([f"recorded in the ledger: {rec.get('summary', '')} "
                      f"(exit {rec.get('exit_code')})"])  # fmt: skip
    return "\n\n".join("\n".join(p) for p in parts)


def render_comparison(c: Comparison) -> str:
    """A side-by-side table: A, B, delta (B - A) and whether B is better."""
    rows = []
    for r in c.rows:
        unit = f" {r.unit}" if r.unit else ""
        a = "-" if r.a is None else f"{r.a:.3f}{unit}"
        b = "-" if r.b is None else f"{r.b:.3f}{unit}"
        d = "-" if r.delta is None else f"{r.delta:+.3f}{unit}"
        rows.append([r.section, r.subject, r.metric, a, b, d, r.change])
    head = [
        f"A: {c.a.run_dir} ({c.a.run.run_id}) — {c.a.verdict.summary}",
        *damage_lines(c.a, "   "),
        f"B: {c.b.run_dir} ({c.b.run.run_id}) — {c.b.verdict.summary}",
        *damage_lines(c.b, "   "),
    ]
    return (
        "\n".join(head)
        + "\n\n"
        + table(["section", "subject", "metric", "A", "B", "B - A", "B is"], rows)
    )
