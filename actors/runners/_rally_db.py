"""Rally's database: iterations while the task runs, the task's outcome when it ends, and the
credentials removed when the runner stops.

Rally keeps a workload's iteration results in memory and writes them to its database in
chunks of ``raw_result_chunk_size`` iterations (default 1000, i.e. at the end). The runner
sets it to 1 in the Rally config it generates, so Rally's result consumer (a loop that wakes
every 0.1 s) writes each iteration as one ``workloaddata`` row as soon as it finishes.
:class:`IterationReader` reads the new rows of one task from the SQLite file, read-only, by
row id.

:func:`task_outcome` reads what Rally says about a task that ended: its status (a crash or a
failed validation with Rally's error), a workload context whose setup failed (say a
``network`` context on a cloud without the router extension: Rally still exits 2, "SLA
failed", with no iteration at all), the SLA's verdict.

:func:`scrub_credentials` removes the cloud's credentials, which Rally stores in clear in its
environment's spec and platform data, when the runner stops.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.redaction import REDACTED, redact_value

__all__ = [
    "Iteration",
    "IterationReader",
    "TaskOutcome",
    "atomic_durations",
    "current_workload",
    "scrub_credentials",
    "task_outcome",
]

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


def atomic_durations(
    actions: list[Any] | dict[str, Any], prefix: str = ""
) -> dict[str, float]:
    """``{"nova.boot_server": 3.2, ...}`` from Rally's nested atomic actions (children are
    named ``parent/child``; a repeated name gets ``(2)``, ``(3)`` ...). Rally before 0.10
    stored them as a flat ``{name: duration}``: taken as it is. An entry that is not an
    action (not a mapping) is left out."""
    if isinstance(actions, dict):
        return {prefix + str(k): round(float(v), 6) for k, v in actions.items()
                if isinstance(v, int | float) and not isinstance(v, bool)}  # fmt: skip
    out: dict[str, float] = {}
    for action in actions:
        if not isinstance(action, dict):
            continue
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


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What Rally's database says about a task that ended."""

    failed: bool  # crashed, validation failed, or a workload context could not be set up
    detail: str  # Rally's own words: the status and the error, or the SLA's verdict


def _json(text: object) -> Any:
    try:
        return json.loads(text) if isinstance(text, str | bytes) else None
    except ValueError:
        return None


def _context_errors(conn: sqlite3.Connection, task_uuid: str) -> list[str]:
    errors = []
    rows = conn.execute("SELECT name, contexts_results FROM workloads WHERE task_uuid = ?",
                        (task_uuid,)).fetchall()  # fmt: skip
    for name, results in rows:
        for ctx in _json(results) or []:
            setup = ctx.get("setup") if isinstance(ctx, dict) else None
            error = setup.get("error") if isinstance(setup, dict) else None
            if isinstance(ctx, dict) and isinstance(error, list) and len(error) >= 2:
                plugin = ctx.get("plugin_name", "?")
                errors.append(f"{name}: context {plugin} setup failed: {error[0]}: {error[1]}")
    return errors


def _sla_failures(conn: sqlite3.Connection, task_uuid: str) -> list[str]:
    out = []
    rows = conn.execute("SELECT name, pass_sla, sla_results FROM workloads WHERE task_uuid = ?",
                        (task_uuid,)).fetchall()  # fmt: skip
    for name, passed, results in rows:
        if passed:
            continue
        data = _json(results)
        slas = data.get("sla") if isinstance(data, dict) else None
        failed = [f"{s.get('criterion')}: {s.get('detail')}" for s in slas or []
                  if isinstance(s, dict) and not s.get("success", True)]  # fmt: skip
        out.append(f"{name}: SLA failed" + (f" ({'; '.join(failed)})" if failed else ""))
    return out


def task_outcome(db_path: Path, task_uuid: str) -> TaskOutcome | None:
    """The outcome of a task that ended, from Rally's own records (None if they cannot be
    read: an older schema, or no database)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT status, validation_result FROM tasks WHERE uuid = ?",
                           (task_uuid,)).fetchone()  # fmt: skip
        if row is None:
            return None
        status, validation = row
        if status in ("crashed", "validation_failed"):
            info = _json(validation)
            if not isinstance(info, dict):
                info = {}
            error = f"{info.get('etype', '?')}: {info.get('msg', '')}".strip()
            return TaskOutcome(True, f"rally task {status}: {error}")
        contexts = _context_errors(conn, task_uuid)
        if contexts:
            return TaskOutcome(True, "; ".join(contexts))
        sla = "; ".join(_sla_failures(conn, task_uuid)) or "SLA passed"
        return TaskOutcome(False, f"rally task {status}; {sla}")
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def current_workload(db_path: Path, task_uuid: str) -> str:
    """The name of the task's last workload that Rally began (Rally adds a workload's row
    as it starts running it): the one a cut-off iteration belonged to. Empty if unknown."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return ""
    try:
        row = conn.execute("SELECT name FROM workloads WHERE task_uuid = ? ORDER BY rowid DESC "
                           "LIMIT 1", (task_uuid,)).fetchone()  # fmt: skip
        return str(row[0]) if row is not None else ""
    except sqlite3.Error:
        return ""
    finally:
        conn.close()


#: Rally's tables that hold an environment's credentials, and their JSON columns
_CREDENTIAL_COLUMNS = {
    "envs": ("spec", "extras", "config"),
    "platforms": ("plugin_spec", "plugin_data", "platform_data"),
}
_MIN_SECRET = 4  # shorter "secrets" would replace ordinary text


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scrub_credentials(db_path: Path, env_name: str, secrets: Iterable[str]) -> int:
    """Remove credentials from Rally's database: every secret-named key of the environments'
    and platforms' JSON (see :mod:`osha.redaction`), and every occurrence of the given secret
    values in any text column; then rename the environment (so that the next start makes a
    fresh one) and rewrite the file (``VACUUM``, with ``secure_delete``), so that no free page
    keeps the old text. Returns the number of values changed."""
    values = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
    conn = sqlite3.connect(db_path, timeout=30.0)
    changed = 0
    try:
        conn.execute("PRAGMA secure_delete = ON")
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table, columns in _CREDENTIAL_COLUMNS.items():
            if table in tables:
                changed += _redact_json(conn, table, columns)
        for table in tables:
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({_ident(table)})")]:
                for secret in values:
                    changed += conn.execute(
                        f"UPDATE {_ident(table)} SET {_ident(column)} = "  # noqa: S608 - names from the database's own schema
                        f"replace({_ident(column)}, ?, ?) WHERE typeof({_ident(column)}) = 'text' "
                        f"AND instr({_ident(column)}, ?) > 0",
                        (secret, REDACTED, secret),
                    ).rowcount
        if "envs" in tables:
            conn.execute(
                "UPDATE envs SET name = substr(name || ' (credentials removed ' || "
                "substr(uuid, 1, 8) || ')', 1, 255) WHERE name = ?",
                (env_name,),
            )
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()
    return changed


def _redact_json(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> int:
    present = {r[1] for r in conn.execute(f"PRAGMA table_info({_ident(table)})")}
    changed = 0
    for column in (c for c in columns if c in present):
        rows = conn.execute(f"SELECT rowid, {_ident(column)} FROM {_ident(table)}").fetchall()  # noqa: S608 - names from the database's own schema
        for rowid, text in rows:
            data = _json(text)
            if data is None:
                continue
            clean = redact_value(data)
            if clean != data:
                conn.execute(f"UPDATE {_ident(table)} SET {_ident(column)} = ? WHERE rowid = ?",  # noqa: S608 - names from the database's own schema
                             (json.dumps(clean), rowid))  # fmt: skip
                changed += 1
    return changed
