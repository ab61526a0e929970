"""Read-only connections: an audit's session refuses every write, and says which it saw.

openstacksdk sends every call through its connection's keystoneauth session
(``conn.session.request(url, method, ...)``). :func:`guard` wraps that one method on the
instance: a ``GET``/``HEAD``/``OPTIONS`` goes on, and so does a keystone login (``POST
.../v3/auth/tokens``: it asks for a token and changes nothing in the cloud; keystoneauth sends
it through the same session), anything else raises :class:`AuditWriteRefused` before a byte is
sent, and every method is recorded in the returned :class:`Calls` (a test asserts an audit
made no write).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from osha.errors import PluginError

__all__ = ["LOGIN_PATHS", "READ_METHODS", "AuditWriteRefused", "Calls", "guard", "is_read"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: keystone's login paths (v3, and v2.0 for old clouds): a POST there asks for a token
LOGIN_PATHS = ("/v3/auth/tokens", "/v2.0/tokens")


def is_read(verb: str, url: str) -> bool:
    """A call that changes nothing in the cloud: a read method, or a keystone login."""
    if verb in READ_METHODS:
        return True
    return verb == "POST" and urlsplit(url).path.rstrip("/").endswith(LOGIN_PATHS)


class AuditWriteRefused(PluginError):
    """A read-only audit tried to change the cloud (a bug in the audit plugin)."""


@dataclass(slots=True)
class Calls:
    """The methods and URLs sent through a guarded session, in order; ``refused``: the
    writes that were stopped."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    writable: bool = False  # only inside writes_allowed(): a cleanup of what osha made

    @contextmanager
    def writes_allowed(self) -> Iterator[None]:
        """Let writes through for the block (the cleanup of one item osha made), then refuse
        them again, whatever happened."""
        self.writable = True
        try:
            yield
        finally:
            self.writable = False

    @property
    def writes(self) -> list[tuple[str, str]]:
        """Every call that was not a read, sent or refused."""
        with self.lock:
            both = [*self.sent, *self.refused]
        return [(m, u) for m, u in both if not is_read(m, u)]


def guard(session: Any, *, read_only: bool = True) -> Calls:
    """Wrap ``session.request`` (a keystoneauth ``Session``): record every call, and refuse
    writes when ``read_only``. Returns the record."""
    calls = Calls()
    inner = session.request

    def request(url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        verb = str(method).upper()
        if read_only and not calls.writable and not is_read(verb, str(url)):
            with calls.lock:
                calls.refused.append((verb, str(url)))
            raise AuditWriteRefused(
                f"a read-only audit tried {verb} {url}",
                hint="an audit only reads; set cleanup = true on it to let it remove what "
                "osha itself created",
            )
        with calls.lock:
            calls.sent.append((verb, str(url)))
        return inner(url, method, *args, **kwargs)

    session.request = request
    return calls
