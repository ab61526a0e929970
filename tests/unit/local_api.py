"""Local OpenStack-like APIs on 127.0.0.1 for ``openstack-api``: one that answers, one that
hangs (as a keep-alive connection to a powered-off node does), each recording when every
request arrived. Used by the monitor's unit tests and ``scripts/bench_api_cadence.py``."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

__all__ = ["LocalApi", "catalog_session", "driven", "local_api", "patched_connect"]


class LocalApi:
    """What one local API saw: request arrival times (monotonic), and of those it held.
    While ``hang`` is true (it may be set at any time) it holds every new request unanswered
    until ``release`` is set (or ``hold_s``)."""

    def __init__(self, *, hang: bool, hold_s: float = 30.0) -> None:
        self.hang = hang
        self.hold_s = hold_s
        self.release = threading.Event()
        self.arrivals_mono_s: list[float] = []
        self.held_mono_s: list[float] = []
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            arrived = time.monotonic()
            self.arrivals_mono_s.append(arrived)
            hang = self.hang
            if hang:
                self.held_mono_s.append(arrived)
        if hang:
            self.release.wait(self.hold_s)  # the hung server: it never answers in time
            return
        body = b'{"flavors": []}'
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def gaps_s(self, since_mono_s: float = 0.0, until_mono_s: float = float("inf")) -> list[float]:
        """Time between consecutive arrivals within the window."""
        with self.lock:
            times = [t for t in self.arrivals_mono_s if since_mono_s <= t <= until_mono_s]
        return [b - a for a, b in itertools.pairwise(times)]


@contextlib.contextmanager
def local_api(*, hang: bool, hold_s: float = 30.0) -> Iterator[LocalApi]:
    api = LocalApi(hang=hang, hold_s=hold_s)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as keystoneauth's pooled connections

        def do_GET(self) -> None:
            api.handle(self)

        def log_message(self, *args: Any) -> None:
            pass  # quiet: callers read the recorded arrivals, not the server's log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def catalog_session(catalog: dict[str, str]) -> ks_session.Session:
    """A keystoneauth session with a fixed token whose catalog is ``catalog`` (service type
    → public URL): real HTTP for every probe, no keystone."""

    class CatalogToken(token_endpoint.Token):
        def get_access(self, session: Any, **kwargs: Any) -> Any:
            services = [
                {"type": stype, "endpoints": [{"interface": "public", "url": url}]}
                for stype, url in catalog.items()
            ]
            return SimpleNamespace(service_catalog=SimpleNamespace(catalog=services))

    return ks_session.Session(auth=CatalogToken("http://127.0.0.1:1", "tok"))


@contextlib.contextmanager
def patched_connect(module: ModuleType, session: ks_session.Session) -> Iterator[None]:
    """``module.connect`` (the monitor module's openstacksdk connect) gives a connection
    over ``session``."""
    conn = SimpleNamespace(session=session, close=session.session.close)
    with mock.patch.object(module, "connect", return_value=conn):
        yield


@contextlib.contextmanager
def driven(poll: Callable[[], None], interval_s: float) -> Iterator[threading.Event]:
    """Call ``poll`` every ``interval_s`` on an absolute schedule, as the actor host's poll
    loop does, until the block ends; yields the event that stops it."""
    stop = threading.Event()

    def loop() -> None:
        next_s = time.monotonic()
        while True:
            next_s += interval_s
            if stop.wait(max(0.0, next_s - time.monotonic())):
                return
            poll()

    thread = threading.Thread(target=loop, name="poll-driver", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
