"""Reading Rally's iterations from its database while the task runs.

Rally keeps a workload's iteration results in memory and writes them to its database in
chunks of ``raw_result_chunk_size`` iterations (default 1000, i.e. at the end). The runner
sets it to 1 in the Rally config it generates, so Rally's result consumer (a loop that wakes
every 0.1 s) writes each iteration as one ``workloaddata`` row as soon as it finishes. This
module reads the new rows of one task from the SQLite file, read-only, by row id.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Iteration", "IterationReader", "atomic_durations"]

_QUERY = (
    "SELECT d.id, d.chunk_data, w.name FROM workloaddata d "
    "JOIN workloads w ON w.uuid = d.workload_uuid "
    "WHERE d.task_uuid = ? AND d.id > ? ORDER BY d.id"
)


@dataclass(frozen=True, slots=True)
class Iteration:
    """One Rally iteration, as ``runner.iteration`` records it."""

    workload: str
    started_wall_s: float
    duration_s: float
    ok: bool
    atomic: dict[str, float]
    error_type: str = ""
    error: str = ""


def atomic_durations(actions: list[dict[str, Any]], prefix: str = "") -> dict[str, float]:
    """``{"nova.boot_server": 3.2, ...}`` from Rally's nested atomic actions (children are
    named ``parent/child``; a repeated name gets ``(2)``, ``(3)`` ...)."""
    out: dict[str, float] = {}
    for action in actions:
        name = prefix + str(action.get("name", "?"))
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name} ({n})"
        started, finished = action.get("started_at"), action.get("finished_at")
        if isinstance(started, int | float) and isinstance(finished, int | float):
            out[key] = round(finished - started, 6)
        out.update(atomic_durations(action.get("children") or [], prefix=f"{key}/"))
    return out


def _iteration(workload: str, raw: dict[str, Any]) -> Iteration:
    error = raw.get("error") or []
    return Iteration(
        workload=workload,
        started_wall_s=float(raw.get("timestamp", 0.0)),
        duration_s=float(raw.get("duration", 0.0)),
        ok=not error,
        atomic=atomic_durations(raw.get("atomic_actions") or []),
        error_type=str(error[0]) if len(error) > 0 else "",
        error=str(error[1]) if len(error) > 1 else "",
    )


class IterationReader:
    """New iterations of one task, in the order Rally stored them. Not thread-safe."""

    def __init__(self, db_path: Path, task_uuid: str) -> None:
        self._db_path = db_path
        self._task_uuid = task_uuid
        self._last_id = 0
        self._conn: sqlite3.Connection | None = None

    def read(self) -> Iterator[Iteration]:
        """Every iteration stored since the last call. A locked database (Rally is
        committing) yields nothing this time; the rows are read next time."""
        if self._conn is None:
            uri = f"file:{self._db_path}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=1.0, check_same_thread=False)
        try:
            rows = self._conn.execute(_QUERY, (self._task_uuid, self._last_id)).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return
            raise
        for row_id, chunk, workload in rows:
            self._last_id = row_id
            for raw in json.loads(chunk).get("raw", []):
                yield _iteration(str(workload), raw)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
