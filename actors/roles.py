"""The role resolvers (entry-point group ``osha.roles``, :mod:`osha.roles`): which node of a
disruptor's target group has a role now, asked over SSH when the fault is due.

- ``vip-holder``: the node whose addresses (``ip_command``, default ``ip -o addr show``)
  include ``role.vip``. Exactly one must hold it: none (the cloud has no such VIP, or it is
  down) or several (split brain) is a RoleError.
- ``not-vip-holder``: the first node of the group, in inventory order, that answers and does
  not hold ``role.vip`` (the VIP must be held somewhere).
- ``galera-writer``: the server HAProxy sends MariaDB writes to, asked of the VIP holder's
  HAProxy (``role.haproxy_command``, ``show stat`` on its stats socket; ``{node}`` and
  ``{address}`` filled in): in backend ``role.backend`` (default ``mariadb``), the first
  active server that is UP, else the first UP backup. A server is named like its node.
- ``rabbitmq-leader-heavy``: the RabbitMQ member that hosts the most queue leaders (classic
  queue masters by their process's node, quorum and stream leaders by ``leader``), from
  ``rabbitmqctl -q list_queues --no-table-headers name type pid leader`` asked of the first
  node of the group that answers (``role.rabbitmqctl_command``, default ``rabbitmqctl``;
  ``role.node_name``, default ``rabbit@{node}``, maps a member to its node; ``role.timeout_s``,
  default 60: rabbitmqctl starts an Erlang VM). A tie goes to the first in inventory order;
  no answer, or no queue at all, is a RoleError.

Profile::

    target = { group = "controller", pick = "vip-holder", role = { vip = "10.231.0.10" } }
    target = { group = "controller", pick = "rabbitmq-leader-heavy",
               role = { rabbitmqctl_command = "docker exec rabbitmq rabbitmqctl" } }
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence

from actors.common.hosts import credentials
from actors.common.ssh import SshError, SshPool, SshTarget, describe
from actors.monitors.vip import parse_addresses
from osha.inventory import Host
from osha.roles import Resolution, RoleError
from osha.ssh import SshConfig

__all__ = [
    "galera_writer",
    "leaders_by_node",
    "not_vip_holder",
    "rabbitmq_leader_heavy",
    "vip_holder",
    "writer_of",
]

_TIMEOUT_S = 10.0
_VIP_HINT = 'set the VIP: role = { vip = "10.0.0.10" }'


def _ask(
    candidates: Sequence[Host],
    ssh: SshConfig,
    command: str,
    *,
    first: bool = False,
    timeout_s: float = _TIMEOUT_S,
) -> tuple[dict[str, str], dict[str, str]]:
    """Run ``command`` (``{node}``/``{address}`` filled in) on every candidate (with ``first``,
    in order until one answers): the outputs of those that answered (exit 0), and why each
    other one did not."""
    pool = SshPool(credentials(ssh))
    out, failed = {}, {}
    try:
        for h in candidates:
            target = SshTarget(h.name, h.address, h.port or ssh.port, ssh.user or h.user or "root")
            cmd = command.replace("{node}", h.name).replace("{address}", h.address)
            try:
                res = pool.exec(target, cmd, timeout_s=timeout_s)
            except SshError as exc:
                failed[h.name] = describe(exc)
                continue
            if res.exit_status == 0:
                out[h.name] = res.stdout
                if first:
                    break
            else:
                failed[h.name] = f"exit {res.exit_status}: {res.stderr.strip()[:120]}"
    finally:
        pool.close()
    return out, failed


def _holders(
    candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> tuple[str, list[str], dict[str, str], dict[str, str]]:
    vip = options.get("vip", "")
    if not vip:
        raise RoleError("the role needs the VIP's address: role.vip is not set", hint=_VIP_HINT)
    out, failed = _ask(candidates, ssh, options.get("ip_command", "ip -o addr show"))
    holders = [n for n, text in out.items() if vip in parse_addresses(text)]
    return vip, holders, out, failed


def _unasked(failed: dict[str, str]) -> str:
    return "; ".join(f"{n}: {why}" for n, why in failed.items())


def _the_holder(candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig) -> str:
    vip, holders, out, failed = _holders(candidates, options, ssh)
    if not holders:
        asked = ", ".join(out) or "none answered"
        raise RoleError(
            f"no node of the group holds VIP {vip} (asked: {asked}"
            + (f"; no answer from {_unasked(failed)}" if failed else "")
            + ")",
            hint="is role.vip this cloud's VIP, and keepalived running? A cloud without a "
            "VIP has no vip-holder",
        )
    if len(holders) > 1:
        raise RoleError(f"VIP {vip} is held by {', '.join(holders)} (split brain)",
                        hint="no single holder to strike: fix the VRRP cluster first")  # fmt: skip
    return holders[0]


def vip_holder(
    candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> Resolution:
    node = _the_holder(candidates, options, ssh)
    return Resolution(node, f"holds VIP {options['vip']}")


def not_vip_holder(
    candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> Resolution:
    vip, holders, out, failed = _holders(candidates, options, ssh)
    if len(holders) != 1:
        _the_holder(candidates, options, ssh)  # raises: no holder, or several
    others = [h.name for h in candidates if h.name in out and h.name not in holders]
    if not others:
        raise RoleError(f"every node that answers holds VIP {vip}, or none answers"
                        + (f" ({_unasked(failed)})" if failed else ""))  # fmt: skip
    return Resolution(others[0], f"does not hold VIP {vip} (held by {holders[0]})")


def writer_of(stat: str, backend: str) -> tuple[str, str] | None:
    """From HAProxy's ``show stat`` CSV: the server of ``backend`` that takes writes, and how
    (``UP, active``); None when no server of it is UP."""
    lines = [ln for ln in stat.splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith("# pxname,")), None)
    if head is None:
        raise ValueError("no '# pxname,svname,...' header: not HAProxy's show stat")
    rows = [
        r
        for r in csv.DictReader([lines[head][2:], *lines[head + 1 :]])
        if r.get("pxname") == backend and r.get("svname") not in ("FRONTEND", "BACKEND")
    ]
    up = [r for r in rows if (r.get("status") or "").startswith("UP")]
    for kind, column in (("active", "act"), ("backup", "bck")):
        for r in up:
            if r.get(column) == "1":
                return str(r["svname"]), f"{r['status']}, {kind}"
    return None


def galera_writer(
    candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> Resolution:
    command = options.get("haproxy_command", "")
    if not command:
        raise RoleError(
            "galera-writer needs role.haproxy_command (show stat on HAProxy's stats socket)",
            hint='set role = { vip = "...", haproxy_command = "echo \'show stat\' | socat '
            'stdio UNIX-CONNECT:/run/haproxy/admin.sock" }',
        )
    holder = _the_holder(candidates, options, ssh)
    backend = options.get("backend", "mariadb")
    out, failed = _ask([h for h in candidates if h.name == holder], ssh, command)
    if holder not in out:
        raise RoleError(f"cannot read HAProxy's stats on {holder}: {_unasked(failed)}",
                        hint="check role.haproxy_command")  # fmt: skip
    try:
        found = writer_of(out[holder], backend)
    except ValueError as exc:
        raise RoleError(f"HAProxy on {holder}: {exc}", hint="check role.haproxy_command") from None
    if found is None:
        raise RoleError(f"HAProxy on {holder} has no UP server in backend {backend!r}",
                        hint="is role.backend HAProxy's MariaDB proxy?")  # fmt: skip
    server, how = found
    return Resolution(server, f"HAProxy on {holder} (VIP holder) sends {backend} to it ({how})")


def leaders_by_node(listing: str) -> dict[str, list[str]]:
    """From ``list_queues name type pid leader`` (tab-separated, no headers): each Erlang node
    → the queues it leads. A classic queue's master is its process's node (``<rabbit@ctl-1.
    1796488528.640.0>``: the node, then three numbers); a quorum or stream queue names its
    ``leader``. ValueError when a line is not four columns."""
    leaders: dict[str, list[str]] = {}
    for n, line in enumerate(listing.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise ValueError(f"line {n} is not name, type, pid, leader: {line[:120]!r}")
        name, kind, pid, leader = fields
        node = leader.strip() if kind != "classic" else pid.strip().strip("<>").rsplit(".", 3)[0]
        if node:
            leaders.setdefault(node, []).append(name)
    return leaders


def rabbitmq_leader_heavy(
    candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> Resolution:
    ctl = options.get("rabbitmqctl_command", "rabbitmqctl")
    try:
        timeout_s = float(options.get("timeout_s", "60"))
    except ValueError:
        raise RoleError(f"role.timeout_s = {options['timeout_s']!r} is not a number",
                        hint="seconds, e.g. timeout_s = \"60\"") from None  # fmt: skip
    command = f"{ctl} -q list_queues --no-table-headers name type pid leader"
    out, failed = _ask(candidates, ssh, command, first=True, timeout_s=timeout_s)
    if not out:
        raise RoleError(
            f"no node of the group lists RabbitMQ's queues ({_unasked(failed)})",
            hint="does this cloud run RabbitMQ on the group, and is role.rabbitmqctl_command "
            "right (e.g. \"docker exec rabbitmq rabbitmqctl\" on kolla)?",
        )
    [(asked, listing)] = out.items()
    try:
        leaders = leaders_by_node(listing)
    except ValueError as exc:
        raise RoleError(f"rabbitmqctl list_queues on {asked}: {exc}",
                        hint="check role.rabbitmqctl_command") from None  # fmt: skip
    template = options.get("node_name", "rabbit@{node}")
    counts = {h.name: len(leaders.get(template.replace("{node}", h.name), ())) for h in candidates}
    best = max(counts.values(), default=0)
    if best == 0:
        raise RoleError(
            f"no member of the group leads a queue (asked {asked}: "
            f"{sum(map(len, leaders.values()))} queues, led by {', '.join(leaders) or 'none'})",
            hint="a cluster without queues has no leader-heavy member; is role.node_name "
            "the members' Erlang name (default rabbit@{node})?",
        )
    node = next(n for n, c in counts.items() if c == best)
    total = sum(map(len, leaders.values()))
    spread = ", ".join(f"{n} {c}" for n, c in counts.items())
    return Resolution(node, f"leads {best} of {total} RabbitMQ queues ({spread}; "
                      f"list_queues on {asked})")  # fmt: skip
