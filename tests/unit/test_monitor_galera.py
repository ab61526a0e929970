"""The galera monitor without the lab: wsrep status rows as the mysql client prints them, and
the whole monitor over fake members (real subprocesses, ``transport = "local"``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from actors.monitors.galera import GaleraConfig, GaleraMonitor, WsrepParseError, parse_wsrep
from osha import schema
from osha.messages.monitor import Metric, StateChange
from osha.testing import FakeContext
from tests.unit.cluster_fakes import FakeMembers, build_monitor, last_state, poll_until

#: How long a hung member's command runs before it is killed. The other members must be seen
#: well before that: within HANG_S - 1 s (a poll of three local subprocesses takes tens of ms;
#: the second covers a loaded 2-core machine), which proves one hung member delays no other.
HANG_S = 6.0


def wsrep(status: str = "Primary", size: int = 3, state: str = "Synced", ready: str = "ON",
          *, fc: str = "0.000000", header: bool = False) -> str:  # fmt: skip
    """``mysql -B -e "SHOW GLOBAL STATUS LIKE 'wsrep_%'"`` of MariaDB 10.11 / galera-4 26.4
    (the rows and their order as that server prints them; the lab spike's versions)."""
    rows = [
        ("wsrep_local_state_uuid", "c33a0799-9a8c-11f0-8d0f-2b0c8f1f7e57"),
        ("wsrep_protocol_version", "10"),
        ("wsrep_last_committed", "17"),
        ("wsrep_replicated", "4"),
        ("wsrep_received", "11"),
        ("wsrep_local_commits", "4"),
        ("wsrep_local_cert_failures", "0"),
        ("wsrep_local_replays", "0"),
        ("wsrep_local_send_queue", "0"),
        ("wsrep_local_recv_queue", "0"),
        ("wsrep_flow_control_paused_ns", "0"),
        ("wsrep_flow_control_paused", fc),
        ("wsrep_flow_control_sent", "0"),
        ("wsrep_flow_control_recv", "0"),
        ("wsrep_flow_control_active", "false"),
        ("wsrep_local_state", "4" if state == "Synced" else "1"),
        ("wsrep_local_state_comment", state),
        ("wsrep_incoming_addresses", "10.234.0.1:3306,10.234.0.2:3306,10.234.0.3:3306"),
        ("wsrep_cluster_weight", str(size)),
        ("wsrep_evs_state", "OPERATIONAL"),
        ("wsrep_gcomm_uuid", "4b7cf4b1-9a8c-11f0-9b7e-d2a4f6b1a2c3"),
        ("wsrep_cluster_conf_id", "5"),
        ("wsrep_cluster_size", str(size)),
        ("wsrep_cluster_state_uuid", "c33a0799-9a8c-11f0-8d0f-2b0c8f1f7e57"),
        ("wsrep_cluster_status", status),
        ("wsrep_connected", "ON"),
        ("wsrep_local_index", "0"),
        ("wsrep_provider_name", "Galera"),
        ("wsrep_provider_vendor", "Codership Oy <info@codership.com>"),
        ("wsrep_provider_version", "26.4.23(r7f2b5a1)"),
        ("wsrep_ready", ready),
        ("wsrep_thread_count", "2"),
    ]
    head = "Variable_name\tValue\n" if header else ""
    return head + "".join(f"{k}\t{v}\n" for k, v in rows)


def test_parse_a_synced_primary_member() -> None:
    status = parse_wsrep(wsrep())
    assert (status.cluster_status, status.cluster_size, status.local_state) == (
        "Primary", 3, "Synced")  # fmt: skip
    assert status.ready
    assert status.healthy
    assert status.flow_control_paused == 0.0
    # the header of -B without -N, and a client warning on stderr merged in, are skipped
    noisy = "mysql: [Warning] Using a password on the command line interface can be insecure.\n"
    assert parse_wsrep(noisy + wsrep(header=True)) == status


def test_parse_the_states_a_member_passes_through() -> None:
    isolated = parse_wsrep(wsrep("non-Primary", 1, "Initialized", "OFF"))
    assert not isolated.primary
    assert not isolated.healthy
    assert "non-Primary, size 1, Initialized, ready OFF" in isolated.describe()
    donor = parse_wsrep(wsrep(state="Donor/Desynced", fc="0.25"))
    assert donor.primary
    assert not donor.healthy
    assert donor.flow_control_paused == 0.25


def test_parse_refuses_output_without_wsrep_status() -> None:
    with pytest.raises(WsrepParseError, match="no wsrep_cluster_status"):
        parse_wsrep("ERROR 2002 (HY000): Can't connect to local server through socket\n")
    with pytest.raises(WsrepParseError, match="wsrep_cluster_size is not a number"):
        parse_wsrep("wsrep_cluster_status\tPrimary\nwsrep_cluster_size\tthree\n")


def _monitor(fake: FakeMembers, **extra: Any) -> tuple[GaleraMonitor, FakeContext]:
    return build_monitor(GaleraMonitor, fake, {"mysql_command": fake.command, **extra})


def _state(ctx: FakeContext, target: str) -> str:
    change = last_state(ctx, target)
    return change.state if change else "none"


_poll_until = poll_until


def test_member_and_cluster_states_follow_a_killed_member(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    for n in fake.names:
        fake.answer(n, wsrep())
    monitor, ctx = _monitor(fake)
    try:
        every_up = {"galera@ctl-1": "up", "galera@ctl-2": "up", "galera@ctl-3": "up",
                    "galera:cluster": "up", "galera:cluster-size": "up"}  # fmt: skip
        _poll_until(monitor, ctx, every_up, "three synced members")
        # ctl-3 is SIGKILLed: its client cannot connect; the survivors see a component of 2
        fake.answer("ctl-3", "ERROR 2002 (HY000): Can't connect to local server\n", rc=1)
        for n in ("ctl-1", "ctl-2"):
            fake.answer(n, wsrep(size=2))
        _poll_until(monitor, ctx, {"galera@ctl-3": "down", "galera:cluster-size": "down"},
                    "ctl-3 down, cluster degraded")  # fmt: skip
        assert _state(ctx, "galera:cluster") == "up"
        down = [m for m in ctx.of(StateChange) if m.target == "galera@ctl-3"][-1]
        assert "exit 1" in down.evidence
        assert "Can't connect" in down.evidence
        assert down.last_good_mono_s is not None
        assert down.last_good_mono_s <= down.first_bad_mono_s
        size = [m for m in ctx.of(StateChange) if m.target == "galera:cluster-size"][-1]
        assert "Primary component of 2 < expected 3" in size.evidence
        # the two survivors lose each other too: nobody is Primary
        for n in ("ctl-1", "ctl-2"):
            fake.answer(n, wsrep("non-Primary", 1, "Initialized", "OFF"))
        _poll_until(monitor, ctx, {"galera:cluster": "down", "galera@ctl-1": "down"},
                    "no Primary component")  # fmt: skip
        last = [m for m in ctx.of(StateChange) if m.target == "galera:cluster"][-1]
        assert "ctl-1: non-Primary" in last.evidence
        assert "ctl-3: no answer" in last.evidence
    finally:
        monitor.teardown()
    metrics = [m for m in ctx.of(Metric) if m.name == "flow_control_paused"]
    assert {m.target for m in metrics} >= {"galera@ctl-1", "galera@ctl-2"}


def test_a_hung_member_is_down_by_its_timeout_and_delays_no_other(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    for n in fake.names:
        fake.answer(n, wsrep())
    monitor, ctx = _monitor(fake, command_timeout_s=HANG_S)
    try:
        _poll_until(monitor, ctx, {f"galera@{n}": "up" for n in fake.names}, "all up")
        fake.hang("ctl-2")
        hung_at = time.monotonic()
        # ctl-1 keeps being observed at the poll's pace while ctl-2's command hangs
        fake.answer("ctl-1", wsrep("non-Primary", 1, "Initialized", "OFF"))
        _poll_until(monitor, ctx, {"galera@ctl-1": "down"}, "ctl-1 seen while ctl-2 hangs",
                    timeout_s=HANG_S - 1.0)  # fmt: skip
        assert time.monotonic() - hung_at < HANG_S  # before ctl-2's command times out
        _poll_until(monitor, ctx, {"galera@ctl-2": "down"}, "ctl-2 down by its timeout")
        hung = [m for m in ctx.of(StateChange) if m.target == "galera@ctl-2"][-1]
        assert f"no answer within {HANG_S:g} s" in hung.evidence
        assert "polls skipped" in hung.evidence
    finally:
        fake.hang("ctl-2", on=False)
        monitor.teardown()


def test_a_password_in_the_command_never_reaches_the_evidence(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path, count=1)
    fake.answer("ctl-1", "ERROR 1045 (28000): Access denied; mysql -uroot -phunter2\n", rc=1)
    monitor, ctx = _monitor(fake, mysql_command=f"{fake.command} -uroot -phunter2")
    try:
        _poll_until(monitor, ctx, {"galera@ctl-1": "down"}, "access denied")
    finally:
        monitor.teardown()
    assert all("hunter2" not in m.evidence for m in ctx.of(StateChange))
    findings = monitor.check()
    assert not findings[0].ok
    assert "hunter2" not in findings[0].message


def test_config_problems_name_the_key(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    _, problems = schema.build(GaleraConfig, {"transport": "telnet"}, file="p.toml",
                               key="monitors[0]")  # fmt: skip
    assert [p.key for p in problems] == ["monitors[0].transport"]
    monitor, _ = _monitor(fake)
    monitor.teardown()
    config, _ = schema.build(GaleraConfig, {"transport": "local", "hosts": fake.hosts(),
                                            "group": "db"}, file="p.toml")  # fmt: skip
    assert config is not None
    findings = GaleraMonitor(config, FakeContext()).check()
    assert not findings[0].ok
    assert "no hosts to watch" in findings[0].message
