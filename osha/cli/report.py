"""``osha report LEDGER [LEDGER_B]``: metrics, SLO verdict and reports from recorded ledgers.

``report`` is a typer command function; the main CLI mounts it with :func:`register`. Exit
codes: the verdict's (0 pass, 1 an SLO violated, 3 the run was aborted); with two ledgers, the
verdict of B; 2 for invalid input (not a ledger, a bad SLO file or expression).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from osha.analysis import (
    Analysis,
    AnalysisOptions,
    SloError,
    SloSpec,
    analyze,
    apply_overrides,
    compare,
    load_slo_file,
    recorded_slo,
)
from osha.analysis.aggregate import Aggregate, CiTarget, aggregate
from osha.cli._checks import finite
from osha.errors import EXIT_INVALID, OshaError
from osha.report import (
    comparison_to_dict,
    damage_lines,
    dumps,
    render_comparison,
    render_summary,
    render_verdict,
    terminal_safe,
    to_dict,
    to_junit,
)
from osha.report.aggregate import (
    aggregate_html,
    aggregate_junit,
    aggregate_to_dict,
    render_aggregate,
)

__all__ = ["HELP", "register", "report"]

HELP = """Replay recorded ledgers into HA metrics, an SLO verdict and reports.

The metrics follow the OpenStack performance-docs test plan "OpenStack reliability testing,
version 2", extended by osha:

- detection time: from the fault's actual inject time to the first bad observation it
  caused, per monitor;
- service downtime: from the first to the last error of a target or runner in the fault's
  window, ± half the gaps to the neighbouring good observations;
- MTTR / time to recover: targets, from the start of the revert (or the inject, for a
  self-healing fault) until steadily up again; runners, the sliding-window method: the
  stretch where the mean duration of WINDOW consecutive iterations exceeds the baseline
  mean + K·sd (baseline: the iterations before the first fault, after a warm-up cut;
  defaults window 21, k 4, warm-up 10);
- degradation: mean duration in that stretch - the baseline mean (absolute) and their ratio,
  each ± its 95 % Student t-interval; the same per atomic action (Rally's nova.boot_server,
  ...) against that action's own baseline;
- availability: time up / time observed per target;
- soak cycles (a soak's ledger): per cycle the faults, crashes, targets down, downtime, MTTR
  (the longest time to recover of the cycle's faults) and osha's own RSS, with
  least-squares trends per cycle (MTTR, downtime, availability) and osha's RSS growth from
  cycle 5 to the last.

SLOs default to the [slo] table of the profile recorded in the ledger. --slo FILE (a TOML
file with an [slo] table) replaces them; --slo key=value changes one, e.g.
--slo max_recovery_s=60 --slo max_downtime_s.endpoint:compute=5. Re-judging needs no re-run.

A damaged ledger (a corrupt stretch, a record that does not decode, a sequence gap, a
damaged header, a cleanly closed ledger that does not match its closed.json) is never a
pass: the report says where it is damaged and what was skipped, JUnit carries a failing
ledger-integrity case, and the exit code is 1. --accept-damaged judges the intact part
anyway, and the output says so.

With two ledgers, A and B are compared side by side (B - A); if they come from different
campaigns, the report says so.

--aggregate LEDGER... combines ledgers of one profile (the runs of osha campaign start
PROFILE --repeat N; ledgers of different profiles are refused, exit 2): per fault (disruptor
id and action) and figure (detection, downtime, time to recover, per runner degradation,
ratio and MTTR) n, the mean, the sample sd and the 95 % t-interval mean ± t_{0.975,n-1}·sd/√n.
--ci-target 1s (or 10% of the mean) adds the runs needed: the smallest n with
t_{0.975,n-1}·sd/√n <= the target, sd as observed. Exit code: the worst of the runs.

Exit code of one or two ledgers: the verdict (0 pass, 1 an SLO violated or the ledger
damaged, 3 the run was aborted; of B when comparing, or 1 when B passes but A is a damaged
ledger), 2 for invalid input.
"""


# `osha report`'s arguments and options (a parameter's name gives its flag unless named)
LedgerArg = Annotated[Path, typer.Argument(help="A run directory, like runs/RUN-ID.osha.")]
MoreArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="LEDGER_B",
        help="A second run directory: compare A and B side by side; with --aggregate, any number.",
    ),
]
AggregateOpt = Annotated[
    bool,
    typer.Option(
        "--aggregate",
        help="Combine ledgers of one profile: per fault n, mean, sd and 95 % t-interval.",
    ),
]
CiTargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ci-target",
        metavar="1s|10%",
        help="With --aggregate: the runs needed for each interval's half-width to reach "
        "this (seconds; % of the mean for ratios, or for all without seconds).",
    ),
]
JsonOpt = Annotated[
    str | None,
    typer.Option("--json", metavar="FILE|-", help="Write the JSON report (osha.report/1)."),
]
JunitOpt = Annotated[
    Path | None, typer.Option("--junit", help="Write JUnit XML: one test case per SLO.")
]
HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", help="Write one self-contained HTML file with the timeline."),
]
SloOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        metavar="FILE|KEY=VALUE",
        help="Objectives: a TOML file with an [slo] table, and/or key=value changes (repeatable).",
    ),
]
WindowOpt = Annotated[int, typer.Option(help="Sliding-window size (iterations).", min=1)]
KOpt = Annotated[
    float,
    typer.Option(help="Degraded above baseline mean + k·sd.", min=0, callback=finite),
]
WarmUpOpt = Annotated[int, typer.Option(help="Iterations cut from the baseline.", min=0)]
SteadyOpt = Annotated[
    float,
    typer.Option(help="Seconds up before a target counts as recovered.", min=0, callback=finite),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdict table.")]
AcceptDamagedOpt = Annotated[
    bool,
    typer.Option(
        "--accept-damaged",
        help="Judge the intact part of a damaged ledger anyway (the output says so).",
    ),
]


def _slo(run_dir: Path, slo_args: list[str]) -> SloSpec | None:
    """The objectives from ``--slo`` arguments, or None for the recorded ones."""
    if not slo_args:
        return None
    files = [a for a in slo_args if "=" not in a]
    overrides = [a for a in slo_args if "=" in a]
    if len(files) > 1:
        raise SloError(
            f"--slo names {len(files)} files: {', '.join(files)}",
            hint="give one SLO file; change single objectives with --slo key=value",
        )
    base = load_slo_file(Path(files[0])) if files else recorded_slo(run_dir)
    return apply_overrides(base, overrides)


def _write(text: str, target: str, what: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SloError(
            f"cannot write the {what} to {path}: {exc.strerror or exc}",
            hint="check that the folder exists and is writable",
        ) from exc
    typer.echo(f"wrote {what}: {path}", err=True)


def report(
    ledger: LedgerArg,
    more: MoreArg = None,
    *,
    aggregate_runs: AggregateOpt = False,
    ci_target: CiTargetOpt = None,
    json_out: JsonOpt = None,
    junit: JunitOpt = None,
    html: HtmlOpt = None,
    slo: SloOpt = None,
    window: WindowOpt = 21,
    k: KOpt = 4.0,
    warm_up: WarmUpOpt = 10,
    steady_s: SteadyOpt = 10.0,
    quiet: QuietOpt = False,
    accept_damaged: AcceptDamagedOpt = False,
) -> None:
    options = AnalysisOptions(
        window=window, k=k, warm_up=warm_up, steady_s=steady_s, accept_damaged=accept_damaged
    )
    others = more or []
    spec = _slo(ledger, slo or [])
    if aggregate_runs:
        target = CiTarget.parse(ci_target) if ci_target else None
        agg = aggregate([ledger, *others], slo=spec, options=options, target=target)
        code = _aggregated(agg, json_out=json_out, junit=junit, html=html)
    else:
        _plain_arguments(others, ci_target)
        a = analyze(ledger, slo=spec, options=options)
        if not others:
            code = _single(a, json_out=json_out, junit=junit, html=html, quiet=quiet)
        else:
            b = analyze(others[0], slo=spec, options=options)
            code = _pair(a, b, json_out=json_out, junit=junit, html=html)
    if code:
        raise typer.Exit(code)


def _plain_arguments(others: list[Path], ci_target: list[str] | None) -> None:
    """Without --aggregate: at most two ledgers, and no --ci-target."""
    if len(others) > 1:
        raise OshaError(
            f"{1 + len(others)} ledgers given: osha report reads one, or compares two",
            hint="combine more with osha report --aggregate LEDGER...",
            exit_code=EXIT_INVALID,
        )
    if ci_target:
        raise OshaError(
            "--ci-target needs --aggregate (it plans repeated runs)",
            hint="osha report --aggregate LEDGER... --ci-target 1s",
            exit_code=EXIT_INVALID,
        )


def _aggregated(
    agg: Aggregate, *, json_out: str | None, junit: Path | None, html: Path | None
) -> int:
    """Ledgers of one profile combined; the worst of their exit codes."""
    if json_out != "-":
        typer.echo(terminal_safe(render_aggregate(agg)))
    if json_out:
        _write(dumps(aggregate_to_dict(agg)), json_out, "JSON aggregate")
    if junit:
        _write(aggregate_junit(agg), str(junit), "JUnit aggregate")
    if html:
        _write(aggregate_html(agg), str(html), "HTML aggregate")
    return agg.exit_code


def _single(
    a: Analysis, *, json_out: str | None, junit: Path | None, html: Path | None, quiet: bool
) -> int:
    """One ledger: print and write its reports; the verdict's exit code."""
    if json_out != "-":
        text = render_verdict(a.verdict) if quiet else render_summary(a)
        if quiet:
            text = "\n".join([*damage_lines(a, ""), text])
        typer.echo(terminal_safe(text))
    if json_out:
        _write(dumps(to_dict(a)), json_out, "JSON report")
    _write_files(a, junit, html, "")
    return a.verdict.exit_code


def _write_files(a: Analysis, junit: Path | None, html: Path | None, of: str) -> None:
    """The JUnit and HTML reports of ``a`` (``of``: " of B" when comparing)."""
    if junit:
        _write(to_junit(a), str(junit), f"JUnit report{of}")
    if html:
        from osha.report.html import render_html  # noqa: PLC0415 - matplotlib is slow to import; only --html needs it

        _write(render_html(a), str(html), f"HTML report{of}")


def _pair(
    a: Analysis, b: Analysis, *, json_out: str | None, junit: Path | None, html: Path | None
) -> int:
    """Two ledgers side by side; B's reports are written; B's exit code (or A's damage)."""
    comparison = compare(a, b)
    if json_out != "-":
        typer.echo(terminal_safe(render_comparison(comparison)))
    different = _different_campaigns(a, b)
    if different:
        typer.echo(terminal_safe(different), err=True)
    if json_out:
        _write(dumps(comparison_to_dict(comparison)), json_out, "JSON comparison")
    _write_files(b, junit, html, " of B")
    code = b.verdict.exit_code
    if code == 0 and not a.verdict.passed and a.run.damage.damaged:
        code = a.verdict.exit_code  # A cannot be compared with trust either
    return code


report.__doc__ = HELP


def _different_campaigns(a: Analysis, b: Analysis) -> str:
    """A note when A and B come from different campaigns (names or profiles); "" if not."""
    ra, rb = a.run, b.run
    same_name = ra.campaign_name == rb.campaign_name
    if same_name and Path(ra.profile_path).name == Path(rb.profile_path).name:
        return ""
    return (
        f"note: A and B are different campaigns (A: {ra.campaign_name or '?'!r} from "
        f"{ra.profile_path or '?'}; B: {rb.campaign_name or '?'!r} from {rb.profile_path or '?'}"
        "); subjects are paired by name, so compare only what both watched"
    )


def register(app: typer.Typer) -> None:
    """Mount ``osha report`` on the root app."""
    app.command("report", help=HELP, no_args_is_help=True)(report)
