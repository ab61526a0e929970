"""The ``network`` disruptor: its validation at profile load (one screen, exit 2), its plan,
and one partition end to end over a real SSH session (loopback sshd) with a fake ``nft``:
management path read from the session, table applied, the dead-man switch deleting it when
nobody renews, the revert idempotent, a foreign table untouched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.disruptors import _nft, _tc
from actors.disruptors.network import (
    NetworkAction,
    NetworkConfig,
    NetworkDisruptor,
    PeersConfig,
    peer_hosts,
)
from osha.errors import PluginError
from osha.faults import Lease, deadman
from osha.faults import _switch as switch
from osha.faults.disruptor import load_hosts
from osha.schedule import ScheduleConfig, TargetConfig
from osha.schema import FilePath, Name
from osha.ssh import SshConfig
from osha.testing import FakeContext, wait_for
from tests.unit.test_bad_input import _osha, _write
from tests.unit.test_network_rules import fake_nft
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the sshd fixture

INVENTORY = """\
[compute]
cmp-1 ansible_host=10.231.0.21
[controller]
ctl-1 ansible_host=10.231.0.11
ctl-2 ansible_host=10.231.0.12
"""

NETWORK = """\
[[disruptors]]
id = "{id}"
plugin = "network"
inventory = "{inventory}"
ssh = {{ private_key = "{key}", known_hosts = "{known}" }}
target = {{ group = "compute", pick = "node:cmp-1" }}
schedule = {{ start_s = 5, times = 1, down_s = 30 }}
{extra}
"""


def files(tmp_path: Path) -> dict[str, Path]:
    names = {k: tmp_path / k for k in ("inventory", "key", "known")}
    names["inventory"].write_text(INVENTORY)
    names["key"].write_text("")
    names["known"].write_text("")
    return names


def entry(names: dict[str, Path], id: str, extra: str) -> str:
    return NETWORK.format(id=id, extra=extra, **names)


def test_bad_network_settings_are_one_screen_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = files(tmp_path)
    body = "".join(entry(names, f"d{i}", extra) for i, extra in enumerate([
        'peers = { cidrs = ["10.0.0.1/24"] }',
        'peers = { cidrs = ["10.0.0.0/33"] }',
        'peers = { group = "controller" }\nports = [3306, 70000]',
        'action = "blackhole"',
        'action = "loss"\nloss_pct = 130',
        'action = "partition"',
        'action = "delay"\ndelay_ms = 100',
        'action = "bandwidth"\ninterface = "eth0"\nrate_kbit = 2',
        'action = "bandwidth"\ninterface = "eth0; reboot"\nrate_kbit = 800',
    ]))  # fmt: skip
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, body)))
    assert code == 2, text
    for key, problem in [
        ("disruptors[0].peers", "cidrs: '10.0.0.1/24' has host bits set; did you mean 10.0.0.0/24"),
        ("disruptors[1].peers", "cidrs: '10.0.0.0/33' is not a CIDR"),
        ("disruptors[2]", "ports: 70000 is not a port (1-65535)"),
        ("disruptors[3].action", "'blackhole' is not one of 'partition' | 'loss' | 'delay'"),
        ("disruptors[4]", "loss_pct = 130: a percentage, 0-100"),
        ("disruptors[5]", 'action = "partition" needs peers'),
        ("disruptors[6]", 'action = "delay" needs interface = "eth0"'),
        ("disruptors[7]", 'action = "bandwidth" needs rate_kbit within 8-100000000, not 2'),
        ("disruptors[8]", 'action = "bandwidth" needs interface = "eth0" (a device name, not '
                          "'eth0; reboot')"),
    ]:
        assert f"{key}: {problem}" in text, (key, text)
    assert "Traceback" not in text


def test_an_unknown_peer_group_or_node_is_refused_at_profile_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = files(tmp_path)
    body = entry(names, "a", 'peers = { group = "controllers" }') + entry(
        names, "b", 'peers = { nodes = ["ctl-1", "ctl-9"] }'
    )
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, body)))
    assert code == 2, text
    assert "disruptors[0].peers.group: 'controllers' has no hosts in the inventory" in text
    assert "groups in the inventory: all, compute, controller" in text
    assert "disruptors[1].peers.nodes: 'ctl-9' is not in the inventory" in text
    assert "hosts in the inventory: cmp-1, ctl-1, ctl-2" in text
    good = entry(names, "c", 'peers = { group = "controller" }')
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, good, "ok.toml")))
    assert code == 0, text


def test_the_plan_names_the_action_peers_and_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = files(tmp_path)
    body = entry(names, "cut", 'peers = { group = "controller", cidrs = ["10.9.0.0/16"] }\n'
                 "ports = [3306, 4567]") + entry(names, "lossy", 'action = "loss"\nloss_pct = 30')
    code, text = _osha(capsys, "faults", "plan", str(_write(tmp_path, body)))  # fmt: skip
    assert code == 0, text
    rows = text.splitlines()[1:]
    assert "partition   peers[group controller, 10.9.0.0/16]:3306,4567@cmp-1" in rows[0]
    assert "loss        peers[anyone]@cmp-1" in rows[1]


def test_peers_are_the_group_and_nodes_without_the_target() -> None:
    hosts = {
        "ctl-1": _host("ctl-1", ("controller",)),
        "ctl-2": _host("ctl-2", ("controller",)),
        "cmp-1": _host("cmp-1", ("compute",)),
    }
    config = NetworkConfig(peers=PeersConfig(group=Name("controller"), nodes=(Name("cmp-1"),)))
    assert [h.name for h in peer_hosts(config, hosts, "ctl-1")] == ["cmp-1", "ctl-2"]
    bad = NetworkConfig(peers=PeersConfig(group=Name("storage")))
    with pytest.raises(PluginError, match=r"peers\.group: 'storage' has no hosts"):
        peer_hosts(bad, hosts, "ctl-1")


def _host(name: str, groups: tuple[str, ...]) -> object:
    from osha.inventory import Host

    return Host(name=name, address=f"10.0.0.{len(name)}", groups=groups)


def test_every_action_has_a_switch_that_deletes_its_own_table_only() -> None:
    config = NetworkConfig(peers=PeersConfig(cidrs=("10.0.0.0/24",)))
    a = Lease("cut/0", "cut", "network", 0, "partition", "cmp-1", "10.231.0.21", "", (), 30.0,
              0.0, 60.0, {switch.KEY: "cut/0/0123456789ab"})  # fmt: skip
    command = NetworkDisruptor.switch_command(config, a)
    pending = "/run/osha/nft/osha_cut_0_bf7c747f9a.nft"
    assert command == (
        f"if [ -e {pending} ]; then (flock 9; rm -f {pending}) 9>>{pending}.lock; fi; "
        "if nft list table inet osha_cut_0_bf7c747f9a >/dev/null 2>&1; then nft delete table "
        "inet osha_cut_0_bf7c747f9a && echo 'deleted table inet osha_cut_0_bf7c747f9a'; else "
        "echo 'table inet osha_cut_0_bf7c747f9a already gone'; fi"
    )
    delay = NetworkConfig(action=NetworkAction.DELAY, interface="eth1", delay_ms=50)
    b = Lease("slow/0", "slow", "network", 0, "delay", "cmp-1", "10.231.0.21", "", (), 30.0,
              0.0, 60.0, {"interface": "eth1", switch.KEY: "slow/0/x"})  # fmt: skip
    assert "tc qdisc del dev eth1 root" in (NetworkDisruptor.switch_command(delay, b) or "")
    cap = NetworkConfig(action=NetworkAction.BANDWIDTH, interface="eth1", rate_kbit=800)
    c = Lease("cap/0", "cap", "network", 0, "bandwidth", "cmp-1", "10.231.0.21", "", (), 30.0,
              0.0, 60.0, {"interface": "eth1", switch.KEY: "cap/0/x"})  # fmt: skip
    assert NetworkDisruptor.switch_command(cap, c) == _tc.del_command("eth1")


def test_a_partition_over_ssh_is_deleted_by_the_node_when_nobody_renews(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The plugin's own probe, prepare, inject and revert over a real SSH session, with a
    fake nft; the switch armed as the disruptor arms it and never renewed (osha "killed")."""
    nft, tables = fake_nft(tmp_path)

    class Network(NetworkDisruptor):
        pass

    Network.nft = str(nft)
    Network.switch_state_dir = str(tmp_path / "deadman")
    Network.pending_dir = str(tmp_path / "pending")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[compute]\nlocal ansible_host=127.0.0.1 ansible_port={local_sshd.port} "
        f"ansible_user={local_sshd.target.user}\n[controller]\nctl-1 ansible_host=10.231.0.11\n"
    )
    config = NetworkConfig(
        peers=PeersConfig(group=Name("controller"), cidrs=("192.0.2.0/24",)),
        inventory=FilePath(str(inventory)),
        ssh=SshConfig(port=local_sshd.port,
                      private_key=FilePath(local_sshd.credentials.private_key),
                      known_hosts=FilePath(local_sshd.credentials.known_hosts)),
        target=TargetConfig(group="compute"), schedule=ScheduleConfig(),
        command_timeout_s=20.0,
    )  # fmt: skip
    disruptor = Network(config, FakeContext("cut"))
    disruptor.hosts = load_hosts(config)
    host = disruptor.hosts["local"]
    try:
        disruptor.probe(host)
        revert = disruptor.prepare(host)
        assert revert == {"peers": ["10.231.0.11", "192.0.2.0/24"], "ports": [],
                          "management": {"address": "127.0.0.1", "port": local_sshd.port}}
        key = switch.new_key("cut/0")
        held = Lease("cut/0", "cut", "network", 0, "partition", "local", "127.0.0.1", "", (),
                     30.0, time.time(), time.time() + 60, {**revert, switch.KEY: key})  # fmt: skip
        table = tables / f"inet.{_nft.table_name(key)}"
        # the inject over SSH must land before the node's deadline, or the node deletes a
        # table not made yet and the inject's table stays: 1-3 s on the loaded machine (as
        # the process switch's freeze, test_process_switch.py), so 10 s
        ttl_s = 10.0
        with Network.node_runner(config, held) as run:
            began_s = time.monotonic()
            command = Network.switch_command(config, held)
            assert command is not None
            deadman.arm(run, key, command, ttl_s, state_dir=Network.switch_state_dir)
            detail = disruptor.inject(held)
        assert detail.endswith(f"management 127.0.0.1:{local_sshd.port} kept")
        lines = table.read_text().splitlines()
        assert lines[5] == f"\t\tip saddr 127.0.0.1 tcp dport {local_sshd.port} accept"
        assert lines[7] == "\t\tip saddr { 10.231.0.11, 192.0.2.0/24 } drop"
        # osha is "gone": nothing renews; the node deletes the table at the deadline
        wait_for(lambda: not table.exists(), timeout_s=deadman.expiry_bound_s(ttl_s),
                 interval_s=0.1, what="the node's own revert")  # fmt: skip
        assert time.monotonic() - began_s >= ttl_s - 0.1
        status = Network.collect_switch(config, held)
        assert status is not None
        assert (status.state, status.revert_status) == (deadman.State.REVERTED, 0)
        assert "deleted table inet osha_cut_0_" in status.log
        # osha's own revert afterwards (faults recover): idempotent
        assert Network.revert_lease(config, held).startswith("table inet osha_cut_0_")
        assert sorted(p.name for p in tables.iterdir()) == ["inet.foreign"]
    finally:
        disruptor.close()
