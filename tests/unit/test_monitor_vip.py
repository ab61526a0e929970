"""The vip monitor without the lab: real ``ip -o addr show`` and HAProxy 2.6 ``show stat``
output (captured on this kind of machine, tests/unit/data), and the whole monitor over fake
members: a VIP move is its own record, with both bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.monitors.vip import VipMonitor, parse_addresses, parse_stat
from osha.errors import PluginError
from osha.messages.monitor import VipMoved
from osha.testing import FakeContext, wait_for
from tests.unit.cluster_fakes import FakeMembers, build_monitor, last_state, poll_until

DATA = Path(__file__).parent / "data"
STAT = (DATA / "haproxy-2.6-show-stat.csv").read_text()
STAT_GOING_DOWN = (DATA / "haproxy-2.6-show-stat-going-down.csv").read_text()
STAT_DOWN = (DATA / "haproxy-2.6-show-stat-down.csv").read_text()
IP = (DATA / "ip-o-addr-show.txt").read_text()
VIP = "10.234.0.10"


def node_ip(index: int, vip: bool) -> str:
    """``ip -o addr show`` of a lab controller; keepalived adds the VIP as a secondary."""
    lines = [
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
        f"2: eth0    inet 10.234.0.{index}/24 brd 10.234.0.255 scope global eth0\\       "
        "valid_lft forever preferred_lft forever",
    ]
    if vip:
        lines.append(f"2: eth0    inet {VIP}/24 scope global secondary eth0\\       "
                     "valid_lft forever preferred_lft forever")  # fmt: skip
    return "\n".join(lines) + "\n"


def test_parse_real_ip_output() -> None:
    addresses = parse_addresses(IP)
    assert {"127.0.0.1", "::1", "192.0.2.2", "10.232.0.1"} <= addresses
    assert VIP in parse_addresses(node_ip(1, vip=True))
    assert VIP not in parse_addresses(node_ip(1, vip=False))


def test_parse_real_haproxy_stat() -> None:
    servers = parse_stat(STAT)
    assert sorted(servers) == ["keystone_api/ctl-1", "keystone_api/ctl-2", "mariadb/ctl-1",
                               "mariadb/ctl-2"]  # fmt: skip
    up, down = servers["keystone_api/ctl-1"], servers["keystone_api/ctl-2"]
    assert (up.status, up.check, up.up) == ("UP", "L4OK", True)
    assert (down.status, down.check, down.up) == ("DOWN", "L4CON", False)
    assert up.last_change_s == 1.0
    going = parse_stat(STAT_GOING_DOWN)["keystone_api/ctl-1"]
    assert (going.status, going.up) == ("UP 1/2", True)  # one failed check of fall 2
    assert not parse_stat(STAT_DOWN)["keystone_api/ctl-1"].up
    with pytest.raises(ValueError, match="no '# pxname"):
        parse_stat("Unknown command. Please enter one of the following commands only :\n")


def _monitor(
    fake: FakeMembers, *, setup: bool = True, **extra: Any
) -> tuple[VipMonitor, FakeContext]:
    data = {"vips": {"internal": VIP}, "ip_command": fake.command,
            "haproxy_command": f"cat {fake.dir}/{{node}}.stat", **extra}  # fmt: skip
    return build_monitor(VipMonitor, fake, data, setup=setup)


_state, _poll_until = last_state, poll_until


def test_a_vip_move_is_its_own_record_and_haproxy_follows_the_holder(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    for i, n in enumerate(fake.names, 1):
        fake.answer(n, node_ip(i, vip=n == "ctl-1"))
        (tmp_path / f"{n}.stat").write_text(STAT)
    monitor, ctx = _monitor(fake)
    try:
        first = {"vip:internal": "up", "haproxy:keystone_api/ctl-1": "up",
                 "haproxy:keystone_api/ctl-2": "down"}  # fmt: skip
        _poll_until(monitor, ctx, first, "ctl-1 holds")
        held = _state(ctx, "vip:internal")
        assert held is not None
        assert f"{VIP} on ctl-1" in held.evidence
        # ctl-1 is powered off: it answers no more; the VIP is nowhere until ctl-2 takes it
        fake.hang("ctl-1")
        fake.answer("ctl-1", "")
        (tmp_path / "ctl-2.stat").write_text(STAT_DOWN)
        fake.answer("ctl-2", node_ip(2, vip=True))
        _poll_until(monitor, ctx, {"haproxy:keystone_api/ctl-1": "down"}, "ctl-2 holds")
        assert _state(ctx, "vip:internal").state == "up"  # type: ignore[union-attr]  # no split brain
        wait_for(lambda: monitor.poll() or ctx.of(VipMoved), timeout_s=5.0,
                 what="the move, once ctl-1's view is stale")  # fmt: skip
        (moved,) = ctx.of(VipMoved)
        assert (moved.target, moved.address, moved.from_node, moved.to_node) == (
            "vip:internal", VIP, "ctl-1", "ctl-2")  # fmt: skip
        assert moved.last_seen_mono_s < moved.first_seen_mono_s
        assert "ctl-2's HAProxy" in _state(ctx, "haproxy:keystone_api/ctl-1").evidence  # type: ignore[union-attr]
        # the holder's stats socket fails: its servers are unknown, not their old states
        (tmp_path / "ctl-2.stat").write_text("")
        _poll_until(monitor, ctx, {"haproxy:keystone_api/ctl-1": "unknown"}, "stats unreadable")
        blind = _state(ctx, "haproxy:mariadb/ctl-2")
        assert blind is not None
        assert "stats unreadable" in blind.evidence
        # split brain: ctl-3 holds it too
        fake.answer("ctl-3", node_ip(3, vip=True))
        _poll_until(monitor, ctx, {"vip:internal": "down"}, "split brain")
        assert "split brain" in _state(ctx, "vip:internal").evidence  # type: ignore[union-attr]
    finally:
        fake.hang("ctl-1", on=False)
        monitor.teardown()
    assert len(ctx.of(VipMoved)) == 1  # split brain is no move


def test_vips_are_required_and_checked(tmp_path: Path) -> None:
    fake = FakeMembers(tmp_path)
    monitor, _ = _monitor(fake, vips={}, setup=False)
    with pytest.raises(PluginError, match="no vips given"):
        monitor.setup()
    bad, _ = _monitor(fake, vips={"internal": "10.0.0.300"}, setup=False)
    findings = bad.check()
    assert [f.message for f in findings] == ["vips.internal = '10.0.0.300' is not an IP address"]
