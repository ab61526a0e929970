"""The live status of a campaign, typed: what :meth:`LiveState.snapshot` gives, what
``status.json`` holds and what reading it back returns.

:class:`Status` and its parts are frozen dataclasses. :meth:`Status.to_json` gives the plain
data of ``status.json`` (its shape is fixed: operators' scripts read it, and
``tests/unit/test_status.py`` pins it); :meth:`Status.from_json` builds a :class:`Status`
again, checking every key and type, so a damaged file is one clean error that names its key.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from osha.messages import Phase, State
from osha.schema import to_raw

__all__ = [
    "CycleVerdict",
    "FaultCounts",
    "FinalVerdict",
    "LeaseStatus",
    "NextFault",
    "PhaseDone",
    "RunnerView",
    "SoakStatus",
    "Status",
    "StatusError",
    "TargetStatus",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class StatusError(ValueError):
    """``status.json`` does not have the shape of a :class:`Status`; ``key`` names where."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PhaseDone:
    """A campaign phase that has ended."""

    phase: Phase
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One target as one monitor sees it now."""

    state: State
    since_wall_s: float
    changes: int


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """A fault lease held now."""

    what: str
    holder: str
    held_s: float
    down_s: float
    injected: bool


@dataclass(frozen=True, slots=True)
class FaultCounts:
    """The faults so far, by outcome."""

    injected: int = 0
    inject_failed: int = 0
    refused: int = 0
    reverted: int = 0
    revert_failed: int = 0

    @property
    def failed(self) -> int:
        """Injections and reverts that failed."""
        return self.inject_failed + self.revert_failed


@dataclass(frozen=True, slots=True)
class RunnerView:
    """One runner's iterations so far."""

    ok: int
    failed: int
    success_rate: float | None
    status: str
    last_error: str
    last_duration_s: float


@dataclass(frozen=True, slots=True)
class FinalVerdict:
    """The verdict, once the campaign has judged its ledger."""

    passed: bool
    exit_code: int
    summary: str
    slos: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class NextFault:
    """The next planned fault not yet leased."""

    what: str
    at_wall_s: float


@dataclass(frozen=True, slots=True)
class CycleVerdict:
    """How one soak cycle ended."""

    cycle: int
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SoakStatus:
    """Where a soak is: the cycle running and the last few cycles' verdicts."""

    cycle: int
    cycles_planned: int
    last_verdicts: tuple[CycleVerdict, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """The whole live picture at ``updated_wall_s``. The field order is ``status.json``'s."""

    run_id: str
    run_dir: str
    started_wall_s: float
    updated_wall_s: float
    phase: Phase
    phase_elapsed_s: float
    phase_left_s: float | None
    phases_done: tuple[PhaseDone, ...]
    targets: Mapping[str, TargetStatus]
    leases: Mapping[str, LeaseStatus]
    faults: FaultCounts
    runners: Mapping[str, RunnerView]
    actors: Mapping[str, str]
    restarts: Mapping[str, int]
    crashes: Mapping[str, int]
    stopping: str
    finished: bool
    verdict: FinalVerdict | None
    notes: tuple[str, ...]
    next_fault: NextFault | None
    soak: SoakStatus | None

    def to_json(self) -> dict[str, Any]:
        """The plain data of ``status.json`` (lists, objects, enum values)."""
        raw: dict[str, Any] = to_raw(self)
        return raw

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Status:
        """A :class:`Status` from ``status.json``'s data; :class:`StatusError` names the first
        key that is missing, unknown or of the wrong type."""
        return _build(cls, data, "")


def _build(cls: type[T], data: Mapping[str, Any], prefix: str) -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise StatusError(_key(prefix, unknown[0]), "unknown key")
    values: dict[str, Any] = {}
    for name in names:
        if name not in data:
            raise StatusError(_key(prefix, name), "missing")
        values[name] = _value(hints[name], data[name], _key(prefix, name))
    return cls(**values)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _value(tp: Any, value: Any, key: str) -> Any:
    """``value`` as ``tp``: the types :class:`Status` uses, nothing more."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (arm,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(arm, value, key)
    if origin is tuple and isinstance(value, list):
        item = typing.get_args(tp)[0]
        return tuple(_value(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Mapping and isinstance(value, dict):
        item = typing.get_args(tp)[1]
        return {str(k): _value(item, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _build(tp, value, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise StatusError(key, f"{value!r:.40} is not a {tp.__name__}") from None
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, bool, str) and type(value) is tp:
        return value
    raise StatusError(key, f"{value!r:.40} is not a {getattr(tp, '__name__', tp)}")
