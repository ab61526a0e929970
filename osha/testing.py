"""Helpers for osha's own tests and for plugin authors' tests.

- :func:`wait_for` polls a condition with a timeout: synchronise on conditions, never sleep.
- :class:`MemorySink` collects what a supervisor would record, decoded, for assertions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from osha.messages import Message
from osha.plugin import PluginContext
from osha.record import HEADER, MAGIC
from osha.wire import decode

__all__ = ["FakeContext", "MemorySink", "WaitTimeout", "wait_for"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)


class WaitTimeout(AssertionError):
    """The condition did not hold within the timeout."""


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout_s: float,
    interval_s: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Bounded in time (``timeout_s``) and so in count (``timeout_s / interval_s`` polls).
    Raises :class:`WaitTimeout`, naming ``what``, when the time runs out.
    """
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {timeout_s} s waiting for {what}")
        pause.wait(min(interval_s, remaining))


def split_framed(blob: bytes) -> list[bytes]:
    """The payloads of a blob of framed records (see :mod:`osha.record`). No CRC check."""
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        magic, length, _crc = HEADER.unpack_from(blob, pos)
        if magic != MAGIC:
            raise ValueError(f"bad record magic at offset {pos}")
        start = pos + HEADER.size
        out.append(blob[start : start + length])
        pos = start + length
    return out


class MemorySink:
    """A thread-safe record sink that keeps decoded messages in memory, for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def write_framed(self, blob: bytes, count: int) -> None:
        payloads = split_framed(blob)
        if len(payloads) != count:
            raise AssertionError(f"blob holds {len(payloads)} records, sender said {count}")
        decoded = [decode(p) for p in payloads]
        with self._lock:
            self._messages.extend(decoded)

    def write(self, msg: Message) -> None:
        with self._lock:
            self._messages.append(msg)

    def messages(self, cls: type[Message] | None = None) -> list[Message]:
        with self._lock:
            snapshot = list(self._messages)
        return snapshot if cls is None else [m for m in snapshot if isinstance(m, cls)]


class FakeContext(PluginContext):
    """A plugin context for testing one plugin in-process: ``emitted`` keeps every message.

    The envelope is filled as the real host fills it (sender, seq from 1, both clocks), so a
    plugin's behaviour can be asserted without spawning a child process.
    """

    def __init__(self, actor_id: str = "test-actor", *, seed: int = 0) -> None:
        self.emitted: list[Message] = []
        self._seq = 0
        self._lock = threading.Lock()
        super().__init__(actor_id=actor_id, seed=seed, emit=self._emit, stopping=threading.Event())

    def _emit(self, cls: type[M], /, **fields: Any) -> M:
        with self._lock:
            self._seq += 1
            msg = cls(
                sender=self.actor_id,
                seq=self._seq,
                mono_s=time.monotonic(),
                wall_s=time.time(),
                **fields,
            )
            self.emitted.append(msg)
        return msg

    def of(self, cls: type[M]) -> list[M]:
        """The emitted messages of one class."""
        with self._lock:
            return [m for m in self.emitted if isinstance(m, cls)]
