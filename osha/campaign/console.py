"""The campaign's console output, written by a thread of its own so that a console which does
not read never stalls the campaign.

A campaign prints from several threads: the orchestrator (warnings, the health gate's
findings), the live view, and the main thread at the end. Written straight to stdout, each of
those ``write`` calls blocks as soon as the console stops reading: a full pipe whose reader is
busy or gone (``osha campaign start ... | less`` left paused, a wrapper script that waits on
the child before reading its output), a terminal on ``Ctrl-S``. A blocked orchestrator holds
its faults for as long as the console sleeps, and a blocked main thread never closes the run
tree. :class:`ConsoleSink` takes the writes instead: it queues them (up to ``limit_bytes``),
a daemon thread writes them out, and what does not fit is dropped, counted, and announced
once the console reads again. Nothing recorded is lost: the ledger and ``campaign.log`` in the
run directory have everything; the console is a view.

When the console is gone (the terminal hung up: EIO; the reader closed the pipe: EPIPE) the
sink stops writing and the campaign goes on; ``osha campaign status`` and ``osha campaign
stop`` reach it from another terminal.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import IO, TextIO, cast

from rich.console import Console

__all__ = ["ConsoleSink", "campaign_console"]

log = logging.getLogger("osha.campaign")

LIMIT_BYTES = 1 << 20  # a megabyte of queued output: minutes of a busy live view
DRAIN_S = 10.0  # at the end, how long the last lines (the verdict) may wait for the console


class ConsoleSink(io.TextIOBase):
    """A text stream whose ``write`` never blocks: a bounded queue and a writer thread.

    ``out`` is the real console. When it has a file descriptor the thread writes to a
    duplicate of it with ``os.write``, never through ``out``'s own buffer, so that a write
    blocked for ever holds no lock that the interpreter needs at exit."""

    def __init__(self, out: TextIO, *, limit_bytes: int = LIMIT_BYTES) -> None:
        super().__init__()
        self._out = out
        self._limit_bytes = limit_bytes
        self._encoding = getattr(out, "encoding", None) or "utf-8"
        self._fd = _dup_fileno(out)
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._writing = 0  # lines the thread holds and has not finished writing
        self._dropped_lines = 0  # not shown since the last notice
        self._dropped_total = 0
        self._gone = ""  # why the console is gone ("" while it is there)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="osha-console", daemon=True)
        self._thread.start()

    # -- what the writers see -----------------------------------------------------------

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return self._encoding

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        try:
            return self._out.isatty()
        except (ValueError, OSError):
            return False

    def fileno(self) -> int:
        return self._out.fileno()

    def write(self, text: str) -> int:
        data = text.encode(self._encoding, errors="replace")
        with self._cond:
            if self._gone or self._closed:
                self._dropped_total += text.count("\n")
                return len(text)
            if self._queued_bytes + len(data) > self._limit_bytes:
                lines = max(text.count("\n"), 1)
                self._dropped_lines += lines
                self._dropped_total += lines
                return len(text)
            self._queue.append(data)
            self._queued_bytes += len(data)
            self._cond.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to wait for: the writer thread writes as soon as the console reads."""

    # -- the console's fate -------------------------------------------------------------

    @property
    def dropped_lines(self) -> int:
        """Lines never shown on the console (all of them are in the run directory)."""
        with self._cond:
            return self._dropped_total

    @property
    def gone(self) -> str:
        """Why the console is gone, or "" while it is there."""
        with self._cond:
            return self._gone

    def console_gone(self, why: str) -> None:
        """Stop writing to the console (its terminal hung up): the campaign goes on."""
        with self._cond:
            if not self._gone:
                self._gone = why
                self._dropped_total += sum(chunk.count(b"\n") for chunk in self._queue)
                self._queue.clear()
                self._queued_bytes = 0
                self._cond.notify_all()

    def close(self, timeout_s: float = DRAIN_S) -> None:
        """Write what is queued, waiting at most ``timeout_s`` for the console to read it;
        then stop. Lines still queued at the deadline are dropped (and logged)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            drained = self._cond.wait_for(
                lambda: self._gone or not (self._queue or self._writing), timeout=timeout_s
            )
            left = sum(chunk.count(b"\n") for chunk in self._queue) + self._writing
            self._dropped_total += left
        if not drained:
            log.warning(
                "console: %d line(s) not shown: the console did not read them within %g s "
                "(the ledger and campaign.log have everything)",
                left,
                timeout_s,
            )
        elif self._dropped_total:
            log.info("console: %d line(s) were not shown on the console", self._dropped_total)
        self._thread.join(timeout=0.5 if drained else 0.0)
        if self._fd is not None and not self._thread.is_alive():
            # Only once the thread is done with it: a write still blocked on it would go on
            # into whatever file reused the number.
            os.close(self._fd)
            self._fd = None
        super().close()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed or self._gone)
                if self._gone or not self._queue:
                    self._cond.notify_all()  # close() waits for the queue to empty
                    return
                chunks = [self._notice()] if self._dropped_lines else []
                self._dropped_lines = 0
                chunks.append(b"".join(self._queue))
                self._queue.clear()
                self._queued_bytes = 0
                self._writing = max(sum(chunk.count(b"\n") for chunk in chunks), 1)
            try:
                for chunk in chunks:
                    self._write_out(chunk)
            except OSError as exc:  # EIO: the terminal hung up; EPIPE: the reader left
                self.console_gone(f"console write failed: {exc}")
                log.warning("console gone (%s): the campaign goes on; output only in the run "
                            "directory now", exc)  # fmt: skip
            finally:
                with self._cond:
                    self._writing = 0
                    self._cond.notify_all()

    def _notice(self) -> bytes:
        n = self._dropped_lines
        return (
            f"[osha: {n} line(s) not shown: the console was not reading; the ledger and "
            "campaign.log in the run directory have everything]\n"
        ).encode(self._encoding, errors="replace")

    def _write_out(self, data: bytes) -> None:
        if self._fd is None:
            self._out.write(data.decode(self._encoding, errors="replace"))
            self._out.flush()
            return
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


def _dup_fileno(out: TextIO) -> int | None:
    """A private duplicate of ``out``'s descriptor (after flushing ``out``), or None when it
    has none (a StringIO in tests)."""
    try:
        fd = out.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    out.flush()
    return os.dup(fd)


@contextlib.contextmanager
def campaign_console(out: TextIO | None = None) -> Iterator[Console]:
    """A rich Console for a campaign, writing through a :class:`ConsoleSink` on ``out``
    (stdout by default); on exit the sink drains for at most :data:`DRAIN_S`."""
    target = sys.stdout if out is None else out
    sink = ConsoleSink(target)
    # The Console asks the sink whether it is a terminal; rich's width comes from the std
    # streams, as before.
    console = Console(file=cast(IO[str], sink), highlight=False)  # a TextIOBase: an IO[str]
    try:
        yield console
    finally:
        sink.close()
