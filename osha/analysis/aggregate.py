"""Repeated experiments: ledgers of one profile combined, each fault's figures over the runs.

One HA run's MTTR of 14 s could be 8 s or 20 s on the next; the reference method (OpenStack
performance-docs "reliability testing version 2") repeats each experiment. ``aggregate``
analyses each ledger in turn (one :class:`~osha.analysis.Analysis` in memory at a time) and
keeps, per fault and figure, one value per run:

- a fault is its disruptor id and action (``kill-scheduler kill``); the 2nd fault of the same
  disruptor and action in a run is ``kill-scheduler kill (2)``, paired across runs as
  ``osha report A B`` pairs them (:func:`osha.analysis.compare.occurrences`);
- figures: detection (the fastest monitor's), target downtime (the sum over the targets it
  took down), time to recover (the longest of its targets'), and per runner the absolute
  degradation, the relative degradation (ratio) and the runner's MTTR (the degraded
  stretch's length). A runner the fault did not degrade counts 0 s, 1.00x and 0 s if the
  runner had a baseline to judge it by; without a baseline (too short) it has no value.

Over the ``n`` runs that have a value: the mean, the sample standard deviation ``sd`` (n - 1)
and the 95 % Student-t interval of the mean, ``mean ± t_{0.975,n-1}·sd/√n``
(:func:`osha.analysis.student.t_half_width`; none below two values).

**How many runs are enough.** For a target half-width ``h`` (``--ci-target 1s``, or for every
figure a fraction of its mean, ``--ci-target 10%``), :func:`repetitions` is the smallest
``n >= 2`` with ``t_{0.975,n-1}·sd/√n <= h``, ``sd`` as observed: it starts from the normal
bound ``(1.96·sd/h)²`` (t exceeds 1.96, so no smaller n can do) and steps n up.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.analysis._result import Analysis, analyze
from osha.analysis.compare import fault_downtime_s, fault_recovery_s, injected, occurrences
from osha.analysis.model import FaultReport
from osha.analysis.options import AnalysisOptions
from osha.analysis.slo import SloSpec
from osha.analysis.student import t_half_width
from osha.errors import EXIT_INVALID, LedgerError, OshaError
from osha.ledger import LedgerReader

__all__ = [
    "CONFIDENCE",
    "Aggregate",
    "CiTarget",
    "Figure",
    "RunRef",
    "aggregate",
    "repetitions",
    "same_profile",
]

CONFIDENCE = 0.95
_Z_975 = 1.959963984540054  # the normal 0.975 quantile: t_{0.975,df} > it for every df
_MAX_RUNS = 1_000_000  # beyond this, "too many" is the useful answer


@dataclass(frozen=True, slots=True)
class RunRef:
    """One aggregated run and its own verdict."""

    run_id: str
    run_dir: Path
    seed: int
    exit_code: int
    summary: str
    records: int = 0  # the ledger's records, as read


@dataclass(frozen=True, slots=True)
class CiTarget:
    """The half-width each 95 % interval should reach: ``absolute_s`` for the figures in
    seconds; ``relative`` (a fraction of the figure's mean) for the others, and for all of
    them when no absolute target is given."""

    absolute_s: float | None = None
    relative: float | None = None

    @classmethod
    def parse(cls, texts: Sequence[str]) -> CiTarget:
        """``1s``, ``500ms`` or ``10%`` (each at most once); OshaError (exit 2) otherwise."""
        absolute_s: float | None = None
        relative: float | None = None
        for text in texts:
            value, unit = _split(text)
            if unit == "%":
                if relative is not None:
                    raise _bad_target(text, "a relative target is given twice")
                relative = value / 100.0
            else:
                if absolute_s is not None:
                    raise _bad_target(text, "a target in seconds is given twice")
                absolute_s = value / 1000.0 if unit == "ms" else value
        return cls(absolute_s, relative)

    def half_width(self, fig: Figure) -> float | None:
        """The target half-width for ``fig``; None if none applies (or its mean is 0)."""
        if fig.unit == "s" and self.absolute_s is not None:
            return self.absolute_s
        if self.relative is None or fig.mean is None or fig.mean == 0:
            return None
        return self.relative * abs(fig.mean)

    def describe(self) -> str:
        parts = [] if self.absolute_s is None else [f"{self.absolute_s:g} s"]
        if self.relative is not None:
            parts.append(f"{100 * self.relative:g} % of the mean")
        return " / ".join(parts)


def _split(text: str) -> tuple[float, str]:
    raw = text.strip().lower()
    unit = next((u for u in ("ms", "s", "%") if raw.endswith(u)), "")
    if not unit:
        raise _bad_target(text, "it has no unit")
    try:
        value = float(raw[: -len(unit)])
    except ValueError:
        raise _bad_target(text, "it is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise _bad_target(text, "it must be a finite number above 0")
    return value, unit


def _bad_target(text: str, problem: str) -> OshaError:
    return OshaError(
        f"--ci-target {text!r}: {problem}",
        hint="give a half-width in seconds (--ci-target 1s, 500ms) and/or relative to each "
        "figure's mean (--ci-target 10%)",
        exit_code=EXIT_INVALID,
    )


def repetitions(sd: float, target: float) -> int | None:
    """The smallest ``n >= 2`` with ``t_{0.975,n-1}·sd/√n <= target``; None if more than a
    million runs would be needed."""
    if target <= 0:
        raise ValueError(f"the target half-width must be > 0, not {target}")
    start = max(2, math.ceil((_Z_975 * sd / target) ** 2))
    if start > _MAX_RUNS:
        return None
    # bounded: t_{0.975,n-1} falls towards 1.96, so a few steps from the normal bound do it
    for n in range(start, _MAX_RUNS + 1):
        half = t_half_width(sd, n, CONFIDENCE)
        if half is not None and half <= target:
            return n
    return None


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of one fault over the runs: ``values`` holds one value per run that has
    one (``runs - n`` runs had none: the fault did not happen, no monitor saw it, a target
    never recovered, a runner had no baseline)."""

    fault: str
    metric: str
    unit: str  # "s" or "x" (a ratio)
    values: tuple[float, ...]
    runs: int

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> int:
        return self.runs - self.n

    @property
    def mean(self) -> float | None:
        return math.fsum(self.values) / self.n if self.values else None

    @property
    def sd(self) -> float | None:
        """The sample standard deviation (divisor n - 1); None below two values."""
        mean = self.mean
        if mean is None or self.n < 2:
            return None
        return math.sqrt(math.fsum((v - mean) ** 2 for v in self.values) / (self.n - 1))

    @property
    def half_width(self) -> float | None:
        sd = self.sd
        return None if sd is None else t_half_width(sd, self.n, CONFIDENCE)

    @property
    def interval(self) -> tuple[float, float] | None:
        mean, half = self.mean, self.half_width
        return None if mean is None or half is None else (mean - half, mean + half)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Ledgers of one profile, combined."""

    campaign_name: str
    profile_path: str
    runs: tuple[RunRef, ...]
    figures: tuple[Figure, ...]
    options: AnalysisOptions
    target: CiTarget | None = None

    @property
    def exit_code(self) -> int:
        """The worst of the runs' exit codes (0 pass < 1 failed < 3 aborted)."""
        return max((r.exit_code for r in self.runs), default=0)

    def needed(self, fig: Figure) -> int | None:
        """How many runs bring ``fig``'s interval under the target (None: no target, no
        sd yet, or more than a million)."""
        half = self.target.half_width(fig) if self.target is not None else None
        sd = fig.sd
        return None if half is None or sd is None else repetitions(sd, half)


def aggregate(
    run_dirs: Sequence[Path],
    *,
    slo: SloSpec | None = None,
    options: AnalysisOptions | None = None,
    target: CiTarget | None = None,
) -> Aggregate:
    """Combine the ledgers of one profile (OshaError, exit 2, if their profiles differ)."""
    if not run_dirs:
        raise ValueError("aggregate needs at least one ledger")
    same_profile(run_dirs)
    opts = options or AnalysisOptions()
    values: dict[tuple[str, str], list[float]] = {}
    units: dict[tuple[str, str], str] = {}
    runs: list[RunRef] = []
    name = path = ""
    for run_dir in run_dirs:
        a = analyze(Path(run_dir), slo=slo, options=opts)
        name, path = name or a.run.campaign_name, path or a.run.profile_path
        runs.append(RunRef(a.run.run_id, Path(run_dir), a.run.seed, a.verdict.exit_code,
                           a.verdict.summary, a.run.records))  # fmt: skip
        for fault, metric, unit, value in _samples(a):
            units[(fault, metric)] = unit
            bucket = values.setdefault((fault, metric), [])
            if value is not None:
                bucket.append(value)
        del a  # one analysis in memory at a time
    figures = tuple(
        Figure(fault, metric, units[(fault, metric)], tuple(v), len(runs))
        for (fault, metric), v in values.items()
    )
    return Aggregate(name, path, tuple(runs), figures, opts, target)


def _samples(a: Analysis) -> Iterator[tuple[str, str, str, float | None]]:
    """(fault, metric, unit, value) of every injected fault of one run."""

    def key(f: FaultReport) -> str:
        return f"{f.holder} {f.action}".strip()

    for fault, f in occurrences(injected(a), key).items():
        yield fault, "detection", "s", f.detection_s
        yield fault, "downtime", "s", fault_downtime_s(f)
        yield fault, "time to recover", "s", fault_recovery_s(f)
        impacts = {i.runner: i for i in f.runners}
        for r in a.runners:
            judged = r.baseline_mean_s is not None  # no baseline: no degradation can be told
            i = impacts.get(r.runner)
            yield (
                fault,
                f"{r.runner} degradation",
                "s",
                _value(i.degradation_s if i else None, 0.0, judged),
            )
            yield (
                fault,
                f"{r.runner} degradation ratio",
                "x",
                _value(i.degradation_ratio if i else None, 1.0, judged),
            )
            yield fault, f"{r.runner} MTTR", "s", _value(i.mttr_s if i else None, 0.0, judged)


def _value(value: float | None, undisturbed: float, judged: bool) -> float | None:
    if value is not None:
        return value
    return undisturbed if judged else None


def same_profile(run_dirs: Sequence[Path]) -> None:
    """Raise OshaError (exit 2) unless every ledger recorded the same profile (the seed
    aside: ``--repeat`` gives each run its own)."""
    first = Path(run_dirs[0])
    reference = _profile(first)
    for other in run_dirs[1:]:
        where = _difference(reference, _profile(Path(other)), "")
        if where is not None:
            raise OshaError(
                f"{other} ran another profile than {first}: they differ at {where or 'the top'}",
                hint="aggregate ledgers of one profile, e.g. the runs of "
                "osha campaign start PROFILE --repeat N",
                exit_code=EXIT_INVALID,
            )


def _profile(run_dir: Path) -> dict[str, Any]:
    header = LedgerReader(run_dir).header()
    if header is None:
        header = LedgerReader(run_dir).header_copy()
    if header is None:
        raise LedgerError(
            f"{run_dir}: its header (and its copy) is damaged: the profile it ran is unknown",
            hint="leave it out of the aggregate; osha ledger verify tells what is damaged",
        )
    profile = dict(header.profile)
    campaign = profile.get("campaign")
    if isinstance(campaign, dict):
        profile["campaign"] = {k: v for k, v in campaign.items() if k != "seed"}
    return profile


def _difference(a: object, b: object, where: str) -> str | None:
    """The first dotted key where ``a`` and ``b`` differ; None if they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            found = _difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
            if found is not None:
                return found
        return None
    return None if a == b else where
