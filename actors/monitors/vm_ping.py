"""``vm-ping``: the data plane: ICMP reachability, loss and RTT of application VMs."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.common.cloud import API_ERRORS, connect, describe_api_error
from actors.monitors._icmp import IcmpSocket
from actors.monitors._kit import Aggregator, ReportCadence, StateTracker, SummaryConfig
from osha.errors import PluginError
from osha.messages import State
from osha.plugin import Finding, Monitor, PluginContext

__all__ = ["VmPingConfig", "VmPingMonitor", "server_addresses"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VmPingConfig(SummaryConfig):
    """Settings of ``vm-ping``. See the class docstring for each key."""

    addresses: tuple[str, ...] = ()
    targets: dict[str, str] = field(default_factory=dict)
    server_prefix: str = ""
    cloud: str = ""
    clouds_yaml: str = ""
    networks: tuple[str, ...] = ()
    discover_interval_s: float = 30.0
    timeout_s: float = 1.0
    down_after_lost: int = 3


def server_addresses(
    servers: Iterable[Any], prefix: str, networks: tuple[str, ...]
) -> dict[str, str]:
    """``vm:<server name>`` → the server's first IPv4 address (on ``networks`` if given)."""
    found: dict[str, str] = {}
    for server in servers:
        name = str(getattr(server, "name", "") or "")
        if not name.startswith(prefix):
            continue
        addresses: Mapping[str, Any] = getattr(server, "addresses", None) or {}
        for net in sorted(addresses):
            if networks and net not in networks:
                continue
            for entry in addresses[net] or []:
                if entry.get("version", 4) == 4 and entry.get("addr"):
                    found.setdefault(f"vm:{name}", str(entry["addr"]))
                    break
    return found


@dataclass(slots=True)
class _Target:
    name: str
    address: str
    lost_in_a_row: int = 0
    first_lost_mono_s: float | None = None


class VmPingMonitor(Monitor[VmPingConfig]):
    """Pings VMs every ``interval_s`` (one ICMP echo per target) and reports loss and RTT.

    Targets: ``vm:<address>`` for ``addresses``, ``vm:<name>`` for ``targets = { name =
    address }`` and for servers found by ``server_prefix`` through openstacksdk (``cloud``,
    ``clouds_yaml``; refreshed every ``discover_interval_s``; ``networks`` limits which
    addresses count). A probe without a reply within ``timeout_s`` is lost. The loss budget:
    ``down_after_lost`` probes lost in a row make the target ``down`` (the transition is
    bounded by the last answered and the first lost probe); one reply makes it ``up``, as of
    the reply's arrival (a late answer to an old request does not date the recovery back).
    Samples carry probes sent, lost, and RTT min/median/max.

    It uses an ICMP socket, not the ``ping`` program: see :mod:`actors.monitors._icmp`. IPv4.

    Profile::

        [[monitors]]
        id = "dataplane"
        plugin = "vm-ping"
        interval_s = 0.5
        addresses = ["10.231.0.21", "10.231.0.22"]
        timeout_s = 1.0
        down_after_lost = 3
    """

    config_type = VmPingConfig

    def __init__(self, config: VmPingConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.tracker = StateTracker(self.ctx)
        self.aggregator = Aggregator()
        self._targets: dict[str, _Target] = {}
        self._pending: dict[tuple[str, int], tuple[str, float]] = {}  # (address, seq) → target
        self._lock = threading.Lock()
        self._seq = 0
        self._icmp: IcmpSocket | None = None
        self.reports = ReportCadence.of(config)
        self._conn: Any = None
        self._stop = threading.Event()
        self._discoverer: threading.Thread | None = None

    # --- targets ---------------------------------------------------------------------------

    def _static_targets(self) -> dict[str, str]:
        cfg = self.config
        wanted = {f"vm:{a}": a for a in cfg.addresses}
        wanted.update({f"vm:{n}": a for n, a in cfg.targets.items()})
        out: dict[str, str] = {}
        for name, address in wanted.items():
            try:
                out[name] = str(ipaddress.IPv4Address(address))
            except ValueError:
                try:
                    out[name] = str(socket.getaddrinfo(address, None, socket.AF_INET)[0][4][0])
                except OSError as exc:
                    raise PluginError(
                        f"{name}: cannot resolve {address!r}: {exc}",
                        hint="give IPv4 addresses, or names this host can resolve",
                    ) from None
        return out

    def _set_targets(self, wanted: dict[str, str]) -> None:
        with self._lock:
            for name in list(self._targets):
                if name not in wanted:
                    del self._targets[name]
                    self.tracker.forget(name)
            for name, address in wanted.items():
                current = self._targets.get(name)
                if current is None or current.address != address:
                    self._targets[name] = _Target(name, address)

    def _discover(self) -> dict[str, str]:
        servers = self._conn.compute.servers(details=True)
        return server_addresses(servers, self.config.server_prefix, self.config.networks)

    # --- lifecycle -------------------------------------------------------------------------

    def _validate(self) -> None:
        cfg = self.config
        if cfg.timeout_s <= 0 or cfg.interval_s <= 0 or cfg.down_after_lost < 1:
            raise PluginError("interval_s and timeout_s must be > 0 and down_after_lost ≥ 1")
        if not (cfg.addresses or cfg.targets or cfg.server_prefix):
            raise PluginError(
                "nothing to ping",
                hint='set addresses = ["10.0.0.5"], targets = {...} or server_prefix',
            )
        if cfg.server_prefix and not cfg.cloud:
            raise PluginError(
                "server_prefix needs a cloud", hint='set cloud = "<clouds.yaml name>"'
            )

    def setup(self) -> None:
        self._validate()
        static = self._static_targets()
        if self.config.server_prefix:
            self._conn = connect(self.config.cloud, clouds_yaml=self.config.clouds_yaml)
            self._discoverer = threading.Thread(
                target=self._discover_loop, name="vm-ping-discover", daemon=True
            )
        self._set_targets(static)
        self._icmp = IcmpSocket(self._on_reply)
        if self._discoverer is not None:
            self._discoverer.start()

    def _discover_loop(self) -> None:
        static = self._static_targets()
        while not self._stop.is_set():  # bounded by the stop flag; waits between passes
            try:
                self._set_targets({**static, **self._discover()})
            except API_ERRORS as exc:
                self.ctx.log.warning("vm-ping: cannot list servers: %s", describe_api_error(exc))
            self._stop.wait(self.config.discover_interval_s)

    def check(self) -> list[Finding]:
        try:
            self._validate()
            static = self._static_targets()
            found = {}
            if self.config.server_prefix:
                self._conn = self._conn or connect(
                    self.config.cloud, clouds_yaml=self.config.clouds_yaml
                )
                found = self._discover()
        except PluginError as exc:
            return [Finding("vm-ping", False, exc.message, exc.hint)]
        except API_ERRORS as exc:
            return [Finding("vm-ping", False, f"cannot list servers: {describe_api_error(exc)}")]
        targets = {**static, **found}
        if not targets:
            # The campaign's initial load (which runs after the preflight) may be what creates
            # them: discovery goes on every discover_interval_s. An SLO on vm:<prefix>* that
            # never matches a server fails the verdict, so a wrong prefix does not pass unseen.
            return [
                Finding(
                    "vm-ping",
                    True,
                    f"no server named {self.config.server_prefix}* has an address yet; looked"
                    f" for again every {self.config.discover_interval_s:g} s (the load's servers"
                    " are found once they have one)",
                )
            ]
        return [
            Finding(name, True, f"will ping {address}") for name, address in sorted(targets.items())
        ]

    def teardown(self) -> None:
        self._stop.set()
        if self._discoverer is not None and self._discoverer.is_alive():
            self._discoverer.join(self.config.timeout_s + 5.0)
        if self._icmp is not None:
            self._icmp.close()
        if self._conn is not None:
            self._conn.close()
        self.aggregator.flush(self.ctx)

    # --- probes ------------------------------------------------------------------------------

    def poll(self) -> None:
        if self._icmp is None:
            raise PluginError("vm-ping: poll() before setup()")
        now = time.monotonic()
        self._expire(now)
        with self._lock:
            targets = list(self._targets.values())
            self._seq = (self._seq + 1) & 0xFFFF
            seq = self._seq
            for t in targets:
                self._pending[(t.address, seq)] = (t.name, time.monotonic())
        for t in targets:
            self._icmp.send(t.address, seq)
        if self.reports.due(now):
            self.aggregator.flush(self.ctx)

    def _expire(self, now: float) -> None:
        timeout = self.config.timeout_s
        with self._lock:
            expired = [(k, v) for k, v in self._pending.items() if now - v[1] >= timeout]
            for key, _ in expired:
                del self._pending[key]
            changes = []
            for _key, (name, sent) in sorted(expired, key=lambda kv: kv[1][1]):
                t = self._targets.get(name)
                if t is None:
                    continue
                self.aggregator.add(name, ok=False)
                t.lost_in_a_row += 1
                if t.first_lost_mono_s is None:
                    t.first_lost_mono_s = sent
                if t.lost_in_a_row >= self.config.down_after_lost:
                    evidence = (
                        f"{t.lost_in_a_row} probes to {t.address} lost in a row "
                        f"(timeout {timeout} s)"
                    )
                    change = self.tracker.observe(
                        name, State.DOWN, now, evidence, since_mono_s=t.first_lost_mono_s
                    )
                    if change is not None:
                        changes.append(change)
        for change in changes:
            self.tracker.send(change)

    def _on_reply(self, address: str, seq: int, recv_mono: float) -> None:
        with self._lock:
            entry = self._pending.pop((address, seq), None)
            if entry is None:
                return  # late (already counted lost), duplicate, or not ours
            name, sent = entry
            t = self._targets.get(name)
            if t is None:
                return
            rtt = recv_mono - sent
            t.lost_in_a_row = 0
            t.first_lost_mono_s = None
            self.aggregator.add(name, ok=True, latency_s=rtt)
            # Up from the reply's arrival, not from the probe's send time: a request may wait
            # (in this host's ARP queue while the address resolves, in a router) and be answered
            # long after it was sent, so only the reply's arrival proves the target up.
            change = self.tracker.observe(
                name, State.UP, recv_mono, f"reply from {address} in {rtt * 1000:.2f} ms"
            )
        if change is not None:
            self.tracker.send(change)
