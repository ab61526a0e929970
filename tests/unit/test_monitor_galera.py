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
from osha.redaction import redact_value
from osha.testing import FakeContext
from tests.unit.cluster_fakes import FakeMembers, build_monitor, last_state, poll_until

#: How long a hung member's command runs before it is killed. The other members must be seen
#: well before that: within HANG_S - 1 s (a poll of three local subprocesses takes tens of ms;
#: the second covers a loaded 2-core machine), which proves one hung member delays no other.
HANG_S = 6.0


DATA = Path(__file__).parent / "data"
#: ``mysql -N -B -e "SHOW GLOBAL STATUS LIKE 'wsrep_%'"`` of a real MariaDB 10.11.19 with
#: galera-4 (the lab spike's versions; a one-node cluster on this machine): Synced in a Primary
#: component, then desynced (``SET GLOBAL wsrep_desync=ON``), then out of the cluster
#: (``wsrep_cluster_address`` pointed at nobody); and ``-B`` without ``-N`` (a header row).
SYNCED = (DATA / "mariadb-10.11-wsrep-synced.tsv").read_text()
SYNCED_HEADER = (DATA / "mariadb-10.11-wsrep-synced-header.tsv").read_text()
DESYNCED = (DATA / "mariadb-10.11-wsrep-desynced.tsv").read_text()
DISCONNECTED = (DATA / "mariadb-10.11-wsrep-disconnected.tsv").read_text()


def wsrep(status: str = "Primary", size: int = 3, state: str = "Synced", ready: str = "ON",
          *, fc: str = "0") -> str:  # fmt: skip
    """The real synced output with these values: a member of a cluster of ``size``."""
    values = {"wsrep_cluster_status": status, "wsrep_cluster_size": str(size),
              "wsrep_local_state_comment": state, "wsrep_ready": ready,
              "wsrep_flow_control_paused": fc}  # fmt: skip
    rows = []
    for line in SYNCED.splitlines():
        name, _, value = line.partition("\t")
        rows.append(f"{name}\t{values.get(name, value)}\n")
    return "".join(rows)


def test_parse_real_outputs() -> None:
    synced = parse_wsrep(SYNCED)
    assert (synced.cluster_status, synced.cluster_size, synced.local_state) == (
        "Primary", 1, "Synced")  # fmt: skip
    assert synced.ready
    assert synced.healthy
    assert synced.flow_control_paused == 0.0
    # the header of -B without -N, and a client warning on stderr merged in, are skipped
    noisy = "mysql: [Warning] Using a password on the command line interface can be insecure.\n"
    assert parse_wsrep(noisy + SYNCED_HEADER) == synced
    desynced = parse_wsrep(DESYNCED)
    assert (desynced.primary, desynced.local_state, desynced.healthy) == (
        True, "Donor/Desynced", False)  # fmt: skip
    gone = parse_wsrep(DISCONNECTED)
    assert (gone.cluster_status, gone.cluster_size, gone.local_state, gone.ready) == (
        "Disconnected", 0, "Initialized", False)  # fmt: skip
    assert gone.describe() == "Disconnected, size 0, Initialized, ready OFF, fc paused 0"


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
    # the config as the ledger records it (actor.started, redacted by the ledger writer)
    recorded = redact_value({"mysql_command": "mysql -uroot -phunter2 -N -B"})
    assert "hunter2" not in str(recorded)
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
