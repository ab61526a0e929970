"""The reports of an aggregate (``osha report --aggregate LEDGER...``): terminal text, JSON
(``osha.aggregate/1``), JUnit XML and one self-contained HTML file (no plot, no script).

JSON: ``{"schema": "osha.aggregate/1", "campaign", "profile_path", "confidence", "method",
"ci_target": {"absolute_s", "relative"} | null, "exit_code", "runs": [{run_id, run_dir, seed,
exit_code, summary}], "figures": [{fault, metric, unit, values, n, missing, mean, sd,
half_width, low, high, target_half_width, runs_needed}]}``; a figure's statistics are null
when its values cannot give them (sd and the interval need two values; ``runs_needed`` needs
a target).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html import escape
from typing import Any

from osha.analysis.aggregate import CONFIDENCE, Aggregate, Figure
from osha.report._fmt import table
from osha.report.junit import xml_text

__all__ = ["AGGREGATE_SCHEMA", "METHOD", "aggregate_html", "aggregate_junit",
           "aggregate_to_dict", "render_aggregate"]  # fmt: skip

AGGREGATE_SCHEMA = "osha.aggregate/1"
METHOD = (
    "per fault (disruptor id and action; the k-th such fault of each run paired as one), the "
    "mean over the runs, the sample standard deviation sd and the 95 % Student-t interval of "
    "the mean: mean ± t_{0.975,n-1}·sd/√n; runs needed for a target half-width h: the smallest "
    "n >= 2 with t_{0.975,n-1}·sd/√n <= h, sd as observed"
)
_HEADERS = ("fault", "metric", "n", "mean", "sd", "95 % CI", "runs needed")


def _v(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}x" if unit == "x" else f"{value:.3f} s"


def _ci(fig: Figure) -> str:
    mean, half, interval = fig.mean, fig.half_width, fig.interval
    if mean is None or half is None or interval is None:
        return "- (needs 2 values)" if fig.n == 1 else "-"
    unit = "x" if fig.unit == "x" else " s"
    return f"{mean:.3f} ± {half:.3f}{unit} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _needed(agg: Aggregate, fig: Figure) -> str:
    if agg.target is None:
        return ""
    half = agg.target.half_width(fig)
    if half is None:
        return "- (no target)"
    if fig.sd is None:
        return "- (needs 2 values)"
    n = agg.needed(fig)
    if n is None:
        return "> 1,000,000"
    more = n - fig.n
    return f"{n} (≤ {_v(half, fig.unit)}{f'; {more} more' if more > 0 else ''})"


def _rows(agg: Aggregate) -> list[list[str]]:
    rows = []
    for fig in agg.figures:
        n = f"{fig.n}/{fig.runs}" if fig.missing else str(fig.n)
        rows.append([fig.fault, fig.metric, n, _v(fig.mean, fig.unit), _v(fig.sd, fig.unit),
                     _ci(fig), _needed(agg, fig)])  # fmt: skip
    return rows


def render_aggregate(agg: Aggregate) -> str:
    """The aggregate as terminal text."""
    runs = [[r.run_id, str(r.seed), str(r.exit_code), r.summary] for r in agg.runs]
    headers = _HEADERS if agg.target is not None else _HEADERS[:-1]
    rows = [row[: len(headers)] for row in _rows(agg)]
    lines = [
        f"aggregate of {len(agg.runs)} run(s) of campaign {agg.campaign_name or '?'!r} "
        f"({agg.profile_path or '?'})",
        table(("run", "seed", "exit", "verdict"), runs),
        "",
        "per fault (disruptor id and action) and figure: n, mean, sd, 95 % t-interval",
        table(headers, rows) if rows else "  no fault was injected in these runs",
        "95 % CI: mean ± t_{0.975,n-1}·sd/√n (sd: the sample standard deviation, n - 1)",
    ]
    if agg.target is not None:
        lines.append(f"runs needed: the smallest n >= 2 with t_{{0.975,n-1}}·sd/√n <= the target "
                     f"half-width ({agg.target.describe()}), sd as observed")  # fmt: skip
    if any(f.missing for f in agg.figures):
        lines.append("n/runs: a run without a value (the fault did not happen, no monitor saw "
                     "it, a target never recovered, or the runner had no baseline)")  # fmt: skip
    lines.append(f"exit code {agg.exit_code} (the worst of the runs)")
    return "\n".join(lines)


def aggregate_to_dict(agg: Aggregate) -> dict[str, Any]:
    """The aggregate as JSON-ready data (``osha.aggregate/1``)."""
    target = agg.target
    return {
        "schema": AGGREGATE_SCHEMA,
        "campaign": agg.campaign_name,
        "profile_path": agg.profile_path,
        "confidence": CONFIDENCE,
        "method": METHOD,
        "ci_target": None if target is None else {
            "absolute_s": target.absolute_s, "relative": target.relative},
        "exit_code": agg.exit_code,
        "runs": [{"run_id": r.run_id, "run_dir": str(r.run_dir), "seed": r.seed,
                  "exit_code": r.exit_code, "summary": r.summary} for r in agg.runs],
        "figures": [_figure(agg, f) for f in agg.figures],
    }  # fmt: skip


def _figure(agg: Aggregate, fig: Figure) -> dict[str, Any]:
    interval = fig.interval
    return {
        "fault": fig.fault, "metric": fig.metric, "unit": fig.unit, "values": list(fig.values),
        "n": fig.n, "missing": fig.missing, "mean": fig.mean, "sd": fig.sd,
        "half_width": fig.half_width,
        "low": None if interval is None else interval[0],
        "high": None if interval is None else interval[1],
        "target_half_width": agg.target.half_width(fig) if agg.target is not None else None,
        "runs_needed": agg.needed(fig),
    }  # fmt: skip


def aggregate_junit(agg: Aggregate) -> str:
    """JUnit XML: one test case per run (failing as its verdict does) and one per figure
    (its statistics in ``system-out``; it never fails: a wide interval is not a defect)."""
    failed = [r for r in agg.runs if r.exit_code == 1]
    aborted = [r for r in agg.runs if r.exit_code not in (0, 1)]
    tests = len(agg.runs) + len(agg.figures)
    counts = {"tests": str(tests), "failures": str(len(failed)), "errors": str(len(aborted))}
    root = ET.Element("testsuites", {"name": "osha", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "osha.aggregate", "time": "0", **counts})
    props = ET.SubElement(suite, "properties")
    for name, value in (("campaign", agg.campaign_name), ("profile", agg.profile_path),
                        ("runs", str(len(agg.runs))), ("exit_code", str(agg.exit_code)),
                        ("method", METHOD)):  # fmt: skip
        ET.SubElement(props, "property", name=name, value=value)
    for r in agg.runs:
        case = ET.SubElement(suite, "testcase", classname="osha.aggregate.run", name=r.run_id,
                             time="0")  # fmt: skip
        text = f"exit code {r.exit_code}, seed {r.seed}: {r.summary} ({r.run_dir})"
        kind = "failure" if r.exit_code == 1 else "error" if r.exit_code else ""
        if kind:
            ET.SubElement(case, kind, message=r.summary, type="verdict").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    for fig, row in zip(agg.figures, _rows(agg), strict=True):
        case = ET.SubElement(suite, "testcase", classname=f"osha.aggregate.{fig.fault}",
                             name=fig.metric, time="0")  # fmt: skip
        text = f"n {row[2]}, mean {row[3]}, sd {row[4]}, 95 % CI {row[5]}"
        ET.SubElement(case, "system-out").text = text + (f", runs needed {row[6]}"
                                                         if row[6] else "")  # fmt: skip
    return xml_text(root)


def _html_table(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def aggregate_html(agg: Aggregate) -> str:
    """The aggregate as one self-contained HTML document."""
    headers = _HEADERS if agg.target is not None else _HEADERS[:-1]
    rows = [row[: len(headers)] for row in _rows(agg)]
    runs = [[r.run_id, str(r.seed), str(r.exit_code), r.summary, str(r.run_dir)]
            for r in agg.runs]  # fmt: skip
    title = f"osha aggregate — {agg.campaign_name or '?'} ({len(agg.runs)} runs)"
    target = (f"<p>Target half-width: {escape(agg.target.describe())}.</p>"
              if agg.target is not None else "")  # fmt: skip
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:left}th{background:#f2f2f2}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Profile {escape(agg.profile_path or '?')}; exit code {agg.exit_code} (the worst "
        "of the runs).</p>",
        "<h2>Runs</h2>", _html_table(("run", "seed", "exit", "verdict", "ledger"), runs),
        "<h2>Per fault</h2>", _html_table(headers, rows), target,
        f"<p>{escape(METHOD)}.</p>",
        "</body></html>",
    ])  # fmt: skip
