"""Self-chaos: a test mode that SIGKILLs one of osha's own actor processes every ``every_s``.

``--self-chaos-every-s N`` proves osha survives its own faults: each kill is recorded first
(``osha.self_chaos``), then the supervisor sees the child die and records ``actor.crashed``
and the restart, and the fault broker reverts any lease the killed disruptor held (it treats
``actor.crashed`` of a lease holder exactly like any other crash; see :mod:`osha.faults`).

The victim is chosen with a ``random.Random(seed)`` among the running children, sorted by id,
so a run with the same seed and the same children kills the same sequence of actors.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import threading
from collections.abc import Callable

from osha.messages import Message, SelfChaosKill, stamp

__all__ = ["SENDER", "SelfChaos"]

SENDER = "self-chaos"
log = logging.getLogger("osha.selfchaos")

Children = Callable[[], list[tuple[str, int]]]


class SelfChaos:
    """One daemon thread that kills a random running actor every ``every_s``."""

    def __init__(
        self,
        write: Callable[[Message], None],
        children: Children,
        *,
        every_s: float,
        seed: int,
        kill: Callable[[int, int], None] = os.kill,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s={every_s} must be positive")
        self._write = write
        self._children = children
        self.every_s = every_s
        self._random = random.Random(seed)
        self._kill = kill
        self._exclude = exclude
        self._seq = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.kills = 0  # a count, not a list: a soak kills for days

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("self-chaos was already started")
        self._thread = threading.Thread(target=self._run, name="osha-self-chaos", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop killing (idempotent); call it before stopping the supervisor."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def strike(self) -> tuple[str, int] | None:
        """Kill one running actor now; returns (actor id, pid), or None if none is running."""
        running = sorted((a, p) for a, p in self._children() if p > 0 and a not in self._exclude)
        if not running:
            return None
        actor_id, pid = self._random.choice(running)
        n = next(self._seq)
        self._write(stamp(SelfChaosKill, SENDER, n, actor_id=actor_id, pid=pid, kill=n))
        log.warning("self-chaos: SIGKILL %s (pid %d), kill #%d", actor_id, pid, n)
        try:
            self._kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended meanwhile: the supervisor records that exit
            log.info("self-chaos: %s (pid %d) was already gone", actor_id, pid)
        self.kills += 1
        return actor_id, pid

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.strike()
