"""Probe lanes: one worker thread per target, so that a probe that hangs delays only itself.

A monitor that probes many targets from one poll and waits for all of them observes every
target at the pace of the slowest probe: one request hanging on a dead peer until its read
timeout stretches the cadence of every other target to that timeout. :class:`Lanes` gives
each key (a target, or a group of targets read by one request) its own worker. The poll
*offers* each key a job and returns at once; the job records its own observation when it
ends. A job still running when its key's next slot comes is not stacked: the slot is skipped
and counted, and the job reads the count when it ends (:meth:`Lane.take_skipped`), so that
its evidence can say so::

    def poll(self) -> None:
        self.lanes.raise_failure()  # a job's exception ends the monitor, as a poll's would
        for target in self.targets:
            self.lanes.offer(target, functools.partial(self._observe, target))

    def _observe(self, target: str, lane: Lane) -> None:
        started = time.monotonic()
        ok = self._probe(target)
        skipped = lane.take_skipped()  # polls skipped while this probe ran
        self.tracker.emit(target, "up" if ok else "down", started, f"... {skipped} ...")

Observations of one key never overlap, so they reach the state tracker in time order, and
each carries its own start time: the timing of every state change stays exact.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

__all__ = ["Job", "Lane", "Lanes"]


class Lane:
    """One key's worker: a daemon thread that runs the jobs offered to it, one at a time."""

    def __init__(self, key: str, owner: Lanes, thread_name: str) -> None:
        self.key = key
        self.busy = False
        self.skipped = 0  # slots skipped since the last take_skipped
        self.skipped_total = 0
        self._owner = owner
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def take_skipped(self) -> int:
        """The slots skipped since the last call (while the running job ran), and reset."""
        with self._owner.lock:
            skipped, self.skipped = self.skipped, 0
            return skipped

    def put(self, job: Job | None) -> None:
        self._inbox.put(job)

    def _run(self) -> None:
        while (job := self._inbox.get()) is not None:
            try:
                job(self)
            except Exception as exc:  # noqa: BLE001 - kept and re-raised in the poll thread
                self._owner.failed(self.key, exc)
            finally:
                self._owner.done(self)


Job = Callable[[Lane], None]


class Lanes:
    """Lanes by key, created on first offer. Thread-safe; ``offer`` from the poll thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self._idle = threading.Condition(self.lock)
        self._lanes: dict[str, Lane] = {}
        self._failure: tuple[str, Exception] | None = None
        self._closed = False

    def offer(self, key: str, job: Job) -> bool:
        """Start ``job`` in ``key``'s lane; if the lane still runs its last job, skip this
        slot instead (counted) and return False."""
        with self.lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: lanes offered a job after close()")
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = Lane(key, self, f"{self.name}:{key}")
                lane.thread.start()
            if lane.busy:
                lane.skipped += 1
                lane.skipped_total += 1
                return False
            lane.busy = True
        lane.put(job)
        return True

    def done(self, lane: Lane) -> None:
        with self.lock:
            lane.busy = False
            self._idle.notify_all()

    def failed(self, key: str, exc: Exception) -> None:
        with self.lock:
            if self._failure is None:
                self._failure = (key, exc)

    def raise_failure(self) -> None:
        """Re-raise, in the caller's thread, the first exception a job raised (once)."""
        with self.lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            key, exc = failure
            exc.add_note(f"raised by {self.name}'s job for {key}")
            raise exc

    def skipped(self) -> dict[str, int]:
        """Slots skipped so far, per key."""
        with self.lock:
            return {key: lane.skipped_total for key, lane in self._lanes.items()}

    def busy(self) -> list[str]:
        """The keys whose job is running now."""
        with self.lock:
            return sorted(key for key, lane in self._lanes.items() if lane.busy)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no job runs; False if some still do after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while any(lane.busy for lane in self._lanes.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True

    def close(self, timeout_s: float) -> list[str]:
        """Stop every lane after its running job; wait up to ``timeout_s`` in all. Returns
        the keys whose job still runs then (their daemon threads are left to end alone)."""
        with self.lock:
            self._closed = True
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.put(None)
        deadline = time.monotonic() + timeout_s
        for lane in lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        return sorted(lane.key for lane in lanes if lane.thread.is_alive())
