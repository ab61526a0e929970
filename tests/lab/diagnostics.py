"""Ground truth for a lab test that went wrong: what the machine knows about a node (power,
events, sockets, neighbours, sshd's log, processes), saved to a file the failure names.

A flaky test is a test defect or a product defect; this is the evidence that tells which.
Everything here reads the lab from the outside (the machine's view), so it works while the
node is rebooting, powered off or unreachable over SSH.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LabSshError", "LogTrace", "diagnose_node", "ssh_attempts"]

_TAIL_LINES = 40
MAX_REPORTS = 30
ssh_attempts = itertools.count(1)  # names paramiko log channels, one per connection
_reports = itertools.count(1)


class LabSshError(AssertionError):
    """A test could not open an SSH connection to a lab node; the message says why and where
    the node's ground truth at that moment was saved."""


class LogTrace(logging.Handler):
    """Collects the records of one logger (e.g. one paramiko transport's log channel)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._logger = logging.getLogger(name)
        self._level = self._logger.level
        self._logger.setLevel(logging.DEBUG)
        self._logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        self.lines.append(
            f"{stamp}.{int(record.msecs):03d} {record.levelname} {record.getMessage()}"
        )

    def close(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)
        super().close()


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({' '.join(argv)}: {exc})"
    return (done.stdout + done.stderr).rstrip() or "(no output)"


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({path}: {exc})"


def diagnose_node(
    desc: dict[str, Any], lab_dir: Path, node: str, why: str, trace: Sequence[str] = ()
) -> Path:
    """Write the machine's view of ``node`` to a file; return its path. At most
    ``MAX_REPORTS`` files per test process (a poll of a flapping node must not fill a disk).
    """
    info = desc["nodes"][node]
    netns = f"{desc['network']['netns_prefix']}{node}"
    bridge = desc["network"]["bridge"]
    node_dir = Path(info["events"]).parent
    pids = _run("ip", "netns", "pids", netns).split()
    sections = {
        "why": why,
        "when": time.strftime("%F %T %z"),
        "power": f"off marker: {(node_dir / 'off').exists()}; boot_id file: "
        + _tail(node_dir / "boot_id", 1),
        f"events ({info['events']})": _tail(Path(info["events"])),
        f"sockets in {netns} (ss -tanpie)": _run("ip", "netns", "exec", netns, "ss", "-tanpie"),
        f"links and addresses in {netns}": _run("ip", "-n", netns, "-s", "addr"),
        f"neighbours in {netns}": _run("ip", "-n", netns, "neigh"),
        f"neighbours on {bridge}": _run("ip", "neigh", "show", "dev", bridge),
        f"bridge fdb of {bridge}": _run("bridge", "fdb", "show", "br", bridge),
        f"processes in {netns}": _run("ps", "-o", "pid,ppid,lstart,stat,args", "-p", ",".join(pids))
        if pids
        else "(none)",
        "sshd log": _tail(lab_dir / "logs" / node / "sshd.log"),
        "client log of the attempt": "\n".join(trace) or "(none)",
    }
    out_dir = lab_dir / "logs" / "test-diagnostics"
    out_dir.mkdir(parents=True, exist_ok=True)
    number = next(_reports)
    if number > MAX_REPORTS:
        return out_dir / f"(not saved: more than {MAX_REPORTS} reports in this test run)"
    path = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{number}-{node}.txt"
    path.write_text("".join(f"== {title}\n{body}\n\n" for title, body in sections.items()))
    return path
