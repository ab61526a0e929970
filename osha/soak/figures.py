"""The figures a soak is accepted on, read from its ledger: what an operator quotes on Monday.

:func:`soak_figures` runs one analysis of the run (:func:`osha.analysis.analyze`) and keeps:

- the cycles: run, ok, failed, overruns, faults skipped while the chaos clock was held;
- the faults: leased, injected (and unconfirmed: the holder was killed first), reverted,
  left in place (unreverted), refused;
- osha's own faults: self-chaos kills, actor crashes and restarts;
- osha's main-process RSS at cycles 5, 100, 250 and the last, and its least-squares slope per
  hour from cycle 5 (:attr:`osha.analysis.SoakSummary.rss_slope_bytes_per_h`) and over the
  second half of the cycles (a leak grows there too; a warm-up does not).

``scripts/soak_figures.py RUN_DIR`` prints them; ``scripts/bench_soak.py`` uses them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from osha.analysis import CycleRow, FaultStatus, analyze, rss_slope_per_h

__all__ = ["RSS_CYCLES", "SoakFigures", "soak_figures"]

#: The cycles whose RSS is quoted (and the last one).
RSS_CYCLES = (5, 100, 250)
_MIB = 2**20


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakFigures:
    run_id: str
    hours: float  # from the first cycle's start to the last one's end
    cycles: int
    cycles_ok: int
    cycles_failed: int
    overruns: int
    skipped: int
    leased: int
    injected: int
    unconfirmed: int
    reverted: int
    unreverted: int
    refused: int
    failed: int  # the inject failed before a lease was granted: nothing injected
    self_chaos_kills: int
    crashes: int
    restarts: int
    rss_at: tuple[tuple[int, int], ...]  # (cycle, bytes): 5, 100, 250 (if run) and the last
    rss_slope_bytes_per_h: float | None  # from cycle 5
    rss_slope_late_bytes_per_h: float | None  # over the second half of the cycles
    verdict: str

    def render(self) -> str:
        rss = ", ".join(f"cycle {c}: {b / _MIB:.1f} MiB" for c, b in self.rss_at) or "-"
        return "\n".join([
            f"soak {self.run_id}: {self.cycles} cycles in {self.hours:.2f} h",
            f"  cycles ok {self.cycles_ok}, failed {self.cycles_failed}; overruns "
            f"{self.overruns}; faults skipped while the clock was held {self.skipped}",
            f"  faults: {self.leased} leased, {self.injected} injected (+{self.unconfirmed} "
            f"unconfirmed: holder killed first), {self.reverted} reverted, {self.unreverted} "
            f"NOT reverted, {self.refused} refused, {self.failed} failed before a lease",
            f"  osha's own: {self.self_chaos_kills} self-chaos kills, {self.crashes} actor "
            f"crashes, {self.restarts} restarts",
            f"  main RSS: {rss}",
            f"  main RSS slope: {_per_h(self.rss_slope_bytes_per_h)} from cycle 5, "
            f"{_per_h(self.rss_slope_late_bytes_per_h)} over the second half (goal < 5 MiB/h)",
            f"  verdict: {self.verdict}",
        ])  # fmt: skip


def soak_figures(run_dir: Path) -> SoakFigures:
    """The figures of the soak recorded in ``run_dir``. ValueError if it holds no cycle."""
    a = analyze(Path(run_dir))
    soak = a.soak
    if soak is None or not soak.cycles:
        raise ValueError(f"{run_dir} holds no soak cycle (is it a soak's ledger?)")
    rows = soak.cycles
    ends = [r.end_s for r in rows if r.end_s is not None]
    status = [f.status for f in a.faults]
    return SoakFigures(
        run_id=a.run.run_id,
        hours=((ends[-1] if ends else rows[-1].start_s) - rows[0].start_s) / 3600.0,
        cycles=len(rows),
        cycles_ok=soak.cycles_ok,
        cycles_failed=soak.cycles_failed,
        overruns=soak.overruns,
        skipped=soak.skipped,
        leased=sum(f.granted_s is not None for f in a.faults),
        injected=sum(f.injected_s is not None for f in a.faults),
        unconfirmed=sum(f.unconfirmed for f in a.faults),
        reverted=status.count(FaultStatus.REVERTED),
        unreverted=status.count(FaultStatus.UNREVERTED),
        refused=status.count(FaultStatus.REFUSED),
        failed=status.count(FaultStatus.FAILED),
        self_chaos_kills=sum(r.self_chaos_kills for r in rows),
        crashes=sum(x.crashes for x in a.actors),
        restarts=sum(x.restarts for x in a.actors),
        rss_at=_rss_at(rows),
        rss_slope_bytes_per_h=soak.rss_slope_bytes_per_h,
        rss_slope_late_bytes_per_h=rss_slope_per_h(rows[len(rows) // 2 :]),
        verdict=a.verdict.summary,
    )


def _rss_at(rows: tuple[CycleRow, ...]) -> tuple[tuple[int, int], ...]:
    by_cycle = {r.cycle: r.osha_rss_bytes for r in rows if r.osha_rss_bytes is not None}
    wanted = [c for c in RSS_CYCLES if c in by_cycle]
    if by_cycle:
        wanted.append(max(by_cycle))
    return tuple((c, by_cycle[c]) for c in dict.fromkeys(wanted))


def _per_h(value: float | None) -> str:
    return "-" if value is None else f"{value / _MIB:+.2f} MiB/h"
