"""Per-target state tracking: observations in, ``monitor.state`` changes out.

A tracker remembers, for every target, its current state and the time of the last
observation in that state. When an observation disagrees, the change carries both bounds of
the true transition: the last observation in the old state (``last_good_mono_s``) and the
first in the new one (``first_bad_mono_s``). The first observation of a target is a change
from ``unknown`` with no lower bound, so the ledger always records the initial state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from osha.messages.monitor import State, StateChange
from osha.plugin import PluginContext

__all__ = ["StateTracker", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change, before it becomes a message."""

    target: str
    state: State
    previous: State
    last_good_mono_s: float | None
    first_bad_mono_s: float
    evidence: str = ""


@dataclass(slots=True)
class _Entry:
    state: State
    last_seen_mono_s: float


class StateTracker:
    """Thread-safe. ``observe`` returns the transition it caused, if any; ``emit`` also sends
    it as a :class:`~osha.messages.monitor.StateChange` through a plugin context."""

    def __init__(self, ctx: PluginContext | None = None) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def state(self, target: str) -> State:
        with self._lock:
            entry = self._entries.get(target)
            return entry.state if entry else "unknown"

    def states(self) -> dict[str, State]:
        with self._lock:
            return {t: e.state for t, e in self._entries.items()}

    def last_seen(self, target: str) -> float | None:
        with self._lock:
            entry = self._entries.get(target)
            return entry.last_seen_mono_s if entry else None

    def observe(
        self,
        target: str,
        state: State,
        at_mono_s: float,
        evidence: str = "",
        *,
        since_mono_s: float | None = None,
    ) -> Transition | None:
        """Record that ``target`` was in ``state`` at ``at_mono_s``.

        ``since_mono_s`` is an earlier time at which the new state is known to hold already
        (e.g. the start time of a new process): it tightens ``first_bad_mono_s``, but never
        below the last observation in the old state.
        """
        with self._lock:
            entry = self._entries.get(target)
            if entry is None:
                self._entries[target] = _Entry(state, at_mono_s)
                return Transition(target, state, "unknown", None, at_mono_s, evidence)
            if entry.state == state:
                entry.last_seen_mono_s = max(entry.last_seen_mono_s, at_mono_s)
                return None
            last_good = entry.last_seen_mono_s
            first_bad = at_mono_s
            if since_mono_s is not None:
                first_bad = min(at_mono_s, max(since_mono_s, last_good))
            first_bad = max(first_bad, last_good)
            change = Transition(target, state, entry.state, last_good, first_bad, evidence)
            entry.state = state
            entry.last_seen_mono_s = at_mono_s
            return change

    def emit(
        self,
        target: str,
        state: State,
        at_mono_s: float,
        evidence: str = "",
        *,
        since_mono_s: float | None = None,
    ) -> Transition | None:
        """``observe``, then emit the change (if any) as a ``monitor.state`` message."""
        change = self.observe(target, state, at_mono_s, evidence, since_mono_s=since_mono_s)
        if change is not None:
            self.send(change)
        return change

    def send(self, change: Transition) -> None:
        """Emit a transition through the context given at construction."""
        if self._ctx is None:
            raise RuntimeError("StateTracker was built without a plugin context; pass ctx=")
        self._ctx.emit(
            StateChange,
            target=change.target,
            state=change.state,
            previous=change.previous,
            last_good_mono_s=change.last_good_mono_s,
            first_bad_mono_s=change.first_bad_mono_s,
            evidence=change.evidence,
        )

    def touch(self, target: str, at_mono_s: float) -> None:
        """Record that ``target`` is still in its current state at ``at_mono_s`` (e.g. an
        agent's heartbeat that re-confirms everything it watches). No-op for new targets."""
        with self._lock:
            entry = self._entries.get(target)
            if entry is not None and at_mono_s > entry.last_seen_mono_s:
                entry.last_seen_mono_s = at_mono_s

    def forget(self, target: str) -> None:
        """Stop tracking a target (it left the inventory)."""
        with self._lock:
            self._entries.pop(target, None)
