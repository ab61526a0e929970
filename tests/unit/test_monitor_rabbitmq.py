"""The rabbitmq monitor without the lab: ``cluster_status --formatter json`` as RabbitMQ 3.10
prints it, and the whole monitor over fake members, one of them hung as a partitioned node's
``cluster_status`` hangs."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from actors.monitors.rabbitmq import (
    RabbitMqMonitor,
    StatusParseError,
    parse_cluster_status,
)
from osha.errors import PluginError
from osha.testing import FakeContext
from tests.unit.cluster_fakes import FakeMembers, build_monitor, last_state, poll_until
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the fixture

#: How long a hung member's command runs before it is killed. The other members must be seen
#: well before that: within HANG_S - 1 s (a poll of three local subprocesses takes tens of ms;
#: the second covers a loaded 2-core machine), which proves one hung member delays no other.
HANG_S = 6.0

NODES = ("rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3")


DATA = Path(__file__).parent / "data"
#: Real output of RabbitMQ 3.10.8 (the lab spike's version) on this machine, a one-node
#: cluster: ``cluster_status --formatter json`` running, and with a memory alarm
#: (``set_vm_memory_high_watermark``); and what ``rabbitmqctl`` says (exit 69) of a node that
#: does not run.
REAL = json.loads((DATA / "rabbitmq-3.10-cluster_status.json").read_text())
REAL_ALARM = (DATA / "rabbitmq-3.10-cluster_status-memory-alarm.json").read_text()
STOPPED = (DATA / "rabbitmqctl-3.10-node-down.txt").read_text()


def status(running: tuple[str, ...] = NODES, partitions: dict[str, list[str]] | None = None,
           alarms: list[dict[str, str]] | None = None) -> str:  # fmt: skip
    """The real output, for a cluster of ``NODES`` with ``running`` running: the node's own
    entries (listeners, versions, maintenance status) repeated for each node."""
    data = dict(REAL)
    data.update(
        alarms=alarms or [],
        disk_nodes=list(NODES),
        running_nodes=list(running),
        partitions=partitions or {},
    )
    for key in ("listeners", "versions", "maintenance_status"):
        (own,) = REAL[key].values()
        data[key] = {n: own for n in running}
    return json.dumps(data) + "\n"


def test_parse_real_outputs() -> None:
    view = parse_cluster_status(json.dumps(REAL))
    assert view.running == ("rabbit@localhost",)
    assert view.disk_nodes == ("rabbit@localhost",)
    assert view.partitions == {}
    assert view.alarms == ()
    assert view.describe() == "running 1: rabbit@localhost"
    alarmed = parse_cluster_status(REAL_ALARM)
    assert alarmed.alarms == ("memory@rabbit@localhost",)
    with pytest.raises(StatusParseError, match="no JSON object"):
        parse_cluster_status(STOPPED)


def test_parse_partitions_and_alarms() -> None:
    view = parse_cluster_status(
        "Cluster status of node rabbit@ctl-1 ...\n"  # the banner, if --quiet is not given
        + status(
            running=NODES[:2],
            partitions={"rabbit@ctl-1": ["rabbit@ctl-3"], "rabbit@ctl-2": []},
            alarms=[{"node": "rabbit@ctl-2", "resource": "memory", "type": "resource_limit"}],
        )
    )
    assert view.partitions == {"rabbit@ctl-1": ("rabbit@ctl-3",)}
    assert view.alarms == ("memory@rabbit@ctl-2",)
    assert "partitions: rabbit@ctl-1 from rabbit@ctl-3" in view.describe()


def test_parse_refuses_what_is_not_cluster_status() -> None:
    with pytest.raises(StatusParseError, match="no running_nodes"):
        parse_cluster_status('{"status": "ok"}')
    with pytest.raises(StatusParseError, match="running_nodes is not a list"):
        parse_cluster_status('{"running_nodes": "rabbit@ctl-1"}')


def _monitor(fake: FakeMembers, **extra: Any) -> tuple[RabbitMqMonitor, FakeContext]:
    """A monitor of ``cluster_status`` views (the local views: test_monitor_rabbitmq_local)."""
    table = {"rabbitmqctl_command": fake.command, "status": "cluster_status", **extra}
    return build_monitor(RabbitMqMonitor, fake, table)


_last, _poll_until = last_state, poll_until


def test_a_stopped_member_and_an_alarm(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    for n in fake.names:
        fake.answer(n, status())
    monitor, ctx = _monitor(fake)
    try:
        up = {f"rabbitmq@{n}": "up" for n in fake.names}
        _poll_until(monitor, ctx, {**up, "rabbitmq:cluster": "up",
                                   "rabbitmq:cluster-size": "up"}, "all running")  # fmt: skip
        fake.answer("ctl-3", STOPPED.replace("rabbit@localhost", "rabbit@ctl-3"), rc=69)
        for n in ("ctl-1", "ctl-2"):
            fake.answer(n, status(running=NODES[:2]))
        _poll_until(monitor, ctx, {"rabbitmq@ctl-3": "down", "rabbitmq:cluster-size": "down"},
                    "ctl-3 stopped")  # fmt: skip
        stopped = _last(ctx, "rabbitmq@ctl-3")
        assert stopped is not None
        assert "exit 69" in stopped.evidence
        assert _last(ctx, "rabbitmq:cluster") is not None
        assert _last(ctx, "rabbitmq:cluster").state == "up"  # type: ignore[union-attr]
        alarm = [{"node": "rabbit@ctl-2", "resource": "disk", "type": "resource_limit"}]
        fake.answer("ctl-2", status(running=NODES[:2], alarms=alarm))
        _poll_until(monitor, ctx, {"rabbitmq@ctl-2": "down"}, "ctl-2's disk alarm")
        assert "alarm disk@rabbit@ctl-2" in _last(ctx, "rabbitmq@ctl-2").evidence  # type: ignore[union-attr]
        assert _last(ctx, "rabbitmq@ctl-1").state == "up"  # type: ignore[union-attr]
    finally:
        monitor.teardown()


def test_a_partitioned_member_hangs_alone_and_is_down_by_its_timeout(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    for n in fake.names:
        fake.answer(n, status())
    monitor, ctx = _monitor(fake, command_timeout_s=HANG_S)
    try:
        _poll_until(monitor, ctx, {f"rabbitmq@{n}": "up" for n in fake.names}, "all running")
        fake.hang("ctl-3")  # cluster_status on a partitioned node blocks
        hung_at = time.monotonic()
        for n in ("ctl-1", "ctl-2"):
            fake.answer(n, status(NODES[:2], partitions={f"rabbit@{n}": ["rabbit@ctl-3"]}))
        _poll_until(monitor, ctx, {"rabbitmq:cluster-size": "down"},
                    "the majority reports the partition", timeout_s=HANG_S - 1.0)  # fmt: skip
        assert time.monotonic() - hung_at < HANG_S  # seen before ctl-3's command times out
        degraded = _last(ctx, "rabbitmq:cluster-size")
        assert degraded is not None
        assert re.search(r"partitions: rabbit@ctl-[12] from rabbit@ctl-3", degraded.evidence)
        _poll_until(monitor, ctx, {"rabbitmq@ctl-3": "down"}, "ctl-3 down by its timeout")
        hung = _last(ctx, "rabbitmq@ctl-3")
        assert hung is not None
        assert f"no answer within {HANG_S:g} s" in hung.evidence
        # the majority side serves all along (pause_minority): its members and the cluster
        assert {_last(ctx, t).state for t in ("rabbitmq@ctl-1", "rabbitmq:cluster")} == {"up"}  # type: ignore[union-attr]
        # the partition heals: every member answers again, whole
        fake.hang("ctl-3", on=False)
        for n in fake.names:
            fake.answer(n, status())
        _poll_until(monitor, ctx, {"rabbitmq@ctl-3": "up", "rabbitmq:cluster": "up"}, "healed")
    finally:
        fake.hang("ctl-3", on=False)
        monitor.teardown()


@pytest.mark.timeout(90)
def test_over_ssh_a_hung_member_times_out_and_reconnects(
    tmp_path: Path,
    local_sshd: LocalSshd,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """The SSH transport: three members behind one loopback sshd; ctl-3's command hangs past
    command_timeout_s (its channel is dropped) and it answers again afterwards."""
    fake = FakeMembers(tmp_path)
    for n in fake.names:
        fake.answer(n, status())
    where = {"address": "127.0.0.1", "port": local_sshd.port, "user": local_sshd.target.user}
    hosts = {n: {**where, "groups": ["controller"]} for n in fake.names}
    ssh = {"private_key": local_sshd.credentials.private_key,
           "known_hosts": local_sshd.credentials.known_hosts}  # fmt: skip
    monitor, ctx = build_monitor(RabbitMqMonitor, fake, {
        "transport": "ssh", "hosts": hosts, "ssh": ssh, "rabbitmqctl_command": fake.command,
        "status": "cluster_status", "interval_s": 0.1, "command_timeout_s": 3.0})  # fmt: skip
    try:
        findings = monitor.check()
        assert [f.ok for f in findings] == [True, True, True], findings
        _poll_until(monitor, ctx, {f"rabbitmq@{n}": "up" for n in fake.names}, "all up",
                    timeout_s=30)  # fmt: skip
        fake.hang("ctl-3")
        _poll_until(monitor, ctx, {"rabbitmq@ctl-3": "down"}, "ctl-3 timed out", timeout_s=30)
        hung = _last(ctx, "rabbitmq@ctl-3")
        assert hung is not None
        assert "no answer within 3 s" in hung.evidence
        fake.hang("ctl-3", on=False)
        _poll_until(monitor, ctx, {"rabbitmq@ctl-3": "up"}, "ctl-3 back", timeout_s=30)
    finally:
        fake.hang("ctl-3", on=False)
        monitor.teardown()


def test_alive_command_sees_a_stop_while_cluster_status_hangs(tmp_path: Path) -> None:
    """With ``alive_command`` a member is down as soon as its fast check fails, even while
    every ``cluster_status`` hangs (rabbitmqctl took 10 s on the loaded lab); it is up again
    on the check alone, a status asked while it was down not counting against it."""
    status_dir, alive_dir = tmp_path / "status", tmp_path / "alive"
    status_dir.mkdir()
    alive_dir.mkdir()
    fake, alive = FakeMembers(status_dir), FakeMembers(alive_dir)
    for n in fake.names:
        fake.answer(n, status(running=NODES[:2]))  # every status: ctl-3 not running
        alive.answer(n, "")
    monitor, ctx = _monitor(fake, alive_command=alive.command, status_interval_s=0.2)
    try:
        up = {f"rabbitmq@{n}": "up" for n in ("ctl-1", "ctl-2")}
        _poll_until(monitor, ctx, {**up, "rabbitmq@ctl-3": "down", "rabbitmq:cluster": "up"},
                    "ctl-3 not running by every status")  # fmt: skip
        assert "not among the running nodes" in _last(ctx, "rabbitmq@ctl-3").evidence  # type: ignore[union-attr]
        for n in fake.names:
            fake.hang(n)
        alive.answer("ctl-2", "connection refused", rc=1)
        _poll_until(monitor, ctx, {"rabbitmq@ctl-2": "down"}, "ctl-2's alive check failing")
        assert "alive_command: exit 1" in _last(ctx, "rabbitmq@ctl-2").evidence  # type: ignore[union-attr]
        alive.answer("ctl-2", "")
        _poll_until(monitor, ctx, {"rabbitmq@ctl-2": "up"}, "ctl-2 back by its alive check")
    finally:
        for n in fake.names:
            fake.hang(n, on=False)
        monitor.teardown()


def test_a_negative_status_interval_is_refused(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    monitor, _ctx = build_monitor(RabbitMqMonitor, fake, {"alive_command": "true"}, setup=False)
    bad = dataclasses.replace(monitor.config, status_interval_s=-1.0)
    with pytest.raises(PluginError, match=r"status_interval_s = -1\.0 is negative"):
        RabbitMqMonitor(bad, FakeContext("rabbitmq")).setup()
