"""``openstack-api``: compute services, network agents and every catalog endpoint."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from keystoneauth1 import exceptions as ksa_exc

from actors.common.cloud import API_ERRORS, CloudError, connect, describe_api_error
from actors.monitors._kit import Aggregator, ReportCadence, StateTracker, SummaryConfig
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
        self._endpoints: list[Endpoint] = []
        self._pool: ThreadPoolExecutor | None = None
        self.reports = ReportCadence.of(config)
        self._lock = threading.Lock()

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
            token = self.conn.session.get_token()
        except API_ERRORS as exc:
            raise _AuthLost(describe_api_error(exc)) from None
        if not token:
            raise _AuthLost("keystone gave no token")
        return str(token)

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
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="openstack-api")

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
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.aggregator.flush(self.ctx)
        if self.conn is not None:
            self.conn.close()

    # --- one poll --------------------------------------------------------------------------

    def poll(self) -> None:
        if self._pool is None:
            raise PluginError("openstack-api: poll() before setup()")
        cfg = self.config
        started = time.monotonic()
        try:
            self._token()
            if not self._endpoints:
                self._refresh_catalog()
        except _AuthLost as exc:
            self._auth_failed(str(exc), started)
        else:
            jobs = []
            if cfg.endpoints:
                jobs += [self._pool.submit(self._probe, ep) for ep in self._endpoints]
            lists = []
            if cfg.compute_services:
                lists.append(self._pool.submit(self._observe_list, self._compute_services, started))
            if cfg.network_agents:
                lists.append(self._pool.submit(self._observe_list, self._network_agents, started))
            probes = [j.result() for j in jobs]
            for probe in probes:
                self._record_probe(probe)
            for job in lists:
                job.result()
            identity_down = any(p.target == "endpoint:identity" and not p.ok for p in probes)
            if identity_down and cfg.reauth_on_identity_failure:
                self.conn.session.invalidate()
        if self.reports.due():
            self.aggregator.flush(self.ctx)

    def _auth_failed(self, reason: str, at: float) -> None:
        evidence = f"cannot authenticate: {reason}"
        for ep in self._endpoints or [Endpoint("identity", "")]:
            self._record_probe(_Probe(ep.target, False, at, 0.0, evidence))

    def _record_probe(self, probe: _Probe) -> None:
        self.aggregator.add(
            probe.target, ok=probe.ok, latency_s=probe.latency_s if probe.ok else None
        )
        self.tracker.emit(
            probe.target, State.UP if probe.ok else State.DOWN, probe.started_mono_s, probe.evidence
        )

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

    def _observe_list(self, read: Any, at: float) -> None:
        try:
            rows: list[tuple[str, State, str]] = read()
        except API_ERRORS as exc:
            self.ctx.log.warning("openstack-api: %s", describe_api_error(exc))
            return
        for target, state, evidence in rows:
            self.aggregator.add(target, ok=state == "up")
            self.tracker.emit(target, state, at, evidence)

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
