"""``galera``: each Galera member's wsrep status, and the cluster's, over SSH."""

from __future__ import annotations

from dataclasses import dataclass

from actors.common.hosts import Node
from actors.monitors._cluster import Answer, ClusterConfig, ClusterMonitor, majority, quote_node
from osha.messages.monitor import State
from osha.schema import Command

__all__ = ["GaleraConfig", "GaleraMonitor", "MemberStatus", "parse_wsrep"]

DEFAULT_MYSQL = "mysql -N -B"
_DEFAULT_MYSQL = Command(DEFAULT_MYSQL)
STATUS_SQL = "SHOW GLOBAL STATUS LIKE 'wsrep_%'"


@dataclass(frozen=True, slots=True, kw_only=True)
class GaleraConfig(ClusterConfig):
    """Settings of ``galera``. See the class docstring for each key."""

    mysql_command: Command = _DEFAULT_MYSQL


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """What one member says of itself and of the component it is in."""

    cluster_status: str  # Primary, non-Primary, Disconnected
    cluster_size: int
    local_state: str  # Synced, Donor/Desynced, Joining, Joined, Initialized...
    ready: bool
    flow_control_paused: float | None  # fraction of time paused since the last FLUSH STATUS

    @property
    def primary(self) -> bool:
        return self.cluster_status == "Primary"

    @property
    def healthy(self) -> bool:
        return self.primary and self.local_state == "Synced" and self.ready

    def describe(self) -> str:
        fc = "" if self.flow_control_paused is None else f", fc paused {self.flow_control_paused:g}"
        return (
            f"{self.cluster_status}, size {self.cluster_size}, {self.local_state}, "
            f"ready {'ON' if self.ready else 'OFF'}{fc}"
        )


class WsrepParseError(ValueError):
    """The output has no wsrep status (not a Galera server, or not the mysql client's)."""


def parse_wsrep(text: str) -> MemberStatus:
    """``SHOW GLOBAL STATUS LIKE 'wsrep_%'`` as the mysql client prints it in batch mode:
    one ``name<TAB>value`` row per variable (a ``Variable_name`` header without ``-N``;
    other lines, e.g. client warnings, are skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, tab, value = line.partition("\t")
        if tab and name.startswith("wsrep_"):
            values[name.strip()] = value.strip()
    if "wsrep_cluster_status" not in values:
        raise WsrepParseError(
            "no wsrep_cluster_status in the output"
            + (f" (wsrep variables: {len(values)})" if values else "")
        )
    try:
        size = int(values.get("wsrep_cluster_size", "0") or 0)
    except ValueError:
        raise WsrepParseError(
            f"wsrep_cluster_size is not a number: {values['wsrep_cluster_size']!r}"
        ) from None
    fc_text = values.get("wsrep_flow_control_paused", "")
    try:
        fc = float(fc_text) if fc_text else None
    except ValueError:
        fc = None
    return MemberStatus(
        cluster_status=values["wsrep_cluster_status"],
        cluster_size=size,
        local_state=values.get("wsrep_local_state_comment", ""),
        ready=values.get("wsrep_ready", "").upper() == "ON",
        flow_control_paused=fc,
    )


class GaleraMonitor(ClusterMonitor[GaleraConfig, MemberStatus]):
    """Asks every Galera member for its wsrep status each ``interval_s``, over SSH.

    On each member (the nodes of ``group``) it runs ``mysql_command -e "SHOW GLOBAL STATUS
    LIKE 'wsrep_%'"`` and reads ``wsrep_cluster_status``, ``wsrep_cluster_size``,
    ``wsrep_local_state_comment``, ``wsrep_ready`` and ``wsrep_flow_control_paused``.

    Targets:

    - ``galera@<node>``: ``up`` when the member is Primary, Synced and ready; ``down`` when
      it is unreachable, does not answer within ``command_timeout_s``, or is anything else
      (non-Primary, Donor, Joining, not ready), with what it said as evidence.
    - ``galera:cluster``: ``up`` while some member is in a Primary component; ``down`` when
      none is (the cluster does not serve).
    - ``galera:cluster-size``: ``up`` when a Primary component has ``expected_size`` members
      (default: the number of members); ``down`` (degraded) below it, while
      ``galera:cluster`` may stay up.

    ``monitor.metric`` summaries: ``flow_control_paused`` per member, ``cluster_size``.

    Keys: ``group`` (default ``controller``), ``inventory``/``hosts``/``ssh`` as in
    ``host-services``, ``mysql_command`` (default ``mysql -N -B``; ``{node}`` and
    ``{address}`` are filled in, e.g. ``mysql --defaults-file=/etc/osha/{node}.cnf -N -B``:
    a password on it is redacted in the ledger, a defaults file keeps it off the command
    line), ``transport`` (``ssh``, or ``local`` to run the command on the osha host),
    ``command_timeout_s``, ``expected_size``, ``report_interval_s``.

    Profile::

        [[monitors]]
        id = "galera"
        plugin = "galera"
        interval_s = 0.5
        group = "controller"
        inventory = "/var/lib/osha-lab/inventory.ini"
        mysql_command = "mysql --defaults-file=/etc/mysql/debian.cnf -N -B"

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = GaleraConfig
    name = "galera"
    parse_hint = "is the node a Galera member, and mysql_command right (its credentials too)?"

    def command(self, node: Node) -> str:
        return f'{quote_node(self.config.mysql_command, node)} -e "{STATUS_SQL}"'

    def parse(self, answer: Answer) -> MemberStatus:
        return parse_wsrep(answer.stdout)

    def health(self, node: str, view: MemberStatus) -> tuple[bool, str, str]:
        hint = "" if view.healthy else "the member is not Primary, Synced and ready"
        return view.healthy, view.describe(), hint

    def record(self, node: str, view: MemberStatus) -> None:
        if view.flow_control_paused is not None:
            self.metrics.add(f"galera@{node}", "flow_control_paused", view.flow_control_paused)

    def judge_cluster(self, views: dict[str, MemberStatus | None], at_mono_s: float) -> None:
        primary = {n: v for n, v in views.items() if v is not None and v.primary}
        expected = self.expected_size
        if not primary:
            said = ", ".join(
                f"{n}: {v.cluster_status if v else 'no answer'}" for n, v in sorted(views.items())
            )
            evidence = f"no member is in a Primary component ({said})"
            self.cluster_state("cluster", State.DOWN, at_mono_s, evidence)
            self.cluster_state("cluster-size", State.DOWN, at_mono_s, evidence)
            return
        size = max(v.cluster_size for v in primary.values())
        self.metrics.add("galera:cluster", "cluster_size", float(size))
        names = ", ".join(sorted(primary))
        self.cluster_state(
            "cluster",
            State.UP,
            at_mono_s,
            f"Primary component of {size} (seen by {names}; quorum {majority(expected)} "
            f"of {expected})",
        )
        if size >= expected:
            self.cluster_state("cluster-size", State.UP, at_mono_s,
                               f"Primary component of {size}, expected {expected}")  # fmt: skip
        else:
            evidence = f"degraded: Primary component of {size} < expected {expected}"
            self.cluster_state("cluster-size", State.DOWN, at_mono_s, evidence)
