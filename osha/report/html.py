"""The HTML report: ONE self-contained file (inline CSS and SVG, no script, no network).

Sections: the verdict, the timeline (matplotlib SVG, see :mod:`osha.report._plots`), the
runner durations, and the metric tables (faults and their impact, targets, runners, actors),
the soak cycles with their MTTR and osha RSS plot (a soak only), with the metric definitions
and their source at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from osha.analysis import Analysis, SoakSummary
from osha.report._fmt import (
    ATOMIC_HEADERS,
    SOAK_MAX_ROWS,
    VIP_HEADERS,
    atomic_rows,
    ci_ratio,
    ci_secs,
    clock_held,
    fault_times,
    pct,
    pm,
    secs,
    soak_trends,
    unfinished_text,
    vip_rows,
)
from osha.report._plots import runner_svg, soak_svg, timeline_svg
from osha.report.audit import audit_lines
from osha.report.json import METHODOLOGY

__all__ = ["DEFINITIONS", "render_html"]

DEFINITIONS = (
    ("Detection time", "from the fault's actual inject time to the first bad observation of "
     "the first outage it caused, per monitor"),
    ("Service downtime", "from the first error to the last error of a target or runner in the "
     "fault's window, each edge widened by half the gap to the neighbouring good observation; "
     "± half those gaps (performance-docs)"),
    ("Time to recover (MTTR)", "targets: from the revert (or the inject, for a self-healing "
     "fault) until the target is steadily up again; runners: the length of the stretch where "
     "the sliding mean of the operation duration exceeds baseline mean + k·sd (performance-docs "
     "sliding-window method)"),
    ("Degradation", "absolute: mean duration in the degraded stretch - baseline mean; relative: "
     "their ratio; ± the half-width of the 95 % Student t-interval of the difference between "
     "the two means, se = √(var_stretch/n_stretch + var_baseline/n_baseline) with n_baseline + "
     "n_stretch - 2 degrees of freedom (relative: divided by the baseline mean) "
     "(performance-docs, rally-runners)"),
    ("Atomic actions", "each atomic action the runner records (Rally's nova.boot_server, ...): "
     "its baseline over the baseline's iterations that ran it, and its degradation in each "
     "degraded stretch of the whole iteration, against that baseline, with the same interval"),
    ("Availability", "time up / time observed (up or down; unknown is not observed)"),
    ("Soak cycle MTTR", "the longest time to recover (as above) of the targets taken down by "
     "the faults injected in the cycle (0 if none took a target down); not recovered if one of "
     "those targets never recovered. Trends are least-squares slopes per cycle"),
)  # fmt: skip

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.pass{color:#16702e;font-weight:bold}.fail{color:#b00020;font-weight:bold}
.verdict{font-size:1.2em;padding:.5em;border:2px solid;display:inline-block}
figure{margin:.5em 0}svg{max-width:100%;height:auto}.muted{color:#666}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(a: Analysis) -> str:
    v = a.verdict
    cls = "pass" if v.passed else "fail"
    rows = [
        [r.name, "-" if r.threshold is None else str(r.threshold),
         "-" if r.value is None else f"{r.value:.3f}", "pass" if r.passed else "FAIL", r.detail]
        for r in v.results
    ]  # fmt: skip
    table = _table(["SLO", "threshold", "value", "result", "detail"], rows, "slo")
    return f'<p class="verdict {cls}" id="verdict">{escape(v.summary)} (exit {v.exit_code})</p>' + (
        table if rows else '<p class="muted">No SLOs were given.</p>'
    )


def _faults(a: Analysis) -> str:
    if not a.faults:
        return '<p class="muted">No fault was leased.</p>'
    rows = []
    impacts = []
    for f in a.faults:
        det = min(f.detections, key=lambda d: d.detection_s, default=None)
        rows.append([f.lease_id, f.label, *fault_times(f, a.run.started_wall_s),
                     f.status + (f" ({f.revert_error})" if f.revert_error else "")
                     + (f" — {f.note}" if f.note else ""),
                     f"{secs(det.detection_s)} by {det.monitor}" if det else "-",
                     ", ".join(f.overlaps) or "-"])  # fmt: skip
        for t in f.targets:
            rec = (f"{pm(t.recovery_s, t.recovery_bound_s)} from {t.recovery_from}"
                   if t.recovered else "never recovered")  # fmt: skip
            impacts.append([f.lease_id, t.target, t.monitor, pm(t.downtime_s, t.downtime_bound_s),
                            rec, "-", "-"])  # fmt: skip
        for r in f.runners:
            impacts.append([f.lease_id, f"runner:{r.runner}", f"{r.errors} errors",
                            pm(r.downtime_s, r.downtime_bound_s), pm(r.mttr_s, r.mttr_bound_s),
                            ci_secs(r.degradation_s, r.degradation_bound_s),
                            ci_ratio(r.degradation_ratio, r.degradation_ratio_bound)])  # fmt: skip
    out = _table(["lease", "fault", "injected", "held", "status", "detected after", "overlaps"],
                 rows)  # fmt: skip
    if impacts:
        out += "<h3>Impact per fault</h3>" + _table(
            ["lease", "subject", "seen by", "downtime", "recovery / MTTR", "degradation",
             "relative"], impacts)  # fmt: skip
    return out


def _targets(a: Analysis) -> str:
    rows = [
        [t.target, t.monitor, pct(t.availability), pm(t.downtime_s, t.downtime_bound_s),
         str(t.episode_count), f"{t.up_s:.1f} / {t.bad_s:.1f} / {t.unknown_s:.1f}", t.final_state]
        for t in a.targets
    ]  # fmt: skip
    return _table(["target", "monitor", "availability", "downtime", "outages",
                   "up / bad / unknown (s)", "final"], rows)  # fmt: skip


def _runners(a: Analysis) -> str:
    rows = []
    phase_rows = []
    for r in a.runners:
        base = (
            "-"
            if r.baseline_mean_s is None
            else (
                f"{r.baseline_mean_s:.3f} ± {r.baseline_std_s or 0.0:.3f} s (n={r.baseline_count})"
            )
        )
        stretches = "; ".join(
            f"{s.start_s:.1f}-{s.end_s:.1f} s: {pm(s.length_s, s.bound_s)}, "
            f"{ci_ratio(s.degradation_ratio, s.degradation_ratio_bound)}"
            for s in r.degraded) or "-"  # fmt: skip
        errors = "; ".join(f"{s.start_s:.1f}-{s.end_s:.1f} s ({s.iterations})"
                           for s in r.error_clusters) or "-"  # fmt: skip
        rows.append([r.runner, r.workload, f"{r.iterations - r.failures}/{r.iterations}", base,
                     secs(r.threshold_s), errors, stretches])  # fmt: skip
        for p in r.phases:
            phase_rows.append([r.runner, p.phase, str(p.iterations), pct(p.success),
                               secs(p.mean_s), secs(p.p50_s), secs(p.p95_s), secs(p.p99_s),
                               secs(p.max_s)])  # fmt: skip
    short = "".join(
        f'<p class="baseline-short">{escape(r.runner)}: {escape(r.baseline_short.text)}</p>'
        for r in a.runners
        if r.baseline_short
    ) + "".join(
        f'<p class="unfinished">{escape(r.runner)}: {escape(unfinished_text(r))}</p>'
        for r in a.runners
        if r.unfinished
    )
    atomics = [row for r in a.runners for row in atomic_rows(r)]
    dropped = "".join(
        f'<p class="muted">{escape(r.runner)}: {r.atomics_dropped} more atomic action name(s) '
        f"not analysed (at most {len(r.atomics)} a runner)</p>"
        for r in a.runners if r.atomics_dropped)  # fmt: skip
    return _table(["runner", "workload", "ok", "baseline mean ± sd", "threshold",
                   "error clusters", "degraded stretches (MTTR, ratio ± 95 % CI)"],
                  rows) + short + _table(
        ["runner", "phase", "iterations", "success", "mean", "p50", "p95", "p99", "max"],
        phase_rows) + (('<h3 id="atomics">Atomic actions</h3>'
                        + _table(ATOMIC_HEADERS, atomics, "atomics") + dropped)
                       if atomics else "")  # fmt: skip


def _actors(a: Analysis) -> str:
    rows = [[x.actor_id, x.kind, x.plugin, str(x.starts), str(x.crashes), str(x.restarts),
             ", ".join(x.crash_reasons), "yes" if x.escalated else ""]
            for x in a.actors]  # fmt: skip
    return _table(["actor", "kind", "plugin", "starts", "crashes", "restarts", "reasons",
                   "escalated"], rows)  # fmt: skip


def _soak(a: Analysis, s: SoakSummary) -> str:
    rows = []
    for r in s.cycles:
        if r.end_s is None:
            ok, mttr = "unfinished", "-"
        else:
            ok = "yes" if r.ok else f"NO: {r.detail}" if r.detail else "NO"
            mttr = "not recovered" if r.recovery_s is None else secs(r.recovery_s)
        rss = "-" if r.osha_rss_bytes is None else f"{r.osha_rss_bytes / 2**20:.1f}"
        rows.append([str(r.cycle), ok, f"{r.injected}/{r.reverted}/{r.revert_failed}",
                     f"{r.crashes}/{r.self_chaos_kills}", str(r.targets_down),
                     secs(r.downtime_s), mttr, pct(r.availability), rss,
                     clock_held(r)])  # fmt: skip
    table = _table(["cycle", "ok", "faults inj/rev/failed", "crashes/self-chaos",
                    "targets down", "downtime", "MTTR", "availability", "osha RSS (MiB)",
                    "overruns/late"],
                   rows, "soak")  # fmt: skip
    if len(rows) > SOAK_MAX_ROWS:
        table = f"<details><summary>{len(rows)} cycles</summary>{table}</details>"
    head = (f"{len(s.cycles)} cycles: {s.cycles_ok} ok, {s.cycles_failed} failed, "
            f"{s.cycles_unfinished} unfinished; MTTR mean {secs(s.mttr_mean_s)}, max "
            f"{secs(s.mttr_max_s)}")  # fmt: skip
    return (f'<p id="soak-summary">{escape(head)}</p>'
            f'<p id="soak-trends">{escape(soak_trends(s))}</p>'
            f'<figure id="soak-plot">{soak_svg(a)}</figure>{table}')  # fmt: skip


def render_html(a: Analysis) -> str:
    """The report as one self-contained HTML document."""
    run = a.run
    status = "complete" if run.complete else "incomplete"
    if run.aborted:
        status += f" — aborted: {run.abort_reason}"
    warn = "".join(f'<p class="fail">{escape(w)}</p>' for w in (run.tear,) if w)
    runner_fig = runner_svg(a)
    defs = "".join(f"<dt><b>{escape(k)}</b></dt><dd>{escape(v)}</dd>" for k, v in DEFINITIONS)
    opts = a.options
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>osha report — {escape(run.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>osha report — {escape(run.run_id)}</h1>",
        f'<p class="muted">{escape(str(a.run_dir))} · host {escape(run.host)} · osha '
        f"{escape(run.osha_version)} · seed {run.seed} · {run.records} records · "
        f"{run.end_s:.1f} s analysed · {escape(status)}</p>{warn}",
        "<h2>Verdict</h2>", _verdict(a),
        '<h2>Timeline</h2><figure id="timeline">', timeline_svg(a), "</figure>",
        *(["<h2>Runner operation durations</h2>", '<figure id="runners">', runner_fig,
           "</figure>"] if runner_fig else []),
        "<h2>Faults</h2>", _faults(a),
        *(['<h2 id="vip-moves">VIP moves</h2>', _table(list(VIP_HEADERS), vip_rows(a.vip_moves))]
          if a.vip_moves else []),
        "<h2>Targets</h2>", _targets(a),
        "<h2>Runners</h2>", _runners(a) if a.runners else '<p class="muted">No runner.</p>',
        "<h2>Actors</h2>", _actors(a),
        *(['<h2 id="soak">Soak cycles</h2>', _soak(a, a.soak)] if a.soak is not None else []),
        *(['<h2 id="audits">Audits</h2>',
           f'<pre id="audits-table">{escape(chr(10).join(audit_lines(a.audits)))}</pre>']
          if a.audits else []),
        "<h2>Definitions</h2>", f"<p>{escape(METHODOLOGY)}.</p><dl>{defs}</dl>",
        f'<p class="muted">Sliding window {opts.window}, k = {opts.k:g}, warm-up '
        f"{opts.warm_up}, steady {opts.steady_s:g} s, attribution {opts.attribution_s:g} s.</p>",
        "</body></html>",
    ])  # fmt: skip
