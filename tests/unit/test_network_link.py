"""The ``network`` disruptor's ``link-down``: its exact commands, its settings' errors at
profile load (one screen, exit 2), its pre-flight, and both sides end to end with a fake
``ip`` that keeps its links in files: the node side over a real SSH session (loopback sshd),
the switch side on this machine; each reverted by the dead-man switch when nobody renews it,
and by osha's own revert at once."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from actors.disruptors import _link
from actors.disruptors.network import LinkSide, NetworkAction, NetworkConfig, NetworkDisruptor
from osha.errors import PluginError
from osha.faults import Lease, deadman
from osha.faults import _switch as switch
from osha.faults._revert import RetryPolicy, revert_with_retry
from osha.faults.disruptor import load_hosts
from osha.messages import FaultReverted
from osha.schedule import ScheduleConfig, TargetConfig
from osha.schema import FilePath
from osha.ssh import SshConfig
from osha.testing import FakeContext, wait_for
from tests.unit.test_bad_input import _osha, _write
from tests.unit.test_network_disruptor import entry, files
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the sshd fixture

FAKE_IP = r"""#!/bin/sh
# a fake ip: links in @DIR@/devs/<name> (their state), routes in routes4.<dev>/routes6.<dev>,
# the device "route get" answers in mgmt; every call logged
d=@DIR@
echo "$*" >> "$d/log"
fam=4
case "$1" in -4|-6) fam=${1#-}; shift;; esac
[ "$1" = -o ] && shift
case "$1 $2" in
"link show") [ -f "$d/devs/$4" ] || { echo "Device \"$4\" does not exist." >&2; exit 1; }
  echo "1: $4: state $(cat "$d/devs/$4")";;
"link set") [ -f "$d/devs/$4" ] || exit 1; echo "$5" > "$d/devs/$4";;
"route get") echo "$3 dev $(cat "$d/mgmt") src 127.0.0.1 uid 0";;
"route show") [ -f "$d/routes$fam.$4" ] && cat "$d/routes$fam.$4"; exit 0;;
"route replace") ;;
*) echo "fake ip: unknown: $*" >&2; exit 2;;
esac
"""
STATIC = "10.99.0.0/24 via 10.231.0.1 proto static"


def fake_ip(tmp_path: Path, *devs: str, mgmt: str = "lo") -> tuple[Path, Path]:
    """A fake ip and its folder, with ``devs`` up and a static and a kernel route on each."""
    d = tmp_path / "ip"
    (d / "devs").mkdir(parents=True)
    for dev in devs:
        (d / "devs" / dev).write_text("up\n")
        (d / f"routes4.{dev}").write_text(
            f"10.231.0.0/24 proto kernel scope link src 10.231.0.21\n{STATIC} linkdown\n"
        )
    (d / "mgmt").write_text(mgmt)
    ip = tmp_path / "fake-ip"
    ip.write_text(FAKE_IP.replace("@DIR@", str(d)))
    ip.chmod(0o755)
    return ip, d


def state(d: Path, dev: str) -> str:
    return (d / "devs" / dev).read_text().strip()


def sh(script: str) -> tuple[int, str]:
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                       check=False)  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def test_the_commands_exactly() -> None:
    assert _link.node_down_script("eth0", "cut/0/ab") == (
        "ip link set dev eth0 down && echo 'link eth0 down'\n"
    )
    up = _link.node_up_command("eth0", "cut/0/ab", [STATIC], ["2001:db8::/64 via fe80::1"],
                               pending_dir="/p")  # fmt: skip
    assert up == (
        "if [ -e /p/cut_0_ab ]; then (flock 9; rm -f /p/cut_0_ab) 9>>/p/cut_0_ab.lock; fi; "
        "ip link set dev eth0 up || exit 1; rc=0; "
        "ip -4 route replace 10.99.0.0/24 via 10.231.0.1 proto static dev eth0 || "
        "{ echo 'cannot restore route 10.99.0.0/24 via 10.231.0.1 proto static'; rc=1; }; "
        "ip -6 route replace 2001:db8::/64 via fe80::1 dev eth0 || "
        "{ echo 'cannot restore route 2001:db8::/64 via fe80::1'; rc=1; }; "
        "echo 'link eth0 up, 2 route(s) restored'; exit $rc"
    )
    assert _link.port_command("vo2-cmp-1", "down") == (
        "ip link show dev vo2-cmp-1 >/dev/null 2>&1 || { echo 'no switch port vo2-cmp-1 here "
        "(see ip link)'; exit 1; }; ip link set dev vo2-cmp-1 down "
        "&& echo 'switch port vo2-cmp-1 down'"
    )
    with pytest.raises(ValueError, match="up or down"):
        _link.port_command("vo2-cmp-1", "flap")
    facts = _link.parse_node_facts(f"management\nroute4 {STATIC} linkdown\nroute6 fe80::/64 x\n")
    assert facts == _link.NodeFacts((STATIC,), ("fe80::/64 x",), True)
    assert not _link.parse_node_facts("route4 10.0.0.0/8 via 10.0.0.1\n").carries_management


def test_node_facts_record_only_the_routes_the_kernel_does_not_bring_back(tmp_path: Path) -> None:
    ip, _ = fake_ip(tmp_path, "eth0", mgmt="eth0")
    script = _link.node_facts_script("eth0", ip=str(ip))
    rc, out = sh(f"SSH_CONNECTION='10.231.0.1 40000 10.231.0.21 22'\n{script}")
    assert rc == 0, out
    assert _link.parse_node_facts(out) == _link.NodeFacts((STATIC,), (), True)
    rc, out = sh(f"SSH_CONNECTION=''\n{script}")  # not over SSH: nothing to protect
    assert (rc, _link.parse_node_facts(out).carries_management) == (0, False)
    assert sh(_link.node_facts_script("eth7", ip=str(ip)))[0] != 0


def test_a_deferred_down_lands_later_unless_the_revert_took_it_back(tmp_path: Path) -> None:
    """The link carrying osha's SSH goes down after the command returned; a revert before
    that takes the pending down back, so a down can never land after its revert."""
    ip, d = fake_ip(tmp_path, "eth0")
    pending = tmp_path / "pending"
    down = _link.node_down_script("eth0", "k/1", ip=str(ip), defer_s=0.5, pending_dir=str(pending))
    up = _link.node_up_command("eth0", "k/1", [], [], ip=str(ip), pending_dir=str(pending))
    assert sh(down) == (0, "link eth0 goes down in 0.5 s\n")
    assert state(d, "eth0") == "up"  # not yet
    wait_for(lambda: state(d, "eth0") == "down", timeout_s=10, what="the deferred down")
    wait_for(lambda: not list(pending.iterdir()), timeout_s=10, what="its files removed")
    assert sh(up) == (0, "link eth0 up, 0 route(s) restored\n")
    assert state(d, "eth0") == "up"
    # the revert first: the detached down finds nothing pending and leaves the link alone
    assert sh(down)[0] == 0
    assert sh(up)[0] == 0
    wait_for(lambda: not list(pending.iterdir()), timeout_s=10, what="the detached down done")
    assert state(d, "eth0") == "up"
    assert (d / "log").read_text().count("link set dev eth0 down") == 1


def test_bad_link_settings_are_one_screen_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = files(tmp_path)
    body = "".join(entry(names, f"d{i}", extra) for i, extra in enumerate([
        'action = "link-down"',
        'action = "link-down"\nside = "switch"\ninterface = "eth0"',
        'peers = { group = "controller" }\nside = "switch"',
        'action = "link-down"\ninterface = "eth0"\nside = "cable"',
        'action = "link-down"\ninterface = "eth0"\nports = [22]',
    ]))  # fmt: skip
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, body)))
    assert code == 2, text
    for key, problem in [
        ("disruptors[0]", 'action = "link-down" (side = "node") needs interface = "eth0"'),
        ("disruptors[1]", "interface is for side = \"node\"; with side = \"switch\" the port is "
                          "the inventory's osha_switch_port of each target node"),
        ("disruptors[2]", 'side is for action = "link-down", not "partition"'),
        ("disruptors[3].side", "'cable' is not one of 'node' | 'switch'"),
        ("disruptors[4]", 'peers and ports are not for action = "link-down"'),
    ]:  # fmt: skip
        assert f"{key}: {problem}" in text, (key, text)
    switch_side = entry(names, "sw", 'action = "link-down"\nside = "switch"')
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, switch_side, "s.toml")))
    assert code == 2, text
    assert ("disruptors[0].side: the inventory gives no osha_switch_port for cmp-1, so side = "
            '"switch" does not know which port to take down') in text  # fmt: skip
    assert "add osha_switch_port=<interface> to cmp-1's line in the inventory" in text
    good = entry(names, "ok", 'action = "link-down"\ninterface = "eth0"')
    code, text = _osha(capsys, "faults", "plan", str(_write(tmp_path, good, "ok.toml")))
    assert code == 0, text
    assert "link-down   eth0@cmp-1" in text.splitlines()[1], text


def _config(tmp_path: Path, inventory: str, **keys: object) -> NetworkConfig:
    path = tmp_path / "inventory.ini"
    path.write_text(inventory)
    return NetworkConfig(action=NetworkAction.LINK_DOWN, inventory=FilePath(str(path)),
                         target=TargetConfig(group="compute"), schedule=ScheduleConfig(),
                         command_timeout_s=20.0, **keys)  # type: ignore[arg-type]  # fmt: skip


def _network(ip: Path, tmp_path: Path) -> type[NetworkDisruptor]:
    class Network(NetworkDisruptor):
        pass

    Network.ip = str(ip)
    Network.switch_state_dir = str(tmp_path / "deadman")
    Network.link_dir = str(tmp_path / "link")
    return Network


def test_the_switch_side_preflight_names_the_missing_inventory_var(tmp_path: Path) -> None:
    ip, _ = fake_ip(tmp_path, "vo-cmp-1")
    network = _network(ip, tmp_path)
    for line, ok, message, hint in [
        ("cmp-1 osha_switch_port=vo-cmp-1", True, "link-down can run on cmp-1", ""),
        ("cmp-1", False, "the inventory gives no osha_switch_port for cmp-1",
         "add osha_switch_port=<interface> to cmp-1's line in the inventory"),
        ("cmp-1 osha_switch_port=vo-nope", False, "switch port vo-nope of cmp-1 is not on this "
         "machine: no switch port vo-nope here", "check osha_switch_port of cmp-1"),
        ("cmp-1 osha_switch_port=vo-cmp-1 osha_switch_host=tor-1", False,
         "osha_switch_host=tor-1 for cmp-1: only 'local'", "run osha where the switch port is"),
    ]:  # fmt: skip
        config = _config(tmp_path, f"[compute]\n{line}\n", side=LinkSide.SWITCH)
        [finding] = network(config, FakeContext("link")).check()
        assert (finding.target, finding.ok) == ("switch-port@cmp-1", ok), finding
        assert finding.message.startswith(message), finding
        assert (finding.hint or "").startswith(hint), finding


def _lease(action_node: str, revert: dict[str, object], down_s: float = 30.0) -> Lease:
    key = switch.new_key("link/0")
    now = time.time()
    return Lease("link/0", "link", "network", 0, "link-down", action_node, "127.0.0.1", "", (),
                 down_s, now, now + 60, {**revert, switch.KEY: key})  # fmt: skip


def own_revert(network: type[NetworkDisruptor], config: NetworkConfig, held: Lease,
               is_up: Callable[[], bool], *, began_s: float, ttl_s: float
               ) -> deadman.Status:  # fmt: skip
    """Nobody renews: the link is up again by the switch's own revert, not before its ttl;
    collected, the switch says it ran the revert and it succeeded."""
    wait_for(is_up, timeout_s=deadman.expiry_bound_s(ttl_s), interval_s=0.05,
             what="the own revert of the dead-man switch")  # fmt: skip
    assert time.monotonic() - began_s >= ttl_s - 0.1
    status = network.collect_switch(config, held)
    assert status is not None
    assert (status.state, status.revert_status) == (deadman.State.REVERTED, 0)
    return status


def test_the_switch_side_here_reverted_by_the_dead_man_or_at_once(tmp_path: Path) -> None:
    ip, d = fake_ip(tmp_path, "vo-cmp-1")
    network = _network(ip, tmp_path)
    config = _config(tmp_path, "[compute]\ncmp-1 osha_switch_port=vo-cmp-1\n",
                     side=LinkSide.SWITCH)  # fmt: skip
    disruptor = network(config, FakeContext("link"))
    disruptor.hosts = load_hosts(config)
    revert = disruptor.prepare(disruptor.hosts["cmp-1"])
    assert revert == {"side": "switch", "port": "vo-cmp-1"}
    for osha_alive in (False, True):
        held = _lease("cmp-1", revert)
        command = network.switch_command(config, held)
        assert command == _link.port_command("vo-cmp-1", "up", ip=str(ip))
        ttl_s = 2.0
        with network.node_runner(config, held) as run:  # this machine: no SSH
            began_s = time.monotonic()
            deadman.arm(run, str(held.revert[switch.KEY]), command, ttl_s,
                        state_dir=network.switch_state_dir)  # fmt: skip
            detail = disruptor.inject(held)
        assert detail == "switch port vo-cmp-1 of cmp-1 down: the node sees NO-CARRIER"
        assert state(d, "vo-cmp-1") == "down"
        if osha_alive:  # osha's own revert, at once; the switch disarmed, never fired
            assert network.revert_lease(config, held) == "switch port vo-cmp-1 up on cmp-1"
            assert state(d, "vo-cmp-1") == "up"
            status = network.collect_switch(config, held)
            assert status is not None
            assert status.state is deadman.State.ABSENT
            continue
        own_revert(network, config, held, lambda: state(d, "vo-cmp-1") == "up", began_s=began_s,
                   ttl_s=ttl_s)  # fmt: skip
    assert (d / "log").read_text().count("link set dev vo-cmp-1 down") == 2


def test_the_node_side_over_ssh_is_reverted_by_the_node_with_its_routes(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    """probe, prepare, inject and revert over a real SSH session with a fake ip; the switch
    armed as the disruptor arms it and never renewed (osha "killed"): the node sets the link
    up and puts the static route back; then the same on osha's own SSH path, deferred."""
    ip, d = fake_ip(tmp_path, "eth9")
    network = _network(ip, tmp_path)
    config = _config(
        tmp_path,
        f"[compute]\nlocal ansible_host=127.0.0.1 ansible_port={local_sshd.port} "
        f"ansible_user={local_sshd.target.user}\n",
        interface="eth9",
        ssh=SshConfig(port=local_sshd.port,
                      private_key=FilePath(local_sshd.credentials.private_key),
                      known_hosts=FilePath(local_sshd.credentials.known_hosts)),
    )  # fmt: skip
    disruptor = network(config, FakeContext("link"))
    disruptor.hosts = load_hosts(config)
    host = disruptor.hosts["local"]
    missing = network(replace(config, interface="eth7"), FakeContext("link"))
    try:
        with pytest.raises(PluginError, match="cannot take eth7 down on local: no interface eth7"):
            missing.probe(host)  # faults check
        disruptor.probe(host)
        revert = disruptor.prepare(host)
        assert revert == {"side": "node", "interface": "eth9", "routes4": [STATIC],
                          "routes6": [], switch.CUT_OFF: False}  # fmt: skip
        held = _lease("local", revert)
        ttl_s = 3.0
        with network.node_runner(config, held) as run:
            began_s = time.monotonic()
            command = network.switch_command(config, held)
            assert command is not None
            deadman.arm(run, str(held.revert[switch.KEY]), command, ttl_s,
                        state_dir=network.switch_state_dir)  # fmt: skip
            assert disruptor.inject(held) == "link eth9 of local down, 1 route(s) recorded"
        assert state(d, "eth9") == "down"
        status = own_revert(network, config, held, lambda: state(d, "eth9") == "up",
                            began_s=began_s, ttl_s=ttl_s)  # fmt: skip
        assert "link eth9 up, 1 route(s) restored" in status.log
        assert f"-4 route replace {STATIC} dev eth9" in (d / "log").read_text()
        # osha's SSH path goes through eth9 now: the down waits until the inject returned
        (d / "mgmt").write_text("eth9")
        revert = disruptor.prepare(host)
        assert revert[switch.CUT_OFF] is True
        held = _lease("local", revert)
        detail = disruptor.inject(held)
        assert detail.endswith("osha cut off until the node's own revert at revert_by"), detail
        wait_for(lambda: state(d, "eth9") == "down", timeout_s=10, what="the deferred down")
        assert network.revert_lease(config, held) == "link eth9 up, 1 route(s) restored on local"
        assert state(d, "eth9") == "up"
    finally:
        missing.close()
        disruptor.close()


def test_a_revert_is_retried_until_after_the_nodes_own_revert_at_revert_by() -> None:
    """A fault that cut osha off (a link down on its own path) comes back at the node's
    deadline plus its poll: osha's attempts go on past ``revert_by`` until one lands."""
    now = time.time()
    lease = Lease("link/0", "link", "network", 0, "link-down", "cmp-1", "10.0.0.1", "", (),
                  1.0, now, now + 0.5, {switch.KEY: "link/0/x"})  # fmt: skip
    back_wall_s = lease.revert_by_wall_s + deadman.expiry_bound_s(0.0) - 0.5

    def revert(_: Lease) -> str:
        if time.time() < back_wall_s:
            raise OSError("no route to host")
        return "link eth0 up"

    ctx = FakeContext("link")
    policy = RetryPolicy(initial_s=0.2, max_s=0.5, min_window_s=0.1)
    ok = revert_with_retry(lease, revert, ctx.emit, by="holder", abort=threading.Event(),
                           policy=policy)  # fmt: skip
    assert ok
    assert [m.detail for m in ctx.of(FaultReverted)] == ["link eth0 up"]
