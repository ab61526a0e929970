"""openstack-api without a cloud: probe URLs, config errors, and the poll logic (services,
agents, endpoints, token loss and re-authentication) against a fake connection; the
per-endpoint cadence against real HTTP servers on 127.0.0.1, one of them hanging."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from keystoneauth1 import exceptions as ksa_exc

from actors.monitors import openstack_api
from actors.monitors._probes import Endpoint, probe_url
from actors.monitors.openstack_api import OpenStackApiConfig, OpenStackApiMonitor
from osha import schema
from osha.errors import PluginError
from osha.messages.monitor import Sample, StateChange
from osha.testing import FakeContext, wait_for
from tests.unit.local_api import catalog_session, driven, local_api, patched_connect

CATALOG = [
    {
        "type": "identity",
        "endpoints": [{"interface": "public", "region_id": "R", "url": "http://k:5000/v3"}],
    },
    {
        "type": "compute",
        "endpoints": [
            {"interface": "admin", "region_id": "R", "url": "http://admin:8774/v2.1"},
            {"interface": "public", "region_id": "R", "url": "http://n:8774/v2.1"},
        ],
    },
    {
        "type": "network",
        "endpoints": [{"interface": "public", "region_id": "R", "url": "http://q:9696"}],
    },
]


class FakeAuth:
    """keystoneauth's identity plugin as the monitor uses it: ``auth_ref`` (the token);
    ``get_access`` logs in under a lock when it is missing and then asserts it is set, outside
    the lock, as keystoneauth 5 does (a concurrent ``invalidate()`` there crashed the monitor
    on the HA lab); ``get_auth_ref`` logs in. Counts every time the token is set to None."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self._ref: str | None = None
        self.dropped = 0
        self.lock = threading.Lock()  # keystoneauth serialises logins the same way

    @property
    def auth_ref(self) -> str | None:
        return self._ref

    @auth_ref.setter
    def auth_ref(self, value: str | None) -> None:
        self.dropped += value is None
        self._ref = value

    def get_auth_ref(self, session: Any) -> str:
        if not self.cloud.keystone_up:
            raise ksa_exc.ConnectFailure(
                "Unable to establish connection to http://k:5000/v3/auth/tokens"
            )
        self.cloud.logins += 1
        return f"tok{self.cloud.logins}"

    def get_access(self, session: Any) -> Any:
        with self.lock:
            if self._ref is None:
                self.auth_ref = self.get_auth_ref(session)
        token = self._ref
        assert token is not None  # keystoneauth's own assertion
        return SimpleNamespace(service_catalog=SimpleNamespace(catalog=CATALOG), token=token)


class FakeCloud:
    """Just enough of an openstacksdk Connection for the monitor."""

    def __init__(self) -> None:
        self.keystone_up = True
        self.logins = 0
        self.auth = FakeAuth(self)
        self.requests: list[str] = []
        self.services = [
            SimpleNamespace(
                binary="nova-scheduler",
                host="ctl-1.example.org",
                state="up",
                status="enabled",
                updated_at="t",
            )
        ]
        self.agents = [
            SimpleNamespace(
                binary="neutron-dhcp-agent",
                host="ctl-1",
                is_alive=True,
                is_admin_state_up=True,
                agent_type="DHCP agent",
            )
        ]
        self.session = SimpleNamespace(
            get_token=self.get_token,
            invalidate=self.invalidate,
            request=self.request,
            auth=self.auth,
        )
        self.compute = SimpleNamespace(services=lambda: self._api(self.services))
        self.network = SimpleNamespace(agents=lambda: self._api(self.agents))

    def _api(self, rows: list[Any]) -> list[Any]:
        if not self.keystone_up:
            raise ksa_exc.ConnectFailure(
                "Unable to establish connection to http://k:5000/v3/auth/tokens"
            )
        return rows

    def get_token(self) -> str:
        return str(self.auth.get_access(self).token)

    def invalidate(self) -> None:
        self.auth.auth_ref = None

    def request(self, url: str, method: str, **kw: Any) -> Any:
        self.requests.append(url)
        if ":5000" in url and not self.keystone_up:
            raise ksa_exc.ConnectFailure("Connection refused")
        return SimpleNamespace(status_code=200)

    def close(self) -> None:
        pass


def _config(**data: Any) -> OpenStackApiConfig:
    cfg, problems = schema.build(OpenStackApiConfig, {"cloud": "lab", **data}, file="t")
    assert not problems, problems
    assert cfg is not None
    return cfg


def _poll(mon: OpenStackApiMonitor) -> None:
    """One poll, then wait until every probe it started has recorded its observation."""
    mon.poll()
    assert mon.lanes is not None
    assert mon.lanes.wait_idle(5.0), f"probes still running: {mon.lanes.busy()}"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> FakeCloud:
    fake = FakeCloud()
    monkeypatch.setattr(openstack_api, "connect", lambda *a, **k: fake)
    return fake


def test_probe_urls() -> None:
    assert (
        probe_url(Endpoint("identity", "http://k:5000/v3/"), {}) == "http://k:5000/v3/auth/tokens"
    )
    assert probe_url(Endpoint("identity", "http://k:5000"), {}) == "http://k:5000/v3/auth/tokens"
    assert (
        probe_url(Endpoint("network", "http://q:9696"), {})
        == "http://q:9696/v2.0/networks?limit=1&fields=id"
    )
    assert (
        probe_url(Endpoint("compute", "http://n:8774/v2.1/p1"), {})
        == "http://n:8774/v2.1/p1/flavors?limit=1"
    )
    assert (
        probe_url(Endpoint("image", "http://g:9292"), {"image": "/healthcheck"})
        == "http://g:9292/healthcheck"
    )
    assert probe_url(Endpoint("magic", "http://m:1/"), {}) == "http://m:1"


def test_poll_reports_services_agents_and_endpoints(cloud: FakeCloud) -> None:
    ctx = FakeContext()
    mon = OpenStackApiMonitor(_config(report_interval_s=0.0), ctx)
    mon.setup()
    try:
        _poll(mon)
        states = mon.tracker.states()
        assert states == {
            "endpoint:compute": "up",
            "endpoint:identity": "up",
            "endpoint:network": "up",
            "nova-scheduler@ctl-1": "up",  # short host name
            "neutron-dhcp-agent@ctl-1": "up",
        }
        assert "http://n:8774/v2.1/flavors?limit=1" in cloud.requests  # public, not admin
        cloud.services[0].state = "down"
        cloud.agents[0].is_alive = False
        _poll(mon)
    finally:
        mon.teardown()
    assert mon.tracker.state("nova-scheduler@ctl-1") == "down"
    agent = [c for c in ctx.of(StateChange) if c.target == "neutron-dhcp-agent@ctl-1"][-1]
    assert agent.state == "down"
    assert "alive=False" in agent.evidence
    assert {s.target for s in ctx.of(Sample)} >= {"endpoint:compute", "nova-scheduler@ctl-1"}
    latencies = [s.latency_median_s for s in ctx.of(Sample) if s.target == "endpoint:compute"]
    assert latencies
    assert latencies[0] is not None


def test_keystone_outage_fails_every_probe_then_recovers_by_reauth(cloud: FakeCloud) -> None:
    ctx = FakeContext()
    mon = OpenStackApiMonitor(_config(), ctx)
    mon.setup()
    try:
        _poll(mon)
        assert cloud.logins == 1
        _poll(mon)
        assert cloud.logins == 1  # the token is reused
        cloud.keystone_up = False
        _poll(mon)  # identity fails; the token is dropped
        _poll(mon)  # no token: every endpoint is down
        states = mon.tracker.states()
        assert [
            states[t] for t in ("endpoint:identity", "endpoint:compute", "endpoint:network")
        ] == ["down"] * 3
        assert states["nova-scheduler@ctl-1"] == "up"  # not seen to change: kept
        down = [c for c in ctx.of(StateChange) if c.target == "endpoint:compute"][-1]
        assert "cannot authenticate" in down.evidence
        cloud.keystone_up = True
        _poll(mon)
    finally:
        mon.teardown()
    assert cloud.logins == 2
    assert set(mon.tracker.states().values()) == {"up"}
    # the token was replaced whole, never set to None under a lane inside an SDK call
    assert cloud.auth.dropped == 0


def test_unknown_cloud_and_missing_clouds_yaml_are_clear(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n")
    mon = OpenStackApiMonitor(_config(cloud="nope", clouds_yaml=str(clouds)), FakeContext())
    (finding,) = mon.check()
    assert not finding.ok
    assert "'nope' is not in" in finding.message
    assert "known clouds: lab" in finding.hint
    with pytest.raises(PluginError, match="is not in"):
        mon.setup()
    mon = OpenStackApiMonitor(_config(clouds_yaml=str(tmp_path / "none.yaml")), FakeContext())
    (finding,) = mon.check()
    assert "does not exist" in finding.message
    mon = OpenStackApiMonitor(_config(clouds_yaml="rel/clouds.yaml"), FakeContext())
    assert "relative" in mon.check()[0].message


def test_cloud_is_required() -> None:
    _, problems = schema.build(OpenStackApiConfig, {}, file="p.toml")
    assert "cloud" in [p.key for p in problems]


def test_a_job_that_raises_ends_the_monitor_at_the_next_poll(cloud: FakeCloud) -> None:
    """A bug in a probe still fails the monitor (the host reports actor.failed), as when the
    poll waited for every probe: the lane keeps the exception and the next poll raises it."""

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    cloud.compute = SimpleNamespace(services=broken)
    mon = OpenStackApiMonitor(_config(network_agents=False), FakeContext())
    mon.setup()
    try:
        _poll(mon)
        with pytest.raises(RuntimeError, match="boom") as raised:
            mon.poll()
        assert "compute-services" in "".join(raised.value.__notes__)
        _poll(mon)  # raised once; the lanes go on
    finally:
        mon.teardown()


# The cadence of one endpoint while another hangs (issue 12's VIP failover: a keep-alive
# probe to the powered-off VIP holder waits for its read timeout). Settings of the lab's VIP
# test: a 0.2 s interval; the hang lasts the probe's timeout_s.
INTERVAL_S = 0.2
HANG_TIMEOUT_S = 2.0


@pytest.mark.timeout(60)  # a hang guard above the waits below
def test_a_hung_endpoint_delays_no_other_endpoint_and_is_not_stacked() -> None:
    ctx = FakeContext()
    cfg = _config(
        interval_s=INTERVAL_S,
        timeout_s=HANG_TIMEOUT_S,
        report_interval_s=1.0,
        compute_services=False,
        network_agents=False,
    )
    with local_api(hang=False) as compute, local_api(hang=False) as network:
        session = catalog_session({"compute": compute.url + "/v2.1", "network": network.url})
        with patched_connect(openstack_api, session):
            mon = OpenStackApiMonitor(cfg, ctx)
            mon.setup()
        try:
            with driven(mon.poll, INTERVAL_S):
                wait_for(lambda: mon.tracker.state("endpoint:compute") == "up", timeout_s=10.0,
                         what="compute up")  # fmt: skip
                compute.hang = True  # from its next request on, as its node was powered off
                down = wait_for(
                    lambda: _change(ctx, "endpoint:compute", "down"),
                    timeout_s=HANG_TIMEOUT_S + 10.0,  # the read timeout, then a loaded machine
                    what="the hung endpoint's probe to time out",
                )
        finally:
            mon.teardown()
    hang_started, hang_ended = compute.held_mono_s[0], down.mono_s
    # down was decided by the read timeout, not before it. The lower bound is the hung
    # probe's own start (first_bad): the client's timeout clock starts after it. The server's
    # arrival stamp is no bound: its handler thread stamps a little after the client began
    # waiting (CI saw 1.9998 s against the arrival stamp).
    assert hang_ended - down.first_bad_mono_s >= HANG_TIMEOUT_S
    # detection timing as exact as before: the bounds are the starts of the last answered
    # probe and of the first hung one (each starts before its request arrives)
    answered = [t for t in compute.arrivals_mono_s if t < hang_started]
    assert down.last_good_mono_s is not None
    before_last = answered[-2] if len(answered) > 1 else float("-inf")
    last_good = down.last_good_mono_s
    assert before_last < last_good <= answered[-1] < down.first_bad_mono_s <= hang_started
    # the answering endpoint's probes while the other hung, and the gaps between them, from
    # the hang's start to its end (so a cadence stretched to the hang is one long gap)
    during = [t for t in network.arrivals_mono_s if hang_started < t < hang_ended]
    edges = [hang_started, *during, hang_ended]
    gaps = [b - a for a, b in itertools.pairwise(edges)]
    # The landed code waited for the hung probe: one gap of HANG_TIMEOUT_S and one probe at
    # most. Bounds from the settings with room for a loaded 2-core machine, where a niced
    # test's threads can be held off the CPU for several intervals (a 0.6 s margin failed
    # once so): no gap reaches half the hang, and at least half the hang's slots were probed.
    assert max(gaps) < HANG_TIMEOUT_S / 2, gaps
    assert len(during) >= HANG_TIMEOUT_S / INTERVAL_S / 2, gaps  # the cadence, not a stall
    assert _change(ctx, "endpoint:network", "down") is None
    # not stacked: the hung API got one request while it hung, the polls meanwhile were
    # skipped (at least half of them on a loaded machine) and the evidence says so
    assert len([t for t in compute.held_mono_s if t < hang_ended]) == 1
    skipped = mon.lanes.skipped() if mon.lanes else {}
    assert skipped["endpoint:compute"] >= HANG_TIMEOUT_S / INTERVAL_S / 2
    assert "later poll(s) of it skipped while it ran" in down.evidence, down.evidence


def _change(ctx: FakeContext, target: str, state: str) -> StateChange | None:
    return next((c for c in ctx.of(StateChange) if c.target == target and c.state == state), None)
