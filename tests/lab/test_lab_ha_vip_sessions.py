"""A database client on the VIP holder when the VIP leaves its node (the HA lab's stall of
nova-conductor and nova-scheduler on ctl-2, CHANGELOG "Fixed").

A client on the node that holds the VIP reaches the VIP through that node's own HAProxy. When
the VIP moves away (ctl-2 took it from a powered-off ctl-1, then gave it up), HAProxy can no
longer send the answer (its source address is gone) and the client, whose query is sent, waits
in ``recv`` with nothing to send: for the kernel's default keepalive, 2 h. The lab's keepalive
(``ha.tcp_keepalive`` in lab.json, every node's sysctls) probes it; the new holder answers the
probe with a reset. The client here has no read timeout, so only that keepalive can end it.

Needs an HA lab; run with ``-m ha_lab``.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.lab.client import LAB_DIR, Lab, wait_for
from tests.lab.test_lab_ha_cluster import MARGIN_S, ha

pytestmark = pytest.mark.ha_lab

#: The query's own length: longer than the VIP's move (a keepalived restart and a VRRP
#: takeover, about 1 s), so the answer is due after the VIP left.
QUERY_S = 8.0
MOVE_TIMEOUT_S = 20.0
#: The client (the lab's venv has PyMySQL, as the services use it): connect through the VIP,
#: say so, then send one query at once; print how it ended. No read timeout: the keepalive
#: is what is tested.
CLIENT = """
import sys, time, pymysql
c = pymysql.connect(host=sys.argv[1], user="os", password="os", connect_timeout=5)
print("connected", flush=True)
t = time.monotonic()
try:
    c.cursor().execute("SELECT SLEEP(%s)" % sys.argv[2])
    print("answer after %.2f s" % (time.monotonic() - t), flush=True)
except Exception as e:
    print("error after %.2f s: %r" % (time.monotonic() - t, e), flush=True)
"""


def vip_holders(lab: Lab, cfg: dict[str, Any]) -> list[str]:
    netns = lab.desc["network"]["netns_prefix"]
    holders = []
    for node in cfg["controllers"]:
        out = subprocess.run(
            ["ip", "-n", f"{netns}{node}", "-o", "addr", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        if f" {cfg['vip']}/" in out:
            holders.append(node)
    return holders


def move_vip_off(lab: Lab, cfg: dict[str, Any], node: str) -> str:
    """Restart keepalived on ``node`` (its priority-0 advert hands the VIP to the highest
    backup, as ``ha_vip_home`` does); the new holder."""
    lab.check(node, f"sv restart {lab.nodes[node]['service_dir']}/keepalived")
    [holder] = wait_for(lambda: [h for h in vip_holders(lab, cfg) if h != node] or None,
                        MOVE_TIMEOUT_S, 0.1, f"the VIP to leave {node}")  # fmt: skip
    return holder


@pytest.mark.timeout(300)
def test_a_client_of_the_vip_holder_is_freed_when_the_vip_leaves(healthy_lab: Lab) -> None:
    lab = healthy_lab
    cfg = ha(lab)
    keepalive = cfg["tcp_keepalive"]
    client_node = cfg["controllers"][1]
    # the VIP on ctl-2, as after a power-off of ctl-1 (nopreempt keeps it there)
    if vip_holders(lab, cfg) != [client_node]:
        assert move_vip_off(lab, cfg, cfg["controllers"][0]) == client_node
    netns = f"{lab.desc['network']['netns_prefix']}{client_node}"
    client = subprocess.Popen(
        ["ip", "netns", "exec", netns, str(LAB_DIR / "venv" / "bin" / "python"), "-c", CLIENT,
         cfg["vip"], str(QUERY_S)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "connected", "the client did not connect"
        sent = time.monotonic()
        new_holder = move_vip_off(lab, cfg, client_node)
        moved_s = time.monotonic() - sent
        assert moved_s < QUERY_S, f"the VIP moved {moved_s:.1f} s after the query, after its answer"
        # the first probe goes out `time_s` after the query (the last traffic), and the new
        # holder resets it; unanswered probes would take `probes` more intervals
        bound_s = keepalive["time_s"] + keepalive["probes"] * keepalive["intvl_s"] + MARGIN_S
        try:
            client.wait(timeout=max(0.0, bound_s - (time.monotonic() - sent)))
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the client still waits {bound_s:.1f} s after its query (the VIP moved "
                f"to {new_holder} after {moved_s:.1f} s): its connection is half-dead and "
                "nothing probes it; see every node's net.ipv4.tcp_keepalive_* (ha_net_up)"
            )
        ended = client.stdout.read().strip()
        waited_s = time.monotonic() - sent
    finally:
        client.kill()
        client.wait(timeout=10)
    print(  # noqa: T201 - the measured figures are part of the report
        f"\nVIP {client_node} -> {new_holder} {moved_s:.2f} s after the query; the client "
        f"({ended}) freed {waited_s:.2f} s after it, bound {bound_s:.1f} s"
    )
