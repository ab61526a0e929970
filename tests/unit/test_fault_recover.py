"""``osha faults recover``: unrevoked leases from a dead run's ledger, reverted and recorded.

The fault here is a marker file per node: "disrupted" while it exists, reverted by deleting it.
The unit tier has no nodes; what is under test is reading the ledger, reverting each unrevoked
lease once, recording every attempt in a new ledger, and reporting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osha.faults import Lease, RetryPolicy, recover, unrevoked
from osha.ledger import LedgerWriter, verify
from osha.messages import FaultInjected, FaultLease, FaultReverted, LedgerHeader

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
