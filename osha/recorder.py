"""The recorder actor: the one owner of the run's :class:`~osha.ledger.LedgerWriter`.

The supervisor and the child handles talk to it through :class:`RecorderHandle`, never through
pykka directly::

    recorder = RecorderHandle.start(writer, on_error=supervisor_ref.tell)
    recorder.write_framed(blob, count)     # a child's pre-framed batch, as it came off the pipe
    recorder.write_raw(blob, count, src)   # a child's batch of raw samples (the raw lane)
    recorder.write(msg)                    # one of the supervisor's own records (redacted)
    recorder.sync(timeout_s=5)             # returns once everything sent before is fsynced
    recorder.close(timeout_s=10)           # flush, fsync, clean-close marker, stop the actor

Writes are ``tell``\\s of tiny frozen messages (measured faster than a proxy call, which builds
a future per call). A timer thread tells the actor ``_Tick`` every ``flush_interval_s`` so the
group commit happens even when no new records arrive.

Failure: a write or fsync error is never swallowed. The actor's ``on_failure`` keeps the
:class:`~osha.errors.LedgerError`, calls ``on_error(RecorderFailed(error))`` (the supervisor
passes its own ``tell``, so it learns at once) and the actor stops. From then on every handle
call raises that ``LedgerError``: ``write*`` at the next call, ``sync``/``close`` at once.
Clean stop: ``close`` is processed after every write told before it (the mailbox is FIFO), so
every record that reached the recorder is on disk when it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import pykka

from osha.errors import LedgerError
from osha.ledger.writer import LedgerWriter
from osha.messages import Message
from osha.record import scan_records
from osha.wire import decode, peek_tag

__all__ = ["RecordTap", "Recorder", "RecorderFailed", "RecorderHandle"]


@dataclass(frozen=True, slots=True)
class RecorderFailed:
    """Told to ``on_error`` when the recorder stops because the ledger cannot be written."""

    error: LedgerError


@dataclass(frozen=True, slots=True)
class _Framed:
    blob: bytes
    count: int


@dataclass(frozen=True, slots=True)
class _Raw:
    blob: bytes
    count: int
    source: str


@dataclass(frozen=True, slots=True)
class _Record:
    msg: Message


@dataclass(frozen=True, slots=True)
class _Sync:
    pass


@dataclass(frozen=True, slots=True)
class _Tick:
    pass


@dataclass(frozen=True, slots=True)
class _Close:
    pass


_TICK = _Tick()


class Recorder(pykka.ThreadingActor):
    """Writes what it is told to its ledger writer. Use it through :class:`RecorderHandle`."""

    def __init__(
        self,
        writer: LedgerWriter,
        failure: list[LedgerError],
        on_error: Callable[[RecorderFailed], Any] | None,
    ) -> None:
        super().__init__()
        self._writer = writer
        self._failure = failure
        self._on_error = on_error
        self._stop_timer = threading.Event()

    def on_start(self) -> None:
        interval_s = self._writer.options.flush_interval_s
        ref = self.actor_ref
        stop = self._stop_timer

        def tick() -> None:
            while not stop.wait(interval_s):
                try:
                    ref.tell(_TICK)
                except pykka.ActorDeadError:
                    return

        threading.Thread(target=tick, name="recorder-commit", daemon=True).start()

    def on_receive(self, message: Any) -> Any:
        try:
            return self._handle(message)
        except LedgerError as exc:
            # Told messages also reach on_failure; asked ones (sync, close) only raise in the
            # caller, so record the failure and stop here for both.
            self._fail(exc)
            self.stop()
            raise

    def _handle(self, message: Any) -> Any:
        writer = self._writer
        if type(message) is _Framed:
            writer.append_framed(message.blob, message.count)
        elif type(message) is _Raw:
            writer.append_raw(message.blob, message.count, message.source)
        elif type(message) is _Record:
            writer.append(message.msg)
        elif type(message) is _Tick:
            writer.sync_if_due()
        elif type(message) is _Sync:
            writer.sync()
            return writer.synced_records
        elif type(message) is _Close:
            writer.close()
            self._stop_timer.set()
            self.stop()
            return writer.records
        else:
            raise TypeError(f"the recorder got an unknown message: {message!r}")
        return None

    def on_stop(self) -> None:
        self._stop_timer.set()
        if not self._writer.closed and self._writer.failure is None:
            self._writer.close()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = exception_value
        if not isinstance(error, LedgerError):
            error = LedgerError(
                f"the recorder failed: {exception_type.__name__ if exception_type else '?'}: "
                f"{exception_value}",
                hint="this is a bug in osha; the ledger is intact up to the last fsync",
            )
        self._fail(error)

    def _fail(self, error: LedgerError) -> None:
        self._stop_timer.set()
        if self._failure:
            return
        self._failure.append(error)
        if self._on_error is not None:
            self._on_error(RecorderFailed(error))


class RecorderHandle:
    """The supervisor's typed façade over the recorder actor. Thread-safe."""

    def __init__(self, ref: Any, failure: list[LedgerError]) -> None:
        """Use :meth:`start`."""
        self._ref = ref
        self._tell = ref.tell
        self._failure = failure

    @classmethod
    def start(
        cls, writer: LedgerWriter, *, on_error: Callable[[RecorderFailed], Any] | None = None
    ) -> Self:
        """Start a recorder actor that owns ``writer`` (closed when the recorder closes)."""
        failure: list[LedgerError] = []
        ref = Recorder.start(writer, failure, on_error)
        return cls(ref, failure)

    def write_framed(self, blob: bytes, count: int) -> None:
        """Record a child's batch of ``count`` pre-framed records (see :mod:`osha.record`)."""
        try:
            self._tell(_Framed(blob, count))
        except pykka.ActorDeadError as exc:
            raise self._dead() from exc

    def write_raw(self, blob: bytes, count: int, source: str) -> None:
        """Record a child's batch of raw samples: to the raw lane if the ledger has one."""
        try:
            self._tell(_Raw(blob, count, source))
        except pykka.ActorDeadError as exc:
            raise self._dead() from exc

    def write(self, msg: Message) -> None:
        """Record one message; it is redacted before it is written."""
        try:
            self._tell(_Record(msg))
        except pykka.ActorDeadError as exc:
            raise self._dead() from exc

    def sync(self, timeout_s: float = 10.0) -> int:
        """Fsync everything written before this call; returns the records known to be on disk."""
        return int(self._ask(_Sync(), timeout_s))

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush, fsync, close the ledger cleanly and stop the actor; returns records written."""
        if not self._ref.is_alive() and not self._failure:
            return 0  # closed already
        return int(self._ask(_Close(), timeout_s))

    @property
    def failure(self) -> LedgerError | None:
        """The error that stopped the recorder, if one did."""
        return self._failure[0] if self._failure else None

    def _ask(self, message: object, timeout_s: float) -> Any:
        try:
            return self._ref.ask(message, timeout=timeout_s)
        except pykka.ActorDeadError as exc:
            raise self._dead() from exc
        except pykka.Timeout as exc:
            raise LedgerError(
                f"the recorder did not answer within {timeout_s} s",
                hint="the disk may be very slow or hung; check `dmesg` and free space",
            ) from exc

    def _dead(self) -> LedgerError:
        if self._failure:
            return self._failure[0]
        return LedgerError(
            "the recorder is stopped: nothing more can be written to this ledger",
            hint="this is a bug in the caller: write before close()",
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._ref.is_alive():
            self.close()


class RecordTap:
    """A record sink that forwards everything to ``inner`` (the recorder, or another tap)
    unchanged, and shows ``observe`` each record whose tag is in ``tags``. Children's batches
    arrive pre-framed: only the records with a watched tag are decoded (``peek_tag`` first).
    It offers ``write``, ``write_framed``, ``write_raw`` and ``sync``, so the supervisor and
    the fault broker can both use it."""

    def __init__(
        self, inner: Any, observe: Callable[[Message], None], tags: frozenset[str]
    ) -> None:
        self._inner = inner
        self._observe = observe
        self._tags = tags

    def write_framed(self, blob: bytes, count: int) -> None:
        self._inner.write_framed(blob, count)
        # damage stops the scan: the recorder got the batch as it is; the ledger reader reports it
        payloads, _end, _problem = scan_records(memoryview(blob), check_crc=False)
        for payload in payloads:
            if peek_tag(payload) in self._tags:
                self._observe(decode(payload))

    def write(self, msg: Message) -> None:
        self._inner.write(msg)
        if msg.TAG in self._tags:
            self._observe(msg)

    def write_raw(self, blob: bytes, count: int, source: str) -> None:
        """Raw samples, for the ledger's raw lane (with ``[ledger] raw_retention``); no tap
        watches them."""
        self._inner.write_raw(blob, count, source)

    def sync(self, timeout_s: float = 10.0) -> int:
        return int(self._inner.sync(timeout_s))
