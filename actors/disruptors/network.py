"""``network``: partition a node from its peers, or drop a share of its packets, with
nftables over SSH; every fault reverted by the node itself if osha is gone.

The rules are :mod:`actors.disruptors._nft`'s (one table per lease, management path
accepted first); ``delay``/``jitter`` are :mod:`actors.disruptors._netem`'s, refused at
pre-flight where the kernel has no netem.
"""

from __future__ import annotations

import enum
import shlex
import socket
from dataclasses import dataclass, field
from typing import Any, ClassVar

from actors.common.ssh import ExecResult
from actors.disruptors import _netem, _nft
from actors.disruptors._node_shell import ShellConfig, ShellDisruptor
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults import _switch as switch
from osha.faults.disruptor import load_hosts
from osha.schedule import PlannedFault
from osha.schema import Name

__all__ = [
    "NetworkAction",
    "NetworkConfig",
    "NetworkDisruptor",
    "PartitionMode",
    "PeersConfig",
    "peer_hosts",
    "peer_problems",
    "rules_of",
]


_DEFER_S = 1.0  # protect_management = false: the table goes in after the SSH command returns


class NetworkAction(enum.StrEnum):
    PARTITION = "partition"  # no traffic between the node and its peers, both ways
    LOSS = "loss"  # drop loss_pct % of the packets the node receives
    DELAY = "delay"  # tc netem delay (where the kernel has netem)
    JITTER = "jitter"  # tc netem delay with jitter (where the kernel has netem)


class PartitionMode(enum.StrEnum):
    DROP = "drop"  # a pulled cable: the peers' connections hang
    REJECT = "reject"  # TCP reset, else ICMP administratively prohibited: they fail at once


@dataclass(frozen=True, slots=True, kw_only=True)
class PeersConfig:
    """``peers = { group = "controller", nodes = ["ctl-2"], cidrs = ["10.0.0.0/24"] }``: the
    other side of the fault; the target node itself is never its own peer."""

    group: Name | None = None
    nodes: tuple[Name, ...] = ()
    cidrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for cidr in self.cidrs:
            try:
                _nft.parse_peer(cidr)
            except ValueError as exc:
                raise ValueError(f"cidrs: {exc}") from None

    @property
    def given(self) -> bool:
        return bool(self.group or self.nodes or self.cidrs)

    def describe(self) -> str:
        parts = ([f"group {self.group}"] if self.group else []) + [*self.nodes, *self.cidrs]
        return ", ".join(parts) or "anyone"


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig(ShellConfig):
    """Settings of ``network``; see :class:`NetworkDisruptor`."""

    action: NetworkAction = NetworkAction.PARTITION
    peers: PeersConfig = field(default_factory=PeersConfig)
    ports: tuple[int, ...] = ()
    mode: PartitionMode = PartitionMode.DROP
    loss_pct: int = 0
    protect_management: bool = True
    interface: str = ""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))


def _problems(c: NetworkConfig) -> list[str]:
    """Every problem of a config that needs no inventory (the peers' names need one: see
    :func:`peer_hosts`)."""
    out = [f"ports: {p} is not a port (1-65535)" for p in c.ports if not 1 <= p <= 65535]
    if len(set(c.ports)) != len(c.ports):
        out.append("ports: a port is listed twice")
    if not 0 <= c.loss_pct <= 100:
        out.append(f"loss_pct = {c.loss_pct}: a percentage, 0-100")
    elif c.action is NetworkAction.LOSS and c.loss_pct == 0:
        out.append('action = "loss" needs loss_pct = 1-100 (the share of packets dropped)')
    elif c.action is not NetworkAction.LOSS and c.loss_pct:
        out.append(f'loss_pct is for action = "loss", not "{c.action.value}"')
    if c.action is NetworkAction.PARTITION and not c.peers.given:
        out.append('action = "partition" needs peers = { group = "...", nodes = [...], '
                   'cidrs = [...] } (the other side of the partition)')  # fmt: skip
    if c.mode is PartitionMode.REJECT and c.action is not NetworkAction.PARTITION:
        out.append(f'mode = "reject" is for action = "partition", not "{c.action.value}"')
    if c.action in (NetworkAction.DELAY, NetworkAction.JITTER):
        if not c.interface:
            out.append(f'action = "{c.action.value}" needs interface = "eth0" (the device)')
        if not 0 < c.delay_ms <= 60_000:
            out.append(f'action = "{c.action.value}" needs delay_ms within 0-60000, not '
                       f"{c.delay_ms:g}")  # fmt: skip
        if c.action is NetworkAction.JITTER and not 0 < c.jitter_ms <= c.delay_ms:
            out.append('action = "jitter" needs 0 < jitter_ms <= delay_ms')
    elif c.delay_ms or c.jitter_ms:
        out.append(f'delay_ms and jitter_ms are for "delay"/"jitter", not "{c.action.value}"')
    return out


def peer_problems(config: NetworkConfig, hosts: dict[str, inventory.Host]
                  ) -> list[tuple[str, str, str]]:  # fmt: skip
    """``(key, problem, hint)`` for each peer name the inventory lacks."""
    peers, out = config.peers, []
    known = ", ".join(sorted(hosts)) or "none"
    for name in peers.nodes:
        if name not in hosts:
            out.append(("peers.nodes", f"{name!r} is not in the inventory",
                        f"hosts in the inventory: {known}"))  # fmt: skip
    if peers.group and peers.group != "all":
        groups = sorted({g for h in hosts.values() for g in h.groups})
        if peers.group not in groups:
            out.append(("peers.group", f"{peers.group!r} has no hosts in the inventory",
                        f"groups in the inventory: {', '.join(groups) or 'none'}"))  # fmt: skip
    return out


def peer_hosts(config: NetworkConfig, hosts: dict[str, inventory.Host], node: str
               ) -> list[inventory.Host]:  # fmt: skip
    """The inventory hosts among ``node``'s peers (never ``node``). PluginError with a hint
    for an unknown group or node name."""
    for key, problem, hint in peer_problems(config, hosts)[:1]:
        raise PluginError(f"{key}: {problem}", hint=hint)
    peers = config.peers
    chosen = [h for h in hosts.values() if h.name in peers.nodes]
    if peers.group:
        chosen += [h for h in hosts.values() if h not in chosen
                   and (peers.group in h.groups or peers.group == "all")]  # fmt: skip
    return [h for h in chosen if h.name != node]


def _addresses(host: inventory.Host) -> list[str]:
    """A peer's IP addresses: its inventory address, resolved here if it is a name."""
    try:
        return [_nft.parse_peer(host.address)]
    except ValueError:
        pass  # a host name: resolved below
    try:
        infos = socket.getaddrinfo(host.address, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise PluginError(f"peer {host.name}: cannot resolve {host.address!r}: {exc}",
                          hint="give it an IP address (ansible_host) or use peers.cidrs"
                          ) from None  # fmt: skip
    return list(dict.fromkeys(_nft.parse_peer(str(i[4][0])) for i in infos))


class NetworkDisruptor(ShellDisruptor[NetworkConfig]):
    """Network faults on the target nodes, with nftables (``nft``) or tc, over SSH.

    - ``action = "partition"``: drop the traffic between the node and ``peers`` (an inventory
      ``group``, ``nodes`` by name, ``cidrs``), both ways, only on ``ports`` if given (TCP and
      UDP, either end); ``mode = "drop"`` (peers hang, like a pulled cable) or ``"reject"``
      (TCP reset, else ICMP administratively prohibited: they fail at once).
    - ``action = "loss"``: drop ``loss_pct`` % of the packets the node receives (from the
      ``peers`` and on the ``ports`` if given; else from anyone but loopback).
    - ``action = "delay"``/``"jitter"``: tc netem on ``interface`` (``delay_ms``,
      ``jitter_ms``), only where the kernel has netem: refused at pre-flight otherwise.

    One nftables table per fault, ``inet osha_<lease>``, applied and removed atomically; no
    other table is ever touched. ``protect_management = true`` (the default) accepts osha's
    own SSH path (its source address as the node sees it, the node's SSH port) before any
    drop, so osha keeps control. Every action arms a dead-man switch on the node first
    (``osha.faults.deadman``): if osha dies or is cut off, the node deletes the table itself
    at the lease's ``revert_by`` (``down_s`` + ``revert_timeout_s``).

    Plus the keys of every disruptor (``target``, ``schedule``, ``inventory``, ``ssh``...).

    Profile::

        [[disruptors]]
        id = "cut-compute"
        plugin = "network"
        action = "partition"
        peers = { group = "controller" }
        mode = "drop"
        target = { group = "compute", pick = "node:cmp-1" }
        schedule = { start_s = 5, times = 1, down_s = 30 }
    """

    config_type = NetworkConfig
    plugin_name = "network"
    #: the node's nft (tests point it at a fake that keeps its tables in files)
    nft: ClassVar[str] = "nft"
    #: where a deferred apply waits on the node (tests point it elsewhere)
    pending_dir: ClassVar[str] = _nft.PENDING_DIR

    def action(self) -> str:
        return self.config.action.value

    def resource(self) -> str:
        c = self.config
        if c.action in (NetworkAction.DELAY, NetworkAction.JITTER):
            return c.interface
        ports = f":{','.join(map(str, c.ports))}" if c.ports else ""
        return f"peers[{c.peers.describe()}]{ports}"

    @classmethod
    def input_problems(cls, config: NetworkConfig) -> list[tuple[str, str, str]]:
        """At profile load (``osha.inputs``), once the inventory is known good: the peers'
        names it lacks."""
        return peer_problems(config, load_hosts(config)) if config.inventory else []

    @classmethod
    def timeline(cls, config: NetworkConfig, seed: int) -> list[PlannedFault]:
        """The plan, with every target's peers checked against the inventory (``osha faults
        plan``, ``campaign start --dry-run`` and ``faults check`` report an unknown name)."""
        plan = super().timeline(config, seed)
        hosts = load_hosts(config)
        for node in dict.fromkeys(p.node for p in plan):
            peer_hosts(config, hosts, node)
        return plan

    def _exec(self, host: inventory.Host, command: str) -> ExecResult:
        return self.exec(host, f"sh -c {shlex.quote(command)}")

    def _netem(self) -> bool:
        return self.config.action in (NetworkAction.DELAY, NetworkAction.JITTER)

    def probe(self, host: inventory.Host) -> None:
        script = _netem.check_script() if self._netem() else _nft.check_script(nft=self.nft)
        result = self._exec(host, script)
        if result.exit_status != 0:
            why = (result.stdout + result.stderr).strip().splitlines() or ["no answer"]
            if self._netem():
                raise PluginError(f"netem not available on {host.name}: {why[-1][:200]}",
                                  hint="delay and jitter need a kernel with sch_netem; use "
                                  'action = "loss" or "partition" there')  # fmt: skip
            raise PluginError(f"nftables not usable on {host.name}: {why[-1][:200]}",
                              hint="install the nftables package on the node")  # fmt: skip
        if not self._netem():
            self.prepare(host)  # the peers resolve and the management path is known

    def _management(self, host: inventory.Host) -> dict[str, Any] | None:
        if not self.config.protect_management:
            return None
        words = self._exec(host, 'echo "$SSH_CONNECTION"').stdout.split()
        if len(words) != 4 or not words[3].isdigit():
            raise PluginError(
                f"cannot tell osha's SSH path to {host.name} ($SSH_CONNECTION is "
                f"{' '.join(words)!r}), so it cannot be protected from the fault",
                hint="check the node's sshd (it sets SSH_CONNECTION), or set "
                "protect_management = false (a partition may then cut osha off: the node "
                "reverts it by itself at revert_by)",
            )
        return {"address": _nft.parse_peer(words[0]), "port": int(words[3])}

    def prepare(self, host: inventory.Host) -> dict[str, Any]:
        if self._netem():
            return {"interface": self.config.interface}
        peers = [a for h in peer_hosts(self.config, self.hosts or load_hosts(self.config),
                                       host.name) for a in _addresses(h)]  # fmt: skip
        peers += [_nft.parse_peer(c) for c in self.config.peers.cidrs]
        if self.config.action is NetworkAction.PARTITION and not peers:
            raise PluginError(f"{host.name} has no peers to be partitioned from "
                              f"({self.config.peers.describe()} holds only itself)",
                              hint="name other nodes, a group with other members, or cidrs")
        return {"peers": list(dict.fromkeys(peers)), "ports": list(self.config.ports),
                "management": self._management(host)}  # fmt: skip

    def inject(self, lease: Lease) -> str:
        host = self.hosts[lease.node]
        if self._netem():
            c = self.config
            result = self._exec(host, _netem.add_command(c.interface, c.delay_ms, c.jitter_ms))
            _check(result, f"netem on {c.interface}", lease.node)
            return f"netem delay {c.delay_ms:g} ms (jitter {c.jitter_ms:g}) on {c.interface}"
        table = _table(lease)
        rules = rules_of(self.config, lease)
        # without the management path kept, the cut would also cut this very command
        defer_s = 0.0 if rules.management else _DEFER_S
        text = _nft.apply_script(table, _nft.ruleset(table, rules), nft=self.nft,
                                 defer_s=defer_s, pending_dir=self.pending_dir)  # fmt: skip
        result = self._exec(host, text)
        _check(result, f"nft -f (table inet {table})", lease.node)
        kept = rules.management
        return (
            f"table inet {table} on {lease.node}: {self.config.action.value} "
            f"{len(rules.peers)} peer address(es)"
            + (f", {rules.loss_pct} %" if rules.loss_pct else f", {self.config.mode.value}")
            + (f"; management {kept.address}:{kept.port} kept" if kept else
               f"; management NOT kept: applied {defer_s:g} s after this command returned")
        )

    @classmethod
    def switch_command(cls, config: Any, lease: Lease) -> str | None:
        """Every network fault has one: delete the lease's table (or osha's netem)."""
        assert isinstance(config, NetworkConfig)
        if lease.action in (NetworkAction.DELAY, NetworkAction.JITTER):
            return _netem.del_command(str(lease.revert.get("interface", config.interface)))
        return _nft.revert_command(_table(lease), nft=cls.nft, pending_dir=cls.pending_dir)

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        command = cls.switch_command(config, lease)
        assert command is not None
        with cls.node_runner(config, lease) as run:
            rc, out = run(command)
        if rc != 0:
            raise PluginError(f"revert on {lease.node} exited {rc}: {out.strip()[:300]}")
        return f"{out.strip().splitlines()[-1] if out.strip() else 'reverted'} on {lease.node}"


def _table(lease: Lease) -> str:
    """The lease's table: named after its switch key, unique per run."""
    return _nft.table_name(str(lease.revert.get(switch.KEY, lease.lease_id)))


def rules_of(config: NetworkConfig, lease: Lease) -> _nft.Rules:
    """The table's rules from the lease (what :meth:`NetworkDisruptor.prepare` recorded)."""
    mgmt = lease.revert.get("management")
    return _nft.Rules(
        peers=tuple(str(p) for p in lease.revert.get("peers", ())),
        ports=tuple(int(p) for p in lease.revert.get("ports", ())),
        reject=config.mode is PartitionMode.REJECT,
        loss_pct=config.loss_pct if config.action is NetworkAction.LOSS else 0,
        management=_nft.Management(str(mgmt["address"]), int(mgmt["port"])) if mgmt else None,
    )


def _check(result: ExecResult, what: str, node: str) -> None:
    if result.exit_status == 0:
        return
    detail = (result.stderr or result.stdout).strip()[:400]
    if result.exit_status == _netem.FOREIGN_QDISC:
        raise PluginError(f"{what} on {node}: {detail}",
                          hint="osha never replaces a qdisc it did not create; remove it or "
                          "pick another interface")  # fmt: skip
    raise PluginError(f"{what} on {node} exited {result.exit_status}: {detail}",
                      hint="see the node's nft/tc error above")  # fmt: skip
