"""Talking to a running campaign from another terminal, through files in its run directory.

A campaign keeps, next to its ledger segments::

    campaign.json   who runs it: pid, host, run id, profile (written once, at the start)
    status.json     the live picture (:meth:`LiveState.snapshot`, a :class:`Status`),
                    atomically replaced about once a second (write a temporary file, fsync,
                    ``os.replace``), so a reader never sees half a file
    stop            created by ``osha campaign stop``: the campaign notices it within
                    :data:`POLL_S` and stops gracefully (faults reverted, load deleted,
                    verdict written)

Files, not a socket: they work across users and containers that share the directory, survive
the campaign's death for a post-mortem (``status`` then says the process is gone), and need no
server thread that could hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from osha.campaign.status import Status, StatusError
from osha.errors import EXIT_INVALID, OshaError

__all__ = [
    "POLL_S",
    "ControlWatcher",
    "RunInfo",
    "find_run",
    "read_status",
    "request_stop",
    "write_info",
    "write_json_atomic",
]

POLL_S = 0.25
INFO = "campaign.json"
STATUS = "status.json"
STOP = "stop"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically (readers see old or new, whole)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # the temporary file may not exist yet
            os.unlink(tmp)
        raise


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What ``campaign.json`` says, plus whether that process still runs."""

    run_dir: Path
    run_id: str
    pid: int
    host: str
    profile: str
    alive: bool


def write_info(run_dir: Path, run_id: str, profile: str) -> None:
    """Write ``campaign.json`` for this process."""
    write_json_atomic(
        run_dir / INFO,
        {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "profile": profile,
            "started_wall_s": time.time(),
            "create_time": psutil.Process().create_time(),
        },
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OshaError(
            f"{path.parent} is not a campaign run directory (no {path.name})",
            hint="pass the run directory that `osha campaign start` printed (runs/<id>.osha)",
            exit_code=EXIT_INVALID,
        ) from None
    except (OSError, ValueError) as exc:
        raise OshaError(f"cannot read {path}: {exc}", exit_code=EXIT_INVALID) from exc
    if not isinstance(data, dict):
        raise OshaError(f"{path} does not hold a JSON object", exit_code=EXIT_INVALID)
    return data


def _field(info: dict[str, Any], key: str, default: Any, path: Path) -> Any:
    """``info[key]`` if it has the type ``campaign.json`` gives it; else a clean error."""
    value = info.get(key, default)
    kinds = (int, float) if isinstance(default, float) else (type(default),)
    if type(value) is bool or not isinstance(value, kinds):
        raise OshaError(
            f"{path / INFO} is damaged: {key} is {value!r:.40}, not a {type(default).__name__}",
            hint="the run's ledger is intact; read it with osha ledger show or osha report",
            exit_code=EXIT_INVALID,
        )
    return value


def _alive(pid: int, host: str, create_time: float) -> bool:
    if host != socket.gethostname():
        return True  # another host: we cannot tell; assume it runs (status.json's age tells)
    try:
        return abs(psutil.Process(pid).create_time() - create_time) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def find_run(run: str, runs_dir: Path) -> RunInfo:
    """The run named ``run``: a run directory, a run id under ``runs_dir``, or ``latest``."""
    candidates = [Path(run), runs_dir / run, runs_dir / f"{run}.osha"]
    if run == "latest":
        found = sorted(runs_dir.glob(f"*.osha/{INFO}"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise OshaError(
                f"no campaign runs in {runs_dir}",
                hint="pass --runs-dir, or the run directory itself",
                exit_code=EXIT_INVALID,
            )
        candidates = [found[-1].parent]
    for path in candidates:
        if (path / INFO).is_file():
            info = _read_json(path / INFO)
            pid = _field(info, "pid", 0, path)
            host = _field(info, "host", "", path)
            created = float(_field(info, "create_time", 0.0, path))
            return RunInfo(
                path,
                str(info.get("run_id", path.stem)),
                pid,
                host,
                str(info.get("profile", "")),
                _alive(pid, host, created),
            )
    raise OshaError(
        f"no campaign run {run!r} (looked at {', '.join(str(c) for c in candidates)})",
        hint="pass the run directory that `osha campaign start` printed, or `latest`",
        exit_code=EXIT_INVALID,
    )


def read_status(run_dir: Path) -> Status:
    """The last ``status.json`` of a run, as the :class:`Status` it was written from."""
    path = run_dir / STATUS
    try:
        return Status.from_json(_read_json(path))
    except StatusError as exc:
        raise OshaError(
            f"{path} is damaged: {exc.key}: {exc.problem}",
            hint="the campaign rewrites it about once a second; read it again, or look at "
            "the ledger: osha report " + str(run_dir),
            exit_code=EXIT_INVALID,
        ) from None


def request_stop(run_dir: Path, reason: str) -> bool:
    """Ask the campaign in ``run_dir`` to stop; False if a stop was already requested."""
    body = json.dumps({"reason": reason, "pid": os.getpid(), "wall_s": time.time()})
    try:
        fd = os.open(run_dir / STOP, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
    return True


class ControlWatcher:
    """A thread that writes ``status.json`` every ``interval_s`` and watches for ``stop``.

    ``on_stop(reason)`` is called once when the stop file appears. ``close()`` writes the
    final status and ends the thread.
    """

    def __init__(
        self,
        run_dir: Path,
        snapshot: Callable[[], Status],
        on_stop: Callable[[str], None],
        *,
        interval_s: float = 1.0,
    ) -> None:
        self._run_dir = run_dir
        self._snapshot = snapshot
        self._on_stop = on_stop
        self._interval_s = interval_s
        self._done = threading.Event()
        self._stop_seen = False
        self._thread = threading.Thread(target=self._run, name="osha-control", daemon=True)

    def start(self) -> None:
        self.write_status()
        self._thread.start()

    def write_status(self) -> None:
        write_json_atomic(self._run_dir / STATUS, self._snapshot().to_json())

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.write_status()

    def _run(self) -> None:
        next_status_s = time.monotonic() + self._interval_s
        stop_path = self._run_dir / STOP
        while not self._done.wait(POLL_S):
            if not self._stop_seen and stop_path.exists():
                self._stop_seen = True
                reason = "osha campaign stop"
                with contextlib.suppress(OSError, ValueError):  # the reason is optional text
                    reason = str(json.loads(stop_path.read_text()).get("reason") or reason)
                self._on_stop(reason)
            if time.monotonic() >= next_status_s:
                next_status_s += self._interval_s
                self.write_status()
