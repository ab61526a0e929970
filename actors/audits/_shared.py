"""One server listing for the audits of a sweep that each need every server (``servers``,
``ports``, ``placement``): nova-api builds each server's detail (15-35 ms a server on the
loaded lab, one process), so three listings of 500 servers cost three times one.

The sweep's :class:`~osha.audit.Share` starts the listing once every audit that shares it is
ready (``placement`` has read its allocations, ``ports`` its ports: what they saw existed
before the listing); the first to join makes it, on its own read-only connection (its call
record shows the pages). Each audit then walks it from the start at its own pace, within its
own :class:`~osha.audit.Budget` (time, ``max_items``; truncation recorded per audit): whoever
needs an item not read yet pulls it, so the listing goes as far as its furthest reader and no
further. An API error fails every audit that reads past it, each with the same message. The
listing lives in the sweep's share: the next sweep lists afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from osha.errors import PluginError

__all__ = ["SharedListing"]


class SharedListing:
    """The items of one (lazily paginated) listing, read once for several readers
    (``sharers``: their audit ids, for the messages)."""

    def __init__(self, items: Iterable[Any], *, what: str, sharers: Iterable[str]) -> None:
        self.what = what
        self.sharers = tuple(sorted(sharers))
        self._items = iter(items)
        self._read: list[Any] = []
        self._done = False
        self._error: Exception | None = None
        self._lock = threading.Lock()  # one reader at a time advances the listing

    @property
    def pulled(self) -> int:
        """How many items the listing has read so far."""
        return len(self._read)

    def walk(self) -> Iterator[Any]:
        """Every item from the first, reading on when this reader is the furthest."""
        k = 0
        while True:
            with self._lock:
                if k >= len(self._read) and not self._more():
                    return
                item = self._read[k]
            k += 1
            yield item  # outside the lock: a slow reader holds up no other

    def _more(self) -> bool:
        """Read one more item (the caller holds the lock); False at the end."""
        if self._error is not None:
            raise self._failed(self._error) from self._error
        if self._done:
            return False
        try:
            self._read.append(next(self._items))
        except StopIteration:
            self._done = True
            return False
        except Exception as exc:  # kept: every reader past this point fails with it
            self._error = exc
            raise self._failed(exc) from exc
        return True

    def _failed(self, exc: Exception) -> PluginError:
        why = exc.message if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
        return PluginError(
            f"{why} (the {self.what} listing shared by the audits {', '.join(self.sharers)}, "
            f"failed after {len(self._read)} items)",
            hint="does the cloud answer, and may this user list it (admin)?",
        )
