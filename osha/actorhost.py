# Over 400 lines (552): the child's main, outbox batching, request/reply and frame helpers;
# issue 13 §3 splits it (the child never imports ledger code, the parent never this module).
"""The child-process main: one plugin, wrapped by a pykka actor, talking to its parent over one
socket. The parent starts it fresh (never by forking itself)::

    python -m osha.actorhost --fd N

Protocol, over the socket, in frames of :mod:`osha.wire`:

- parent → child: CONTROL ``actor.boot`` first; then any registered message as a command for
  the plugin (``Plugin.on_command``); ``actor.stop`` to tear down and exit 0.
- child → parent: CONTROL ``actor.hello`` (right after boot), ``actor.ready`` (after
  ``setup``), ``actor.heartbeat`` (every ``heartbeat_interval_s``), ``actor.failed`` (the
  plugin raised; the child then exits non-zero). RECORDS frames carry the plugin's events.
- requests (``PluginContext.request``): the child sends a CONTROL message with a
  ``request_id`` field up; a command coming down with the same ``request_id`` is its reply and
  wakes the waiting plugin thread instead of going to ``on_command``. A reply that comes too
  late (nobody waits for it any more) is dropped.

A RECORDS body is ``count:u32 big-endian | ledger-framed records`` (:mod:`osha.record`): the
child stamps, encodes and frames every event, and a writer thread sends them in batches every
``flush_interval_s`` or when a batch is full, so the parent does per-batch work only.

Control frames carry ``seq = 0``: they are not part of the sender's recorded sequence.

The child ignores SIGINT (the parent stops it gracefully) and exits when its socket reaches EOF:
the parent died, so there are no orphans. Exit codes: :data:`EXIT_CLEAN`,
:data:`EXIT_PLUGIN_FAILED`, :data:`EXIT_PROTOCOL`, :data:`EXIT_PARENT_GONE`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack
import pykka

from osha import __version__
from osha.errors import PluginError, WireError
from osha.ledger.retention import RAW_TAGS
from osha.messages import (
    ActorFailed,
    ActorHeartbeat,
    ActorHello,
    ActorReady,
    ActorStop,
    Message,
    stamp,
)
from osha.messages import spec_of as _spec_of
from osha.messages.actor import ActorBoot
from osha.plugin import (
    Disruptor,
    Monitor,
    Plugin,
    PluginContext,
    RequestAborted,
    RequestTimeout,
    Runner,
)
from osha.record import HEADER, MAGIC
from osha.redaction import RedactingStream
from osha.wire import SCHEMA_VERSION, FrameDecoder, FrameKind, decode, encode, pack_frame

__all__ = [
    "EXIT_CLEAN",
    "EXIT_PARENT_GONE",
    "EXIT_PLUGIN_FAILED",
    "EXIT_PROTOCOL",
    "Outbox",
    "main",
    "pack_records",
    "unpack_records",
]

EXIT_CLEAN = 0
EXIT_PLUGIN_FAILED = 70  # like sysexits EX_SOFTWARE: the plugin raised
EXIT_PROTOCOL = 76  # like EX_PROTOCOL: bad boot or command frame
EXIT_PARENT_GONE = 75  # like EX_TEMPFAIL: the parent's socket reached EOF

BATCH_MAX = 2048  # records per RECORDS frame before the writer is woken early
HIGH_WATER = 65536  # pending records before emit() blocks: bounded memory under a flood
_COUNT = struct.Struct(">I")
_RECV_BYTES = 65536

M = TypeVar("M", bound=Message)


def pack_records(records: list[bytes], *, raw: bool = False) -> bytes:
    """One RECORDS (or RAW_RECORDS) frame holding already ledger-framed records."""
    kind = FrameKind.RAW_RECORDS if raw else FrameKind.RECORDS
    return pack_frame(kind, b"".join([_COUNT.pack(len(records)), *records]))


def unpack_records(body: bytes) -> tuple[bytes, int]:
    """The framed-records blob and its record count, from a RECORDS frame body."""
    if len(body) < _COUNT.size:
        raise WireError(f"RECORDS frame of {len(body)} bytes has no record count")
    (count,) = _COUNT.unpack_from(body)
    return body[_COUNT.size :], count


class Outbox:
    """Stamps, encodes and frames events; a writer thread sends them in batches.

    ``emit`` is thread-safe and cheap: one lock, one dataclass, one msgpack call, one CRC.
    Raw samples (:data:`~osha.ledger.retention.RAW_TAGS`) are sent in RAW_RECORDS frames, the
    rest in RECORDS frames; a batch is split only where the kind changes (``_runs``), so every
    frame holds records consecutive in ``seq``.
    Control frames go through :meth:`send_control`, after the records emitted before them.
    Any ``OSError`` on the socket means the parent is gone: ``on_broken`` is called.
    """

    def __init__(
        self,
        sock: socket.socket,
        actor_id: str,
        *,
        flush_interval_s: float,
        heartbeat_interval_s: float,
        on_broken: Callable[[OSError], None],
    ) -> None:
        self._sock = sock
        self._actor_id = actor_id
        self._flush_interval_s = flush_interval_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._on_broken = on_broken
        self._cond = threading.Condition()  # guards _pending and _seq
        self._pending: list[bytes] = []
        self._runs: list[tuple[int, bool]] = []  # (start index in _pending, raw) per kind run
        self._seq = 0
        self._send_lock = threading.Lock()  # one writer on the socket at a time
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack  # under _cond only
        self._thread = threading.Thread(target=self._run, name="osha-outbox", daemon=True)

    @property
    def last_seq(self) -> int:
        return self._seq

    def start(self) -> None:
        self._thread.start()

    def emit(self, cls: type[M], /, **fields: Any) -> M:
        """Build, stamp and queue one event for the ledger; return it."""
        spec = _spec_of(cls)
        with self._cond:
            while len(self._pending) >= HIGH_WATER and not self._closed.is_set():
                self._cond.wait(0.1)
            self._seq += 1
            msg = stamp(cls, self._actor_id, self._seq, **fields)
            payload = self._packb([spec.tag, *spec.getter(msg)])
            pending = self._pending
            raw = spec.tag in RAW_TAGS
            if not self._runs or self._runs[-1][1] is not raw:
                self._runs.append((len(pending), raw))
            pending.append(HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload)
            full = len(pending) == BATCH_MAX
        if full:
            self._wake.set()
        return msg

    def control(self, cls: type[M], /, **fields: Any) -> M:
        """Build a control message (seq 0) from this actor."""
        return stamp(cls, self._actor_id, 0, **fields)

    def send_control(self, msg: Message) -> None:
        """Send the pending records, then one control frame."""
        try:
            with self._send_lock:
                self._flush_locked()
                self._sock.sendall(pack_frame(FrameKind.CONTROL, encode(msg)))
        except OSError as exc:
            self._on_broken(exc)

    def flush(self) -> None:
        try:
            with self._send_lock:
                self._flush_locked()
        except OSError as exc:
            self._on_broken(exc)

    def close(self) -> None:
        """Stop the writer and send what is pending."""
        self._closed.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        self.flush()

    def _flush_locked(self) -> None:
        with self._cond:
            batch = self._pending
            if not batch:
                return
            runs = self._runs
            self._pending = []
            self._runs = []
            self._cond.notify_all()
        if len(runs) == 1:
            self._sock.sendall(pack_records(batch, raw=runs[0][1]))
            return
        ends = [start for start, _ in runs[1:]] + [len(batch)]
        frames = [
            pack_records(batch[start:end], raw=raw)
            for (start, raw), end in zip(runs, ends, strict=True)
        ]
        self._sock.sendall(b"".join(frames))

    def _run(self) -> None:
        next_beat_s = time.monotonic()
        while not self._closed.is_set():
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            self.flush()
            now_s = time.monotonic()
            if now_s >= next_beat_s:
                self.send_control(self.control(ActorHeartbeat, last_seq=self._seq))
                next_beat_s = now_s + self._heartbeat_interval_s


@dataclass(frozen=True, slots=True)
class _Setup:
    pass


_REQUEST_POLL_S = 0.05  # how often a waiting request looks at the stop flag


class _Replies:
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


@dataclass(frozen=True, slots=True)
class _Poll:
    pass


@dataclass(frozen=True, slots=True)
class _Deliver:
    command: Message


class PluginActor(pykka.ThreadingActor):
    """Wraps the plugin: ``setup``, monitor polls and commands run in this actor's thread, one
    at a time. Any exception from the plugin ends the child through ``Host.fail``."""

    use_daemon_thread = True

    def __init__(self, plugin: Plugin[Any], host: Host) -> None:
        super().__init__()
        self._plugin = plugin
        self._host = host

    def on_receive(self, message: Any) -> Any:
        try:
            if isinstance(message, _Poll):
                assert isinstance(self._plugin, Monitor)
                self._plugin.poll()
            elif isinstance(message, _Deliver):
                self._plugin.on_command(message.command)
            elif isinstance(message, _Setup):
                self._plugin.setup()
        except Exception as exc:  # noqa: BLE001 - a plugin error ends the child: reported as actor.failed
            self._host.fail(exc)
        return None


class Host:
    """Runs one plugin in this process until it is stopped, fails or loses its parent."""

    def __init__(self, sock: socket.socket, boot: ActorBoot) -> None:
        self._sock = sock
        self._boot = boot
        self._stopping = threading.Event()
        self._end_lock = threading.Lock()
        self._ended = False
        self._torn_down = False
        self._plugin: Plugin[Any] | None = None
        self._actor: pykka.ActorRef[Any] | None = None
        self._driver: threading.Thread | None = None
        self._replies = _Replies(boot.actor_id, boot.incarnation)
        self.outbox = Outbox(
            sock,
            boot.actor_id,
            flush_interval_s=boot.flush_interval_s,
            heartbeat_interval_s=boot.heartbeat_interval_s,
            on_broken=self._parent_gone,
        )

    def run(self, decoder: FrameDecoder, early: list[tuple[FrameKind, bytes]]) -> int:
        boot = self._boot
        self.outbox.send_control(
            self.outbox.control(
                ActorHello,
                actor_id=boot.actor_id,
                pid=os.getpid(),
                schema_version=SCHEMA_VERSION,
                osha_version=__version__,
            )
        )
        self.outbox.start()
        try:
            self._plugin = _build_plugin(boot, self.outbox.emit, self._stopping, self.request)
        except PluginError as exc:
            self.fail(exc)
        assert self._plugin is not None
        self._actor = PluginActor.start(self._plugin, self)
        self._actor.ask(_Setup())
        self.outbox.send_control(self.outbox.control(ActorReady, actor_id=boot.actor_id))
        target = self._poll_loop if isinstance(self._plugin, Monitor) else self._run_plugin
        self._driver = threading.Thread(target=target, name="osha-driver", daemon=True)
        self._driver.start()
        return self._read_commands(decoder, early)

    def request(self, cls: type[Message], /, *, timeout_s: float, **fields: Any) -> Message:
        """Send a control message up and wait for the command with the same ``request_id``."""
        request_id, arrived, reply = self._replies.open()
        try:
            self.outbox.send_control(self.outbox.control(cls, request_id=request_id, **fields))
            deadline_s = time.monotonic() + timeout_s
            while not arrived.wait(min(_REQUEST_POLL_S, max(0.0, deadline_s - time.monotonic()))):
                if self._stopping.is_set():
                    raise RequestAborted(f"{cls.TAG} {request_id}: the actor is stopping")
                if time.monotonic() >= deadline_s:
                    raise RequestTimeout(
                        f"{cls.TAG} {request_id}: no reply within {timeout_s:g} s",
                        hint="is the receiver (e.g. the fault broker) running in the "
                        "supervisor process?",
                    )
            return reply[0]
        finally:
            self._replies.close(request_id)

    def fail(self, exc: BaseException) -> None:
        """Report a plugin error to the parent, tear down, and exit non-zero."""
        if not self._begin_end():
            return
        tb = "".join(traceback.format_exception(exc))
        print(tb, file=sys.stderr, flush=True)  # noqa: T201 - the child's log file
        self.outbox.send_control(
            self.outbox.control(
                ActorFailed,
                actor_id=self._boot.actor_id,
                error_type=type(exc).__name__,
                error=str(exc)[:2000],
                traceback=tb[-4000:],
            )
        )
        self._teardown()
        _exit(EXIT_PLUGIN_FAILED)

    def _begin_end(self) -> bool:
        with self._end_lock:
            if self._ended:
                return False
            self._ended = True
        self._stopping.set()
        return True

    def _teardown(self) -> None:
        if self._plugin is None or self._torn_down:
            return
        self._torn_down = True
        try:
            self._plugin.teardown()
        except Exception as exc:  # noqa: BLE001 - the child is ending anyway; the error goes to its log
            print(f"teardown failed: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201

    def _stop(self) -> int:
        """Graceful stop: wait for the driver, teardown, send the last records, exit 0."""
        if not self._begin_end():
            return EXIT_CLEAN
        if self._driver is not None and self._driver is not threading.current_thread():
            self._driver.join()  # the parent's shutdown timeout bounds this (SIGTERM, SIGKILL)
        if self._actor is not None:
            self._actor.stop(block=True)
        self._teardown()
        self.outbox.close()
        return EXIT_CLEAN

    def _parent_gone(self, exc: OSError | None) -> None:
        self._stopping.set()
        print(f"parent gone ({exc}); exiting", file=sys.stderr)  # noqa: T201 - the child's log
        _exit(EXIT_PARENT_GONE)

    def _poll_loop(self) -> None:
        assert self._actor is not None
        assert self._plugin is not None
        interval_s = float(getattr(self._plugin.config, "interval_s", 1.0))
        next_s = time.monotonic()
        while True:
            next_s += interval_s
            if self._stopping.wait(max(0.0, next_s - time.monotonic())):
                return
            self._actor.ask(_Poll())

    def _run_plugin(self) -> None:
        plugin = self._plugin
        assert isinstance(plugin, Runner | Disruptor)
        try:
            plugin.run()
        except Exception as exc:  # noqa: BLE001 - a plugin error ends the child: reported as actor.failed
            self.fail(exc)
            return
        if not self._stopping.is_set():  # finished on its own: a normal exit
            code = self._stop()
            _exit(code)

    def _read_commands(self, decoder: FrameDecoder, early: list[tuple[FrameKind, bytes]]) -> int:
        frames: list[tuple[FrameKind, bytes]] = early
        while True:
            try:
                for kind, body in frames:
                    if kind is not FrameKind.CONTROL:
                        raise WireError("the parent sent a RECORDS frame")
                    command = decode(body)
                    if isinstance(command, ActorStop):
                        return self._stop()
                    if self._replies.resolve(command):
                        continue
                    assert self._actor is not None
                    self._actor.tell(_Deliver(command))
            except WireError as exc:
                self.fail(exc)
                return EXIT_PROTOCOL
            try:
                data = self._sock.recv(_RECV_BYTES)
            except OSError as exc:
                self._parent_gone(exc)
                return EXIT_PARENT_GONE
            if not data:
                self._parent_gone(None)
                return EXIT_PARENT_GONE
            try:
                frames = decoder.feed(data)
            except WireError as exc:
                self.fail(exc)
                return EXIT_PROTOCOL


def _build_plugin(
    boot: ActorBoot,
    emit: Callable[..., Any],
    stopping: threading.Event,
    request: Callable[..., Message] | None = None,
) -> Plugin[Any]:
    from osha.registry import load  # noqa: PLC0415 - imported after hello, to answer fast
    from osha.schema import build  # noqa: PLC0415 - likewise

    cls = load(boot.kind, boot.plugin)
    config, problems = build(cls.config_type, boot.config, file=f"<{boot.actor_id} config>")
    if config is None or problems:
        # Name the keys, never the values (problems quote values; configs may hold secrets).
        keys = ", ".join(sorted({p.key for p in problems})) or "?"
        raise PluginError(
            f"{boot.kind} plugin {boot.plugin!r}: invalid config for {boot.actor_id!r} "
            f"(keys: {keys})",
            hint=f"validate the profile; see the docstring of {cls.__qualname__}",
        )
    ctx = PluginContext(
        actor_id=boot.actor_id, seed=boot.seed, emit=emit, stopping=stopping, request=request
    )
    return cls(config, ctx)


def _exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            continue  # nothing left to do with a broken log stream: we are exiting
    os._exit(code)


def _read_boot(
    sock: socket.socket, decoder: FrameDecoder
) -> tuple[ActorBoot, list[tuple[FrameKind, bytes]]]:
    """The boot message, and any frames that arrived with it (commands, handled after)."""
    while True:
        data = sock.recv(_RECV_BYTES)
        if not data:
            raise WireError("the parent closed the socket before sending actor.boot")
        frames = decoder.feed(data)
        if not frames:
            continue
        kind, body = frames[0]
        msg = decode(body) if kind is FrameKind.CONTROL else None
        if not isinstance(msg, ActorBoot):
            raise WireError(f"expected actor.boot first, got {type(msg).__name__}")
        return msg, frames[1:]


def main(argv: list[str] | None = None) -> int:
    # standard error is this actor's log file (logs/ID.log): tracebacks and warnings written
    # there are redacted line by line, as everything the actor records is
    sys.stderr = RedactingStream(sys.stderr)
    parser = argparse.ArgumentParser(prog="python -m osha.actorhost")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the parent")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    decoder = FrameDecoder()
    try:
        boot, early = _read_boot(sock, decoder)
    except (WireError, OSError) as exc:
        print(f"osha.actorhost: cannot boot: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_PROTOCOL
    code = Host(sock, boot).run(decoder, early)
    _exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
