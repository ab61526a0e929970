"""The child's requests waiting for their reply (``PluginContext.request``).

The child sends a CONTROL message with a ``request_id`` field up; a command coming down with
the same ``request_id`` is its reply and wakes the waiting plugin thread instead of going to
``on_command``. A reply that comes too late (nobody waits for it any more) is dropped.
"""

from __future__ import annotations

import itertools
import sys
import threading

from osha.messages import Message

__all__ = ["Replies"]


class Replies:
    """Requests waiting for their reply, by ``request_id``. Thread-safe."""

    def __init__(self, actor_id: str, incarnation: int) -> None:
        self._prefix = f"{actor_id}#{incarnation}:"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[Message]]] = {}

    def open(self) -> tuple[str, threading.Event, list[Message]]:
        request_id = f"{self._prefix}{next(self._ids)}"
        entry: tuple[threading.Event, list[Message]] = (threading.Event(), [])
        with self._lock:
            self._waiting[request_id] = entry
        return request_id, *entry

    def close(self, request_id: str) -> None:
        with self._lock:
            self._waiting.pop(request_id, None)

    def resolve(self, command: Message) -> bool:
        """True if ``command`` is a reply (a ``request_id`` field): handed to its waiter, or
        dropped when nobody waits for it any more."""
        request_id = getattr(command, "request_id", None)  # a fixed field name, not user input
        if not isinstance(request_id, str):
            return False
        with self._lock:
            entry = self._waiting.get(request_id)
        if entry is None:
            print(f"late reply {command.TAG} {request_id} dropped", file=sys.stderr)  # noqa: T201
            return True
        entry[1].append(command)
        entry[0].set()
        return True
