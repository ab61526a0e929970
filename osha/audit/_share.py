"""What the audits of one sweep share: a reading several of them would each make (the cloud's
server listing, which the ``servers``, ``ports`` and ``placement`` audits all need), made once
for the sweep, when every audit that shares it is ready for it.

Core knows no reading: a plugin names the ones it shares (:meth:`~osha.audit.Audit.shares`,
a key such as ``servers lab all_projects``) and makes them. The sweep counts who wants each
key before any audit starts; an audit that is ready for a reading :meth:`Share.join` s it and
waits until every other audit that wants it has joined too, or ended (an audit that fails
before it is ready must not hold the others). The first to join makes the reading; all get
the same object. Waiting is what keeps an audit's order: the ``placement`` audit reads its
allocations *before* the servers (a consumer seen there existed before the listing), so the
one listing starts only once it is ready.

A :class:`Share` lives for one sweep (the pre- and post-campaign sweeps each read the cloud
afresh); an audit run outside a sweep has one of its own, shared with nobody.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["Seat", "Share"]

T = TypeVar("T")


class Share:
    """The readings one sweep's audits share, by key. ``wanted``: (audit id, key) for every
    audit of the sweep and every key it shares, known before any of them starts."""

    def __init__(self, wanted: Iterable[tuple[str, str]] = (), *,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._wanted: dict[str, set[str]] = {}
        for audit, key in wanted:
            self._wanted.setdefault(key, set()).add(audit)
        self._settled: dict[str, set[str]] = {key: set() for key in self._wanted}
        self._made: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._clock = clock

    def seat(self, audit: str) -> Seat:
        """The share as ``audit`` sees it (what the sweep hands its plugin)."""
        return Seat(self, audit)

    def sharers(self, key: str) -> frozenset[str]:
        """The audits of the sweep that share ``key`` (none outside a sweep)."""
        return frozenset(self._wanted.get(key, ()))

    def gone(self, audit: str) -> None:
        """``audit`` ended (or will never be ready): nobody waits for it any more."""
        with self._cond:
            for key, who in self._wanted.items():
                if audit in who:
                    self._settled[key].add(audit)
            self._cond.notify_all()

    def join(self, audit: str, key: str, make: Callable[[], T], *, deadline_s: float) -> T | None:
        """``audit`` is ready for the reading ``key``: wait until every audit that shares it
        has joined or ended, at most until ``deadline_s`` (monotonic; None then), and return
        the reading, made by ``make()`` for the first to get here. A ``make`` that raises
        raises in every audit that joins; it is not made again."""
        with self._cond:
            if audit not in self._wanted.get(key, ()):
                raise ValueError(f"audit {audit!r} did not say it shares {key!r} (Audit.shares)")
            self._settled[key].add(audit)
            self._cond.notify_all()
            while self._settled[key] != self._wanted[key]:
                left_s = deadline_s - self._clock()
                if left_s <= 0:
                    return None
                self._cond.wait(left_s)
            if key not in self._made:
                try:
                    self._made[key] = make()
                except Exception as exc:
                    self._made[key] = exc  # the sharers that join later get it too
                    raise
            made = self._made[key]
        if isinstance(made, Exception):
            raise made
        return made  # type: ignore[no-any-return]  # the object make() returned for the key


class Seat:
    """One audit's place at a :class:`Share` (``Audit.share``); outside a sweep, a share of
    its own (nobody to share with)."""

    def __init__(self, share: Share | None = None, audit: str = "") -> None:
        self.share = share if share is not None else Share()
        self.audit = audit

    def sharers(self, key: str) -> frozenset[str]:
        """The audits of the sweep that share ``key``, this one among them."""
        return self.share.sharers(key)

    def join(self, key: str, make: Callable[[], T], *, deadline_s: float) -> T | None:
        """:meth:`Share.join` as this audit."""
        return self.share.join(self.audit, key, make, deadline_s=deadline_s)
