"""The soak's live judgement, in a long-lived child process.

``python -m osha.soak.judge RUN_DIR SLO...`` reads one ``AT_WALL_S`` line at a time on its
stdin and answers each with one line, ``{"breached": [names], "records": N, "read": n,
"judge_s": s, "cpu_s": s}``: the results of the named objectives of the ``[slo]`` recorded in
the ledger that fail, judged as of ``AT_WALL_S`` (a fault held within its revert deadline then is in
flight, not unreverted: :attr:`osha.analysis.AnalysisOptions.live_at_wall_s`). It exits at
the end of its input.

The campaign's cycle loop (:mod:`osha.campaign.soak`) asks it at every cycle's end for
``abort_on_breach``, through :class:`JudgeChild`:

- **incremental**: the child keeps its analysis between cycles (:class:`osha.analysis.
  LiveJudge`) and reads only the records written since the last cycle, so a cycle's judgement
  costs the same at cycle 10 and at cycle 10,000 (re-reading the whole ledger each cycle was
  O(N²) over a soak of days);
- **bounded memory in osha**: the analysis of a ledger that grows for days lives in the child,
  and only the names come back through the pipe (reading the whole JSON report in the main
  process, a document that grows every cycle, was its linear memory growth).

A child that fails or does not answer within :data:`JUDGE_TIMEOUT_S` is logged with its stderr
and stopped; the next judgement starts a fresh one (which reads the ledger once from its start).
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["JUDGE_TIMEOUT_S", "JudgeChild", "judge_main"]

log = logging.getLogger("osha.campaign")

#: a judgement's answer; a fresh child reads a days-long ledger at ~300,000 records/s
JUDGE_TIMEOUT_S = 600.0
_STOP_TIMEOUT_S = 10.0


class JudgeChild:
    """The main process's end of the judge child: started at the first judgement, kept for
    the next ones, stopped by :meth:`close`."""

    def __init__(
        self, run_dir: Path, slos: tuple[str, ...], timeout_s: float = JUDGE_TIMEOUT_S
    ) -> None:
        self.run_dir = run_dir
        self.slos = slos
        self.timeout_s = timeout_s
        self.started = 0  # children started (1 unless one failed)
        self.last: dict[str, Any] = {}  # the child's last answer: its counts and times
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def breached(self, at_wall_s: float) -> list[str] | None:
        """The names of the failing objectives as of ``at_wall_s``; None if the child could
        not judge (logged with its stderr; the next call starts a fresh child)."""
        proc = self._proc or self._start()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(f"{at_wall_s!r}\n".encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
            if not ready:
                raise TimeoutError(f"no answer within {self.timeout_s:g} s")
            reply = json.loads(proc.stdout.readline() or b"null")
            names = [str(n) for n in reply["breached"]]
            self.last = dict(reply)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._failed(exc)
            return None
        log.debug(
            "abort_on_breach judged: %s new records of %s in %s s",
            reply.get("read"), reply.get("records"), reply.get("judge_s"),
        )  # fmt: skip
        return names

    def close(self) -> None:
        """Stop the child (end of its input; killed if it does not exit in 10 s)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _start(self) -> subprocess.Popen[bytes]:
        self.close()
        self._stderr = tempfile.TemporaryFile(prefix="osha-judge-")  # noqa: SIM115 - kept open
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "osha.soak.judge", str(self.run_dir), *self.slos],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True,  # Ctrl-C stops the campaign, which then closes the child
        )  # fmt: skip
        self.started += 1
        return self._proc

    def _failed(self, exc: Exception) -> None:
        proc = self._proc
        if proc is not None:
            _stop(proc)
            self._proc = None
        err = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace").strip()[-500:]
        log.error(
            "abort_on_breach: cannot judge the ledger (%s; exit %s): %s",
            exc, None if proc is None else proc.returncode, err,
        )  # fmt: skip
        self.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError as exc:  # the child is gone already (a broken pipe): it is reaped below
        log.debug("judge child's stdin: %s", exc)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def judge_main(argv: list[str]) -> int:
    """The child's entry: ``RUN_DIR SLO...``; one ``AT_WALL_S`` line in, one JSON line out."""
    from osha.analysis import LiveJudge  # noqa: PLC0415 - the main process never needs it

    judge = LiveJudge(Path(argv[0]), argv[1:])
    for line in sys.stdin:
        began, began_cpu = time.perf_counter(), time.process_time()
        before = judge.records
        names = judge.breached(float(line))
        answer = {"breached": names, "records": judge.records, "read": judge.records - before,
                  "judge_s": round(time.perf_counter() - began, 6),
                  "cpu_s": round(time.process_time() - began_cpu, 6)}  # fmt: skip
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(judge_main(sys.argv[1:]))
