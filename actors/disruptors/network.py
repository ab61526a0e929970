"""``network``: partition a node from its peers, or drop a share of its packets, with
nftables over SSH; every fault reverted by the node itself if osha is gone.

The rules are :mod:`actors.disruptors._nft`'s (one table per lease, management path
accepted first); ``delay``/``jitter`` (netem, refused at pre-flight where the kernel has
none) and ``bandwidth`` (tbf) are :mod:`actors.disruptors._tc`'s; ``link-down``'s commands
(in the node, or at the switch-side port) are :mod:`actors.disruptors._link`'s.
"""

from __future__ import annotations

import shlex
import socket
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from actors.common.ssh import ExecResult
from actors.disruptors import _link, _nft, _tc
from actors.disruptors._network_config import (
    QDISC_ACTIONS,
    SWITCH_PORT_VAR,
    LinkSide,
    NetworkAction,
    NetworkConfig,
    PartitionMode,
    PeersConfig,
    peer_hosts,
    peer_problems,
    switch_port,
    switch_port_problems,
)
from actors.disruptors._node_shell import ShellDisruptor, local_run, local_shell
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults import _switch as switch
from osha.faults.deadman import Runner
from osha.faults.disruptor import load_hosts
from osha.schedule import PlannedFault

__all__ = [
    "LinkSide",
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
    - ``action = "bandwidth"``: what the node sends on ``interface`` capped at ``rate_kbit``
      (tc tbf).
    - ``action = "delay"``/``"jitter"``: tc netem on ``interface`` (``delay_ms``,
      ``jitter_ms``), only where the kernel has netem: refused at pre-flight otherwise.
    - ``action = "link-down"``: a pulled cable. ``side = "node"`` (the default): ``ip link
      set <interface> down`` inside the node; the routes the kernel drops with it are recorded
      first and put back by the revert. If osha's own SSH session goes through that
      interface, the down comes 1 s after the inject's command returned and osha is cut off:
      the node's dead-man switch brings the link back at ``revert_by`` (``down_s`` +
      ``revert_timeout_s``), so keep ``revert_timeout_s`` short there. ``side = "switch"``:
      the switch-side port of the node's link goes down (the inventory's ``osha_switch_port``
      of the node, on the machine osha runs on: ``osha_switch_host = local``, the only place
      supported yet), so the node sees NO-CARRIER and keeps its routes; osha keeps its switch,
      so the revert comes at ``down_s``.
    - tc actions put osha's root qdisc only over the kernel's default one (or osha's own),
      never over a qdisc someone configured; the revert removes only osha's.

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
    #: the nodes' (and the switch host's) ip, and where a deferred link down waits
    ip: ClassVar[str] = "ip"
    link_dir: ClassVar[str] = _link.PENDING_DIR

    def action(self) -> str:
        return self.config.action.value

    def resource(self) -> str:
        c = self.config
        if c.action is NetworkAction.LINK_DOWN:
            return c.interface if c.side is LinkSide.NODE else "switch-port"
        if c.action in QDISC_ACTIONS:
            return c.interface
        ports = f":{','.join(map(str, c.ports))}" if c.ports else ""
        return f"peers[{c.peers.describe()}]{ports}"

    @classmethod
    def input_problems(cls, config: NetworkConfig) -> list[tuple[str, str, str]]:
        """At profile load (``osha.inputs``), once the inventory is known good: the peers'
        names it lacks, the switch ports it does not give."""
        if not config.inventory:
            return []
        hosts = load_hosts(config)
        return peer_problems(config, hosts) + switch_port_problems(config, hosts)

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

    def _qdisc(self) -> bool:
        return self.config.action in QDISC_ACTIONS

    def probe(self, host: inventory.Host) -> None:
        if self.config.action is NetworkAction.LINK_DOWN:
            self._probe_link(host)
            return
        if self._qdisc():
            self._probe_tc(host)
            return
        result = self._exec(host, _nft.check_script(nft=self.nft))
        if result.exit_status != 0:
            raise PluginError(f"nftables not usable on {host.name}: {_last(result)}",
                              hint="install the nftables package on the node")  # fmt: skip
        self.prepare(host)  # the peers resolve and the management path is known

    def _probe_tc(self, host: inventory.Host) -> None:
        """tc and the interface are there, and for delay/jitter the kernel has netem."""
        dev = shlex.quote(self.config.interface)
        result = self._exec(host, f"command -v tc >/dev/null || {{ echo 'tc is missing "
                                  f"(install iproute2)'; exit 1; }}; ip link show dev {dev}")
        if result.exit_status != 0:
            raise PluginError(f"cannot shape {self.config.interface} on {host.name}: "
                              f"{_last(result)}", hint="check interface = (ip link on the node)")
        if self.config.action is NetworkAction.BANDWIDTH:
            return
        result = self._exec(host, _tc.check_script())
        if result.exit_status != 0:
            raise PluginError(f"netem not available on {host.name}: {_last(result)}",
                              hint="delay and jitter need a kernel with sch_netem; use "
                              'action = "loss" or "partition" there')  # fmt: skip

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
        if self.config.action is NetworkAction.LINK_DOWN:
            return self._prepare_link(host)
        if self._qdisc():
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
        if self.config.action is NetworkAction.LINK_DOWN:
            return self._inject_link(host, lease)
        if self._qdisc():
            c = self.config
            qdisc = (_tc.tbf(c.rate_kbit) if c.action is NetworkAction.BANDWIDTH
                     else _tc.netem(c.delay_ms, c.jitter_ms))  # fmt: skip
            result = self._exec(host, _tc.add_command(c.interface, qdisc))
            _check(result, f"tc on {c.interface}", lease.node)
            return f"{qdisc} on {c.interface} of {lease.node}"
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
        if lease.action == NetworkAction.LINK_DOWN.value:
            return _link_revert(cls, config, lease)
        if lease.action in QDISC_ACTIONS:
            return _tc.del_command(str(lease.revert.get("interface", config.interface)))
        return _nft.revert_command(_table(lease), nft=cls.nft, pending_dir=cls.pending_dir)

    @classmethod
    def node_runner(cls, config: Any, lease: Lease) -> AbstractContextManager[Runner]:
        """A switch-side ``link-down`` runs (and its dead-man switch lives) where its port is:
        this machine; every other fault on its node."""
        if lease.action == NetworkAction.LINK_DOWN.value and lease.revert.get("side") == "switch":
            return local_shell(config.command_timeout_s)
        return super().node_runner(config, lease)

    # -- link-down -------------------------------------------------------------------------

    def _probe_link(self, host: inventory.Host) -> None:
        c = self.config
        if c.side is LinkSide.SWITCH:
            port = switch_port(host)
            rc, out = local_run(_link.port_exists_script(port, ip=self.ip), c.command_timeout_s)
            if rc != 0:
                raise PluginError(f"switch port {port} of {host.name} is not on this machine: "
                                  f"{out.strip()[-200:]}",
                                  hint=f"check {SWITCH_PORT_VAR} of {host.name} in the inventory "
                                  "(ip link on the machine osha runs on)")  # fmt: skip
            return
        result = self._exec(host, _link.check_script(c.interface, ip=self.ip))
        if result.exit_status != 0:
            raise PluginError(f"cannot take {c.interface} down on {host.name}: {_last(result)}",
                              hint="check interface = (ip link on the node)")  # fmt: skip

    def _prepare_link(self, host: inventory.Host) -> dict[str, Any]:
        c = self.config
        if c.side is LinkSide.SWITCH:
            return {"side": "switch", "port": switch_port(host)}
        result = self._exec(host, _link.node_facts_script(c.interface, ip=self.ip))
        _check(result, f"reading the routes of {c.interface}", host.name)
        facts = _link.parse_node_facts(result.stdout)
        return {"side": "node", "interface": c.interface, "routes4": list(facts.routes4),
                "routes6": list(facts.routes6),
                switch.CUT_OFF: facts.carries_management}  # fmt: skip

    def _inject_link(self, host: inventory.Host, lease: Lease) -> str:
        r = lease.revert
        if r.get("side") == "switch":
            port = str(r["port"])
            rc, out = local_run(_link.port_command(port, "down", ip=self.ip),
                                self.config.command_timeout_s)  # fmt: skip
            if rc != 0:
                raise PluginError(f"switch port {port} of {lease.node}: exit {rc}: "
                                  f"{out.strip()[:400]}",
                                  hint="see the ip error above")  # fmt: skip
            return f"switch port {port} of {lease.node} down: the node sees NO-CARRIER"
        iface = str(r["interface"])
        cut = bool(r.get(switch.CUT_OFF))
        text = _link.node_down_script(iface, _key(lease), ip=self.ip, defer_s=_link.DEFER_S
                                      if cut else 0.0, pending_dir=self.link_dir)  # fmt: skip
        _check(self._exec(host, text), f"ip link set {iface} down", lease.node)
        routes = len(r.get("routes4", ())) + len(r.get("routes6", ()))
        return f"link {iface} of {lease.node} down, {routes} route(s) recorded" + (
            f"; osha's own SSH path goes through it: down {_link.DEFER_S:g} s after this "
            "command returned, osha cut off until the node's own revert at revert_by" if cut
            else "")  # fmt: skip

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        command = cls.switch_command(config, lease)
        assert command is not None
        with cls.node_runner(config, lease) as run:
            rc, out = run(command)
        if rc != 0:
            raise PluginError(f"revert on {lease.node} exited {rc}: {out.strip()[:300]}")
        return f"{out.strip().splitlines()[-1] if out.strip() else 'reverted'} on {lease.node}"


def _key(lease: Lease) -> str:
    return str(lease.revert.get(switch.KEY, lease.lease_id))


def _link_revert(cls: type[NetworkDisruptor], config: NetworkConfig, lease: Lease) -> str:
    """``link-down``'s revert (and dead-man command): the port or the link up again."""
    r = lease.revert
    if r.get("side") == "switch":
        return _link.port_command(str(r.get("port", "")), "up", ip=cls.ip)
    return _link.node_up_command(
        str(r.get("interface", config.interface)), _key(lease),
        [str(x) for x in r.get("routes4", ())], [str(x) for x in r.get("routes6", ())],
        ip=cls.ip, pending_dir=cls.link_dir,
    )  # fmt: skip


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


def _last(result: ExecResult) -> str:
    lines = (result.stdout + result.stderr).strip().splitlines() or ["no answer"]
    return lines[-1][:200]


def _check(result: ExecResult, what: str, node: str) -> None:
    if result.exit_status == 0:
        return
    detail = (result.stderr or result.stdout).strip()[:400]
    if result.exit_status == _tc.FOREIGN_QDISC:
        raise PluginError(f"{what} on {node}: {detail}",
                          hint="osha never replaces a qdisc it did not create; remove it or "
                          "pick another interface")  # fmt: skip
    raise PluginError(f"{what} on {node} exited {result.exit_status}: {detail}",
                      hint="see the node's nft/tc error above")  # fmt: skip
