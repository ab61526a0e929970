"""The Rally runner, against a fake ``rally`` CLI that writes Rally's own SQLite schema."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from actors.runners._rally_db import IterationReader, atomic_durations
from actors.runners._rally_log import Started, unfinished
from actors.runners.rally import RallyConfig, RallyRunner
from osha.messages import RunnerIteration, RunnerStatus, RunnerUnfinished
from osha.schema import FilePath
from osha.testing import FakeContext, wait_for

FAKE = Path(__file__).parent / "data" / "fake_rally.py"

CLOUDS = """\
clouds:
  fake:
    auth:
      auth_url: http://192.0.2.1:5000/v3
      username: admin
      password: s3cret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
"""


@pytest.fixture
def rally_bin(tmp_path: Path) -> Path:
    script = tmp_path / "rally"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    script.chmod(0o755)
    return script


def _config(
    tmp_path: Path, rally_bin: Path, args: dict[str, str | int | float | bool] | None = None
) -> RallyConfig:
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    task = tmp_path / "task.yaml"
    task.write_text("---\nFake.scenario: []\n")
    return RallyConfig(
        task=FilePath(str(task)),
        cloud="fake",
        clouds_yaml=FilePath(str(tmp_path / "clouds.yaml")),
        rally_bin=FilePath(str(rally_bin)),
        work_dir=FilePath(str(tmp_path / "work")),
        args=args or {},
        poll_interval_s=0.05,
        abort_timeout_s=10.0,
    )


def test_atomic_actions_flatten_with_children_and_repeats() -> None:
    actions = [
        {"name": "a", "started_at": 1.0, "finished_at": 1.5, "children": [
            {"name": "b", "started_at": 1.1, "finished_at": 1.2, "children": []},
        ]},
        {"name": "a", "started_at": 2.0, "finished_at": 2.25, "children": []},
    ]  # fmt: skip
    assert atomic_durations(actions) == {"a": 0.5, "a/b": 0.1, "a (2)": 0.25}


def test_atomic_actions_of_an_old_rally_are_a_flat_mapping() -> None:
    # Rally before 0.10 stored {"name": duration}; iterating it as a list of actions raised
    # AttributeError ('str' object has no attribute 'get') and stopped the runner's reader
    flat = {"nova.boot_server": 3.25, "nova.delete_server": 1.5, "bad": "x"}
    assert atomic_durations(flat) == {"nova.boot_server": 3.25, "nova.delete_server": 1.5}
    assert atomic_durations([{"name": "a", "started_at": 1.0, "finished_at": 2.0}, "junk"]) == {
        "a": 1.0}  # fmt: skip


def test_reader_returns_only_new_rows_of_its_task(tmp_path: Path) -> None:
    db = tmp_path / "rally.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE workloads (uuid TEXT, task_uuid TEXT, name TEXT)")
    conn.execute(
        "CREATE TABLE workloaddata (id INTEGER PRIMARY KEY, task_uuid TEXT, workload_uuid TEXT,"
        " chunk_data TEXT)"
    )
    conn.execute("INSERT INTO workloads VALUES ('w1', 't1', 'Nova.boot')")
    conn.execute("INSERT INTO workloads VALUES ('w2', 't2', 'Other')")

    def add(task: str, workload: str, error: list[str]) -> None:
        raw = {"timestamp": 10.0, "duration": 2.5, "error": error, "atomic_actions": []}
        conn.execute(
            "INSERT INTO workloaddata (task_uuid, workload_uuid, chunk_data) VALUES (?, ?, ?)",
            (task, workload, json.dumps({"raw": [raw]})),
        )
        conn.commit()

    add("t1", "w1", [])
    add("t2", "w2", [])
    reader = IterationReader(db, "t1")
    first = list(reader.read())
    assert [(i.workload, i.ok, i.duration_s) for i in first] == [("Nova.boot", True, 2.5)]
    assert list(reader.read()) == []
    add("t1", "w1", ["Timeout", "boot timed out", "traceback"])
    [it] = list(reader.read())
    assert (it.ok, it.error_type, it.error) == (False, "Timeout", "boot timed out")
    reader.close()


def test_runner_records_every_iteration_while_the_task_runs(
    tmp_path: Path, rally_bin: Path
) -> None:
    ctx = FakeContext("rally-1")
    runner = RallyRunner(_config(tmp_path, rally_bin, {"times": 4, "step_s": 0.05}), ctx)
    runner.setup()
    runner.run()
    runner.teardown()
    iterations = ctx.of(RunnerIteration)
    assert [i.iteration for i in iterations] == [1, 2, 3, 4]
    assert all(i.ok and i.runner == "Fake.scenario" for i in iterations)
    assert iterations[0].atomic == {"nova.boot_server": pytest.approx(0.01)}
    statuses = [s.status for s in ctx.of(RunnerStatus)]
    assert statuses == ["started", "finished"]
    # the runner's own Rally config pins the database and one row per iteration
    conf = (tmp_path / "work" / "osha-rally.conf").read_text()
    assert "raw_result_chunk_size = 1" in conf
    # the environment was made from the clouds.yaml entry, through OS_* variables
    spec = sqlite3.connect(tmp_path / "work" / "rally.db").execute("SELECT spec FROM envs")
    assert "http://192.0.2.1:5000/v3" in spec.fetchone()[0]


def _files_holding(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_the_clouds_credentials_are_removed_when_the_runner_stops(
    tmp_path: Path, rally_bin: Path
) -> None:
    work = tmp_path / "work"
    runner = RallyRunner(_config(tmp_path, rally_bin, {"times": 2, "step_s": 0.02}),
                         FakeContext("rally-1"))  # fmt: skip
    runner.setup()
    runner.run()
    assert _files_holding(work, b"s3cret")  # Rally keeps them in clear while it runs
    runner.teardown()
    assert _files_holding(work, b"s3cret") == []
    conn = sqlite3.connect(work / "rally.db")
    [(name, spec)] = conn.execute("SELECT name, spec FROM envs").fetchall()
    assert "credentials removed" in name
    assert '"password": "<redacted>"' in spec
    conn.close()
    # the next incarnation of the runner makes a fresh environment and runs
    again = RallyRunner(_config(tmp_path, rally_bin, {"times": 1, "step_s": 0.02}),
                        FakeContext("rally-1"))  # fmt: skip
    again.setup()
    again.run()
    assert [i.ok for i in again.ctx.of(RunnerIteration)] == [True]  # type: ignore[attr-defined]
    again.teardown()
    assert _files_holding(work, b"s3cret") == []


def test_the_work_dir_is_private_whatever_the_umask(tmp_path: Path, rally_bin: Path) -> None:
    old = os.umask(0)
    try:
        runner = RallyRunner(_config(tmp_path, rally_bin, {"times": 1, "step_s": 0.02}),
                             FakeContext("rally-1"))  # fmt: skip
        runner.setup()
        runner.run()
        runner.teardown()
    finally:
        os.umask(old)
    work = tmp_path / "work"
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in work.iterdir() if p.is_file()}
    assert {"rally.db", "rally.log", "osha-rally.conf"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        ({"context_error": True}, "Fake.scenario: context network@openstack setup failed: "
                                  "NotFoundException: Extension router is not supported"),
        ({"crash": True}, "rally task crashed: KeyError: 'admin'"),
    ],
)  # fmt: skip
def test_a_task_that_fails_is_recorded_with_rallys_own_error(
    tmp_path: Path, rally_bin: Path, args: dict[str, str | int | float | bool], detail: str
) -> None:
    ctx = FakeContext("rally-6")
    runner = RallyRunner(_config(tmp_path, rally_bin, args), ctx)
    runner.setup()
    runner.run()
    runner.teardown()
    last = ctx.of(RunnerStatus)[-1]
    assert last.status == "failed"
    assert detail in last.detail


def test_failed_iterations_carry_the_error(tmp_path: Path, rally_bin: Path) -> None:
    ctx = FakeContext("rally-2")
    cfg = _config(tmp_path, rally_bin, {"times": 3, "step_s": 0.02, "fail": "2", "exit": 2})
    runner = RallyRunner(cfg, ctx)
    runner.setup()
    runner.run()
    iterations = ctx.of(RunnerIteration)
    assert [i.ok for i in iterations] == [True, False, True]
    assert (iterations[1].error_type, iterations[1].error) == (
        "GetResourceErrorStatus",
        "iteration 2 failed",
    )
    # Rally's exit code 2 (its own SLA failed) is a finished task: the campaign judges SLOs
    assert ctx.of(RunnerStatus)[-1].status == "finished"


def _run_then_stop(cfg: RallyConfig, ctx: FakeContext, iterations: int) -> RallyRunner:
    """Run the task until ``iterations`` are recorded, then stop the runner (its abort, then
    the kill if Rally outlives ``abort_timeout_s``) and tear it down."""
    runner = RallyRunner(cfg, ctx)
    runner.setup()
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_for(lambda: len(ctx.of(RunnerIteration)) >= iterations, timeout_s=20,
             what=f"{iterations} iterations")  # fmt: skip
    ctx.stopping.set()
    thread.join(timeout=cfg.abort_timeout_s + 20)  # the abort's wait, then the kill's grace
    assert not thread.is_alive()
    runner.teardown()
    return runner


def test_stopping_aborts_the_task_and_keeps_what_ran(tmp_path: Path, rally_bin: Path) -> None:
    ctx = FakeContext("rally-3")
    cfg = _config(tmp_path, rally_bin, {"times": 1000, "step_s": 0.05})
    runner = _run_then_stop(cfg, ctx, 3)
    seen = len(ctx.of(RunnerIteration))
    assert 3 <= seen < 1000
    assert [s.status for s in ctx.of(RunnerStatus)][-1] == "aborted"
    assert runner.task is not None
    assert runner.task.proc.poll() is not None  # rally itself has ended
    assert not ctx.of(RunnerUnfinished)  # Rally let the iteration in flight end and stored it


def test_an_iteration_cut_off_by_the_kill_is_recorded_with_its_start(
    tmp_path: Path, rally_bin: Path
) -> None:
    """An iteration still in flight when Rally is killed (it did not stop within
    ``abort_timeout_s``: an abort lets the iterations in flight run on) never reaches Rally's
    database; its start, in Rally's log, is recorded as ``runner.unfinished``, with no
    duration (stop 29: a lab campaign lost the boots in flight at the faults that way)."""
    ctx = FakeContext("rally-5")
    cfg = replace(_config(tmp_path, rally_bin, {"times": 1000, "step_s": 0.05, "hang": 3}),
                  abort_timeout_s=1.0)  # fmt: skip
    _run_then_stop(cfg, ctx, 2)
    done = ctx.of(RunnerIteration)
    assert [i.iteration for i in done] == [1, 2]
    (cut,) = ctx.of(RunnerUnfinished)
    assert cut.iteration == 3
    assert cut.runner == "Fake.scenario"
    assert cut.reason.startswith("rally killed"), cut.reason
    assert "abort_timeout_s (1 s)" in cut.reason, cut.reason
    # it began after iteration 2 ended, before the stop: Rally's own clock, read exactly
    assert done[1].started_wall_s + done[1].duration_s <= cut.started_wall_s <= ctx.of(
        RunnerStatus)[-1].wall_s  # fmt: skip
    assert "was killed" in ctx.of(RunnerStatus)[-1].detail


def test_iterations_that_end_during_the_abort_are_read_while_rally_cleans_up(
    tmp_path: Path, rally_bin: Path
) -> None:
    """After ``rally task abort`` the iterations in flight run on; each is read as Rally
    stores it, while Rally still cleans up, not only once Rally has exited (a runner stopped
    before Rally would lose them)."""
    ctx = FakeContext("rally-6")
    cfg = replace(_config(tmp_path, rally_bin, {"times": 1000, "step_s": 0.05,
                                                "until_abort": 3, "cleanup_s": 60}),
                  abort_timeout_s=15.0)  # fmt: skip
    runner = RallyRunner(cfg, ctx)
    runner.setup()
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_for(lambda: len(ctx.of(RunnerIteration)) >= 2, timeout_s=20, what="2 iterations")
    ctx.stopping.set()  # iteration 3 runs until the abort, then ends; the cleanup takes 60 s
    wait_for(lambda: len(ctx.of(RunnerIteration)) >= 3, timeout_s=10,
             what="iteration 3, ended after the abort, read during Rally's cleanup")  # fmt: skip
    assert runner.task is not None
    assert runner.task.proc.poll() is None  # Rally is still cleaning up
    thread.join(timeout=cfg.abort_timeout_s + 20)  # the abort's wait, then the kill's grace
    assert not thread.is_alive()
    runner.teardown()
    assert [i.iteration for i in ctx.of(RunnerIteration)] == [1, 2, 3]
    assert not ctx.of(RunnerUnfinished)


def test_unfinished_pairs_each_iterations_start_with_its_end(tmp_path: Path) -> None:
    """A number's starts and ends pair in order (numbers restart with each workload of a
    task); another task's lines and lines in another format are not read."""
    task, other = "6d5a2c1e-0000-4000-8000-000000000001", "6d5a2c1e-0000-4000-8000-000000000002"

    def line(unix: float, uuid: str, text: str) -> str:
        return (f"{unix:.6f} 2026-12-05 20:00:00.000 42 INFO rally.task.runner [-] "
                f"Task {uuid} | ITER: {text}\n")  # fmt: skip

    log = tmp_path / "rally.log"
    log.write_text(
        line(10.5, task, "1 START") + line(10.6, task, "2 START")
        + line(11.0, task, "1 END: OK") + line(12.0, other, "7 START")
        + line(13.25, task, "1 START")  # the next workload's first iteration
        + line(14.0, task, "2 END: Error GetResourceErrorStatus: boom")
        + f"2026-12-05 20:00:15.000 42 INFO rally.task.runner [-] Task {task} | ITER: 3 START\n"
        + line(16.0, task, "4 START")[:30]  # cut short by the kill
    )  # fmt: skip
    assert unfinished(log, task) == [Started(1, 13.25)]
    assert unfinished(log, other) == [Started(7, 12.0)]
    assert unfinished(tmp_path / "absent.log", task) == []


@pytest.mark.parametrize(("cleanup_s", "abort_timeout_s", "killed"), [(0.2, 20.0, False),
                                                                        (60.0, 1.0, True)])
def test_a_rally_killed_before_its_cleanup_says_what_it_may_leave_behind(
    tmp_path: Path, rally_bin: Path, cleanup_s: float, abort_timeout_s: float, killed: bool
) -> None:
    """After ``rally task abort`` Rally cleans up what it created; when it takes longer than
    ``abort_timeout_s`` it is killed, its cleanup never runs, and the status says so with the
    names to look for (a lab campaign left three servers, a port and a project that way)."""
    ctx = FakeContext("rally-4")
    cfg = replace(_config(tmp_path, rally_bin, {"times": 1000, "step_s": 0.05,
                                                "cleanup_s": cleanup_s}),
                  abort_timeout_s=abort_timeout_s)  # fmt: skip
    runner = _run_then_stop(cfg, ctx, 1)
    assert runner.task is not None
    cleaned = (Path(cfg.work_dir or "") / f"cleaned-{runner.task.uuid}").exists()
    status = ctx.of(RunnerStatus)[-1]
    assert status.status == "aborted"
    assert cleaned is not killed
    mark = runner.task.uuid.replace("-", "")[:8]
    assert (f"*_rally_{mark}_*" in status.detail) is killed, status.detail
    assert ("was killed" in status.detail) is killed


def test_check_reports_a_missing_binary_as_a_finding(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path / "no-such-rally")
    [finding] = RallyRunner(cfg, FakeContext("rally-4")).check()
    assert not finding.ok
    assert "is not there" in finding.message
    assert "rally_bin" in finding.hint


def test_check_runs_rally_task_validate(tmp_path: Path, rally_bin: Path) -> None:
    cfg = _config(tmp_path, rally_bin)
    [ok] = RallyRunner(cfg, FakeContext("rally-5")).check()
    assert ok.ok, ok.message
    Path(cfg.task).write_text("INVALID\n")
    [bad] = RallyRunner(cfg, FakeContext("rally-5")).check()
    assert not bad.ok
    assert "rally task validate" in bad.message


def test_the_verdict_names_the_workloads_failure(tmp_path: Path) -> None:
    from osha.analysis import SloSpec, analyze
    from osha.testing import SyntheticLedger

    led = SyntheticLedger(tmp_path / "r.osha")
    led.target("hs", "nova-api@ctl-1", end_s=60.0)
    why = "Fake.scenario: context network@openstack setup failed: NotFoundException: no router"
    led.add(5.0, "boot", RunnerStatus, runner="task.yaml", status="failed", detail=why)
    a = analyze(led.write(stop_s=61.0), slo=SloSpec(min_runner_success=0.9))
    [result] = [r for r in a.verdict.results if r.slo == "min_runner_success"]
    assert not result.passed
    assert result.detail == f"0/0 iterations succeeded; the workload failed: {why}"
