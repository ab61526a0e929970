# ruff: noqa: T201 - a fake CLI talks on stdout, like the real one
"""A stand-in for the ``rally`` CLI, for the Rally runner's unit tests.

It speaks the subset the runner uses (``db ensure``, ``env show``, ``env create``,
``task validate``, ``task start``, ``task abort``) and writes iterations into the SQLite
schema that Rally uses (``workloads``, ``workloaddata``), one row per iteration, as Rally
does with ``raw_result_chunk_size = 1``. Task args: ``times`` (iterations), ``step_s``
(seconds each), ``fail`` (iteration numbers that fail, as "2,3"), ``exit`` (exit code at the end),
``context_error`` (a workload context whose setup fails: no iteration, exit 2, as Rally does),
``crash`` (the task crashes: status ``crashed`` with Rally's error, exit 1), ``cleanup_s``
(after an abort, the contexts' cleanup takes this long, then leaves ``cleaned-<uuid>``),
``hang`` (this iteration never ends: an abort waits for it, as Rally waits for the iterations
in flight, until the fake is killed), ``until_abort`` (this iteration runs until the abort,
then ends).

Like Rally, it logs ``Task <uuid> | ITER: <n> START`` and ``... END: <status>`` to the
``log_file`` of its config files, in their ``logging_default_format_string`` (the last file
that sets one wins; Rally's default otherwise).

Like Rally, ``env create --from-sysenv`` stores the credentials in clear in the ``envs`` and
``platforms`` tables, and ``rally.log`` may repeat them; the runner must remove them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import time
import uuid
from pathlib import Path


def _db_path(argv: list[str]) -> Path:
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config-file":
            match = re.search(r"connection = sqlite:///(\S+)", Path(argv[i + 1]).read_text())
            if match:
                path = Path(match.group(1))
    assert path is not None, "no [database] connection in the config files"
    return path


_RALLY_FORMAT = ("%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] "
                 "%(instance)s%(message)s")


def _conf(argv: list[str], key: str, default: str) -> str:
    """The value of ``key`` in the last ``--config-file`` that sets it."""
    value = default
    for i, arg in enumerate(argv):
        if arg == "--config-file":
            for line in Path(argv[i + 1]).read_text().splitlines():
                name, _, rest = line.partition("=")
                if name.strip() == key:
                    value = rest.strip()
    return value


def _logger(argv: list[str]) -> logging.Logger:
    """``rally.task.runner`` writing to the config's ``log_file`` in its format."""
    handler = logging.FileHandler(_conf(argv, "log_file", str(_db_path(argv).parent / "rally.log")))
    formatter = logging.Formatter(_conf(argv, "logging_default_format_string", _RALLY_FORMAT),
                                  datefmt="%Y-%m-%d %H:%M:%S")  # fmt: skip
    handler.setFormatter(formatter)
    handler.addFilter(_Instance())
    log = logging.getLogger("rally.task.runner")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log


class _Instance(logging.Filter):
    """oslo.log's ``instance`` field, empty as in Rally's own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = ""
        return True


def _opt(argv: list[str], name: str, default: str = "") -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> int:
    db = _db_path(argv)
    words = [a for a in argv if not a.startswith("-")]
    cmd = " ".join(w for w in words if w in {"db", "ensure", "env", "show", "create", "task",
                                               "validate", "start", "abort"})
    if cmd.startswith("db ensure"):
        conn = sqlite3.connect(db)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS workloads (uuid TEXT, task_uuid TEXT, name TEXT, "
            "contexts_results TEXT, pass_sla INTEGER, sla_results TEXT)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS tasks (uuid TEXT, status TEXT, "
                     "validation_result TEXT)")  # fmt: skip
        conn.execute("CREATE TABLE IF NOT EXISTS envs (uuid TEXT, name TEXT, spec TEXT, "
                     "extras TEXT, config TEXT)")  # fmt: skip
        conn.execute("CREATE TABLE IF NOT EXISTS platforms (uuid TEXT, env_uuid TEXT, "
                     "plugin_spec TEXT, plugin_data TEXT, platform_data TEXT)")  # fmt: skip
        conn.execute(
            "CREATE TABLE IF NOT EXISTS workloaddata (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "task_uuid TEXT, workload_uuid TEXT, chunk_data TEXT)"
        )
        conn.commit()
        print("Database created successfully")
        return 0
    env_name = _opt(argv, "--env") or _opt(argv, "--name")
    if cmd.startswith("env show"):
        conn = sqlite3.connect(db)
        found = conn.execute("SELECT 1 FROM envs WHERE name = ?", (env_name,)).fetchone()
        return 0 if found else 1
    if cmd.startswith("env create"):
        if "OS_AUTH_URL" not in os.environ:
            print("no OS_AUTH_URL", file=sys.stderr)
            return 1
        return _env_create(db, env_name)
    task = Path(_opt(argv, "--task"))
    args = json.loads(_opt(argv, "--task-args", "{}"))
    if cmd.startswith("task validate"):
        return 1 if "INVALID" in task.read_text() else 0
    if cmd.startswith("task abort"):
        task_uuid = _opt(argv, "--uuid")
        (db.parent / f"abort-{task_uuid}").touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (db.parent / f"done-{task_uuid}").exists():
            time.sleep(0.05)
        print(f"Task {task_uuid} successfully stopped.")
        return 0
    if cmd.startswith("task start"):
        return _start(db, args, _opt(argv, "--tag"), _logger(argv))
    print(f"fake rally: unknown command {argv}", file=sys.stderr)
    return 64


def _env_create(db: Path, name: str) -> int:
    creds = {k[3:].lower(): v for k, v in os.environ.items() if k.startswith("OS_")}
    env_uuid = str(uuid.uuid4())
    conn = sqlite3.connect(db)
    spec = json.dumps({"existing@openstack": {"admin": creds}})
    conn.execute("INSERT INTO envs VALUES (?, ?, ?, '{}', '{}')", (env_uuid, name, spec))
    data = json.dumps({"admin": creds, "users": []})
    row = (str(uuid.uuid4()), env_uuid, json.dumps({"admin": creds}), data)
    conn.execute("INSERT INTO platforms VALUES (?, ?, ?, '{}', ?)", row)
    conn.commit()
    with (db.parent / "rally.log").open("a") as log:
        log.write(f"env create {name}: {json.dumps(creds)}\n")  # as a debug log could
    return 0


def _start(db: Path, args: dict[str, object], tag: str, log: logging.Logger) -> int:
    task_uuid, workload = str(uuid.uuid4()), str(uuid.uuid4())
    print(f"Task [tags: '{tag}'] {task_uuid}: started", flush=True)
    conn = sqlite3.connect(db)
    if args.get("crash"):
        error = {"etype": "KeyError", "msg": "'admin'", "trace": "Traceback ..."}
        conn.execute("INSERT INTO tasks VALUES (?, 'crashed', ?)", (task_uuid, json.dumps(error)))
        conn.commit()
        return 1
    contexts = []
    if args.get("context_error"):
        contexts = [{"plugin_name": "network@openstack", "setup": {"error": [
            "NotFoundException", "Extension router is not supported", "tb"]}}]  # fmt: skip
    conn.execute("INSERT INTO tasks VALUES (?, 'running', '{}')", (task_uuid,))
    conn.execute("INSERT INTO workloads VALUES (?, ?, ?, ?, ?, ?)",
                 (workload, task_uuid, "Fake.scenario", json.dumps(contexts),
                  0 if contexts else 1, json.dumps({"sla": []})))  # fmt: skip
    conn.commit()
    if contexts:
        conn.execute("UPDATE tasks SET status = 'finished' WHERE uuid = ?", (task_uuid,))
        conn.commit()
        (db.parent / f"done-{task_uuid}").touch()
        return 2
    fail = {int(n) for n in str(args.get("fail", "")).split(",") if n}
    step_s = float(args.get("step_s", 0.1))
    hang, until_abort = int(args.get("hang", 0)), int(args.get("until_abort", 0))
    for n in range(1, int(args.get("times", 3)) + 1):
        if (db.parent / f"abort-{task_uuid}").exists():
            break
        log.info(f"Task {task_uuid} | ITER: {n} START")
        started = time.time()
        hung_until = time.monotonic() + (120.0 if n in (hang, until_abort) else 0.0)  # bounded
        while time.monotonic() < hung_until:  # in flight until killed; an abort waits for it
            if n == until_abort and (db.parent / f"abort-{task_uuid}").exists():
                break
            time.sleep(0.05)
        time.sleep(step_s)
        it = {
            "timestamp": started,
            "duration": time.time() - started,
            "idle_duration": 0,
            "error": ["GetResourceErrorStatus", f"iteration {n} failed", "tb"] if n in fail else [],
            "output": {},
            "atomic_actions": [
                {"name": "nova.boot_server", "started_at": started, "finished_at": started + 0.01,
                 "children": []},
            ],
        }
        log.info(f"Task {task_uuid} | ITER: {n} END: " + ("Error" if n in fail else "OK"))
        conn.execute(
            "INSERT INTO workloaddata (task_uuid, workload_uuid, chunk_data) VALUES (?, ?, ?)",
            (task_uuid, workload, json.dumps({"raw": [it]})),
        )
        conn.commit()
    if (db.parent / f"abort-{task_uuid}").exists():
        # Rally's contexts clean up after an abort: ``cleanup_s`` long, then a mark of it
        time.sleep(float(args.get("cleanup_s", 0.0)))
        (db.parent / f"cleaned-{task_uuid}").touch()
    conn.execute("UPDATE tasks SET status = 'finished' WHERE uuid = ?", (task_uuid,))
    conn.commit()
    (db.parent / f"done-{task_uuid}").touch()
    return int(args.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
