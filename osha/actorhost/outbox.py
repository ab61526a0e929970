"""The child's outbox: it stamps, encodes and frames the plugin's events and a writer thread
sends them to the parent in batches (RECORDS and RAW_RECORDS frames, :mod:`osha.wire`).

A RECORDS body is ``count:u32 big-endian | ledger-framed records`` (:mod:`osha.record`): the
child stamps, encodes and frames every event, and the writer sends them in batches every
``flush_interval_s`` or when a batch is full, so the parent does per-batch work only. The
heartbeat rides on the same thread. Control frames carry ``seq = 0``: they are not part of the
sender's recorded sequence.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import msgpack

from osha.messages import RAW_TAGS, ActorHeartbeat, Build, Message, envelope, stamp
from osha.messages import spec_of as _spec_of
from osha.record import HEADER, MAGIC
from osha.wire import FrameKind, encode, pack_frame, pack_records

__all__ = ["BATCH_MAX", "HIGH_WATER", "Outbox"]

BATCH_MAX = 2048  # records per RECORDS frame before the writer is woken early
HIGH_WATER = 65536  # pending records before emit() blocks: bounded memory under a flood

M = TypeVar("M", bound=Message)
P = ParamSpec("P")


class Outbox:
    """Stamps, encodes and frames events; a writer thread sends them in batches.

    ``emit`` is thread-safe and cheap: one lock, one dataclass, one msgpack call, one CRC.
    Raw samples (:data:`~osha.messages.RAW_TAGS`) are sent in RAW_RECORDS frames, the
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

    def emit(self, cls: Build[P, M], /, *args: P.args, **fields: P.kwargs) -> M:
        """Build, stamp and queue one event for the ledger; return it. mypy checks ``fields``
        against ``cls`` (:data:`~osha.messages.Build`)."""
        spec = _spec_of(cls)
        with self._cond:
            while len(self._pending) >= HIGH_WATER and not self._closed.is_set():
                self._cond.wait(0.1)
            self._seq += 1
            msg = cls(*envelope(self._actor_id, self._seq), *args, **fields)  # stamp, inlined
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

    def control(self, cls: Build[P, M], /, *args: P.args, **fields: P.kwargs) -> M:
        """Build a control message (seq 0) from this actor."""
        return stamp(cls, self._actor_id, 0, *args, **fields)

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
