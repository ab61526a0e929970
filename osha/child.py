"""The parent-side handle of one child process: a pykka actor that owns the process.

One :class:`ChildHandle` owns one *incarnation*: the ``Popen``, one end of a socketpair, and a
reader thread. The reader thread is the hot path: each RECORDS frame goes to the record sink
as it is (``sink.write_framed(blob, count)``), without decoding a single record.

It detects the three ways a child fails and reports each to the supervisor as a
:class:`ChildDown` message (a tell, never a call back into the supervisor):

- **exit**: the process ended (the socket reaches EOF, then the process is reaped);
- **eof**: the socket reached EOF but the process lives on (it is killed);
- **heartbeat**: no frame for ``heartbeat_timeout_s`` (hung, e.g. SIGSTOP): SIGKILL.

A frame that does not decode (``wire``) also ends the child: it is killed and reported. Every
path reaps the process: no zombies.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import pykka

from osha.errors import WireError
from osha.messages import ActorFailed, ActorHello, ActorReady, ActorStop, Message, stamp
from osha.messages.actor import ActorBoot, CrashReason
from osha.rundir import make_private_dir, open_private_append
from osha.wire import FrameDecoder, FrameKind, decode, encode, pack_frame, unpack_records

__all__ = ["HOST_ARGV", "ChildDown", "ChildExit", "ChildHandle", "RawRecordSink", "RecordSink"]

log = logging.getLogger(__name__)

HOST_ARGV: tuple[str, ...] = (sys.executable, "-m", "osha.actorhost")
"""The command that starts a child (``--fd N`` is appended). Tests may point it elsewhere."""

#: One ``recv`` at most. Not 1 MiB: a buffer that large per incarnation came from malloc's
#: arenas (above the mmap threshold glibc raises at the first free) and fragmented them, so
#: the main process grew ~2.8 KiB per actor restart (bench: 390 restarts, +1 MiB); with
#: 64 KiB it is ~0.15 KiB, and the event rate is the same (median 194k/s vs 136k/s, loaded).
_RECV_BYTES = 64 * 1024
_EXIT_AFTER_EOF_S = 1.0  # how long a child may live on after closing its socket
_TERM_GRACE_S = 2.0  # after SIGTERM, before SIGKILL
_TAIL_BYTES = 4096


class RecordSink(Protocol):
    """Where records go: the recorder's façade, or ``osha.testing.MemorySink``. Thread-safe."""

    def write_framed(self, blob: bytes, count: int) -> None: ...

    def write(self, msg: Message) -> None: ...


@runtime_checkable
class RawRecordSink(Protocol):
    """A sink that can keep raw samples apart (the recorder: its ledger's raw lane). A sink
    without ``write_raw`` gets RAW_RECORDS batches through ``write_framed``, like any batch."""

    def write_raw(self, blob: bytes, count: int, source: str) -> None: ...


Observer = Callable[[Message], None]


class _Cause(enum.Enum):
    EOF = "eof"
    HEARTBEAT = "heartbeat"
    WIRE = "wire"
    SINK = "sink"  # the record sink raised: the child is killed, reported as "failed"


@dataclass(frozen=True, slots=True)
class ChildExit:
    """How one incarnation ended. ``reason`` is None when the parent stopped it on purpose."""

    actor_id: str
    incarnation: int
    pid: int
    reason: CrashReason | None
    exit_code: int | None
    signal: int | None
    last_error: str
    duration_s: float

    @property
    def normal(self) -> bool:
        """Exited by itself with code 0, without reporting a failure."""
        return self.reason == "exit" and self.exit_code == 0


@dataclass(frozen=True, slots=True)
class ChildDown:
    """Told to the supervisor when a child ended without being asked to."""

    exit: ChildExit


@dataclass(frozen=True, slots=True)
class _ReaderEnded:
    cause: _Cause
    detail: str


class ChildHandle(pykka.ThreadingActor):
    """Owns one incarnation of one child process. Start the actor, call :meth:`spawn` through a
    proxy, then :meth:`send` commands; :meth:`stop_child` ends the child gracefully."""

    use_daemon_thread = True

    def __init__(
        self,
        boot: ActorBoot,
        *,
        sink: RecordSink,
        supervisor: pykka.ActorRef[Any],
        heartbeat_timeout_s: float,
        shutdown_s: float,
        log_path: Path | None = None,
        observer: Observer | None = None,
    ) -> None:
        super().__init__()
        self._boot = boot
        self._sink = sink
        self._supervisor = supervisor
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._shutdown_s = shutdown_s
        self._log_path = log_path
        self._log_offset = 0
        self._observer = observer
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._started_s = 0.0
        self._settled = threading.Event()  # set on actor.ready or when the reader ends
        self._ready = False
        self._hello = False
        self._failed_text = ""
        self._ended: _ReaderEnded | None = None
        self._stopping = False
        self._exit: ChildExit | None = None

    # -- the supervisor's calls (through a proxy) ------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    def spawn(self, timeout_s: float) -> ChildExit | None:
        """Spawn the child and wait for ``actor.ready``. None when ready; else how it ended."""
        parent_end, child_end = socket.socketpair()
        self._sock = parent_end
        self._started_s = time.monotonic()
        with self._open_log() as out:
            self._proc = subprocess.Popen(
                [*HOST_ARGV, "--fd", str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else sys.stderr.fileno(),
                stderr=out if out is not None else sys.stderr.fileno(),
                # its own process group: Ctrl-C, a cancelled CI job or `kill -- -PGID` signal
                # osha's group, and osha stops its actors in order (a runner aborts Rally and
                # waits for its cleanup); an actor killed by that signal directly would leave
                # Rally running against the cloud. It still ends with osha: EOF on its socket.
                process_group=0,
            )
        child_end.close()
        parent_end.sendall(pack_frame(FrameKind.CONTROL, encode(self._boot)))
        self._reader = threading.Thread(
            target=self._read, args=(timeout_s,), name=f"osha-read-{self._boot.actor_id}"
        )
        self._reader.daemon = True
        self._reader.start()
        if self._settled.wait(timeout_s) and self._ready:
            return None
        if self._ended is None:  # neither ready nor dead: give up on it
            self._ended = _ReaderEnded(_Cause.EOF, f"not ready within {timeout_s:g} s")
            return self._reap(self._ended, reason="start", kill=True)
        return self._reap(self._ended)

    def send(self, command: Message) -> bool:
        """Send a command to the child. False if it could not be sent (the child is ending)."""
        if self._sock is None or self._exit is not None:
            return False
        try:
            self._sock.sendall(pack_frame(FrameKind.CONTROL, encode(command)))
        except OSError as exc:  # a hung or dead child: its reader reports why
            log.debug("send to %s failed: %s", self._boot.actor_id, exc)
            return False
        return True

    def stop_child(self, reason: str = "") -> ChildExit:
        """``actor.stop``, wait ``shutdown_s``, SIGTERM, wait, SIGKILL; always reap."""
        self._stopping = True
        if self._exit is not None:
            return self._exit
        proc = self._proc
        assert proc is not None
        stop = stamp(ActorStop, "supervisor", 0, reason=reason)
        if self.send(stop):
            _wait(proc, self._shutdown_s)
        if proc.poll() is None:
            proc.terminate()
            _wait(proc, min(_TERM_GRACE_S, self._shutdown_s))
        return self._reap(None, kill=True)

    # -- internals --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ReaderEnded) and not self._stopping and self._exit is None:
            self._supervisor.tell(ChildDown(self._reap(message)))
        return None

    def _open_log(self) -> _MaybeFile:
        if self._log_path is None:
            return _MaybeFile(None)
        make_private_dir(self._log_path.parent)
        out = os.fdopen(open_private_append(self._log_path), "ab")
        self._log_offset = out.tell()
        return _MaybeFile(out)

    def _read(self, start_timeout_s: float) -> None:
        """The reader thread: frames in, records to the sink, control to the handle."""
        sock = self._sock
        assert sock is not None
        sock.settimeout(max(start_timeout_s, self._heartbeat_timeout_s))
        decoder = FrameDecoder()
        buf = bytearray(_RECV_BYTES)
        view = memoryview(buf)
        sink = self._sink
        write_raw = (
            sink.write_raw if isinstance(sink, RawRecordSink) else _framed_only(sink.write_framed)
        )
        source = self._boot.actor_id
        ended: _ReaderEnded
        try:
            while True:
                try:
                    n = sock.recv_into(buf)
                except TimeoutError:
                    ended = _ReaderEnded(
                        _Cause.HEARTBEAT,
                        f"no heartbeat for {sock.gettimeout():g} s (hung); killed with SIGKILL",
                    )
                    break
                except OSError as exc:
                    ended = _ReaderEnded(_Cause.EOF, f"socket error: {exc}")
                    break
                if n == 0:
                    ended = _ReaderEnded(_Cause.EOF, "")
                    break
                for kind, body in decoder.feed(bytes(view[:n])):
                    if kind is FrameKind.RECORDS:
                        blob, count = unpack_records(body)
                        sink.write_framed(blob, count)
                    elif kind is FrameKind.RAW_RECORDS:
                        blob, count = unpack_records(body)
                        write_raw(blob, count, source)
                    else:
                        self._on_control(decode(body))
        except WireError as exc:
            ended = _ReaderEnded(_Cause.WIRE, f"bad frame from the child: {exc}; killed")
        except Exception as exc:  # the sink failed: re-routed as this child's crash
            log.exception("record sink failed while writing %s's records", self._boot.actor_id)
            ended = _ReaderEnded(_Cause.SINK, f"record sink failed: {type(exc).__name__}: {exc}")
        self._ended = ended
        self._settled.set()
        try:
            self.actor_ref.tell(ended)
        except pykka.ActorDeadError:
            return  # the handle was stopped meanwhile: it reaps the child itself

    def _on_control(self, msg: Message) -> None:
        if isinstance(msg, ActorHello):
            self._hello = True
            if self._sock is not None:
                self._sock.settimeout(self._heartbeat_timeout_s)
        elif isinstance(msg, ActorReady):
            self._ready = True
            self._settled.set()
        elif isinstance(msg, ActorFailed):
            self._failed_text = f"{msg.error_type}: {msg.error}"
        if self._observer is not None:
            try:
                self._observer(msg)
            except Exception:  # the observer is optional: its bug must not kill the reader
                log.exception("observer failed on %s; ignoring it", msg.TAG)

    def _reap(
        self, ended: _ReaderEnded | None, *, reason: CrashReason | None = None, kill: bool = False
    ) -> ChildExit:
        """Kill if needed, wait for the process, join the reader, and say how it ended."""
        if self._exit is not None:
            return self._exit
        proc = self._proc
        assert proc is not None
        exited_alone = True
        if ended is not None and (
            ended.cause is not _Cause.EOF or not _wait(proc, _EXIT_AFTER_EOF_S)
        ):
            kill = True
        if kill and proc.poll() is None:
            exited_alone = False
            proc.kill()
        proc.wait()  # SIGKILL cannot be refused: this returns
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=_TERM_GRACE_S)
        if self._sock is not None:
            self._sock.close()
        code = proc.returncode
        if reason is None and ended is not None:
            if self._failed_text:
                reason = "failed"
            elif ended.cause is _Cause.EOF:
                reason = "exit" if exited_alone else "eof"
            elif ended.cause is _Cause.HEARTBEAT:
                reason = "heartbeat"
            elif ended.cause is _Cause.WIRE:
                reason = "wire"
            else:
                reason = "failed"
        detail = ended.detail if ended is not None else ""
        self._exit = ChildExit(
            actor_id=self._boot.actor_id,
            incarnation=self._boot.incarnation,
            pid=proc.pid,
            reason=reason,
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            last_error=self._failed_text or detail or self._log_tail() or _describe(code),
            duration_s=time.monotonic() - self._started_s,
        )
        return self._exit

    def _log_tail(self) -> str:
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(self._log_offset, size - _TAIL_BYTES))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-5:])


class _MaybeFile:
    """A context manager for an optional log file handed to the child, closed in the parent."""

    def __init__(self, f: IO[bytes] | None) -> None:
        self._f = f

    def __enter__(self) -> IO[bytes] | None:
        return self._f

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            self._f.close()


def _framed_only(write_framed: Callable[[bytes, int], None]) -> Callable[[bytes, int, str], None]:
    def write_raw(blob: bytes, count: int, source: str) -> None:
        write_framed(blob, count)

    return write_raw


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"
