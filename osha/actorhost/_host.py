"""The child's host: one plugin, wrapped by a pykka actor, run until it is stopped, fails or
loses its parent (see :mod:`osha.actorhost` for the protocol).

The plugin's ``setup``, monitor polls and commands run in the actor's thread, one at a time; a
driver thread polls a monitor at its interval or runs a runner's or disruptor's ``run``; the
main thread reads commands from the parent. Any exception from the plugin is reported as
``actor.failed`` and ends the child with :data:`EXIT_PLUGIN_FAILED`.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from osha import __version__
from osha.actorhost._replies import Replies
from osha.actorhost.outbox import Outbox
from osha.errors import PluginError, WireError
from osha.messages import ActorFailed, ActorHello, ActorReady, ActorStop, Message
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
from osha.wire import SCHEMA_VERSION, FrameDecoder, FrameKind, decode

__all__ = [
    "EXIT_CLEAN",
    "EXIT_PARENT_GONE",
    "EXIT_PLUGIN_FAILED",
    "EXIT_PROTOCOL",
    "RECV_BYTES",
    "Host",
    "exit_now",
]

EXIT_CLEAN = 0
EXIT_PLUGIN_FAILED = 70  # like sysexits EX_SOFTWARE: the plugin raised
EXIT_PROTOCOL = 76  # like EX_PROTOCOL: bad boot or command frame
EXIT_PARENT_GONE = 75  # like EX_TEMPFAIL: the parent's socket reached EOF

RECV_BYTES = 65536  # one read from the parent's socket
_REQUEST_POLL_S = 0.05  # how often a waiting request looks at the stop flag


# What the plugin's actor is told to do, by the host's threads:


@dataclass(frozen=True, slots=True)
class _Setup:
    pass


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
        self._replies = Replies(boot.actor_id, boot.incarnation)
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
        exit_now(EXIT_PLUGIN_FAILED)

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
        """The parent died (``kill -9``, a crash): exit now, telling the plugin nothing.

        ``stopping`` stays clear. Set, it woke a disruptor's hold into its revert, which raced
        this exit: now and then the revert's command (a child process, which outlives us) ran
        with nobody to record it, the ledger gone with the parent, and mostly without the
        collect of its dead-man switch. A fault held when osha died is reverted, recorded, by
        its dead-man switch at ``revert_by`` and by ``osha faults recover``."""
        print(f"parent gone ({exc}); exiting", file=sys.stderr)  # noqa: T201 - the child's log
        exit_now(EXIT_PARENT_GONE)

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
            exit_now(code)

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
                data = self._sock.recv(RECV_BYTES)
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


def exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            continue  # nothing left to do with a broken log stream: we are exiting
    os._exit(code)
