"""Number and table formatting shared by the renderers: fixed precision, so that the same
analysis always renders to the same text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osha.analysis import CycleRow, FaultReport, RunnerReport, SoakSummary, VipMove

__all__ = [
    "ATOMIC_HEADERS",
    "MIB",
    "SOAK_EDGE",
    "SOAK_MAX_ROWS",
    "VIP_HEADERS",
    "atomic_rows",
    "ci_ratio",
    "ci_secs",
    "clock_held",
    "fault_times",
    "mib",
    "pct",
    "pm",
    "ratio",
    "secs",
    "soak_trends",
    "table",
    "terminal_safe",
    "unfinished_text",
    "vip_rows",
    "when",
    "xml_safe",
]

MIB = 2**20
#: a soak with more cycles shows only the first and the last SOAK_EDGE of them
SOAK_MAX_ROWS = 40
SOAK_EDGE = 10


#: C0 controls but tab and newline, DEL, C1 controls, and the Unicode controls that reorder
#: or hide text (bidi overrides and isolates, zero-width marks): what a crafted string in a
#: ledger could use to move the cursor, rewrite lines, or make one text read as another
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)
#: characters XML 1.0 cannot carry at all
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with control and escape sequences made visible (``\\x1b``, ``\\u202e``)
    instead of acted on: ledger strings reach the terminal through this."""
    return _UNSAFE.sub(_escape, text)


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids written as ``\\xNN``."""
    return _NOT_XML.sub(_escape, text)


def secs(value: float | None, digits: int = 3) -> str:
    """``12.500 s``, or ``-`` for no value."""
    return "-" if value is None else f"{value:.{digits}f} s"


def pm(value: float | None, bound: float | None, digits: int = 3) -> str:
    """``12.500 ± 0.500 s``."""
    if value is None:
        return "-"
    return f"{value:.{digits}f} ± {bound or 0.0:.{digits}f} s"


def mib(value: float | None, *, sign: bool = False) -> str:
    """Bytes as ``41.5 MiB`` (``+1.2 MiB`` with ``sign``), or ``-`` for no value."""
    if value is None:
        return "-"
    return f"{value / MIB:+.1f} MiB" if sign else f"{value / MIB:.1f} MiB"


def pct(value: float | None, digits: int = 3) -> str:
    """``99.512 %``."""
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def ratio(value: float | None) -> str:
    """``3.00x``."""
    return "-" if value is None else f"{value:.2f}x"


#: the columns of :func:`atomic_rows`
ATOMIC_HEADERS = ("runner", "atomic action", "baseline mean ± sd", "degraded stretch",
                  "mean", "degradation (95 % CI)", "relative (95 % CI)")  # fmt: skip


def atomic_rows(r: RunnerReport) -> list[list[str]]:
    """One row per atomic action of a runner and degraded stretch (one per action, with the
    baseline only, when it has no degraded stretch)."""
    rows = []
    for b in r.atomics:
        base = "-" if b.mean_s is None else f"{b.mean_s:.3f} ± {b.std_s or 0.0:.3f} s (n={b.count})"
        found = False
        for s in r.degraded:
            for d in s.atomics:
                if d.action == b.action:
                    found = True
                    rows.append([
                        r.runner, b.action, base, f"{s.start_s:.1f}-{s.end_s:.1f} s",
                        secs(d.mean_s), ci_secs(d.degradation_s, d.degradation_bound_s),
                        ci_ratio(d.degradation_ratio, d.degradation_ratio_bound)])  # fmt: skip
        if not found:
            rows.append([r.runner, b.action, base, "-", "-", "-", "-"])
    return rows


def unfinished_text(r: RunnerReport) -> str:
    """The iterations the stop cut off: how many, and when they began (run time)."""
    starts = ", ".join(f"{s:.1f}" for s in r.unfinished[:10])
    more = f" and {len(r.unfinished) - 10} more" if len(r.unfinished) > 10 else ""
    return (f"{len(r.unfinished)} iteration(s) cut off by the stop, never ended (not counted "
            f"as ok or failed), started at {starts}{more} s")  # fmt: skip


def ci_secs(value: float | None, bound: float | None, digits: int = 3) -> str:
    """``+2.000 ± 0.150 s``: a signed difference and its confidence half-width (none if
    unknown); ``-`` for no value."""
    if value is None:
        return "-"
    if bound is None:
        return f"{value:+.{digits}f} s"
    return f"{value:+.{digits}f} ± {bound:.{digits}f} s"


def ci_ratio(value: float | None, bound: float | None) -> str:
    """``3.00x ± 0.12``: a ratio and its confidence half-width; ``-`` for no value."""
    if value is None:
        return "-"
    return f"{value:.2f}x" if bound is None else f"{value:.2f}x ± {bound:.2f}"


def when(started_wall_s: float, t: float | None) -> str:
    """Run time ``t`` as ``+123.400 s (12:34:56 UTC)``."""
    if t is None:
        return "-"
    stamp = datetime.fromtimestamp(started_wall_s + t, tz=UTC).strftime("%H:%M:%S")
    return f"+{t:.3f} s ({stamp} UTC)"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """A plain aligned text table."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append(indent + "  ".join("-" * w for w in widths))
    lines += [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def soak_trends(s: SoakSummary) -> str:
    """The one-line trends of a soak: ``MTTR trend +0.012 s/cycle; ...``."""
    avail = s.availability_trend
    rss = (
        f"cycle {s.rss_from_cycle}→{s.rss_to_cycle}: {mib(s.rss_growth_bytes, sign=True)}"
        if s.rss_growth_bytes is not None
        else "-"
    )
    if s.rss_slope_bytes_per_h is not None:
        rss += f", {mib(s.rss_slope_bytes_per_h, sign=True)}/h"
    return (
        f"MTTR trend {_slope(s.mttr_trend_s, 's')}; "
        f"downtime trend {_slope(s.downtime_trend_s, 's')}; "
        f"availability trend {'-' if avail is None else f'{100 * avail:+.4f} pp/cycle'}; "
        f"osha RSS {rss}"
    )


def clock_held(r: CycleRow) -> str:
    """A cycle's chaos-clock column: its overruns (and the wait for them), how late it
    started, the faults skipped meanwhile; ``-`` if none."""
    parts = []
    if r.overruns:
        parts.append(f"{r.overruns} overrun ({r.overrun_wait_s:.2f} s)")
    if r.late_s >= 0.05:
        parts.append(f"late {r.late_s:.2f} s")
    if r.skipped:
        parts.append(f"{r.skipped} skipped")
    return ", ".join(parts) or "-"


def fault_times(f: FaultReport, started_wall_s: float) -> tuple[str, str]:
    """A fault's "injected" and "held" columns. An unconfirmed inject (its holder was killed
    first) says so, and its held time is a bound: from its grant to its revert."""
    if f.unconfirmed:
        bound = f.held_at_most_s
        return "unconfirmed", "-" if bound is None else f"<= {secs(bound)}"
    return when(started_wall_s, f.injected_s), secs(f.held_s)


def _slope(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:+.3f} {unit}/cycle"


VIP_HEADERS = ("vip", "address", "from", "to", "last seen on it", "first seen on it", "within")


def vip_rows(moves: Sequence[VipMove]) -> list[list[str]]:
    """One row per VIP move (:class:`osha.analysis.VipMove`): run seconds."""
    return [[m.target, m.address, m.from_node, m.to_node, f"+{m.last_seen_s:.3f} s",
             f"+{m.first_seen_s:.3f} s", secs(m.within_s)] for m in moves]  # fmt: skip
