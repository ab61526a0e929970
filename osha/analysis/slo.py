"""Service level objectives: the thresholds a run is judged by, and the verdict.

One class, :class:`SloSpec`, is the ``[slo]`` table of a profile (validated by
``osha.schema.build(SloSpec, table, ...)``), the ``[slo]`` table of an ``osha report --slo
FILE`` and the target of ``--slo key=value``. :func:`evaluate` judges an analysis against it;
the result is a :class:`Verdict` whose exit code is 0 (every SLO passed), 1 (an SLO is violated)
or 3 (the run was aborted: its figures cannot pass it). The campaign prints and records exactly
this verdict, so a live run and ``osha report`` on its ledger agree by construction.

Example ``[slo]`` table::

    [slo]
    max_downtime_s = { "endpoint:compute" = 5, "runner:boot-delete" = 30 }
    min_availability = { "node:*" = 0.99 }
    max_detection_s = 10
    max_recovery_s = 60
    min_runner_success = 0.95
    max_runner_mttr_s = 120
    max_degradation_ratio = 3.0
    max_actor_restarts = 0
    require_reverted = true
    max_new_debris = { servers = 0, "*" = 0 }
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from osha.errors import EXIT_ABORTED, EXIT_FAILED, EXIT_INVALID, EXIT_OK, OshaError, ProfileError
from osha.ledger.damage import LedgerDamage
from osha.schema import build
from osha.textfile import InputFileError, read_text

__all__ = [
    "SloError",
    "SloResult",
    "SloSpec",
    "Verdict",
    "apply_overrides",
    "load_slo_file",
    "slo_from_table",
]


class SloError(OshaError, ValueError):
    """An SLO file or ``--slo key=value`` expression is invalid (exit 2)."""

    exit_code = EXIT_INVALID


def _check_ratio(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value}: a ratio between 0 and 1, like 0.95")


@dataclass(frozen=True, slots=True, kw_only=True)
class SloSpec:
    """The objectives. Every field is optional; an unset one is not judged.

    Keys of the per-target tables are target names as monitors report them
    (``endpoint:compute``, ``nova-scheduler@ctl-1``, ``node:ctl-1``) or shell-style patterns of
    them (``node:*``); ``runner:<id>`` names a runner by its profile id. A key that matches
    nothing fails, so that a typo cannot pass silently.

    - ``max_downtime_s``: the total service downtime of each matching target or runner over the
      run, in seconds (the estimate, see :class:`~osha.analysis.model.Episode`); a target
      passes only if its seen downtime plus the time its monitor was blind while faults were
      on fits (:mod:`osha.analysis._blind`): a target nobody could see is not a pass;
    - ``min_availability``: time up / time observed of each matching target (0..1);
    - ``max_detection_s``: every injected fault must be seen by at least one monitor within
      this many seconds of its actual inject time; an unseen fault fails;
    - ``max_recovery_s``: every target a fault took down must be steadily healthy again within
      this many seconds of the fault's revert (or inject, for a self-healing fault); a target
      that never recovers fails;
    - ``min_runner_success``: each runner's successful iterations / all iterations (0..1);
    - ``max_runner_mttr_s``: the longest degraded stretch of any runner (sliding window);
    - ``max_degradation_ratio``: the largest relative degradation of any runner (mean duration
      in a degraded stretch / baseline mean);
    - ``max_actor_restarts``: restarts of supervised actors over the run, all actors together;
    - ``require_reverted``: every injected fault must have been reverted (default true);
    - ``max_new_debris``: per ``[[audits]]`` id (or pattern), how many items the audit after
      the campaign may find that the audit before it did not (servers left in ERROR, Rally
      projects left behind, ...; :mod:`osha.audit`); an audit that did not complete after the
      campaign fails (its count is unknown).
    """

    max_downtime_s: dict[str, float] = field(default_factory=dict)
    min_availability: dict[str, float] = field(default_factory=dict)
    max_detection_s: float | None = None
    max_recovery_s: float | None = None
    min_runner_success: float | None = None
    max_runner_mttr_s: float | None = None
    max_degradation_ratio: float | None = None
    max_actor_restarts: int | None = None
    require_reverted: bool = True
    max_new_debris: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, count in self.max_new_debris.items():
            if count < 0:
                raise ValueError(f"max_new_debris.{key}={count}: a count of items, 0 or more")
        for key, value in self.max_downtime_s.items():
            if value < 0:
                raise ValueError(f"max_downtime_s.{key}={value}: must be >= 0")
        for key, value in self.min_availability.items():
            _check_ratio(f"min_availability.{key}", value)
        _check_ratio("min_runner_success", self.min_runner_success)
        for name in ("max_detection_s", "max_recovery_s", "max_runner_mttr_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value}: must be >= 0")
        if self.max_degradation_ratio is not None and self.max_degradation_ratio < 1:
            raise ValueError(
                f"max_degradation_ratio={self.max_degradation_ratio}: a ratio >= 1, like 2.5"
            )
        if self.max_actor_restarts is not None and self.max_actor_restarts < 0:
            raise ValueError("max_actor_restarts must be >= 0")

    def to_table(self) -> dict[str, Any]:
        """The spec as a TOML-able ``[slo]`` table (unset fields left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (isinstance(value, dict) and not value):
                continue
            out[f.name] = dict(sorted(value.items())) if isinstance(value, dict) else value
        return out


@dataclass(frozen=True, slots=True)
class SloResult:
    """One judged objective. ``name`` is unique and stable: ``max_downtime_s[endpoint:compute]``."""

    name: str
    slo: str
    subject: str
    threshold: float | bool
    value: float | None
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of a run: 0 pass, 1 an SLO violated or the ledger damaged, 3 aborted
    (an aborted run whose ledger is damaged exits 1: the damage comes first).

    A **damaged ledger** (records skipped, unreadable or missing: see
    :class:`~osha.ledger.damage.LedgerDamage`) is never a pass: its figures may be wrong in
    any direction. The verdict says where and what was lost and exits 1, unless the operator
    accepts the damage (``accept_damaged``, ``osha report --accept-damaged``): then the intact
    part is judged as usual and the summary says that it was.
    """

    passed: bool
    exit_code: int
    results: tuple[SloResult, ...]
    aborted: bool = False
    abort_reason: str = ""
    damage: LedgerDamage = field(default_factory=LedgerDamage)
    accepted_damage: bool = False  # the damage was accepted: the intact part was judged

    @classmethod
    def of(
        cls,
        results: Iterable[SloResult],
        *,
        aborted: bool,
        abort_reason: str,
        damage: LedgerDamage | None = None,
        accept_damaged: bool = False,
    ) -> Verdict:
        ordered = tuple(results)
        damage = damage or LedgerDamage()
        failed = any(not r.passed for r in ordered)
        refused = damage.damaged and not accept_damaged
        # damage first: an abort may itself be read from the damage (the records that said
        # the run stopped are the ones lost), so a damaged ledger exits 1 whatever else
        if refused or (failed and not aborted):
            code = EXIT_FAILED
        else:
            code = EXIT_ABORTED if aborted else EXIT_OK
        accepted = damage.damaged and accept_damaged
        return cls(code == EXIT_OK, code, ordered, aborted, abort_reason, damage, accepted)

    @property
    def failed(self) -> tuple[SloResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def slos_dict(self) -> dict[str, dict[str, Any]]:
        """For ``campaign.verdict.slos``: name → threshold, value, passed, detail."""
        return {r.name: r.as_dict() for r in self.results}

    @property
    def summary(self) -> str:
        """One deterministic line: ``PASS: 5/5 SLOs met`` / ``FAIL: ...`` / ``ABORTED: ...`` /
        ``DAMAGED LEDGER: ...``."""
        total = len(self.results)
        met = total - len(self.failed)
        why = self.abort_reason or "the run did not complete"
        if self.damage.damaged and not self.accepted_damage:
            judged = "fails" if self.failed else "would pass"
            judged = f"reads as aborted ({why})" if self.aborted else judged
            return (
                f"DAMAGED LEDGER: {self.damage.summary()}; not judged as a pass (the intact "
                f"part {judged}: {met}/{total} SLOs met; --accept-damaged judges it anyway)"
            )
        if self.aborted:
            return f"ABORTED: {why} ({met}/{total} SLOs met){self._damage_note()}"
        if self.failed:
            names = ", ".join(r.name for r in self.failed)
            return f"FAIL: {met}/{total} SLOs met; violated: {names}{self._damage_note()}"
        return f"PASS: {met}/{total} SLOs met{self._damage_note()}"

    def _damage_note(self) -> str:
        if not self.damage.damaged:
            return ""
        how = "judged as accepted (--accept-damaged)" if self.accepted_damage else "damaged"
        return f" [ledger {how}: {self.damage.summary()}]"


# -- loading ----------------------------------------------------------------------------------


def slo_from_table(table: Mapping[str, Any], *, file: str = "(slo)") -> SloSpec:
    """Build a spec from an ``[slo]`` table; raise :class:`~osha.errors.ProfileError` listing
    every problem (exit 2)."""
    spec, problems = build(SloSpec, table, file=file, key="slo")
    if problems or spec is None:
        raise ProfileError(problems)
    return spec


def load_slo_file(path: Path) -> SloSpec:
    """Read the ``[slo]`` table of a TOML file (a profile or a file with only ``[slo]``)."""
    try:
        data = tomllib.loads(read_text(path, "SLO file", 1024 * 1024))
    except InputFileError as exc:
        raise SloError(
            f"cannot read SLO file {path}: {exc.reason}",
            hint="give a TOML file with an [slo] table, e.g. a campaign profile",
        ) from exc
    except RecursionError:
        raise SloError(f"{path}: nested too deeply to read", hint="flatten it") from None
    except tomllib.TOMLDecodeError as exc:
        raise SloError(f"{path}: not valid TOML: {exc}", hint="check the line it names") from exc
    table = data.get("slo")
    if not isinstance(table, dict):
        raise SloError(
            f"{path} has no [slo] table",
            hint="add one, e.g.\n  [slo]\n  max_recovery_s = 60\n  min_runner_success = 0.95",
        )
    return slo_from_table(table, file=str(path))


def _parse_value(expr: str, raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise SloError(f"--slo {expr!r}: the value is nested too deeply") from None
    except tomllib.TOMLDecodeError:
        if raw and all(c.isalnum() or c in "-_.:@*" for c in raw):
            return raw  # a bare word, e.g. a target name; the schema says if it fits
        raise SloError(
            f"--slo {expr!r}: {raw!r} is not a TOML value",
            hint="write numbers plainly and strings in quotes: --slo max_recovery_s=60, "
            "--slo 'max_downtime_s.endpoint:compute=5'",
        ) from None


def apply_overrides(spec: SloSpec, exprs: Iterable[str]) -> SloSpec:
    """Apply ``key=value`` overrides: ``max_recovery_s=60``, ``max_downtime_s.endpoint:compute=5``
    (one entry of a table; the part after the first dot is the entry's key, dots and colons
    included), ``max_detection_s=none`` (unset). Values are TOML values."""
    table = spec.to_table()
    names = {f.name for f in fields(SloSpec)}
    for expr in exprs:
        key, sep, raw = expr.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise SloError(
                f"--slo {expr!r} is not key=value",
                hint="e.g. --slo max_recovery_s=60 or --slo max_downtime_s.endpoint:compute=5",
            )
        name, dot, entry = key.partition(".")
        if name not in names:
            known = ", ".join(sorted(names))
            raise SloError(f"--slo {expr!r}: unknown SLO {name!r}", hint=f"known SLOs: {known}")
        if not raw:
            raise SloError(
                f"--slo {expr!r} gives {key} no value",
                hint=f"give one (--slo {key}=60), or unset the objective with --slo {key}=none",
            )
        if raw.lower() in ("none", "null"):
            if dot:
                table.get(name, {}).pop(entry, None)
            else:
                table.pop(name, None)
            continue
        value = _parse_value(expr, raw)
        if dot:
            table.setdefault(name, {})
            if not isinstance(table[name], dict):
                raise SloError(f"--slo {expr!r}: {name} is not a table", hint=f"use {name}=VALUE")
            table[name][entry] = value
        else:
            table[name] = value
    try:
        return slo_from_table(table, file="--slo")
    except ProfileError as exc:
        raise SloError(exc.message, hint="fix the --slo expressions listed") from exc


def match(patterns: Mapping[str, float], subjects: Iterable[str]) -> list[tuple[str, str, float]]:
    """(key, subject, threshold) for every key and every subject it matches, keys sorted."""
    subject_list = sorted(set(subjects))
    out: list[tuple[str, str, float]] = []
    for key in sorted(patterns):
        hits = [s for s in subject_list if s == key or fnmatchcase(s, key)]
        out.extend((key, s, patterns[key]) for s in hits)
        if not hits:
            out.append((key, "", patterns[key]))
    return out


def without(spec: SloSpec, **changes: Any) -> SloSpec:
    """A copy of ``spec`` with some fields changed (tests, re-judging)."""
    return replace(spec, **changes)
