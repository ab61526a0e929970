"""``rally``: runs a Rally task against the cloud and records every iteration as it happens.

**How iterations are seen live (chosen, then measured).** Rally writes a workload's results to
its database only at the end, unless ``raw_result_chunk_size`` says otherwise. Two ways were
possible: run Rally in many short chunks, or read its database during one long run.

- *Chunks* pay Rally's fixed cost for every chunk: process start (0.7 s), database and
  environment lookups, and above all the task's contexts (the ``users`` context creates and
  deletes a project and a user; on the lab, a 4-iteration task spent 59 s of its 250 s outside
  the load, about 27 s of setup before the first iteration). Between chunks no load runs at
  all, which hides exactly the outages an HA test looks for.
- *Polling* costs almost nothing: the runner's own Rally config sets
  ``raw_result_chunk_size = 1``, so Rally's result consumer (which wakes every 0.1 s) writes
  each finished iteration as one row, and the runner reads new rows read-only from the SQLite
  file every ``poll_interval_s``. Measured on the lab: one poll costs 0.09 ms; an iteration
  reaches the ledger 0.12 to 0.29 s after it ends (poll 0.2 s + Rally's 0.1 s loop); one
  ``rally task start`` for the whole campaign.

So: one long-running ``rally task start`` per workload (``repeat = true`` starts it again when
it ends), its database polled. Stopping aborts it with ``rally task abort`` (Rally stops
launching iterations, lets the ones in flight end and cleans up its contexts), reading the
rows as they come until Rally exits. A Rally killed past ``abort_timeout_s`` never stores
the iterations still in flight: each is recorded as ``runner.unfinished``, with its start
from Rally's log (:mod:`actors.runners._rally_log`).

Each runner has its own Rally database and environment (``work_dir``, by default
``<run-dir>/rally/<runner-id>/``), made from the same clouds.yaml entry as the monitors: no
shared state between runners, so several run in parallel without SQLite lock contention.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

import psutil

from actors.runners._rally_cli import RallyCli, RallyTask, cloud_environ
from actors.runners._rally_db import (
    IterationReader,
    current_workload,
    scrub_credentials,
    task_outcome,
)
from actors.runners._rally_log import FORMAT_OPTIONS, unfinished
from osha.errors import PluginError
from osha.messages import RunnerIteration, RunnerStatus, RunnerUnfinished
from osha.plugin import Finding, Runner
from osha.redaction import REDACTED, is_secret_key, redact_text
from osha.rundir import make_private_dir, write_private_atomic
from osha.schema import DirPath, FilePath

__all__ = ["RallyConfig", "RallyRunner"]

_KILL_GRACE_S = 5.0
_CONF = """\
# Written by osha's rally runner; later --config-file files win over earlier ones.
[DEFAULT]
log_file = {work}/rally.log
# one database row per finished iteration: the runner reads them while the task runs
raw_result_chunk_size = 1
# the Unix time first on each line: the start of an iteration Rally never stored is read here
{log_format}[database]
connection = sqlite:///{work}/rally.db
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RallyConfig:
    """Settings of ``rally`` (see :class:`RallyRunner`)."""

    task: FilePath
    cloud: str
    args: dict[str, str | int | float | bool] = field(default_factory=dict)
    clouds_yaml: FilePath | None = None
    rally_bin: FilePath | None = None
    config_files: tuple[FilePath, ...] = ()
    work_dir: DirPath | None = None
    env_name: str = ""
    repeat: bool = False
    poll_interval_s: float = 0.5
    #: after ``rally task abort``, Rally finishes the API calls in flight and then runs its
    #: contexts' cleanup (deletes what it created); killing it sooner leaves that in the cloud,
    #: and a loaded cloud can take a minute for one call
    abort_timeout_s: float = 240.0
    command_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0 or self.abort_timeout_s <= 0 or self.command_timeout_s <= 0:
            raise ValueError("poll_interval_s, abort_timeout_s and command_timeout_s must be > 0")


class RallyRunner(Runner[RallyConfig]):
    """Runs a Rally task file (YAML or JSON, a Jinja2 template with ``args``) with the Rally
    CLI, against a Rally environment made from the clouds.yaml entry ``cloud``, and records
    each iteration as ``runner.iteration`` while the task runs (start time, duration, success
    or error type and message, atomic actions) and the task's life as ``runner.status``.

    Keys: ``task`` (the task file), ``args`` (task args), ``cloud`` and ``clouds_yaml``
    (default: ``[cloud]``), ``rally_bin`` (default: ``rally`` on PATH), ``config_files``
    (your rally.conf files, e.g. ``[openstack]`` poll intervals; the runner's own file comes
    last and pins the database), ``work_dir`` (its Rally database, config and log; default
    ``<run-dir>/rally/<id>``), ``env_name`` (default ``osha-<cloud>``), ``repeat`` (start the
    task again when it ends, until stopped), ``poll_interval_s``, ``abort_timeout_s``
    (how long Rally may take to stop and clean up after ``rally task abort`` before it is
    killed; a killed Rally leaves what it created), ``command_timeout_s`` (other rally
    commands).

    Profile::

        [[runners]]
        id = "boot-delete"
        plugin = "rally"
        task = "rally/boot-and-delete.yaml"
        args = { times = 40, concurrency = 2 }
        cloud = "lab"
    """

    config_type = RallyConfig
    #: stopping aborts the Rally task, which waits for the iterations in flight and cleans up:
    #: the default abort timeout (240 s), the kill's grace (2 x 5 s) and a margin
    default_shutdown_s: ClassVar[float] = 300.0

    def setup(self) -> None:
        cfg = self.config
        if not Path(cfg.task).is_file():
            raise PluginError(
                f"the Rally task file {cfg.task} does not exist", hint="fix task = ... "
            )
        self.work = self._work_dir()
        self._temp = cfg.work_dir is None and "OSHA_RUN_DIR" not in os.environ
        self.cli = self._cli(self.work, log=sys.stderr)
        self.task: RallyTask | None = None
        self.iterations = 0
        self._reap_orphan()

    # -- preparation -------------------------------------------------------------------------

    def _work_dir(self) -> Path:
        if self.config.work_dir is not None:
            path = Path(self.config.work_dir)
        elif "OSHA_RUN_DIR" in os.environ:  # set by the campaign: keep Rally's data with the run
            path = Path(os.environ["OSHA_RUN_DIR"]) / "rally" / self.ctx.actor_id
        else:
            path = Path(tempfile.mkdtemp(prefix=f"osha-rally-{self.ctx.actor_id}-"))
        make_private_dir(path)  # Rally's database holds the load's data: private (0700)
        return path

    def _cli(self, work: Path, log: IO[str] | None) -> RallyCli:
        cfg = self.config
        conf = work / "osha-rally.conf"
        write_private_atomic(conf, _CONF.format(work=work, log_format=FORMAT_OPTIONS).encode())
        env_name = cfg.env_name or f"osha-{cfg.cloud}"
        files = [*(Path(p) for p in cfg.config_files), conf]
        binary = cfg.rally_bin or shutil.which("rally") or "rally"
        return RallyCli(str(binary), files, env_name, log)

    def _prepare(self, cli: RallyCli) -> None:
        """The database and the environment, made once per work dir."""
        timeout_s = self.config.command_timeout_s
        cli.check(cli.call("db", "ensure", timeout_s=timeout_s), "rally db ensure")
        if cli.env_exists(timeout_s):
            return
        environ = cloud_environ(self.config.cloud, self.config.clouds_yaml)
        result = cli.call(
            "env", "create", "--name", cli.env_name, "--from-sysenv", "--no-use",
            timeout_s=timeout_s, extra_env=environ,
        )  # fmt: skip
        cli.check(result, f"rally env create {cli.env_name} (cloud {self.config.cloud!r})")

    def check(self) -> list[Finding]:
        """The environment can be made and ``rally task validate`` accepts the task."""
        target = f"rally:{Path(self.config.task).name}"
        with tempfile.TemporaryDirectory(prefix="osha-rally-check-") as tmp:
            try:
                cli = self._cli(Path(tmp), log=None)
                self._prepare(cli)
                cfg = self.config
                cli.validate(Path(cfg.task), cfg.args, cfg.command_timeout_s)
            except PluginError as exc:
                return [Finding(target, False, exc.message, exc.hint)]
        return [Finding(target, True, f"task valid in env {cli.env_name}")]

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        self._prepare(self.cli)
        while not self.ctx.stopping.is_set():
            status = self._one_task()
            if status != "finished" or not self.config.repeat:
                return

    def _one_task(self) -> str:
        cfg = self.config
        task = self.task = self.cli.start(Path(cfg.task), cfg.args, tag=f"osha-{self.ctx.actor_id}")
        write_private_atomic(self.work / "rally-task.pid", str(task.proc.pid).encode())
        assert task.started is not None
        while not task.started.wait(0.2):
            if self.ctx.stopping.is_set():
                self._kill(task)
                self._status(cfg.task, "aborted", "stopped before the task started")
                return "aborted"
        if not task.uuid:
            task.proc.wait()
            detail = f"rally task start exited {task.proc.returncode}: {task.output_tail()}"
            self._status(cfg.task, "failed", detail)
            raise PluginError(detail[:2000], hint=f"see {self.work / 'rally.log'}")
        self._status(cfg.task, "started", task.uuid)
        reader = IterationReader(self.work / "rally.db", task.uuid)
        aborted = killed = False
        try:
            while task.proc.poll() is None:
                self._drain(reader)
                if self.ctx.wait(cfg.poll_interval_s):
                    aborted = True
                    killed = self._abort(task, reader)
                    break
            task.proc.wait()
            self._drain(reader)
        finally:
            reader.close()
        self._unfinished(task, killed)
        return self._ended(task, aborted, killed)

    def _ended(self, task: RallyTask, aborted: bool, killed: bool = False) -> str:
        """Record how the task ended, in Rally's own words when its database says more than
        its exit code (a crash, a failed validation, a context whose setup failed)."""
        code = task.proc.returncode
        outcome = task_outcome(self.work / "rally.db", task.uuid)
        if killed:
            mark = task.uuid.replace("-", "")[:8]  # Rally's names carry the task id's start
            status, detail = "aborted", (
                f"rally task abort; rally did not stop within abort_timeout_s "
                f"({self.config.abort_timeout_s:g} s) and was killed (exit {code}): its "
                f"cleanup did not run, so what it created may remain in the cloud (projects, "
                f"users, servers, networks and ports named *_rally_{mark}_*): delete them, and "
                f"raise abort_timeout_s (and shutdown_s) if the cloud is this slow"
            )
        elif aborted:
            status, detail = "aborted", f"rally task abort; rally exited {code}"
        elif outcome is not None and outcome.failed:
            status, detail = "failed", f"{outcome.detail} (rally exited {code})"
        elif code in (0, 2):  # 2: Rally's SLA failed, which the campaign judges itself
            said = outcome.detail if outcome is not None else "SLA failed" if code else "ok"
            status, detail = "finished", f"rally exited {code}: {said}"
        else:
            status, detail = "failed", f"rally exited {code}: {task.output_tail()[-1500:]}"
        self._status(self.config.task, status, redact_text(f"{task.uuid}: {detail}"))
        return status

    def _drain(self, reader: IterationReader) -> None:
        for it in reader.read():
            self.iterations += 1
            self.ctx.emit(
                RunnerIteration,
                runner=it.workload,
                iteration=self.iterations,
                started_wall_s=it.started_wall_s,
                duration_s=it.duration_s,
                ok=it.ok,
                atomic=it.atomic,
                error_type=it.error_type,
                error=redact_text(it.error)[:2000],
            )

    def _unfinished(self, task: RallyTask, killed: bool) -> None:
        """The iterations Rally started and never stored (it was killed, or exited, while
        they ran), from its log: each with its start, no duration (it had none)."""
        cut = unfinished(self.work / "rally.log", task.uuid)
        if not cut:
            return
        db, task_file = self.work / "rally.db", Path(self.config.task)
        workload = current_workload(db, task.uuid) or task_file.name
        reason = (
            f"rally killed: it did not stop within abort_timeout_s "
            f"({self.config.abort_timeout_s:g} s) after rally task abort"
            if killed
            else f"rally exited {task.proc.returncode} while it ran"
        )
        for it in cut:
            self.ctx.emit(RunnerUnfinished, runner=workload, iteration=it.iteration,
                          started_wall_s=it.started_wall_s, reason=reason)  # fmt: skip

    def _status(self, task: str, status: str, detail: str) -> None:
        self.ctx.emit(RunnerStatus, runner=Path(task).name, status=status, detail=detail[:2000])

    def _abort(self, task: RallyTask, reader: IterationReader | None = None) -> bool:
        """``rally task abort`` (the iterations in flight run on, then Rally cleans up);
        meanwhile the iterations that end are read as they are stored, so that they reach
        the ledger even if this actor is stopped before Rally. If Rally is not done within
        ``abort_timeout_s``, SIGTERM, then SIGKILL, to its whole process group. True if it
        had to be killed."""
        timeout_s = self.config.abort_timeout_s
        deadline_s = time.monotonic() + max(1.0, timeout_s)
        call = threading.Thread(target=self._abort_call, args=(task.uuid, timeout_s),
                                name="rally-abort", daemon=True)  # fmt: skip
        call.start()
        while task.proc.poll() is None and time.monotonic() < deadline_s:
            if reader is not None:
                self._drain(reader)
            with contextlib.suppress(subprocess.TimeoutExpired):  # not yet: read again
                task.proc.wait(timeout=self.config.poll_interval_s)
        killed = task.proc.poll() is None
        if killed:
            self.ctx.log.error(
                "rally did not stop within %g s after abort: killing it; its cleanup will not "
                "run, so what it created may remain in the cloud",
                timeout_s,
            )
            self._kill(task)
        call.join(timeout=_KILL_GRACE_S)  # `rally task abort` ends with the task (or its timeout)
        return killed

    def _abort_call(self, uuid: str, timeout_s: float) -> None:
        try:
            result = self.cli.abort(uuid, timeout_s)
            if result.returncode != 0:
                self.ctx.log.warning("rally task abort exited %d", result.returncode)
        except PluginError as exc:
            self.ctx.log.warning("rally task abort: %s", exc.message)

    def _kill(self, task: RallyTask) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: fine
                os.killpg(task.proc.pid, sig)
            try:
                task.proc.wait(timeout=_KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def _reap_orphan(self) -> None:
        """A previous incarnation of this runner was killed: stop the Rally it left."""
        pid_file = self.work / "rally-task.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text() or 0)
        pid_file.unlink()
        try:
            proc = psutil.Process(pid)
            if "rally" not in " ".join(proc.cmdline()):
                return
            self.ctx.log.warning("stopping rally pid %d left by a previous incarnation", pid)
            os.killpg(pid, signal.SIGTERM)
            proc.wait(timeout=_KILL_GRACE_S)
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
        except (psutil.NoSuchProcess, ProcessLookupError):
            return

    def teardown(self) -> None:
        task = getattr(self, "task", None)
        if task is not None and task.proc.poll() is None:
            self._abort(task)  # run() was cut short (the actor failed): still abort cleanly
        if getattr(self, "_temp", False):  # a temporary work dir of ours: nothing to keep
            shutil.rmtree(self.work, ignore_errors=True)
        elif hasattr(self, "work"):
            self._scrub()

    def _scrub(self) -> None:
        """Remove the cloud's credentials from what stays in the work dir: Rally's database
        (its environment stores them in clear) and Rally's log. Rally is not running now."""
        secrets = _secret_values(self.config)
        db = self.work / "rally.db"
        if db.is_file():
            scrub_credentials(db, self.cli.env_name, secrets)
        for log in (self.work / "rally.log",):
            if log.is_file():
                text = log.read_text(encoding="utf-8", errors="replace")
                clean = redact_text(text)
                for secret in secrets:
                    clean = clean.replace(secret, REDACTED) if len(secret) >= 4 else clean
                if clean != text:
                    write_private_atomic(log, clean.encode())


def _secret_values(config: RallyConfig) -> list[str]:
    """The secret values of the cloud's credentials (password, token, application credential
    secret), as the runner gives them to ``rally env create``."""
    try:
        environ = cloud_environ(config.cloud, config.clouds_yaml)
    except PluginError:
        return []
    return [value for key, value in environ.items() if is_secret_key(key) and value]
