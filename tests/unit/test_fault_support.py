"""Helpers for the fault tests (no tests here): a sink with ``sync``, an in-process requester
that talks to a broker as a child would."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, TypeVar

from osha.faults import FaultBroker
from osha.messages import Message
from osha.plugin import RequestAborted, RequestTimeout
from osha.testing import FakeContext, MemorySink

M = TypeVar("M", bound=Message)

class SyncSink(MemorySink):
    """A MemorySink with ``sync``: remembers how many records were written at each sync."""

    def __init__(self) -> None:
        super().__init__()
        self.synced_at: list[int] = []

    def of(self, cls: type[M]) -> list[M]:
        """The recorded messages of one class, typed."""
        return [m for m in self.messages() if isinstance(m, cls)]

    def sync(self, timeout_s: float = 10.0) -> int:
        count = len(self.messages())
        self.synced_at.append(count)
        return count


class BrokerContext(FakeContext):
    """A plugin context whose ``request`` goes to a broker in this process, as a child's
    control frames would through the supervisor's observer."""

    def __init__(self, broker: FaultBroker, actor_id: str = "d1", *, seed: int = 0) -> None:
        super().__init__(actor_id, seed=seed)
        self._broker = broker
        self._ids = itertools.count(1)
        self._waiting: dict[str, tuple[threading.Event, list[Message]]] = {}
        self._request = self._send_request

    def deliver(self, msg: Message) -> bool:
        entry = self._waiting.get(getattr(msg, "request_id", ""))
        if entry is not None:
            entry[1].append(msg)
            entry[0].set()
        return True

    def _send_request(self, cls: type[Message], /, *, timeout_s: float, **fields: Any) -> Message:
        request_id = f"{self.actor_id}:{next(self._ids)}"
        entry: tuple[threading.Event, list[Message]] = (threading.Event(), [])
        self._waiting[request_id] = entry
        msg = cls(self.actor_id, 0, time.monotonic(), time.time(), request_id=request_id, **fields)  # type: ignore[call-arg]  # request classes have request_id
        self._broker.observe(msg)
        deadline = time.monotonic() + timeout_s
        while not entry[0].wait(0.02):
            if self.stopping.is_set():
                raise RequestAborted("stopping")
            if time.monotonic() > deadline:
                raise RequestTimeout("no reply")
        return entry[1][0]
