"""Revert with retries: every attempt recorded, backoff, a deadline, and a loud failure.

A fault is never retried; a *revert* is, because leaving a fault in place is the one outcome
an operator must never get silently.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from osha.faults import _switch as switch
from osha.faults._lease import Lease
from osha.faults.deadman import expiry_bound_s
from osha.messages import FaultRevertAttempted, FaultReverted, FaultRevertFailed, Message
from osha.messages.fault import RevertBy

__all__ = ["BrokerReport", "RetryPolicy", "RevertThreads", "revert_with_retry"]

log = logging.getLogger("osha.faults")

M = TypeVar("M", bound=Message)

_ABORT_JOIN_S = 30.0  # after join()'s timeout: the attempts in flight may still finish


class Emit(Protocol):
    def __call__(self, cls: type[M], /, **fields: Any) -> M: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff from ``initial_s`` doubling to ``max_s``. Attempts go on until the lease's
    ``revert_by_wall_s`` (for a lease with a dead-man switch, until one attempt after the
    node's own revert at that deadline: it may have cut osha off until then), and for at least
    ``min_window_s`` from the first attempt (a revert that starts after the deadline, e.g. at
    the end of a run, still gets a fair chance)."""

    initial_s: float = 0.5
    max_s: float = 10.0
    min_window_s: float = 60.0


def revert_with_retry(
    lease: Lease,
    revert: Callable[[Lease], str],
    emit: Emit,
    *,
    by: RevertBy,
    policy: RetryPolicy,
    abort: threading.Event | None = None,
    collect: switch.Collector | None = None,
) -> bool:
    """Revert ``lease`` until it works or the window closes; True if reverted.

    Records ``fault.revert_attempted`` for each attempt, then ``fault.reverted`` or
    ``fault.revert_failed`` (``final`` on the last one). ``abort`` ends the retries early
    (the last failure is then final). Once reverted, ``collect`` disarms the lease's dead-man
    switch, if it has one, and ``fault.deadman_collected`` records what the node did. Never
    raises for a failing revert.
    """
    start_wall_s = time.time()
    # a fault with a dead-man switch may have cut osha off until the node's own revert, which
    # runs at revert_by plus its poll and scheduling margin: one more attempt after that
    grace_s = expiry_bound_s(0.0) + policy.max_s if switch.KEY in lease.revert else 0.0
    until_wall_s = max(lease.revert_by_wall_s + grace_s, start_wall_s + policy.min_window_s)
    delay_s = policy.initial_s
    pause = abort if abort is not None else threading.Event()
    attempt = 0
    while True:  # bounded: the window closes, and each pass waits at least initial_s
        attempt += 1
        error = _attempt(lease, revert, emit, attempt=attempt, by=by)
        if error is None:
            if collect is not None:
                switch.collect(lease, collect, emit, by)
            return True
        remaining_s = until_wall_s - time.time()
        final = remaining_s <= 0 or pause.is_set()
        wait_s = 0.0 if final else min(delay_s, remaining_s)
        _failed(lease, emit, attempt=attempt, by=by, error=error, final=final, wait_s=wait_s)
        if final:
            return False
        pause.wait(wait_s)
        delay_s = min(policy.max_s, delay_s * 2)


def _attempt(
    lease: Lease, revert: Callable[[Lease], str], emit: Emit, *, attempt: int, by: RevertBy
) -> str | None:
    """One attempt, recorded (``fault.revert_attempted``, then ``fault.reverted`` when it
    worked): None if it worked, else the error."""
    emit(FaultRevertAttempted, lease_id=lease.lease_id, attempt=attempt, by=by)
    began_s = time.monotonic()
    try:
        detail = revert(lease)
    except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt: recorded, retried
        return f"{type(exc).__name__}: {exc}"[:2000]
    else:
        emit(
            FaultReverted,
            lease_id=lease.lease_id,
            attempt=attempt,
            by=by,
            detail=detail[:2000],
            elapsed_s=time.monotonic() - began_s,
        )
        if attempt > 1:
            log.warning("reverted %s (%s) at attempt %d", lease.what, lease.lease_id, attempt)
        return None


def _failed(
    lease: Lease,
    emit: Emit,
    *,
    attempt: int,
    by: RevertBy,
    error: str,
    final: bool,
    wait_s: float,
) -> None:
    """Record a failed attempt (``fault.revert_failed``) and say it loudly: CRITICAL when it
    was the last one, with what to do."""
    emit(
        FaultRevertFailed,
        lease_id=lease.lease_id,
        attempt=attempt,
        by=by,
        error=error,
        final=final,
        retry_in_s=wait_s,
    )
    if final:
        log.critical(
            "REVERT FAILED for good: %s (lease %s) is still in place after %d attempts: %s. "
            "Fix the cause, then run `osha faults recover RUN_DIR`, or undo it by hand.",
            lease.what,
            lease.lease_id,
            attempt,
            error,
        )
        return
    log.error(
        "revert of %s (lease %s) failed (attempt %d), retrying in %.1f s: %s",
        lease.what,
        lease.lease_id,
        attempt,
        wait_s,
        error,
    )


class RevertThreads:
    """Reverts leases with :func:`revert_with_retry`, each in its own thread, so that one slow
    or failing revert never holds up another; a lease being reverted is not started twice.
    ``on_reverted(lease, by)`` is called (from that thread) once a revert succeeded."""

    def __init__(
        self,
        revert: Callable[[Lease], str],
        emit: Emit,
        policy: RetryPolicy,
        on_reverted: Callable[[Lease, RevertBy], None],
        collect: switch.Collector | None = None,
    ) -> None:
        self._revert = revert
        self._collect = collect
        self._emit = emit
        self._policy = policy
        self._on_reverted = on_reverted
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._abort = threading.Event()  # set by join(): retries end at their next wait

    def start(self, lease: Lease, by: RevertBy) -> None:
        with self._lock:
            if lease.lease_id in self._running:
                return
            thread = threading.Thread(
                target=self._one, args=(lease, by), name=f"osha-revert-{lease.lease_id}"
            )
            thread.daemon = True
            self._running[lease.lease_id] = thread
        thread.start()

    def join(self, timeout_s: float) -> None:
        """Wait for the reverts in flight, at most ``timeout_s``; then every retry still
        waiting makes its next failure final, and gets ``_ABORT_JOIN_S`` more to finish."""
        with self._lock:
            threads = list(self._running.values())
        deadline_s = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(timeout=max(0.0, deadline_s - time.monotonic()))
        self._abort.set()
        for thread in threads:
            thread.join(timeout=_ABORT_JOIN_S)

    def _one(self, lease: Lease, by: RevertBy) -> None:
        try:
            ok = revert_with_retry(lease, self._revert, self._emit, by=by, policy=self._policy,
                                   abort=self._abort, collect=self._collect)  # fmt: skip
        finally:
            with self._lock:
                self._running.pop(lease.lease_id, None)
        if ok:
            self._on_reverted(lease, by)


@dataclass(slots=True)
class BrokerReport:
    """What :meth:`FaultBroker.close` did, and lease timings."""

    #: the leases the broker reverted itself (their holder crashed, or the run ended): the
    #: latest 1,000 (bounded: self-chaos makes it revert for days); ``reverted_count``: all
    reverted: deque[Lease] = field(default_factory=lambda: deque(maxlen=1_000))
    reverted_count: int = 0
    failed: list[Lease] = field(default_factory=list)
    #: the latest lease fsync times (bounded: a soak grants leases for days)
    lease_sync_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    @property
    def lease_sync_median_ms(self) -> float | None:
        return statistics.median(self.lease_sync_s) * 1000 if self.lease_sync_s else None
