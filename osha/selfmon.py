"""osha watching itself: RSS and CPU of the main process and of every actor process, and the
free space of the ledger's file system, written to the ledger as ``osha.resources``.

A :class:`SelfMonitor` is one daemon thread in the main process. Every ``interval_s`` it
samples (psutil) the main process and each child the supervisor reports (``children()``:
``(actor_id, pid)`` pairs), and writes one compact record per process. Cost: a few
``/proc`` reads per process per interval; memory: one ``psutil.Process`` per live pid (dead
ones are dropped), so it stays bounded however long the run.

**Disk-space floor.** With ``disk_floor_bytes``, each sample also checks the free space of
``ledger_dir``'s file system; below the floor it writes ``osha.disk_floor`` and calls
``on_floor`` once (the caller requests a clean stop of the run, which still has the room left
above zero to write its last records and close the ledger).

Usage::

    mon = SelfMonitor(recorder.write, children=lambda: [(c.id, c.pid) for c in sup.children()],
                      interval_s=10, ledger_dir=run_dir, disk_floor_bytes=512 << 20,
                      on_floor=lambda free: sup.request_stop())
    mon.start(); ...; mon.stop()
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from osha.errors import OshaError
from osha.messages import DiskFloorReached, Message, Resources, stamp

__all__ = ["SENDER", "SelfMonitor"]

SENDER = "osha"
log = logging.getLogger("osha.selfmon")

M = TypeVar("M", bound=Message)
Children = Callable[[], list[tuple[str, int]]]


class SelfMonitor:
    """Samples osha's own processes every ``interval_s`` into ``write``. Thread-safe start/stop."""

    def __init__(
        self,
        write: Callable[[Message], None],
        *,
        children: Children | None = None,
        interval_s: float = 10.0,
        ledger_dir: Path | None = None,
        disk_floor_bytes: int | None = None,
        on_floor: Callable[[int], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s={interval_s} must be positive")
        if disk_floor_bytes is not None and ledger_dir is None:
            raise ValueError("disk_floor_bytes needs ledger_dir (whose file system to watch)")
        self._write = write
        self._children = children
        self.interval_s = interval_s
        self.ledger_dir = ledger_dir
        self.disk_floor_bytes = disk_floor_bytes
        self._on_floor = on_floor
        self._seq = itertools.count(1)
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.floor_reached = threading.Event()
        self.samples = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this self-monitor was already started")
        self._thread = threading.Thread(target=self._run, name="osha-selfmon", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (idempotent). The last sample already written stays."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def __enter__(self) -> SelfMonitor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def sample_once(self) -> list[Resources]:
        """Sample every process now, write the records and check the floor; returns them."""
        free = self._free_bytes()
        records = [self._sample("main", os.getpid(), free)]
        live = {os.getpid()}
        for actor_id, pid in self._children() if self._children is not None else []:
            if pid <= 0:
                continue
            live.add(pid)
            record = self._sample(actor_id, pid, None)
            if record is not None:
                records.append(record)
        for pid in [p for p in self._procs if p not in live]:
            del self._procs[pid]
        out = [r for r in records if r is not None]
        for record in out:
            self._write(record)
        self.samples += 1
        if free is not None:
            self._check_floor(free)
        return out

    # -- internals --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except (psutil.Error, OSError, OshaError):
                # Self-monitoring must never end the run: say so loudly and sample again later
                # (a dead recorder is reported to the supervisor by the recorder itself).
                log.exception("self-monitoring failed; next sample in %g s", self.interval_s)
            self._stop.wait(self.interval_s)

    def _sample(self, name: str, pid: int, free: int | None) -> Resources | None:
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
                threads = proc.num_threads()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            self._procs.pop(pid, None)  # it ended between children() and now: skip it
            return None
        return self._own(
            Resources,
            process=name,
            pid=pid,
            rss_bytes=rss,
            cpu_s=round(cpu.user + cpu.system, 3),
            threads=threads,
            disk_free_bytes=free,
        )

    def _free_bytes(self) -> int | None:
        if self.ledger_dir is None:
            return None
        return shutil.disk_usage(self.ledger_dir).free

    def _check_floor(self, free: int) -> None:
        floor = self.disk_floor_bytes
        if floor is None or free >= floor or self.floor_reached.is_set():
            return
        self.floor_reached.set()
        log.error(
            "free space on %s is %d bytes, below the floor of %d: stopping the run cleanly",
            self.ledger_dir,
            free,
            floor,
        )
        self._write(
            self._own(
                DiskFloorReached, path=str(self.ledger_dir), free_bytes=free, floor_bytes=floor
            )
        )
        if self._on_floor is not None:
            self._on_floor(free)

    def _own(self, cls: type[M], /, **fields: Any) -> M:
        return stamp(cls, SENDER, next(self._seq), **fields)
