"""Soak guards with a real supervisor: self-chaos kills and the supervisor restarts; the
disk-space floor stops a run cleanly on a small tmpfs and the ledger verifies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha import __version__
from osha.errors import EXIT_OK
from osha.ledger import LedgerOptions, LedgerWriter, RetentionPolicy, verify
from osha.messages import (
    ActorCrashed,
    ActorStarted,
    DiskFloorReached,
    LedgerHeader,
    Message,
    SelfChaosKill,
)
from osha.recorder import RecorderHandle
from osha.soak import SelfChaos, SoakGuards, SoakOptions
from osha.supervisor import (
    ChildInfo,
    ChildSpec,
    ChildState,
    StopReason,
    Supervisor,
    SupervisorFlags,
    SupervisorSpec,
)
from osha.testing import MemorySink, wait_for
from osha.wire import SCHEMA_VERSION

pytestmark = pytest.mark.timeout(60)


def _spec(n: int, *, interval_s: float = 3600.0, burst: int = 1) -> SupervisorSpec:
    config = {"interval_s": interval_s, "burst": burst}
    return SupervisorSpec(
        children=tuple(ChildSpec(f"tick-{i}", "monitor", "ticker", config) for i in range(n)),
        flags=SupervisorFlags(intensity=50, period_s=60.0),
    )


def test_self_chaos_picks_reproducibly_and_records_before_killing() -> None:
    written: list[Message] = []
    killed: list[tuple[int, int]] = []
    kids = [("b", 12), ("a", 11), ("c", 0)]  # pid 0: not running, never picked

    def run(seed: int) -> list[str]:
        chaos = SelfChaos(written.append, lambda: kids, every_s=1, seed=seed,
                          kill=lambda pid, sig: killed.append((pid, sig)))  # fmt: skip
        return [hit[0] for _ in range(6) if (hit := chaos.strike()) is not None]

    first = run(7)
    assert first == run(7)
    assert set(first) <= {"a", "b"}
    assert all(sig == signal.SIGKILL for _, sig in killed)
    assert isinstance(written[0], SelfChaosKill)
    assert written[0].actor_id == first[0]


def test_self_chaos_kills_a_real_actor_and_the_supervisor_restarts_it(tmp_path: Path) -> None:
    sink = MemorySink()
    sup = Supervisor(_spec(2), sink, run_dir=tmp_path)
    sup.start()
    guards = SoakGuards(
        sink.write, sup.children,
        SoakOptions(selfmon_interval_s=0.05, self_chaos_every_s=0.3, seed=3,
                    disk_floor_bytes=None),
        ledger_dir=None,
    )  # fmt: skip
    try:
        guards.start()
        wait_for(lambda: len(sink.messages(ActorCrashed)) >= 2, timeout_s=20, what="2 crashes")
        guards.stop()
        wait_for(
            lambda: all(c.state == "running" for c in sup.children()),
            timeout_s=20, what="every child restarted",
        )  # fmt: skip
    finally:
        guards.stop()
        sup.stop()
    kills = sink.messages(SelfChaosKill)
    crashes = sink.messages(ActorCrashed)
    assert len(kills) >= 2
    assert {c.actor_id for c in crashes} <= {k.actor_id for k in kills}  # type: ignore[attr-defined]
    assert all(c.signal == signal.SIGKILL for c in crashes)  # type: ignore[attr-defined]
    assert len(sink.messages(ActorStarted)) >= 2 + len(crashes)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")  # the CI and lab hosts run as root
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_disk_floor_stops_the_run_cleanly_and_the_ledger_verifies(small_tmpfs: Path) -> None:
    run_dir = small_tmpfs / "run.osha"
    now = time.time()
    header = LedgerHeader("supervisor", 0, time.monotonic(), now, SCHEMA_VERSION, __version__,
                          "floor", "test", now, 1, {})  # fmt: skip
    options = LedgerOptions(
        segment_size_bytes=1 << 20,
        retention=RetentionPolicy(segment_size_bytes=1 << 20),  # no limit: the floor must act
    )
    recorder = RecorderHandle.start(LedgerWriter.create(run_dir, header, options=options))
    sup = Supervisor(_spec(2, interval_s=0.01, burst=200), recorder, run_dir=small_tmpfs / "logs",
                     run_id="floor")  # fmt: skip
    floor_bytes = 5 * 2**20  # of 8 MiB: stop after about 3 MiB were written
    began_s = time.monotonic()
    sup.start()
    guards = SoakGuards(
        recorder.write, sup.children,
        SoakOptions(selfmon_interval_s=0.05, disk_floor_bytes=floor_bytes),
        ledger_dir=run_dir, on_floor=lambda free: sup.request_stop(StopReason.REQUESTED),
    )  # fmt: skip
    try:
        guards.start()
        reason = sup.wait(30.0)
    finally:
        guards.stop()
        sup.stop()
        recorder.close()
    assert reason is StopReason.REQUESTED, "the floor did not stop the run within 30 s"
    assert time.monotonic() - began_s < 30
    report = verify(run_dir)
    assert report.exit_code(strict=True) == EXIT_OK, report.render()
    assert report.by_tag["osha.disk_floor"] == 1
    assert report.by_tag["osha.resources"] >= 1
    assert shutil.disk_usage(small_tmpfs).free > 0
    assert guards.selfmon.floor_reached.is_set()
    assert DiskFloorReached.TAG == "osha.disk_floor"


def test_self_chaos_kills_only_running_children_never_a_restarting_ones_old_pid() -> None:
    """A child being restarted still shows its old pid: a kill of it would be recorded as a
    self-chaos kill though nothing died (or would hit whatever process reused the pid)."""
    spare = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        kids = [ChildInfo("a", ChildState.RESTARTING, spare[0].pid, 2),
                ChildInfo("b", ChildState.RUNNING, spare[1].pid, 1)]  # fmt: skip
        written: list[Message] = []
        guards = SoakGuards(written.append, lambda: kids, SoakOptions(self_chaos_every_s=60),
                            ledger_dir=None)  # fmt: skip
        assert guards.chaos is not None
        hits = [guards.chaos.strike() for _ in range(8)]
        assert {hit[0] for hit in hits if hit is not None} == {"b"}
        assert spare[0].poll() is None  # the restarting child's old pid was never killed
        assert spare[1].wait(timeout=10) == -signal.SIGKILL
    finally:
        for proc in spare:
            proc.kill()
            proc.wait(timeout=10)
