"""The campaign's own records (sender ``campaign``) and its phase clock.

Every phase is a ``campaign.phase`` start record and an end record (``ok``, ``detail``), in
order; :class:`Recorder` also keeps the live picture's phase current.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from osha.messages import Message, stamp
from osha.messages.campaign import Phase, PhaseChange

__all__ = ["SENDER", "PhaseResult", "Recorder", "Writer"]

SENDER = "campaign"

M = TypeVar("M", bound=Message)


class Writer(Protocol):
    def write(self, msg: Message) -> None: ...


class _PhaseListener(Protocol):
    def set_phase(self, phase: Phase, planned_s: float | None) -> None: ...


@dataclass(slots=True)
class PhaseResult:
    """What a phase body reports on its way out: ``ok`` and a one-line ``detail``."""

    ok: bool = True
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, detail: str) -> None:
        self.ok = False
        self.detail = detail


class Recorder:
    """Stamps and writes the campaign's records; thread-safe (own sequence from 1)."""

    def __init__(self, sink: Writer, listener: _PhaseListener) -> None:
        self._sink = sink
        self._listener = listener
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.timeline: list[tuple[Phase, float, float, bool]] = []  # phase, start, end, ok

    def record(self, cls: type[M], /, **fields: Any) -> M:
        with self._lock:
            msg = stamp(cls, SENDER, next(self._seq), **fields)
            self._sink.write(msg)  # under the lock: this sender's seq reaches the ledger in order
        return msg

    @contextmanager
    def phase(self, phase: Phase, planned_s: float | None = None) -> Iterator[PhaseResult]:
        """Record the phase's start, run the body, record its end (``ok=False`` if the body
        raised or said so). The exception, if any, goes on after the end record."""
        self._listener.set_phase(phase, planned_s)
        self.record(PhaseChange, phase=phase, event="start")
        started_s = time.time()
        result = PhaseResult()
        try:
            yield result
        except BaseException as exc:
            detail = result.detail or f"{type(exc).__name__}: {exc}"
            self.record(PhaseChange, phase=phase, event="end", ok=False, detail=detail[:500])
            self.timeline.append((phase, started_s, time.time(), False))
            raise
        self.record(PhaseChange, phase=phase, event="end", ok=result.ok, detail=result.detail)
        self.timeline.append((phase, started_s, time.time(), result.ok))
