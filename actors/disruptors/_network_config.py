"""The ``network`` disruptor's settings (:class:`NetworkConfig`), their checks at profile load,
and its peers as the inventory names them (:func:`peer_hosts`, :func:`peer_problems`)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from actors.disruptors import _nft
from actors.disruptors._node_shell import ShellConfig
from osha import inventory
from osha.errors import PluginError
from osha.schedule import resolve_targets
from osha.schema import Name

__all__ = [
    "QDISC_ACTIONS",
    "SWITCH_HOST_VAR",
    "SWITCH_PORT_VAR",
    "LinkSide",
    "NetworkAction",
    "NetworkConfig",
    "PartitionMode",
    "PeersConfig",
    "peer_hosts",
    "peer_problems",
    "switch_port",
    "switch_port_problems",
]


class NetworkAction(enum.StrEnum):
    PARTITION = "partition"  # no traffic between the node and its peers, both ways
    LOSS = "loss"  # drop loss_pct % of the packets the node receives
    DELAY = "delay"  # tc netem delay (where the kernel has netem)
    JITTER = "jitter"  # tc netem delay with jitter (where the kernel has netem)
    BANDWIDTH = "bandwidth"  # tc tbf: the node's egress on an interface capped at rate_kbit
    LINK_DOWN = "link-down"  # an interface down: in the node, or its switch-side port


class LinkSide(enum.StrEnum):
    """Where ``link-down`` pulls the cable."""

    NODE = "node"  # ip link set <interface> down inside the node: its routes go with it
    SWITCH = "switch"  # the inventory's osha_switch_port: the node sees NO-CARRIER


SWITCH_PORT_VAR = "osha_switch_port"  # inventory host var: the switch-side port of the link
SWITCH_HOST_VAR = "osha_switch_host"  # inventory host var: where that port is ("local")
QDISC_ACTIONS = frozenset({NetworkAction.DELAY, NetworkAction.JITTER, NetworkAction.BANDWIDTH})
_IFNAME = re.compile(r"^[A-Za-z0-9_.@:-]{1,15}$")  # Linux IFNAMSIZ - 1


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
    rate_kbit: int = 0
    side: LinkSide = LinkSide.NODE

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
    return out + _tc_problems(c) + _link_problems(c)


def _link_problems(c: NetworkConfig) -> list[str]:
    """The problems of ``link-down``'s keys (``side``, ``interface``)."""
    if c.action is not NetworkAction.LINK_DOWN:
        return [f'side is for action = "link-down", not "{c.action.value}"'] if (
            c.side is not LinkSide.NODE) else []  # fmt: skip
    out = []
    if c.side is LinkSide.NODE and not _IFNAME.match(c.interface):
        out.append('action = "link-down" (side = "node") needs interface = "eth0" (a device '
                   f"name, not {c.interface!r})")  # fmt: skip
    if c.side is LinkSide.SWITCH and c.interface:
        out.append('interface is for side = "node"; with side = "switch" the port is the '
                   "inventory's osha_switch_port of each target node")  # fmt: skip
    if c.peers.given or c.ports:
        out.append('peers and ports are not for action = "link-down": the whole link goes')
    return out


def _tc_problems(c: NetworkConfig) -> list[str]:
    """The problems of the tc actions' keys (delay, jitter, bandwidth)."""
    out = []
    if c.action in QDISC_ACTIONS and not _IFNAME.match(c.interface):
        out.append(f'action = "{c.action.value}" needs interface = "eth0" (a device name, '
                   f"not {c.interface!r})")  # fmt: skip
    if c.action is NetworkAction.BANDWIDTH and not 8 <= c.rate_kbit <= 100_000_000:
        out.append(f'action = "bandwidth" needs rate_kbit within 8-100000000, not {c.rate_kbit}')
    elif c.action is not NetworkAction.BANDWIDTH and c.rate_kbit:
        out.append(f'rate_kbit is for action = "bandwidth", not "{c.action.value}"')
    if c.action in (NetworkAction.DELAY, NetworkAction.JITTER):
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


def switch_port(host: inventory.Host) -> str:
    """The inventory's switch-side port of ``host``'s link; PluginError saying what to add."""
    where = host.var(SWITCH_HOST_VAR) or "local"
    if where != "local":
        raise PluginError(f"{SWITCH_HOST_VAR}={where} for {host.name}: only 'local' (the "
                          "machine osha runs on) is supported yet",
                          hint='run osha where the switch port is, or use side = "node"',
                          )  # fmt: skip
    port = host.var(SWITCH_PORT_VAR) or ""
    if not port:
        raise PluginError(f"the inventory gives no {SWITCH_PORT_VAR} for {host.name}, so "
                          'side = "switch" does not know which port to take down',
                          hint=f"add {SWITCH_PORT_VAR}=<interface> to {host.name}'s line "
                          "in the inventory (the switch-side end of its link), or use "
                          'side = "node"')  # fmt: skip
    return port


def switch_port_problems(config: NetworkConfig, hosts: dict[str, inventory.Host]
                         ) -> list[tuple[str, str, str]]:  # fmt: skip
    """``(key, problem, hint)`` for each target node whose switch port the inventory does not
    give (``link-down`` with ``side = "switch"``)."""
    if config.action is not NetworkAction.LINK_DOWN or config.side is not LinkSide.SWITCH:
        return []
    out = []
    for name in resolve_targets(config.target, list(hosts.values())):
        try:
            switch_port(hosts[name])
        except PluginError as exc:
            out.append(("side", exc.message, exc.hint or ""))
    return out
