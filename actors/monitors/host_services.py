"""``host-services``: are the required services, processes and containers running on each node?"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import paramiko

from actors.common import nodeagent
from actors.common.hosts import HostConfig, Node, SshConfig, credentials, resolve_nodes
from actors.common.ssh import (
    SshAuthError,
    SshConnection,
    SshCredentials,
    SshError,
    SshHostKeyError,
    connect,
    describe,
    load_known_hosts,
    load_private_key,
)
from actors.monitors._kit import Aggregator, ReportCadence, StateTracker, SummaryConfig
from actors.monitors._node_watch import NodeWatcher, WatchSettings
from osha.errors import PluginError
from osha.plugin import Finding, Monitor, PluginContext

__all__ = ["HostServicesConfig", "HostServicesMonitor"]

_MAX_PARALLEL_CONNECTS = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class HostServicesConfig(SummaryConfig):
    """Settings of ``host-services``. See the class docstring for each key."""

    inventory: str = ""
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    limit: tuple[str, ...] = ()
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)
    containers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)
    ssh: SshConfig = field(default_factory=SshConfig)
    python: str = "python3"
    pty: bool = True
    docker_socket: str = "/var/run/docker.sock"
    heartbeat_timeout_s: float = 2.0
    reconnect_max_s: float = 5.0


def _required(by_group: dict[str, tuple[str, ...]], groups: tuple[str, ...]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for group in ("all", *groups):
        for name in by_group.get(group, ()):
            names[name] = None
    return tuple(names)


class HostServicesMonitor(Monitor[HostServicesConfig]):
    """Watches services, processes and containers on every node over SSH, with one
    long-lived node-side check per node that reports changes as they happen.

    On each node a small agent (standard-library python3, shipped in the command line)
    watches each required service's main process with a pidfd and each container through the
    docker socket, and prints a line when something changes plus a heartbeat every
    ``interval_s``. A ``kill -9`` is seen when it happens, and a supervisor's restart as a
    new PID and start time: reported as down, then up, with the PIDs as evidence. A frozen
    process (SIGSTOP: state ``T``; or traced, ``t``) is down from the first round that reads
    its state, and up again, the same PID (a thaw, not a restart), when it runs.

    Targets: ``<service>@<node>``, ``<container>@<node>``, ``node:<node>`` (reachability;
    ``unreachable`` when the stream drops or falls silent for ``heartbeat_timeout_s``). Each
    node's boot id is reported as ``host.boot``; a reboot is a boot id change.

    Keys:

    - ``inventory``: absolute path of an Ansible inventory (INI or YAML); ``hosts``: hosts in
      the profile (``{ name = { address, groups, user, port } }``); ``limit``: only these
      groups or hosts.
    - ``services``/``containers``: required names per group (``all`` applies to every
      node). A service matches a process whose name (comm) is the service name, or
      ``python3 .../<name>``; ``match = { keystone = "uwsgi.*keystone" }`` gives a regex on
      the command line instead.
    - ``ssh = { user, port, private_key, known_hosts, host_key_check, connect_timeout_s }``:
      paths absolute; ``private_key`` and ``known_hosts`` default to ``[cloud]``'s
      ``ssh_key`` and ``known_hosts``; ``host_key_check = "off"`` trusts any host key
      (insecure, explicit).
    - ``python`` (node's interpreter, ≥ 3.7), ``pty`` (keep true: sshd turns Nagle off only
      for pty sessions), ``docker_socket``, ``heartbeat_timeout_s``, ``reconnect_max_s``,
      ``report_interval_s`` (how often ``monitor.sample`` summaries are written).

    A node unreachable at start is reported as ``unreachable`` and retried with backoff; a
    host key or login problem makes ``setup`` fail. ``check`` reports every problem.

    Profile::

        [[monitors]]
        id = "hosts"
        plugin = "host-services"
        interval_s = 0.2
        inventory = "/var/lib/osha-lab/inventory.ini"
        services = { controller = ["nova-scheduler", "nova-conductor"], compute = ["nova-compute"] }
        containers = { container_hosts = ["nova_compute"] }
        match = { keystone = "uwsgi .*keystone" }

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = HostServicesConfig

    def __init__(self, config: HostServicesConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.tracker = StateTracker(self.ctx)
        self.aggregator = Aggregator()
        self.watchers: dict[str, NodeWatcher] = {}
        self._stop = threading.Event()
        self._rounds = threading.Condition()
        self.reports = ReportCadence.of(config)

    # --- building ---------------------------------------------------------------------------

    def _validate(self) -> tuple[list[Node], SshCredentials]:
        cfg = self.config
        if cfg.interval_s <= 0 or cfg.heartbeat_timeout_s <= cfg.interval_s:
            raise PluginError(
                f"heartbeat_timeout_s ({cfg.heartbeat_timeout_s}) must be > interval_s "
                f"({cfg.interval_s}) > 0",
                hint="a heartbeat comes every interval_s; allow a few to be late",
            )
        for name, pattern in cfg.match.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PluginError(
                    f"match.{name} = {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        nodes = resolve_nodes(cfg.inventory, cfg.hosts, cfg.ssh, cfg.limit)
        return nodes, credentials(cfg.ssh)

    def _agent_config(self, node: Node, *, once: bool = False) -> nodeagent.AgentConfig:
        cfg = self.config
        services = _required(cfg.services, node.groups)
        return nodeagent.AgentConfig(
            interval_s=cfg.interval_s,
            services=tuple((s, cfg.match.get(s)) for s in services),
            containers=_required(cfg.containers, node.groups),
            docker_socket=cfg.docker_socket,
            once=once,
        )

    def _connect_all(
        self,
        nodes: list[Node],
        creds: SshCredentials,
        pkey: paramiko.PKey,
        known: paramiko.HostKeys | None,
    ) -> dict[str, SshConnection | SshError]:
        def one(node: Node) -> SshConnection | SshError:
            try:
                return connect(node.target, creds, pkey=pkey, known=known, prime_interactive=False)
            except SshError as exc:
                return exc

        workers = max(1, min(_MAX_PARALLEL_CONNECTS, len(nodes)))
        with ThreadPoolExecutor(workers, thread_name_prefix="host-services-connect") as pool:
            return dict(zip([n.name for n in nodes], pool.map(one, nodes), strict=True))

    # --- lifecycle --------------------------------------------------------------------------

    def setup(self) -> None:
        cfg = self.config
        nodes, creds = self._validate()
        pkey = load_private_key(creds.private_key)
        known = load_known_hosts(creds)
        results = self._connect_all(nodes, creds, pkey, known)
        fatal = [r for r in results.values() if isinstance(r, SshHostKeyError | SshAuthError)]
        if fatal:
            for r in results.values():
                if isinstance(r, SshConnection):
                    r.close()
            raise PluginError(
                "; ".join(describe(e) for e in fatal),
                hint=fatal[0].hint or "fix the SSH settings (ssh.*) or known_hosts",
            )
        settings = WatchSettings(
            credentials=creds,
            python=cfg.python,
            pty=cfg.pty,
            heartbeat_timeout_s=cfg.heartbeat_timeout_s,
            reconnect_max_s=cfg.reconnect_max_s,
        )
        for node in nodes:
            watcher = NodeWatcher(
                node.name,
                node.target,
                self._agent_config(node),
                settings,
                ctx=self.ctx,
                tracker=self.tracker,
                aggregator=self.aggregator,
                stop=self._stop,
                pkey=pkey,
                known=known,
                on_round=self._on_round,
            )
            self.watchers[node.name] = watcher
            first = results[node.name]
            if isinstance(first, SshError):
                self.ctx.log.warning("host-services: %s: %s", node.name, describe(first))
            watcher.start(first if isinstance(first, SshConnection) else None)

    def check(self) -> list[Finding]:
        try:
            nodes, creds = self._validate()
            pkey = load_private_key(creds.private_key)
            known = load_known_hosts(creds)
        except PluginError as exc:
            return [Finding("host-services", False, exc.message, exc.hint)]
        results = self._connect_all(nodes, creds, pkey, known)
        findings: list[Finding] = []
        for node in nodes:
            conn = results[node.name]
            if isinstance(conn, SshError):
                findings.append(Finding(f"node:{node.name}", False, describe(conn), conn.hint))
                continue
            try:
                findings.extend(self._check_node(node, conn))
            except SshError as exc:
                findings.append(Finding(f"node:{node.name}", False, describe(exc), exc.hint))
            finally:
                conn.close()
        return findings

    def _check_node(self, node: Node, conn: SshConnection) -> list[Finding]:
        command = nodeagent.agent_command(
            self._agent_config(node, once=True), python=self.config.python
        )
        result = conn.exec(command, timeout_s=max(10.0, 2 * self.config.ssh.connect_timeout_s))
        lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
        parsed = []
        for line in lines:
            try:
                parsed.append(nodeagent.parse_line(line))
            except nodeagent.ParseError:
                continue
        hello = next((p for p in parsed if isinstance(p, nodeagent.Hello)), None)
        if result.exit_status != 0 or hello is None:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            return [
                Finding(
                    f"node:{node.name}",
                    False,
                    f"the node check did not run on {node.name} (exit {result.exit_status}): "
                    f"{detail[0][:200]}",
                    f"the node needs python3 ≥ 3.7: install it or set python = "
                    f'"/path/to/python3" (now {self.config.python!r})',
                )
            ]
        findings = [Finding(f"node:{node.name}", True, f"reachable; boot id {hello.boot_id}")]
        for p in parsed:
            if isinstance(p, nodeagent.TargetLine):
                what = "container" if p.kind == "c" else "service"
                ok = p.state == "up"
                fix = (
                    f"continue it (kill -CONT {p.pid} on {node.name}, or detach its tracer)"
                    if p.state == "down" and p.pid  # frozen: stopped or traced
                    else "start it"
                )
                findings.append(
                    Finding(
                        f"{p.name}@{node.name}",
                        ok,
                        f"{what} {p.name} on {node.name}: {p.state} ({p.detail})",
                        ""
                        if ok
                        else f"{fix}, or remove it from the required {what}s of "
                        f"the groups of {node.name} ({', '.join(node.groups)})",
                    )
                )
            elif isinstance(p, nodeagent.Problem):
                findings.append(Finding(f"node:{node.name}", False, p.text))
        return findings

    def poll(self) -> None:
        if self.reports.due():
            self.aggregator.flush(self.ctx)

    def teardown(self) -> None:
        self._stop.set()
        for watcher in self.watchers.values():
            watcher.close()
        deadline = time.monotonic() + 5.0
        for watcher in self.watchers.values():
            if watcher.thread.is_alive():
                watcher.thread.join(max(0.0, deadline - time.monotonic()))
        self.aggregator.flush(self.ctx)

    # --- on-demand rounds (benchmarks, tests) ------------------------------------------------

    def _on_round(self) -> None:
        with self._rounds:
            self._rounds.notify_all()

    def full_round(self, timeout_s: float = 5.0) -> float:
        """Ask every node for a full check now; return the seconds until all answered.

        Raises TimeoutError if some node did not answer within ``timeout_s``.
        """
        start = time.monotonic()
        before = {name: w.rounds for name, w in self.watchers.items()}
        asked = [name for name, w in self.watchers.items() if w.request_round()]
        if len(asked) != len(self.watchers):
            missing = sorted(set(self.watchers) - set(asked))
            raise TimeoutError(f"nodes not connected: {', '.join(missing[:10])}")
        deadline = start + timeout_s
        with self._rounds:
            while True:  # bounded by the deadline
                pending = [n for n in asked if self.watchers[n].rounds <= before[n]]
                if not pending:
                    return time.monotonic() - start
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer from {', '.join(pending[:10])}")
                self._rounds.wait(remaining)
