"""``osha faults recover``: unrevoked leases from a dead run's ledger, reverted and recorded.

The fault here is a marker file per node: "disrupted" while it exists, reverted by deleting it.
The unit tier has no nodes; what is under test is reading the ledger, reverting each unrevoked
lease once, recording every attempt in a new ledger, and reporting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from osha.faults import Lease, RetryPolicy, recover, unrevoked
from osha.ledger import LedgerReader, LedgerWriter, verify
from osha.messages import ActorStarted, FaultInjected, FaultLease, FaultReverted, LedgerHeader
from osha.testing import wait_for

FAST = RetryPolicy(initial_s=0.01, max_s=0.02, min_window_s=0.1)


def _lease(node: str, index: int) -> FaultLease:
    return FaultLease("faults", index + 1, time.monotonic(), time.time(), lease=Lease(
        lease_id=f"d1/{index}", holder="d1",
        plugin="fake", index=index, action="stop", node=node, address="127.0.0.1",
        resource="svc", groups=("all",), down_s=1.0, planned_wall_s=time.time(),
        revert_by_wall_s=time.time() - 1, revert={},
    ))  # fmt: skip


def dead_run(tmp_path: Path, markers: Path) -> Path:
    """A ledger as a kill -9 leaves it: three leases, one reverted, no clean close."""
    run = tmp_path / "run.osha"
    header = LedgerHeader("osha", 1, 0.0, time.time(), schema_version=1, osha_version="t",
                          run_id="r1", host="h", started_wall_s=time.time(), seed=3,
                          profile={})  # fmt: skip
    writer = LedgerWriter.create(run, header)
    for i, node in enumerate(["n1", "n2", "n3"]):
        writer.append(_lease(node, i))
        (markers / node).touch()
    writer.append(FaultInjected("d1", 1, 0.0, 0.0, lease_id="d1/0", index=0, action="stop",
                                node="n1", resource="svc", planned_wall_s=0.0,
                                actual_wall_s=0.0))  # fmt: skip
    writer.append(FaultReverted("d1", 2, 0.0, 0.0, lease_id="d1/2", attempt=1, by="holder",
                                detail="ok", elapsed_s=0.1))  # fmt: skip
    (markers / "n3").unlink()
    writer.sync()  # no close(): the run was killed
    return run


def make_revert(markers: Path, broken: set[str]) -> Callable[[Lease], str]:
    def revert(lease: Lease) -> str:
        if lease.node in broken:
            raise OSError(f"{lease.node} unreachable")
        (markers / lease.node).unlink(missing_ok=True)
        return f"{lease.node} restored"

    return revert


def test_unrevoked_reads_the_leases_without_a_revert(tmp_path: Path) -> None:
    markers = tmp_path / "m"
    markers.mkdir()
    run = dead_run(tmp_path, markers)
    leases, header = unrevoked(run)
    assert [(lease.lease_id, injected) for lease, injected in leases] == [
        ("d1/0", True),
        ("d1/1", False),
    ]
    assert header is not None
    assert header.run_id == "r1"


def test_recover_reverts_records_and_is_idempotent(tmp_path: Path) -> None:
    markers = tmp_path / "m"
    markers.mkdir()
    run = dead_run(tmp_path, markers)
    report = recover(run, revert=make_revert(markers, set()), policy=FAST)
    assert [(i.lease.lease_id, i.reverted) for i in report.items] == [
        ("d1/0", True),
        ("d1/1", True),
    ]
    assert list(markers.iterdir()) == []
    assert report.ledger is not None
    assert report.ledger.parent == run / "recover"
    assert verify(report.ledger).exit_code() == 0
    assert "REVERTED stop svc@n1" in report.render()
    again = recover(run, revert=make_revert(markers, set()), policy=FAST)
    assert again.items == []
    assert "nothing to do" in again.render()


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    markers = tmp_path / "m"
    markers.mkdir()
    run = dead_run(tmp_path, markers)
    report = recover(run, revert=make_revert(markers, {"n1"}), policy=FAST)
    outcome = {i.lease.node: (i.reverted, i.detail) for i in report.items}
    assert outcome["n2"] == (True, "n2 restored")
    assert outcome["n1"][0] is False
    assert "n1 unreachable" in outcome["n1"][1]
    assert [p.name for p in markers.iterdir()] == ["n1"]
    # The next recovery retries only what is still unrevoked.
    later = recover(run, revert=make_revert(markers, set()), policy=FAST)
    assert [i.lease.node for i in later.items] == ["n1"]


def test_recover_cli_without_a_profile_says_what_to_pass(tmp_path: Path) -> None:
    from osha.cli import app

    markers = tmp_path / "m"
    markers.mkdir()
    run = dead_run(tmp_path, markers)
    pytest.importorskip("osha.cli.faults")
    from osha.cli import faults as faults_cli

    result = CliRunner().invoke(faults_cli.app, ["recover", str(run)])
    assert result.exit_code != 0
    assert "--profile" in str(result.exception.hint)  # type: ignore[union-attr]
    del app


def test_recover_reads_a_recorded_profile_with_the_old_flat_ssh_keys(tmp_path: Path) -> None:
    """A run recorded before the ``ssh`` table may have a disruptor with flat ``ssh_*`` keys:
    ``campaign validate`` refuses them, but recovery must revert with that profile as it is,
    so it reads them into the table."""
    from osha import profile
    from osha.errors import ProfileError

    markers = tmp_path / "m"
    markers.mkdir()
    run = dead_run(tmp_path, markers)
    old = tmp_path / "old.toml"
    old.write_text(
        '[[disruptors]]\nid = "d1"\nplugin = "process"\nservice = "svc"\naction = "stop"\n'
        'ssh_key = "/keys/id"\nssh_user = "stack"\nssh_port = 2222\n'
    )
    with pytest.raises(ProfileError):
        profile.load(old)
    [entry] = profile.load(old, old_ssh_keys=True).actors
    assert (entry.config.ssh.private_key, entry.config.ssh.user) == ("/keys/id", "stack")
    assert entry.config.ssh.port == 2222
    report = recover(run, profile_path=old, policy=FAST)
    # the revert built its SSH credentials from the old key (no such file here: each revert
    # fails, recorded, and says which key it tried)
    assert [(i.lease.lease_id, i.reverted) for i in report.items] == [
        ("d1/0", False),
        ("d1/1", False),
    ]
    assert {i.detail for i in report.items} == {
        "SshAuthError: SSH private key /keys/id does not exist"
    }


KILLED = """
[campaign]
name = "killed"
seed = 1

[[disruptors]]
id = "mark"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
target = {{ group = "controller", pick = "node:ctl-1" }}
schedule = {{ start_s = 0.2, times = 1, down_s = 60 }}
"""


@pytest.mark.timeout(180)  # two osha processes started on a loaded 2-core machine
def test_kill_9_of_osha_leaves_the_held_fault_to_recover(tmp_path: Path) -> None:
    """osha (the fault harness) ``kill -9``-ed while a fault is held: its disruptor actor
    exits on the EOF of its socket and reverts nothing (nobody could record it); the fault
    stays, and ``osha faults recover`` reverts it and records that."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[controller]\nctl-1\n")
    markers, run = tmp_path / "markers", tmp_path / "run.osha"
    profile = tmp_path / "profile.toml"
    profile.write_text(KILLED.format(markers=markers, inventory=inventory))
    harness = [sys.executable, "-m", "osha.harness", str(profile), "--run-dir", str(run)]
    with (tmp_path / "harness.out").open("wb") as out:
        proc = subprocess.Popen(harness, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: (run / "000001.seg").exists()
                 and any(isinstance(m, FaultInjected) for m in LedgerReader(run).messages()),
                 timeout_s=30, what="the fault injected")  # fmt: skip
        [actor] = [psutil.Process(m.pid) for m in LedgerReader(run).messages()
                   if isinstance(m, ActorStarted)]  # fmt: skip
        os.killpg(proc.pid, signal.SIGKILL)  # osha's group; the actor has its own
        proc.wait(timeout=10)
        actor.wait(timeout=10)  # not our child: its exit code is in its log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "parent gone" in (run / "logs" / "mark.log").read_text()
    assert [p.name for p in markers.iterdir()] == ["ctl-1"]  # still held
    assert not any(isinstance(m, FaultReverted) for m in LedgerReader(run).messages())
    done = subprocess.run([sys.executable, "-m", "osha", "faults", "recover", str(run)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REVERTED mark ctl-1" in done.stdout, done.stdout
    assert list(markers.iterdir()) == []
