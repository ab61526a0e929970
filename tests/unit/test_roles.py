"""Targets by role (osha.roles): the plan names the role, the fault strikes the node that has
it when due and records why in its lease, ``check`` resolves it live and fails clearly when
the cloud has no such role; the galera-writer resolver reads the lab's real HAProxy stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.roles import writer_of
from osha.faults._roles import ROLE_KEY
from osha.inventory import Host
from osha.messages import FaultInjected, FaultInjectFailed, FaultLease, FaultPlanned
from osha.roles import RoleError, available_roles, resolve_role
from osha.schedule import Mode, ScheduleConfig, TargetConfig, expand
from osha.schema import FilePath
from osha.ssh import SshConfig
from tests.unit.test_disruptor_base import (
    INVENTORY,
    Env,
    FileConfig,
    FileDisruptor,
    broker,  # noqa: F401 - the fixture
    start,
)
from tests.unit.test_fault_support import BrokerContext

DATA = Path(__file__).parent / "data"
#: `show stat` of the HA lab's HAProxy on ctl-1 (HAProxy 2.6): backend mariadb with ctl-1
#: active and ctl-2, ctl-3 backups, all UP.
LAB_STAT = (DATA / "haproxy-lab-ha-show-stat.csv").read_text()


def role_config(tmp_path: Path, named: str | None, **schedule: float) -> FileConfig:
    inv = tmp_path / "inventory.ini"
    inv.write_text(INVENTORY)
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    role_file = tmp_path / "role"
    if named is not None:
        role_file.write_text(named)
    return FileConfig(
        inventory=FilePath(str(inv)), markers=str(markers),
        target=TargetConfig(group="controller", pick="test-named", role={"file": str(role_file)}),
        schedule=ScheduleConfig(**schedule),  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_shipped_roles_are_registered() -> None:
    assert {"vip-holder", "not-vip-holder", "galera-writer"} <= set(available_roles())


def test_an_unknown_pick_lists_the_roles() -> None:
    with pytest.raises(ValueError, match='"vip-holder"'):
        TargetConfig(group="controller", pick="vip-holdr")
    with pytest.raises(ValueError, match=r"role = .* is for a role pick"):
        TargetConfig(group="controller", pick="one", role={"vip": "10.0.0.10"})


def test_the_plan_names_the_role_one_fault_per_round() -> None:
    target = TargetConfig(group="controller", pick="vip-holder", role={"vip": "10.0.0.10"})
    schedule = ScheduleConfig(start_s=1, times=2, every_s=30, down_s=5, mode=Mode.PARALLEL)
    plan = expand(schedule, target, ["ctl-1", "ctl-2", "ctl-3"], seed=1)
    assert [(p.node, p.offset_s) for p in plan] == [("role:vip-holder", 1), ("role:vip-holder", 31)]


def test_a_resolution_outside_the_group_is_refused(tmp_path: Path) -> None:
    hosts = [Host("ctl-1", "10.0.0.11", groups=("controller",))]
    (tmp_path / "role").write_text("cmp-1")
    with pytest.raises(RoleError, match="'cmp-1', not a node of the target group"):
        resolve_role("test-named", hosts, {"file": str(tmp_path / "role")}, SshConfig())


def test_the_fault_strikes_the_node_with_the_role_and_the_lease_says_why(
    tmp_path: Path,
    broker: Env,  # noqa: F811 - the fixture
) -> None:
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(role_config(tmp_path, "ctl-2", start_s=0, down_s=0.2), ctx)
    start(plugin).join(timeout=10)
    assert [p.node for p in ctx.of(FaultPlanned)] == ["role:test-named"]
    assert [m.node for m in ctx.of(FaultInjected)] == ["ctl-2"]
    [lease] = [m.lease for m in sink.of(FaultLease)]
    assert lease.node == "ctl-2"
    assert lease.revert[ROLE_KEY] == "resolved ctl-2: named in role"


def test_no_such_role_fails_check_and_the_fault_clearly(
    tmp_path: Path,
    broker: Env,  # noqa: F811 - the fixture
) -> None:
    b, sink, contexts = broker
    ctx = contexts["d1"] = BrokerContext(b, "d1")
    plugin = FileDisruptor(role_config(tmp_path, None, start_s=0, down_s=0.2), ctx)
    [finding] = plugin.check()
    assert not finding.ok
    assert finding.target == "mark@role:test-named"
    assert "no node has the role" in finding.message
    (tmp_path / "role").write_text("ctl-1")
    found = plugin.check()
    assert next((f.ok, f.message) for f in found) == (
        True, "role:test-named: resolved ctl-1: named in role",
    )  # fmt: skip
    (tmp_path / "role").unlink()
    start(plugin).join(timeout=10)
    [failed] = ctx.of(FaultInjectFailed)
    assert "no node has the role" in failed.error
    assert not sink.of(FaultLease)


def test_galera_writer_from_the_lab_haproxy_stats() -> None:
    assert writer_of(LAB_STAT, "mariadb") == ("ctl-1", "UP, active")
    row = "mariadb,ctl-1,0,0,57,57,,89,304017,351287,,0,,0,0,0,0,"
    ctl1_down = LAB_STAT.replace(row + "UP,", row + "DOWN,")
    assert ctl1_down != LAB_STAT
    assert writer_of(ctl1_down, "mariadb") == ("ctl-2", "UP, backup")
    assert writer_of(LAB_STAT, "nope") is None
    with pytest.raises(ValueError, match="not HAProxy's show stat"):
        writer_of("hello", "mariadb")


def test_the_dry_run_shows_the_role_and_its_group_counts_for_the_guard(tmp_path: Path) -> None:
    from osha.cli import faults

    (tmp_path / "inventory.ini").write_text(INVENTORY)
    path = tmp_path / "p.toml"
    path.write_text(
        '[campaign]\nname = "roles"\n\n[cloud]\ninventory = "inventory.ini"\n\n'
        "[guard]\nmax_down = { controller = 1 }\n\n"
        '[[disruptors]]\nid = "power-vip"\nplugin = "process"\nservice = "mariadb"\n'
        'target = { group = "controller", pick = "vip-holder", role = { vip = "10.0.0.10" } }\n'
        "schedule = { start_s = 5, times = 1, down_s = 10 }\n\n"
        '[[disruptors]]\nid = "kill-2"\nplugin = "process"\nservice = "nova-api"\n'
        'target = { group = "controller", pick = "node:ctl-2" }\n'
        "schedule = { start_s = 6, times = 1, down_s = 10 }\n"
    )
    result = CliRunner().invoke(faults.app, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "mariadb@role:vip-holder" in lines[1], result.output
    assert "REFUSED" in lines[2], result.output  # max_down: the role's node is a controller
