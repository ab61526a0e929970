"""The HA topology (issue 12): the VIP moves when its holder loses power, Galera stays Primary
without one member and takes it back, and HAProxy takes a dead API instance out, each checked
against the nodes' ground truth (events.log lines written by keepalived's notify script,
Galera's wsrep_notify_cmd and HAProxy's log; scripts/labkit/README.md).

Needs a lab brought up with the HA topology (``OSHA_LAB_TOPOLOGY=ha scripts/lab up``; lab.json
``topology``), and runs with ``pytest tests/lab -m ha_lab``; a lab without it fails these
tests with that hint, it never skips them. Each test leaves the lab healthy (``healthy_lab``:
`scripts/lab reset` also puts the VIP back on ctl-1 and waits for all three members).
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openstack
import pytest

from tests.lab.client import Event, Lab, run_lab, wait_for

# Not `lab`: the lab tier (`scripts/test --lab`, `-m lab`) runs against the default topology
# and stays as it was. Run these against an HA lab with `-m ha_lab`.
pytestmark = pytest.mark.ha_lab

POLL_INTERVAL_S = 0.2  # the openstack-api monitor interval
POLL_TIMEOUT_S = 2.0
#: Margin on every timer-derived bound below: a daemon (keepalived, HAProxy, mysqld) woken
#: late on the loaded 2-core machine shared with other labs. The spike measured the VRRP
#: takeover at 0.30 s of a 0.35 s timer at load 3-15 (REPORT.md); 2 s covers a starved turn.
MARGIN_S = 2.0


def ha(lab: Lab) -> dict[str, Any]:
    if lab.desc.get("topology") != "ha":
        pytest.fail(
            "this lab runs the default topology (lab.json topology); bring it up with "
            "`scripts/lab down && OSHA_LAB_TOPOLOGY=ha scripts/lab up`",
            pytrace=False,
        )
    section: dict[str, Any] = lab.desc["ha"]
    return section


def new_token(lab: Lab) -> str:
    """A keystone token from a new connection (a database read and write through the VIP);
    the session's shared connection may hold a keep-alive socket HAProxy closed meanwhile."""
    os.environ["OS_CLIENT_CONFIG_FILE"] = lab.desc["clouds_yaml"]  # as Lab.cloud() does
    cloud = openstack.connect(cloud=lab.desc["cloud"], api_timeout=20)
    try:
        return str(cloud.session.get_token())
    finally:
        cloud.close()


def events_since(lab: Lab, node: str, kind: str, since_s: float) -> list[Event]:
    return [e for e in lab.events(node) if e.kind == kind and e.time_s >= since_s]


@dataclass
class Poller:
    """GET ``path`` on ``host:port`` every POLL_INTERVAL_S, a new connection each time, as
    osha's openstack-api monitor probes an endpoint; (send time, arrival, ok) per probe."""

    host: str
    port: int
    path: str
    probes: list[tuple[float, float, bool]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():  # bounded by the test: stop() ends it
            sent = time.time()
            ok = False
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=POLL_TIMEOUT_S)
                conn.request("GET", self.path)
                ok = conn.getresponse().status < 500
                conn.close()
            except OSError:
                ok = False
            self.probes.append((sent, time.time(), ok))
            self.stop.wait(max(0.0, POLL_INTERVAL_S - (time.time() - sent)))

    def first_ok_after(self, t_s: float) -> float | None:
        return next((arrived for sent, arrived, ok in self.probes if ok and sent >= t_s), None)

    def longest_outage_s(self) -> float:
        """From the send time of the first failed probe of a run to the arrival of the next
        success (0 when no probe failed)."""
        longest, start = 0.0, None
        for sent, arrived, ok in self.probes:
            if not ok and start is None:
                start = sent
            elif ok and start is not None:
                longest, start = max(longest, arrived - start), None
        return longest


@pytest.fixture
def poller(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Poller]:
    port, path = request.param
    p = Poller((lab.desc.get("ha") or {}).get("vip", ""), port, path)
    if not p.host:  # not an HA lab: the test itself fails with the hint (ha())
        yield p
        return
    thread = threading.Thread(target=p.run, name="ha-poller", daemon=True)
    thread.start()
    yield p
    p.stop.set()
    thread.join(POLL_TIMEOUT_S + POLL_INTERVAL_S + 1)


def end_restart_wait(lab: Lab, node: str, service: str) -> None:
    """End runit's RestartSec wait (its finish script sleeps), as `systemctl start` would."""
    service_dir = lab.nodes[node]["service_dir"]
    status = lab.check(node, f"sv status {service_dir}/{service}")
    if status.startswith("finish:"):
        finish_pid = status.split("(pid ")[1].split(")")[0]
        lab.check(node, f"pkill -P {finish_pid} -x sleep")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("poller", [(5000, "/v3")], indirect=True)
def test_the_vip_moves_when_its_holder_loses_power(healthy_lab: Lab, poller: Poller) -> None:
    """IPMI power-off of the VIP holder: the next controller by priority takes the VIP over
    (its keepalived's MASTER line) and keystone answers on the VIP again through ctl-2."""
    lab = healthy_lab
    cfg = ha(lab)
    holder, successor = cfg["vrrp"]["master"], cfg["controllers"][1]
    advert_s = cfg["vrrp"]["advert_int_s"]
    # VRRP: a backup declares the master dead after 3 adverts plus its skew ((256 - p) / 256
    # adverts, p = 100 for ctl-2's priority), then takes the VIP and sends gratuitous ARPs.
    takeover_bound_s = 3 * advert_s + (256 - 100) / 256 * advert_s + MARGIN_S
    # HAProxy on the new holder: a request sent to the dead ctl-1 waits `timeout connect`,
    # then goes to ctl-2 (`option redispatch 1`: every retry to another server); a probe
    # whose SYN went to ctl-1's MAC before the takeover is retransmitted after TCP's 1 s
    # initial RTO; plus one poll interval.
    connect_s = cfg["haproxy"]["timeout_connect_ms"] / 1000
    answer_bound_s = 1.0 + 2 * connect_s + POLL_INTERVAL_S + MARGIN_S
    wait_for(lambda: poller.first_ok_after(time.time() - 1), 10, what="keystone on the VIP")

    started = time.time()
    result = run_lab("power", holder, "off", timeout_s=lab.bounds.command_s)
    assert result.returncode == 0, result.stderr
    lost = next(e.time_s for e in events_since(lab, holder, "power-off", started - 1))
    took = wait_for(
        lambda: next(
            (e.time_s for e in events_since(lab, successor, "vrrp", started)
             if e.fields.get("state") == "MASTER"),
            None,
        ),
        takeover_bound_s + 5, interval_s=0.1, what=f"{successor}'s keepalived MASTER line",
    )  # fmt: skip
    answered = wait_for(
        lambda: poller.first_ok_after(took), takeover_bound_s + answer_bound_s + 5,
        interval_s=0.1, what="keystone answering on the VIP again",
    )  # fmt: skip
    print(  # noqa: T201 - the measured figures are part of the report
        f"\nVIP failover: {holder} powered off at {lost:.3f}; {successor} MASTER after "
        f"{took - lost:.3f} s (bound {takeover_bound_s:.2f} s); keystone answered on the VIP "
        f"{answered - lost:.3f} s after the power-off; longest outage the 0.2 s poller saw "
        f"{poller.longest_outage_s():.3f} s"
    )
    assert took - lost <= takeover_bound_s
    assert answered - took <= answer_bound_s
    # the VIP is on the successor (the holder's namespace lost it with the power)
    assert f" {cfg['vip']}/" in lab.check(successor, "ip -o addr show dev eth0")
    # the APIs behind it work end to end: a new token is a database write through the VIP
    wait_for(
        lambda: new_token(lab), takeover_bound_s + 30,
        what="a keystone token through the VIP after the failover",
    )  # fmt: skip


@pytest.mark.timeout(600)
def test_galera_stays_primary_without_a_killed_member_and_takes_it_back(healthy_lab: Lab) -> None:
    """SIGKILL of mysqld on ctl-2 (a backup of the writer): ctl-1 and ctl-3 carry on as a
    Primary component of two (their wsrep_notify_cmd lines), the cloud still writes, and
    the member rejoins once runit restarts it (IST from its recovered position)."""
    lab = healthy_lab
    cfg = ha(lab)
    victim, survivor = cfg["controllers"][1], cfg["controllers"][0]
    # a silent member is suspected after evs.suspect_timeout, evicted at the next inactivity
    # check (evs.inactive_check_period 0.5 s) and the new view installed (a round trip)
    evicted_bound_s = cfg["galera"]["suspect_timeout_s"] + 0.5 + 1.0 + MARGIN_S
    # runit's restart, --wsrep-recover, and an IST of a few seconds' writes (spike: 5 s)
    rejoin_bound_s = lab.bounds.restart_s + 30.0
    service_dir = lab.nodes[victim]["service_dir"]
    lab.check(victim, f"echo {int(evicted_bound_s + 10)} > {service_dir}/mariadb/restart_sec")
    pid = lab.service_pid(victim, "mariadb")
    assert pid
    killed = time.time()
    lab.check(victim, f"kill -9 {pid}")

    def two_member_view() -> Event | None:
        return next(
            (e for e in events_since(lab, survivor, "galera", killed)
             if e.fields.get("primary") == "yes" and e.fields.get("size") == "2"
             and victim not in e.fields.get("members", "").split(",")),
            None,
        )  # fmt: skip

    view = wait_for(two_member_view, evicted_bound_s + 5, interval_s=0.2,
                    what=f"{survivor}'s Galera view without {victim}")  # fmt: skip
    # the cloud writes meanwhile: a keystone token is a database write through the VIP
    assert new_token(lab)
    end_restart_wait(lab, victim, "mariadb")
    synced = wait_for(
        lambda: next(
            (e.time_s for e in events_since(lab, victim, "galera", killed)
             if e.fields.get("status") == "synced"),
            None,
        ),
        rejoin_bound_s, interval_s=0.5, what=f"{victim} Synced again",
    )  # fmt: skip
    back = wait_for(
        lambda: next(
            (e for e in events_since(lab, survivor, "galera", view.time_s)
             if e.fields.get("size") == "3" and e.fields.get("primary") == "yes"),
            None,
        ),
        rejoin_bound_s, interval_s=0.5, what=f"{survivor}'s view with three members",
    )  # fmt: skip
    print(  # noqa: T201
        f"\nGalera: {victim} killed; {survivor} in a Primary view of 2 after "
        f"{view.time_s - killed:.2f} s (bound {evicted_bound_s:.1f} s); {victim} Synced "
        f"{synced - killed:.2f} s after the kill (restart held {int(evicted_bound_s + 10)} s), "
        f"view of 3 at +{back.time_s - killed:.2f} s"
    )
    assert view.time_s - killed <= evicted_bound_s
    starts = [e for e in lab.events(victim) if e.kind == "start" and e.name == "mariadb"]
    assert starts
    assert starts[-1].time_s > killed


@pytest.mark.timeout(600)
@pytest.mark.parametrize("poller", [(8774, "/")], indirect=True)
def test_haproxy_takes_a_killed_api_instance_out(healthy_lab: Lab, poller: Poller) -> None:
    """kill -9 of nova-api on ctl-2: every HAProxy marks nova-api/ctl-2 DOWN (ground truth:
    its events line), nova's endpoint on the VIP keeps answering (a refused connection is
    retried on ctl-1), and the instance is UP again once runit restarts it."""
    lab = healthy_lab
    cfg = ha(lab)
    victim, holder = cfg["api_nodes"][1], cfg["vrrp"]["master"]
    hp = cfg["haproxy"]
    # the first failed check comes within `inter`, then `fall - 1` more `fastinter` apart
    down_bound_s = (hp["inter_ms"] + (hp["fall"] - 1) * hp["fastinter_ms"]) / 1000 + MARGIN_S
    up_bound_s = lab.bounds.restart_s + 60.0  # runit, nova-api's imports (uWSGI), `rise` checks
    service_dir = lab.nodes[victim]["service_dir"]
    lab.check(victim, f"echo {int(down_bound_s + 5)} > {service_dir}/nova-api/restart_sec")
    wait_for(lambda: poller.first_ok_after(time.time() - 1), 10, what="nova-api on the VIP")
    pid = lab.service_pid(victim, "nova-api")
    assert pid
    killed = time.time()
    lab.check(victim, f"kill -9 {pid}")
    server = f"nova-api/{victim}"

    def line(state: str, since_s: float) -> float | None:
        return next(
            (e.time_s for e in events_since(lab, holder, "haproxy", since_s)
             if e.name == server and e.fields.get("state") == state),
            None,
        )  # fmt: skip

    down = wait_for(lambda: line("DOWN", killed), down_bound_s + 5, interval_s=0.1,
                    what=f"{holder}'s HAProxy marking {server} DOWN")  # fmt: skip
    end_restart_wait(lab, victim, "nova-api")
    up = wait_for(lambda: line("UP", down), up_bound_s, interval_s=0.5,
                  what=f"{holder}'s HAProxy marking {server} UP again")  # fmt: skip
    after_up = time.time()
    wait_for(lambda: poller.first_ok_after(after_up), 10, what="nova-api on the VIP")
    outage = poller.longest_outage_s()
    print(  # noqa: T201
        f"\nHAProxy: {server} DOWN {down - killed:.2f} s after the kill (bound "
        f"{down_bound_s:.2f} s), UP again at +{up - killed:.1f} s; longest outage of nova's "
        f"endpoint on the VIP seen by the {POLL_INTERVAL_S} s poller: {outage:.3f} s "
        f"({sum(1 for *_, ok in poller.probes if not ok)} of {len(poller.probes)} probes failed)"
    )
    assert down - killed <= down_bound_s
    # the endpoint's downtime is at most one monitor interval (a refused connection is
    # retried on the other server, so none is expected)
    assert outage <= POLL_INTERVAL_S
