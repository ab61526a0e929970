"""``vip``: which node holds each virtual IP (keepalived), and HAProxy's backends, over SSH."""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass, field

from actors.common.hosts import Node
from actors.monitors._cluster import Answer, ClusterConfig, ClusterMonitor, quote_node
from osha.errors import PluginError
from osha.messages.monitor import State, VipMoved
from osha.plugin import Finding, PluginContext
from osha.schema import Command

__all__ = ["ServerStat", "VipConfig", "VipMonitor", "VipView", "parse_addresses", "parse_stat"]

_MARK = "--- osha: ip exit"


_IP = Command("ip -o addr show")
_SHOW_STAT = Command("echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock")


@dataclass(frozen=True, slots=True, kw_only=True)
class VipConfig(ClusterConfig):
    """Settings of ``vip``. See the class docstring for each key."""

    vips: dict[str, str] = field(default_factory=dict)
    ip_command: Command = _IP
    haproxy_command: Command = _SHOW_STAT


@dataclass(frozen=True, slots=True)
class ServerStat:
    """One server of a backend as HAProxy's ``show stat`` has it."""

    status: str  # UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (coming up), MAINT, "no check"
    check: str  # check_status: L4OK, L4CON, L7OK, L7STS...
    last_change_s: float | None  # lastchg: seconds since the last status change

    @property
    def up(self) -> bool:
        return self.status.startswith("UP") or self.status in ("no check", "OPEN")


@dataclass(frozen=True, slots=True)
class VipView:
    """One member's addresses, and its HAProxy's servers (None: not read, or unreadable)."""

    addresses: frozenset[str]
    servers: dict[str, ServerStat] | None
    haproxy_error: str = ""


def parse_addresses(text: str) -> frozenset[str]:
    """The addresses in ``ip -o addr show``: one line per address, ``inet 10.0.0.10/24`` or
    ``inet6 fe80::1/64`` after the interface name."""
    found = set()
    for line in text.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word in ("inet", "inet6"):
                found.add(words[i + 1].split("/", 1)[0])
    return frozenset(found)


def parse_stat(text: str) -> dict[str, ServerStat]:
    """HAProxy's ``show stat`` CSV (a ``# pxname,svname,...`` header, one row per proxy and
    server) → ``"<backend>/<server>"`` → its stat; frontend and backend summary rows are
    skipped. ValueError without the header."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = next((i for i, ln in enumerate(lines) if ln.startswith("# pxname,")), None)
    if head is None:
        raise ValueError("no '# pxname,svname,...' header: not HAProxy's show stat")
    rows = csv.DictReader([lines[head][2:], *lines[head + 1 :]])
    out = {}
    for row in rows:
        px, sv = row.get("pxname") or "", row.get("svname") or ""
        if not px or sv in ("FRONTEND", "BACKEND", ""):
            continue
        lastchg = row.get("lastchg") or ""
        out[f"{px}/{sv}"] = ServerStat(
            status=(row.get("status") or "").strip(),
            check=(row.get("check_status") or "").strip(),
            last_change_s=float(lastchg) if lastchg.strip().isdigit() else None,
        )
    return out


class VipMonitor(ClusterMonitor[VipConfig, VipView]):
    """Watches which member holds each virtual IP (keepalived's VRRP address) and, from the
    holder's HAProxy stats socket, whether each backend server is UP or DOWN.

    Each ``interval_s`` every member runs ``ip_command`` (``ip -o addr show``) and
    ``haproxy_command`` (``show stat`` on the stats socket; ``""``: do not read HAProxy).

    Targets and records:

    - ``vip:<name>``: ``up`` when exactly one member holds the address; ``down`` when the
      members that answer hold it nowhere, or more than one holds it (split brain), with
      the holders as evidence.
    - ``monitor.vip_moved`` (``from_node`` → ``to_node``), its own record in the ledger, each
      time another member is seen holding a VIP: the move happened after the old holder was
      last seen with it (``last_seen_mono_s``) and before ``first_seen_mono_s``.
    - ``haproxy:<backend>/<server>``: ``up`` when the VIP holder's HAProxy has it UP
      (``UP``, ``UP 1/2``, ``no check``), else ``down``; the holder of the first VIP in
      ``vips`` is asked (the balancer clients reach). HAProxy's ``lastchg`` dates the change.

    Keys: ``vips = { name = "address" }`` (required), ``group`` (default ``controller``),
    ``inventory``/``hosts``/``ssh`` as in ``host-services``, ``ip_command``,
    ``haproxy_command`` (``{node}`` and ``{address}`` are filled in; kolla:
    ``echo 'show stat' | socat stdio UNIX-CONNECT:/var/lib/kolla/haproxy/haproxy.sock``),
    ``transport`` (``ssh`` or ``local``), ``command_timeout_s``, ``report_interval_s``.

    Profile::

        [[monitors]]
        id = "vip"
        plugin = "vip"
        interval_s = 0.2
        group = "controller"
        vips = { internal = "10.231.0.10" }
        inventory = "/var/lib/osha-lab/inventory.ini"
        haproxy_command = "echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock"

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = VipConfig
    name = "vip"
    parse_hint = "check ip_command (and haproxy_command) on that node"

    def __init__(self, config: VipConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self._holder: dict[str, tuple[str, float]] = {}  # vip → (node, last seen holding it)
        self._first_held: dict[tuple[str, str], float] = {}  # (vip, node) → since when
        self._servers: set[str] = set()  # every "<backend>/<server>" reported so far

    def _validate(self) -> list[Node]:
        if not self.config.vips:
            raise PluginError("vip: no vips given", hint='set vips = { internal = "10.0.0.10" }')
        for name, address in self.config.vips.items():
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise PluginError(
                    f"vips.{name} = {address!r} is not an IP address",
                    hint='give the bare address, e.g. vips = { internal = "10.0.0.10" }',
                ) from None
        return super()._validate()

    def command(self, node: Node) -> str:
        ip = quote_node(self.config.ip_command, node)
        cmd = f"{ip}; echo '{_MARK}' $?"
        if self.config.haproxy_command:
            cmd += f"; {quote_node(self.config.haproxy_command, node)}"
        return cmd

    def view_of(self, answer: Answer) -> VipView | str:
        """The member's view, or why there is none (evidence)."""
        if answer.error:
            return answer.why_not()
        ip_part, mark, rest = answer.stdout.partition(_MARK)
        status_text, _, stat_part = rest.partition("\n")
        if not mark or status_text.strip() != "0":
            return f"ip_command failed: {answer.why_not()}"
        if not self.config.haproxy_command:
            return VipView(parse_addresses(ip_part), None)
        try:
            servers = parse_stat(stat_part)
        except ValueError as exc:
            return VipView(parse_addresses(ip_part), None, f"{exc}: {stat_part.strip()[:120]}")
        return VipView(parse_addresses(ip_part), servers)

    def health(self, node: str, view: VipView) -> tuple[bool, str, str]:
        held = [n for n, a in self.config.vips.items() if a in view.addresses]
        evidence = f"holds {', '.join(held)}" if held else "holds no VIP"
        if view.haproxy_error:
            evidence += f"; HAProxy stats: {view.haproxy_error}"
        return True, evidence, ""

    def judge_cluster(self, views: dict[str, VipView | None], at_mono_s: float) -> None:
        starts = {n: self.views[n][1] for n in views}
        for i, (name, address) in enumerate(self.config.vips.items()):
            raw = [n for n, v in sorted(views.items()) if v is not None and address in v.addresses]
            for n in views:
                if n in raw:
                    self._first_held.setdefault((name, n), starts[n])
                else:
                    self._first_held.pop((name, n), None)
            # a holder counts once it answered since the newest holder took the address: a
            # member that went silent holding it (powered off) is no split brain
            newest = max((self._first_held[(name, n)] for n in raw), default=0.0)
            holders = [n for n in raw if starts[n] >= newest]
            silent = sorted(n for n, v in views.items() if v is None)
            quiet = f" ({', '.join(silent)} not answering)" if silent else ""
            target = f"vip:{name}"
            if len(holders) == 1:
                node = holders[0]
                self._held(name, address, node, views, starts)
                self.tracker.emit(target, State.UP, starts[node], f"{address} on {node}{quiet}")
                if i == 0:
                    self._haproxy(node, views[node], starts[node])
            elif holders:
                evidence = f"split brain: {address} on {', '.join(holders)}"
                self.tracker.emit(target, State.DOWN, at_mono_s, evidence)
            else:
                evidence = f"{address} on no member that answers{quiet}"
                self.tracker.emit(target, State.DOWN, at_mono_s, evidence)

    def _held(
        self,
        name: str,
        address: str,
        node: str,
        views: dict[str, VipView | None],
        starts: dict[str, float],
    ) -> None:
        """``node`` alone holds ``name`` now. A move from the previous holder is recorded
        once that one is seen without the address, or stops answering (its view is stale):
        until then it may still hold it too."""
        before = self._holder.get(name)
        if before is None or before[0] == node:
            self._holder[name] = (node, starts[node])
            return
        old, last_seen = before
        old_view = views.get(old)
        if old_view is not None and address in old_view.addresses:
            self._holder[name] = (old, max(last_seen, starts[old]))
            return
        self._holder[name] = (node, starts[node])
        self.ctx.emit(
            VipMoved,
            target=f"vip:{name}",
            address=address,
            from_node=old,
            to_node=node,
            last_seen_mono_s=last_seen,
            first_seen_mono_s=self._first_held.get((name, node), starts[node]),
        )

    def _haproxy(self, node: str, view: VipView | None, at_mono_s: float) -> None:
        if view is None or not self.config.haproxy_command:
            return
        servers = view.servers or {}
        # a server the holder's HAProxy does not show (its stats unreadable, or not in its
        # config) is not seen: unknown, never its old state from another holder
        why = f"stats unreadable: {view.haproxy_error}" if view.servers is None else "not listed"
        for key in sorted(self._servers - set(servers)):
            evidence = f"{why} on {node}'s HAProxy (the VIP holder)"
            self.tracker.emit(f"haproxy:{key}", State.UNKNOWN, at_mono_s, evidence)
        self._servers |= set(servers)
        for key, stat in sorted(servers.items()):
            since = None if stat.last_change_s is None else at_mono_s - stat.last_change_s
            state = State.UP if stat.up else State.DOWN
            evidence = f"{stat.status} ({stat.check or 'no check'}) on {node}'s HAProxy"
            self.tracker.emit(f"haproxy:{key}", state, at_mono_s, evidence, since_mono_s=since)

    def finding(self, answer: Answer) -> Finding:
        found = super().finding(answer)
        if found.ok and "HAProxy stats:" in found.message:
            hint = 'check haproxy_command (the stats socket\'s path), or set it to ""'
            return Finding(found.target, False, found.message, hint)
        return found
