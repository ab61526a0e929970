"""The nftables text of the ``network`` disruptor: pure functions, no I/O, so the exact rules
are unit-tested.

One table per lease, ``table inet osha_<lease>`` (:func:`table_name`), holding an ``input``
and (for a partition) an ``output`` base chain with ``policy accept``: osha only ever adds
drops to the node's own traffic, in its own table, and never lists, flushes or edits another
table. Applied atomically with ``nft -f`` (:func:`apply_script`: one transaction that also
replaces a leftover of the same lease), removed atomically with ``nft delete table``
(:func:`revert_command`, idempotent: a table already gone is success).

Management protection comes first in every chain: osha's own SSH path (the source address
the node sees, and the node's SSH port) is accepted before any drop, so a partition never
cuts osha off from the node it must revert.

- ``partition``: traffic between the node and the peers, both ways (``input``: from them,
  ``output``: to them), limited to ``ports`` (TCP and UDP, either end) if given;
  ``drop`` (a pulled cable: peers hang) or ``reject`` (TCP reset, else ICMP
  administratively-prohibited: peers fail at once; the output chain lets those replies
  out).
- ``loss``: ``P`` % of the packets the node *receives* (from the peers, on the ports, if
  given), so a round trip through the node loses ``P`` %.

Loopback (``iifname "lo"``) is accepted first in every input chain: the node's traffic to
itself is never the fault's, and a reject of its own output comes back that way.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "NFT_MISSING",
    "PENDING_DIR",
    "Management",
    "Rules",
    "apply_script",
    "check_script",
    "parse_peer",
    "revert_command",
    "ruleset",
    "table_name",
]

NFT_MISSING = 20  # apply/check: exit status when the node has no usable nft
PENDING_DIR = "/run/osha/nft"  # a deferred apply's table text, until it is applied
_SLUG = re.compile(r"[^A-Za-z0-9_]+")
_EOF = "OSHA_NFT_EOF"


@dataclass(frozen=True, slots=True)
class Management:
    """osha's SSH path as the node sees it: its source address and the node's SSH port."""

    address: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """What one table does. ``peers`` are addresses or networks (``10.0.0.0/24``);
    ``loss_pct`` 0 is a partition, 1-100 a loss of that many packets in 100."""

    peers: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    reject: bool = False
    loss_pct: int = 0
    management: Management | None = None


def table_name(key: str) -> str:
    """The nft table of a lease, from its switch key (``<lease id>/<random>``, unique per
    run): ``osha_<slug>_<hash>``, letters, digits and ``_`` only."""
    slug = _SLUG.sub("_", key.rpartition("/")[0] or key).strip("_")[:40]
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"osha_{slug}_{digest}" if slug else f"osha_{digest}"


def parse_peer(text: str) -> str:
    """An address or a network in canonical form (``10.0.0.5``, ``10.0.0.0/24``, ``fd00::/64``).
    ValueError saying why for anything else (a name, host bits set, a bad prefix)."""
    raw = text.strip()
    try:
        if "/" not in raw:
            return str(ipaddress.ip_address(raw))
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        if "/" in raw:
            try:
                loose = ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a CIDR ({exc})") from None
            raise ValueError(f"{text!r} has host bits set; did you mean {loose}?") from None
        raise ValueError(f"{text!r} is not an IP address") from None
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _family(peer: str) -> str:
    return "ip6" if ":" in peer else "ip"


def _set(items: Sequence[object]) -> str:
    return str(items[0]) if len(items) == 1 else "{ " + ", ".join(map(str, items)) + " }"


def _matches(rules: Rules, direction: str) -> list[str]:
    """The match part of each drop rule for one chain (``saddr`` on input, ``daddr`` on
    output): one per address family of the peers, times one per port end."""
    addr = "saddr" if direction == "input" else "daddr"
    heads = [f"{fam} {addr} {_set(p)}" for fam, p in _by_family(rules.peers).items()] or [""]
    if not rules.ports:
        return heads
    ports = _set(rules.ports)
    ends = [f"meta l4proto {{ tcp, udp }} th dport {ports}"]
    # a loss counts a packet once: the sport rule skips what the dport rule already drew for
    ends.append(f"meta l4proto {{ tcp, udp }} th sport {ports}"
                + (f" th dport != {ports}" if rules.loss_pct else ""))  # fmt: skip
    return [" ".join(filter(None, (head, end))) for head in heads for end in ends]


def _reject_replies(rules: Rules) -> list[str]:
    """Output-chain accepts for what the input chain's rejects send the peers (the output
    chain would drop them otherwise, and the peers would hang as with ``drop``)."""
    out = []
    for fam, peers in _by_family(rules.peers).items():
        icmp = "icmpv6" if fam == "ip6" else "icmp"
        out.append(f"\t\t{fam} daddr {_set(peers)} tcp flags & rst == rst accept")
        out.append(f"\t\t{fam} daddr {_set(peers)} {icmp} type destination-unreachable accept")
    return out


def _by_family(peers: Sequence[str]) -> dict[str, list[str]]:
    by_family: dict[str, list[str]] = {}
    for peer in peers:
        by_family.setdefault(_family(peer), []).append(peer)
    return by_family


def _verdicts(rules: Rules) -> list[str]:
    if rules.loss_pct:
        return [f"numgen random mod 100 lt {rules.loss_pct} drop"]
    if rules.reject:
        return ["meta l4proto tcp reject with tcp reset", "reject with icmpx type admin-prohibited"]
    return ["drop"]


def _chain(rules: Rules, direction: str) -> list[str]:
    lines = [f"\tchain {direction} {{",
             f"\t\ttype filter hook {direction} priority filter; policy accept;"]  # fmt: skip
    if rules.management is not None:
        m = rules.management
        fam = _family(m.address)
        if direction == "input":
            lines.append(f"\t\t{fam} saddr {m.address} tcp dport {m.port} accept")
        else:
            lines.append(f"\t\t{fam} daddr {m.address} tcp sport {m.port} accept")
    if direction == "input":  # the node to itself, and the resets of its own output rejects
        lines.append('\t\tiifname "lo" accept')
    elif rules.reject:  # the resets and ICMP errors the input chain's rejects send the peers
        lines.extend(_reject_replies(rules))
    for match in _matches(rules, direction):
        lines.extend(f"\t\t{' '.join(filter(None, (match, v)))}" for v in _verdicts(rules))
    lines.append("\t}")
    return lines


def ruleset(table: str, rules: Rules) -> str:
    """The table's text for ``nft -f``: ``table inet NAME { chain input {...} ... }``."""
    if not rules.loss_pct and not rules.peers:
        raise ValueError("a partition needs peers")
    if not 0 <= rules.loss_pct <= 100:
        raise ValueError(f"loss_pct must be within 0-100, not {rules.loss_pct}")
    chains = ["input"] if rules.loss_pct else ["input", "output"]
    body = [line for chain in chains for line in _chain(rules, chain)]
    return "\n".join([f"table inet {table} {{", *body, "}"]) + "\n"


def apply_script(table: str, text: str, *, nft: str = "nft", defer_s: float = 0.0,
                 pending_dir: str = PENDING_DIR) -> str:  # fmt: skip
    """The sh script that applies ``text`` (from :func:`ruleset`) in one nft transaction,
    replacing a table of the same name left by this lease (``table`` then ``delete table``
    makes the delete safe when there is none); every other table is left alone.

    ``defer_s`` > 0 (a partition that may cut osha's own session: ``protect_management =
    false``): the text is checked now (``nft -c``: errors still fail the inject) and applied
    ``defer_s`` later by a detached process, so the SSH command returns before the cut."""
    body = f"table inet {table}\ndelete table inet {table}\n{text}"
    head = (f"command -v {nft} >/dev/null 2>&1 || "
            f"{{ echo 'error: nft is missing'; exit {NFT_MISSING}; }}\n")  # fmt: skip
    if not defer_s:
        return f"{head}{nft} -f - <<'{_EOF}'\n{body}{_EOF}\n"
    pending = _pending(table, pending_dir)
    return (
        f"{head}mkdir -p {shlex.quote(pending_dir)} || exit 1\n"
        f"cat > {pending}.tmp <<'{_EOF}'\n{body}{_EOF}\n"
        f"{nft} -c -f {pending}.tmp || {{ rm -f {pending}.tmp; exit 1; }}\n"
        f"mv -f {pending}.tmp {pending}\n"
        # under the lock, and only if the revert did not take it back first (see revert_command)
        f"setsid sh -c 'sleep {defer_s:g}; exec 9>>\"$1.lock\"; flock 9; "
        f"[ -f \"$1\" ] && {nft} -f \"$1\"; rm -f \"$1\" \"$1.lock\"' osha-nft {pending} "
        "</dev/null >/dev/null 2>&1 &\n"
        f"echo 'applies in {defer_s:g} s'\n"
    )


def _pending(table: str, pending_dir: str) -> str:
    return shlex.quote(f"{pending_dir.rstrip('/')}/{table}.nft")


def revert_command(table: str, *, nft: str = "nft", pending_dir: str = PENDING_DIR) -> str:
    """Delete the lease's table; success (exit 0) if it is already gone. The dead-man switch
    runs it too, so it must be idempotent and touch nothing else. A deferred apply that has not
    run yet is taken back first, under its lock, so it can never land after the revert."""
    pending = _pending(table, pending_dir)
    return (
        f'if [ -e {pending} ]; then (flock 9; rm -f {pending}) 9>>{pending}.lock; fi; '
        f"if {nft} list table inet {table} >/dev/null 2>&1; then "
        f"{nft} delete table inet {table} && echo 'deleted table inet {table}'; "
        f"else echo 'table inet {table} already gone'; fi"
    )


def check_script(*, nft: str = "nft") -> str:
    """Pre-flight: ``nft`` runs and the kernel has nf_tables (``nft list tables`` reads
    only). Exit :data:`NFT_MISSING` with the reason on stdout otherwise."""
    return (
        f"command -v {nft} >/dev/null 2>&1 || "
        f"{{ echo 'nft is missing (install the nftables package)'; exit {NFT_MISSING}; }}\n"
        f"out=$({nft} list tables 2>&1) || "
        f"{{ echo \"nft cannot list tables: $out\"; exit {NFT_MISSING}; }}\n"
        f"{nft} --version\n"
    )
