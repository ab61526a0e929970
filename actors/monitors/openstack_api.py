"""``openstack-api``: compute services, network agents and every catalog endpoint."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from keystoneauth1 import exceptions as ksa_exc

from actors.common.cloud import API_ERRORS, CloudError, connect, describe_api_error
from actors.monitors._kit import Aggregator, ReportCadence, StateTracker, SummaryConfig
from actors.monitors._lanes import Lane, Lanes
from actors.monitors._probes import Endpoint, probe_url
from osha.errors import PluginError
from osha.messages.monitor import State
from osha.plugin import Finding, Monitor, PluginContext

__all__ = ["OpenStackApiConfig", "OpenStackApiMonitor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenStackApiConfig(SummaryConfig):
    """Settings of ``openstack-api``. See the class docstring for each key."""

    cloud: str
    clouds_yaml: str = ""
    region: str = ""
    interface: str = "public"
    timeout_s: float = 3.0
    compute_services: bool = True
    network_agents: bool = True
    endpoints: bool = True
    skip_endpoints: tuple[str, ...] = ()
    probe_paths: dict[str, str] = field(default_factory=dict)
    reauth_on_identity_failure: bool = True
    short_hostnames: bool = True


@dataclass(frozen=True, slots=True)
class _Probe:
    target: str
    ok: bool
    started_mono_s: float
    latency_s: float
    evidence: str


class _AuthLost(Exception):
    """No token: keystone cannot be reached or refuses us."""


class OpenStackApiMonitor(Monitor[OpenStackApiConfig]):
    """Polls an OpenStack cloud through its APIs, with openstacksdk and one reused token.

    Every ``interval_s`` it reads:

    - the compute service list (binary, host, state, status, updated_at):
      targets ``nova-scheduler@ctl-1``;
    - the network agent list (alive, admin state): ``neutron-dhcp-agent@ctl-1``;
    - every endpoint of the catalog (``interface``, ``region``), probed with a cheap
      authenticated GET (keystone validates our token, nova lists one flavor, ...):
      ``endpoint:compute``, with its latency.

    Each endpoint and each list has its own lane (a worker thread): the poll starts their
    next probes and returns, so a probe that hangs (a keep-alive connection to a node that
    was powered off waits for its read timeout) delays no other endpoint's observations. A
    probe still running at its next poll is not stacked: that poll skips it, and the
    evidence of its observation says how many polls it outlasted. Summaries
    (``report_interval_s``) hold the observations that ended since the last one.

    The token is reused until it expires (keystoneauth renews it) or a service rejects it.
    When keystone itself stops answering, the token is dropped
    (``reauth_on_identity_failure``), so that every probe reports the outage as a new client
    sees it; the monitor re-authenticates by itself when keystone is back, with no restart.
    While the service or agent list cannot be read, their targets keep their last state:
    the monitor did not see them change.

    Keys: ``cloud`` (a name in clouds.yaml, required), ``clouds_yaml`` (absolute path; the
    standard search path otherwise), ``region``, ``interface`` (public/internal/admin),
    ``timeout_s`` (every request), ``compute_services``/``network_agents``/``endpoints``
    (what to poll), ``skip_endpoints`` (service types), ``probe_paths`` (service type →
    path to GET under the catalog URL), ``reauth_on_identity_failure``, ``short_hostnames``
    (``ctl-1.example.org`` → ``ctl-1``), ``report_interval_s`` (summary cadence).

    Profile::

        [[monitors]]
        id = "api"
        plugin = "openstack-api"
        cloud = "lab"
        interval_s = 1.0
        clouds_yaml = "/var/lib/osha-lab/clouds.yaml"
        timeout_s = 2.0
    """

    config_type = OpenStackApiConfig

    def __init__(self, config: OpenStackApiConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.tracker = StateTracker(self.ctx)
        self.aggregator = Aggregator()
        self.conn: Any = None
        self._drop_token = threading.Event()  # identity failed: log in again before use
        self._auth_lock = threading.Lock()
        self._endpoints: list[Endpoint] = []
        self.lanes: Lanes | None = None
        self.reports = ReportCadence.of(config)

    # --- connection and catalog -----------------------------------------------------------

    def _connect(self) -> Any:
        cfg = self.config
        if cfg.interval_s <= 0 or cfg.timeout_s <= 0:
            raise PluginError("interval_s and timeout_s must be > 0")
        return connect(
            cfg.cloud, clouds_yaml=cfg.clouds_yaml, region=cfg.region, timeout_s=cfg.timeout_s
        )

    def _token(self) -> str:
        try:
            if self._drop_token.is_set():
                self._reauthenticate()
            token = self.conn.session.get_token()
        except API_ERRORS as exc:
            raise _AuthLost(describe_api_error(exc)) from None
        if not token:
            raise _AuthLost("keystone gave no token")
        return str(token)

    def _reauthenticate(self) -> None:
        """A new token in place of the dropped one, swapped in whole. Not keystoneauth's
        ``invalidate()``: it sets ``auth_ref`` to None outside the plugin's lock, and a lane
        inside an SDK call, between keystoneauth's re-auth check and its ``assert
        self.auth_ref is not None``, then crashed the monitor with an AssertionError (the HA
        lab, when the VIP holder lost power). Until a login succeeds the old token stays and
        every ``_token()`` tries again (and fails: the outage as a new client sees it)."""
        with self._auth_lock:
            if not self._drop_token.is_set():
                return  # another lane logged in meanwhile
            auth = self.conn.session.auth
            auth.auth_ref = auth.get_auth_ref(self.conn.session)
            self._drop_token.clear()

    def _refresh_catalog(self) -> None:
        """Endpoints from the token's catalog; keeps the last one when keystone is away."""
        cfg = self.config
        access = self.conn.session.auth.get_access(self.conn.session)
        endpoints: list[Endpoint] = []
        for service in access.service_catalog.catalog:
            stype = str(service.get("type", ""))
            if not stype or stype in cfg.skip_endpoints:
                continue
            for ep in service.get("endpoints", []):
                region = ep.get("region_id") or ep.get("region") or ""
                if ep.get("interface") != cfg.interface:
                    continue
                if cfg.region and region != cfg.region:
                    continue
                endpoints.append(Endpoint(stype, str(ep["url"])))
                break
        self._endpoints = sorted(endpoints, key=lambda e: e.service_type)

    def _host(self, host: str) -> str:
        return host.split(".", 1)[0] if self.config.short_hostnames else host

    # --- lifecycle -----------------------------------------------------------------------

    def setup(self) -> None:
        try:
            self.conn = self._connect()
        except CloudError:
            raise
        try:
            self._token()
            self._refresh_catalog()
        except _AuthLost as exc:
            if "Unauthorized" in str(exc):
                raise PluginError(
                    f"cloud {self.config.cloud!r}: keystone refused the credentials: {exc}",
                    hint="fix the auth section of the cloud in clouds.yaml",
                ) from None
            self.ctx.log.warning("openstack-api: no token yet (%s); will retry each poll", exc)
        self.lanes = Lanes("openstack-api")

    def check(self) -> list[Finding]:
        try:
            conn = self.conn or self._connect()
        except PluginError as exc:
            return [Finding(f"cloud:{self.config.cloud}", False, exc.message, exc.hint)]
        self.conn = conn
        try:
            self._token()
            self._refresh_catalog()
        except _AuthLost as exc:
            hint = (
                "fix the credentials of the cloud in clouds.yaml"
                if "Unauthorized" in str(exc)
                else "is keystone up, and is auth_url in clouds.yaml right?"
            )
            return [
                Finding(f"cloud:{self.config.cloud}", False, f"cannot authenticate: {exc}", hint)
            ]
        findings = [Finding(f"cloud:{self.config.cloud}", True, "authenticated")]
        for probe in (self._probe(ep) for ep in self._endpoints):
            findings.append(Finding(probe.target, probe.ok, probe.evidence))
        if self.config.compute_services:
            findings.extend(self._list_findings(self._compute_services, "compute service"))
        if self.config.network_agents:
            findings.extend(self._list_findings(self._network_agents, "network agent"))
        return findings

    def _list_findings(self, read: Any, what: str) -> list[Finding]:
        try:
            rows: list[tuple[str, State, str]] = read()
        except API_ERRORS as exc:
            return [
                Finding(
                    f"cloud:{self.config.cloud}",
                    False,
                    f"cannot list {what}s: {describe_api_error(exc)}",
                )
            ]
        return [
            Finding(target, state == "up", f"{what} {target}: {evidence}")
            for target, state, evidence in rows
        ]

    def teardown(self) -> None:
        if self.lanes is not None:
            # a running probe ends within its request timeout (a login, then the probe)
            left = self.lanes.close(2 * self.config.timeout_s + 1.0)
            if left:
                self.ctx.log.warning("openstack-api: still probing at teardown: %s", left)
        self.aggregator.flush(self.ctx)
        if self.conn is not None:
            self.conn.close()

    # --- one poll: a job per endpoint and per list, each in its own lane -------------------

    def poll(self) -> None:
        """Offer every endpoint and list its next probe, and return: each records its own
        observation when it ends, so one that hangs delays no other (see ``_lanes``)."""
        lanes = self.lanes
        if lanes is None:
            raise PluginError("openstack-api: poll() before setup()")
        lanes.raise_failure()
        cfg = self.config
        if not self._endpoints:
            lanes.offer("catalog", self._load_catalog)
        elif cfg.endpoints:
            for ep in self._endpoints:
                lanes.offer(ep.target, partial(self._observe_endpoint, ep))
        if cfg.compute_services:
            lanes.offer("compute-services", partial(self._observe_list, self._compute_services))
        if cfg.network_agents:
            lanes.offer("network-agents", partial(self._observe_list, self._network_agents))
        if self.reports.due():
            self.aggregator.flush(self.ctx)

    def _load_catalog(self, lane: Lane) -> None:
        started = time.monotonic()
        try:
            self._token()
            self._refresh_catalog()
        except _AuthLost as exc:
            evidence = f"cannot authenticate: {exc}"
            self._record_probe(_Probe("endpoint:identity", False, started, 0.0, evidence), lane)

    def _observe_endpoint(self, endpoint: Endpoint, lane: Lane) -> None:
        started = time.monotonic()
        try:
            self._token()
        except _AuthLost as exc:
            evidence = f"cannot authenticate: {exc}"
            self._record_probe(_Probe(endpoint.target, False, started, 0.0, evidence), lane)
            return
        probe = self._probe(endpoint)
        self._record_probe(probe, lane)
        identity_down = endpoint.service_type == "identity" and not probe.ok
        if identity_down and self.config.reauth_on_identity_failure:
            self._drop_token.set()

    def _record_probe(self, probe: _Probe, lane: Lane) -> None:
        self.aggregator.add(
            probe.target, ok=probe.ok, latency_s=probe.latency_s if probe.ok else None
        )
        evidence = probe.evidence + self._skipped(lane, time.monotonic() - probe.started_mono_s)
        state = State.UP if probe.ok else State.DOWN
        self.tracker.emit(probe.target, state, probe.started_mono_s, evidence)

    def _skipped(self, lane: Lane, ran_s: float) -> str:
        """Evidence suffix for the polls skipped while this lane's job ran (none: empty)."""
        skipped = lane.take_skipped()
        if not skipped:
            return ""
        self.ctx.log.info(
            "openstack-api: %s: a probe ran %.2f s; %d poll(s) skipped meanwhile, not stacked",
            lane.key,
            ran_s,
            skipped,
        )
        return f"; {skipped} later poll(s) of it skipped while it ran"

    def _probe(self, endpoint: Endpoint) -> _Probe:
        url = probe_url(endpoint, self.config.probe_paths)
        headers = {}
        if endpoint.service_type == "identity":
            headers["X-Subject-Token"] = self._token_or_empty()
        start = time.monotonic()
        try:
            resp = self.conn.session.request(
                url,
                "GET",
                headers=headers,
                authenticated=True,
                raise_exc=False,
                connect_retries=0,
                timeout=self.config.timeout_s,
                log=False,
            )
        except (ksa_exc.ClientException, OSError) as exc:
            elapsed = time.monotonic() - start
            return _Probe(
                endpoint.target, False, start, elapsed, f"GET {url}: {describe_api_error(exc)}"
            )
        elapsed = time.monotonic() - start
        ok = 200 <= resp.status_code < 400
        return _Probe(
            endpoint.target,
            ok,
            start,
            elapsed,
            f"GET {url}: HTTP {resp.status_code} in {elapsed * 1000:.0f} ms",
        )

    def _token_or_empty(self) -> str:
        try:
            return self._token()
        except _AuthLost:
            return ""

    def _observe_list(self, read: Any, lane: Lane) -> None:
        started = time.monotonic()
        try:
            self._token()
        except _AuthLost:
            # no token: the endpoint lanes report it; the services and agents were not seen
            # to change, so they keep their last state
            return
        rows: list[tuple[str, State, str]] = []
        try:
            rows = read()
        except API_ERRORS as exc:
            self.ctx.log.warning("openstack-api: %s", describe_api_error(exc))
        skipped = self._skipped(lane, time.monotonic() - started)
        for target, state, evidence in rows:
            self.aggregator.add(target, ok=state == "up")
            self.tracker.emit(target, state, started, evidence + skipped)

    def _compute_services(self) -> list[tuple[str, State, str]]:
        rows: list[tuple[str, State, str]] = []
        for s in self.conn.compute.services():
            state = State.UP if s.state == "up" else State.DOWN
            evidence = f"state={s.state} status={s.status} updated_at={s.updated_at}"
            rows.append((f"{s.binary}@{self._host(s.host)}", state, evidence))
        return rows

    def _network_agents(self) -> list[tuple[str, State, str]]:
        rows: list[tuple[str, State, str]] = []
        for a in self.conn.network.agents():
            state = State.UP if a.is_alive else State.DOWN
            evidence = (
                f"alive={a.is_alive} admin_state_up={a.is_admin_state_up} type={a.agent_type}"
            )
            rows.append((f"{a.binary}@{self._host(a.host)}", state, evidence))
        return rows
