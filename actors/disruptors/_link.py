"""The sh text of the ``network`` disruptor's ``link-down``: pure functions, no I/O, so the
exact commands are unit-tested.

Two sides, as a cable can be pulled at either end:

- **node** (``side = "node"``): ``ip link set dev IFACE down`` inside the node. The kernel
  drops the interface's routes with it, so :func:`node_facts_script` records them first (the
  ones it will not bring back by itself: not ``proto kernel``), and :func:`node_up_command`,
  the revert, sets the link up and puts them back (``ip route replace``: idempotent). When
  the interface carries osha's own SSH session, the down must not cut the very command that
  asks for it: :func:`node_down_script` then leaves it to a detached process, ``defer_s``
  after the command returned, through a pending file that the revert takes back first, under
  its lock, so a down can never land after its revert.
- **switch** (``side = "switch"``): the switch-side port of the node's link goes down
  (:func:`port_command`; in the lab, the bridge-side veth of the node, on the lab host): the
  node sees NO-CARRIER and keeps its addresses and routes; the revert sets the port up.

Every revert is idempotent (the dead-man switch and ``osha faults recover`` may run it again)
and touches only the one interface or port.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFER_S",
    "PENDING_DIR",
    "NodeFacts",
    "check_script",
    "node_down_script",
    "node_facts_script",
    "node_up_command",
    "parse_node_facts",
    "pending_name",
    "port_command",
    "port_exists_script",
]

PENDING_DIR = "/run/osha/link"  # a deferred down, until it runs or is taken back
DEFER_S = 1.0  # osha's own interface goes down this long after the inject's command returned
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
#: what ``ip route show`` prints that ``ip route replace`` does not take (state, not config)
_STATE_WORDS = frozenset({"linkdown", "dead", "offload", "trap", "rt_offload", "rt_trap"})


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the node said before the fault: the routes to restore (``ip route show`` words,
    ``-4`` then ``-6``, without ``dev``) and whether osha's SSH session goes through the
    interface (then the down is deferred, and osha is cut off until the revert)."""

    routes4: tuple[str, ...]
    routes6: tuple[str, ...]
    carries_management: bool


def check_script(interface: str, *, ip: str = "ip") -> str:
    """Pre-flight on the node: ``ip``, ``setsid`` and ``flock`` are there and the interface
    exists. Exit 1 with the reason on stdout otherwise."""
    dev = shlex.quote(interface)
    return (
        f"for tool in {shlex.quote(ip)} setsid flock; do command -v $tool >/dev/null 2>&1 || "
        '{ echo "$tool is missing (install iproute2 and util-linux)"; exit 1; }; done\n'
        f"{ip} link show dev {dev} >/dev/null 2>&1 || "
        f"{{ echo 'no interface {interface} (see ip link on the node)'; exit 1; }}\n"
        f"echo 'interface {interface} can go down'\n"
    )


def node_facts_script(interface: str, *, ip: str = "ip") -> str:
    """Prints ``management`` if osha's session ($SSH_CONNECTION) is routed through the
    interface, then one ``route4 ...``/``route6 ...`` line per route to restore."""
    dev = shlex.quote(interface)
    return (
        f"{ip} link show dev {dev} >/dev/null || exit 1\n"
        "set -- $SSH_CONNECTION\n"
        f'if [ -n "${{1:-}}" ] && {ip} -o route get "$1" 2>/dev/null '
        f'| grep -q " dev {interface} "; then echo management; fi\n'
        f"{ip} -4 -o route show dev {dev} | grep -v ' proto kernel ' | sed 's/^/route4 /'\n"
        f"{ip} -6 -o route show dev {dev} 2>/dev/null | grep -v ' proto kernel ' "
        "| sed 's/^/route6 /'\n"
        "exit 0\n"
    )


def parse_node_facts(text: str) -> NodeFacts:
    """The answer of :func:`node_facts_script`."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    routes: dict[str, list[str]] = {"route4": [], "route6": []}
    for line in lines:
        kind, _, route = line.partition(" ")
        if kind in routes and route.strip():
            words = [w for w in route.split() if w not in _STATE_WORDS]
            routes[kind].append(" ".join(words))
    return NodeFacts(tuple(routes["route4"]), tuple(routes["route6"]), "management" in lines)


def pending_name(key: str) -> str:
    """The pending file's name for a lease's switch key (unique per run)."""
    return _SLUG.sub("_", key).strip("_.")[:120] or "link"


def _pending(pending_dir: str, key: str) -> str:
    return shlex.quote(f"{pending_dir.rstrip('/')}/{pending_name(key)}")


def node_down_script(interface: str, key: str, *, ip: str = "ip", defer_s: float = 0.0,
                     pending_dir: str = PENDING_DIR) -> str:  # fmt: skip
    """Set the interface down, now (``defer_s`` 0), or ``defer_s`` after this command returned
    by a detached process, unless :func:`node_up_command` took the pending down back first."""
    dev = shlex.quote(interface)
    if not defer_s:
        return f"{ip} link set dev {dev} down && echo 'link {interface} down'\n"
    pending = _pending(pending_dir, key)
    return (
        f"mkdir -p {shlex.quote(pending_dir)} && : > {pending} || exit 1\n"
        f'setsid sh -c \'sleep {defer_s:g}; exec 9>>"$1.lock"; flock 9; '
        f'[ -f "$1" ] && {ip} link set dev "$2" down; rm -f "$1" "$1.lock"\' '
        f"osha-link {pending} {dev} </dev/null >/dev/null 2>&1 &\n"
        f"echo 'link {interface} goes down in {defer_s:g} s'\n"
    )


def node_up_command(interface: str, key: str, routes4: Sequence[str], routes6: Sequence[str],
                    *, ip: str = "ip", pending_dir: str = PENDING_DIR) -> str:  # fmt: skip
    """The revert: take a pending down back, set the link up, put the recorded routes back.
    Exit 1 if a route cannot be restored (the link is up by then)."""
    dev = shlex.quote(interface)
    pending = _pending(pending_dir, key)
    restore = [
        f"{ip} {family} route replace {' '.join(map(shlex.quote, r.split()))} dev {dev} "
        f"|| {{ echo 'cannot restore route {_plain(r)}'; rc=1; }}; "
        for family, routes in (("-4", routes4), ("-6", routes6))
        for r in routes
    ]
    count = len(routes4) + len(routes6)
    return (
        f"if [ -e {pending} ]; then (flock 9; rm -f {pending}) 9>>{pending}.lock; fi; "
        f"{ip} link set dev {dev} up || exit 1; rc=0; "
        + "".join(restore)
        + f"echo 'link {interface} up, {count} route(s) restored'; exit $rc"
    )


def _plain(text: str) -> str:
    """A route for an echo in single quotes."""
    return text.replace("'", "")


def port_exists_script(port: str, *, ip: str = "ip") -> str:
    """Exit 1 saying so if there is no interface ``port`` here (the switch side's pre-flight)."""
    return (f"{ip} link show dev {shlex.quote(port)} >/dev/null 2>&1 || "
            f"{{ echo 'no switch port {port} here (see ip link)'; exit 1; }}")  # fmt: skip


def port_command(port: str, state: str, *, ip: str = "ip") -> str:
    """Set the switch-side port ``up`` or ``down`` (idempotent); fails if there is no such
    port, with the reason."""
    if state not in ("up", "down"):
        raise ValueError(f"state must be up or down, not {state!r}")
    return (f"{port_exists_script(port, ip=ip)}; {ip} link set dev {shlex.quote(port)} {state} "
            f"&& echo 'switch port {port} {state}'")  # fmt: skip
