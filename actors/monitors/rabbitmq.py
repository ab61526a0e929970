"""``rabbitmq``: each RabbitMQ member's view of the cluster, and the cluster's, over SSH."""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import dataclass

from actors.common.hosts import Node
from actors.monitors._cluster import Answer, ClusterConfig, ClusterMonitor, majority, quote_node
from actors.monitors._lanes import Lane
from osha.errors import PluginError
from osha.messages.monitor import State
from osha.plugin import PluginContext

__all__ = ["ClusterView", "RabbitMqConfig", "RabbitMqMonitor", "parse_cluster_status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RabbitMqConfig(ClusterConfig):
    """Settings of ``rabbitmq``. See the class docstring for each key."""

    rabbitmqctl_command: str = "rabbitmqctl"
    node_name: str = "rabbit@{node}"
    alarms_are_down: bool = True
    alive_command: str = ""
    status_interval_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What one member's ``cluster_status`` says."""

    running: tuple[str, ...]  # Erlang node names, sorted
    disk_nodes: tuple[str, ...]
    partitions: dict[str, tuple[str, ...]]  # node → the nodes it is partitioned from
    alarms: tuple[str, ...]  # "memory@rabbit@ctl-1", "disk@...", "file_descriptor_limit@..."

    def describe(self) -> str:
        parts = [f"running {len(self.running)}: {', '.join(self.running) or 'none'}"]
        if self.partitions:
            parts.append(
                "partitions: "
                + "; ".join(f"{n} from {', '.join(p)}" for n, p in sorted(self.partitions.items()))
            )
        if self.alarms:
            parts.append(f"alarms: {', '.join(self.alarms)}")
        return "; ".join(parts)


class StatusParseError(ValueError):
    """The output is not ``rabbitmqctl cluster_status --formatter json``'s."""


def _names(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StatusParseError(f"{key} is not a list of node names: {value!r:.80}")
    return tuple(sorted(value))


def parse_cluster_status(text: str) -> ClusterView:
    """``rabbitmqctl cluster_status --formatter json`` (RabbitMQ 3.8 and later): one JSON
    object with ``running_nodes``, ``disk_nodes``, ``partitions`` (node → nodes) and
    ``alarms`` (``{node, resource, type}``). Lines around it (a warning on stderr merged in)
    are skipped."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise StatusParseError("no JSON object in the output")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise StatusParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or "running_nodes" not in data:
        raise StatusParseError("no running_nodes in the JSON object")
    raw_partitions = data.get("partitions") or {}
    if not isinstance(raw_partitions, dict):
        raise StatusParseError(f"partitions is not an object: {raw_partitions!r:.80}")
    partitions = {
        str(node): _names(peers, f"partitions.{node}")
        for node, peers in raw_partitions.items()
        if peers
    }
    alarms = []
    for alarm in data.get("alarms") or []:
        if isinstance(alarm, dict):
            what = alarm.get("resource") or alarm.get("type") or "alarm"
            alarms.append(f"{what}@{alarm.get('node', '?')}")
        else:
            alarms.append(str(alarm))
    return ClusterView(
        running=_names(data["running_nodes"], "running_nodes"),
        disk_nodes=_names(data.get("disk_nodes") or [], "disk_nodes"),
        partitions=partitions,
        alarms=tuple(sorted(alarms)),
    )


class RabbitMqMonitor(ClusterMonitor[RabbitMqConfig, ClusterView]):
    """Asks every RabbitMQ member for ``rabbitmqctl cluster_status --formatter json`` each
    ``interval_s``, over SSH.

    A partitioned node's ``cluster_status`` blocks for many seconds: each member's command
    runs in its own lane, bounded by ``command_timeout_s``, and a member that does not answer
    in time is ``down`` with that as evidence; the other members are observed on time.

    Targets:

    - ``rabbitmq@<node>``: ``up`` when the member answers, lists itself (``node_name``,
      default ``rabbit@{node}``) among the running nodes and (with ``alarms_are_down``, the
      default: an alarm blocks publishers) has no alarm of its own; else ``down``, with
      the member's view (running nodes, partitions, alarms) as evidence.
    - ``rabbitmq:cluster``: ``up`` while some member sees a majority of ``expected_size``
      running (the majority side serves, as ``pause_minority`` keeps it); ``down`` when
      none does.
    - ``rabbitmq:cluster-size``: ``up`` when some member sees ``expected_size`` nodes
      running and no member reports a partition; ``down`` (degraded) otherwise.

    ``monitor.metric`` summaries: ``running_nodes`` per member.

    Keys: ``group`` (default ``controller``), ``inventory``/``hosts``/``ssh`` as in
    ``host-services``, ``rabbitmqctl_command`` (default ``rabbitmqctl``; ``{node}`` and
    ``{address}`` are filled in, e.g. ``docker exec rabbitmq rabbitmqctl`` on kolla),
    ``node_name``, ``alarms_are_down``, ``transport`` (``ssh`` or ``local``),
    ``command_timeout_s``, ``expected_size``, ``report_interval_s``, ``alive_command`` and
    ``status_interval_s`` (below).

    ``rabbitmqctl`` starts an Erlang VM per call: seconds on an idle host, 10 s measured on
    the loaded 2-core HA lab, so a member's stop would be seen that late. ``alive_command``
    (default ``""``: off) is a fast check run on each member every ``interval_s``, exit 0
    while its broker serves, e.g. a TCP connect to its AMQP listener
    (``timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/5672'``: RabbitMQ listens only once
    booted and closes the listener first when it stops). With it, ``rabbitmq@<node>`` is
    ``down`` as soon as the check fails, and ``cluster_status`` runs in a lane of its own
    every ``status_interval_s`` (0: every ``interval_s``) for the cluster's view: a member
    is ``up`` when its check passes and its latest status (if any) is healthy.

    Profile::

        [[monitors]]
        id = "rabbitmq"
        plugin = "rabbitmq"
        interval_s = 1.0
        command_timeout_s = 3.0
        group = "controller"
        inventory = "/var/lib/osha-lab/inventory.ini"
        rabbitmqctl_command = "docker exec rabbitmq rabbitmqctl"

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = RabbitMqConfig
    name = "rabbitmq"
    parse_hint = "is rabbitmqctl_command right (and the Erlang cookie it needs there)?"

    def __init__(self, config: RabbitMqConfig, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self._alive: dict[str, tuple[bool, str, float]] = {}  # node → (ok, evidence, at)
        self._status: dict[str, tuple[bool, str]] = {}  # node → (healthy, evidence)
        self._back_mono_s: dict[str, float] = {}  # node → when its alive check passed again
        self._member_lock = threading.Lock()
        self._status_due_mono_s = 0.0

    def _validate(self) -> list[Node]:
        if self.config.status_interval_s < 0:
            raise PluginError(
                f"rabbitmq: status_interval_s = {self.config.status_interval_s} is negative",
                hint="0 runs cluster_status every interval_s; else its own period in seconds",
            )
        return super()._validate()

    def command(self, node: Node) -> str:
        ctl = quote_node(self.config.rabbitmqctl_command, node)
        return f"{ctl} cluster_status --formatter json"

    def parse(self, answer: Answer) -> ClusterView:
        return parse_cluster_status(answer.stdout)

    def health(self, node: str, view: ClusterView) -> tuple[bool, str, str]:
        me = self.config.node_name.replace("{node}", node)
        problems = []
        if me not in view.running:
            problems.append(f"{me} is not among the running nodes")
        mine = [a for a in view.alarms if a.endswith(f"@{me}")]
        if mine and self.config.alarms_are_down:
            problems.append(f"alarm {', '.join(mine)}")
        evidence = view.describe() + (f" ({'; '.join(problems)})" if problems else "")
        return not problems, evidence, "; ".join(problems)

    def record(self, node: str, view: ClusterView) -> None:
        self.metrics.add(f"rabbitmq@{node}", "running_nodes", float(len(view.running)))

    def judge_cluster(self, views: dict[str, ClusterView | None], at_mono_s: float) -> None:
        expected = self.expected_size
        answered = [v for v in views.values() if v is not None]
        best = max((len(v.running) for v in answered), default=0)
        split = any(v.partitions for v in answered)
        seen = "; ".join(
            f"{n}: {v.describe() if v else 'no answer'}" for n, v in sorted(views.items())
        )
        if best >= majority(expected):
            evidence = f"a member sees {best} of {expected} running"
            self.cluster_state("cluster", State.UP, at_mono_s, evidence)
        else:
            evidence = f"no member sees a majority of {expected} running ({seen})"
            self.cluster_state("cluster", State.DOWN, at_mono_s, evidence)
        if best >= expected and not split:
            evidence = f"{best} of {expected} running, no partition"
            self.cluster_state("cluster-size", State.UP, at_mono_s, evidence)
        else:
            evidence = f"degraded: at most {best} of {expected} running ({seen})"
            self.cluster_state("cluster-size", State.DOWN, at_mono_s, evidence)

    # --- with alive_command: a fast liveness lane and a slower status lane per member --------

    def poll(self) -> None:
        if not self.config.alive_command:
            super().poll()
            return
        self.lanes.raise_failure()
        now = time.monotonic()
        status_due = now >= self._status_due_mono_s
        if status_due:
            period_s = self.config.status_interval_s or self.config.interval_s
            self._status_due_mono_s = now + period_s
        for node in self.members:
            self.lanes.offer(node.name, functools.partial(self._one_alive, node))
            if status_due:
                self.lanes.offer(f"{node.name}/status", functools.partial(self._one_status, node))
        if self.reports.due():
            self.flush()

    def fresh_views(self, at_mono_s: float) -> dict[str, ClusterView | None]:
        if not self.config.alive_command:
            return super().fresh_views(at_mono_s)
        period_s = self.config.status_interval_s or self.config.interval_s
        stale_s = period_s + self.config.command_timeout_s
        return {
            name: view if at_mono_s - started <= stale_s else None
            for name, (view, started) in self.views.items()
        }

    def _one_alive(self, node: Node, lane: Lane) -> None:
        answer = self.run(node, quote_node(self.config.alive_command, node))
        lane.take_skipped()
        self.aggregator.add(f"rabbitmq@{node.name}", ok=answer.ran, latency_s=answer.elapsed_s)
        evidence = "alive_command passed" if answer.ran else f"alive_command: {answer.why_not()}"
        with self._member_lock:
            was_alive = self._alive.get(node.name, (False, "", 0.0))[0]
            if answer.ran and not was_alive:
                # what a status said while the member was down (another member answers for
                # it through a wrapper) is no evidence of the member back
                self._status.pop(node.name, None)
                self._back_mono_s[node.name] = answer.started_mono_s
            self._alive[node.name] = (answer.ran, evidence, answer.started_mono_s)
            self._judge_member(node.name, answer.started_mono_s)

    def _one_status(self, node: Node, lane: Lane) -> None:
        answer = self.run(node, self.command(node))
        lane.take_skipped()
        found = self.view_of(answer)
        view = None if isinstance(found, str) else found
        with self._member_lock:
            if answer.started_mono_s < self._back_mono_s.get(node.name, 0.0):
                pass  # asked before the member came back: says nothing of it now
            elif view is None:
                # no status (a slow or failed rabbitmqctl) says nothing the alive check
                # does not: evidence only
                self._status.pop(node.name, None)
            else:
                self.record(node.name, view)
                ok, evidence, _hint = self.health(node.name, view)
                self._status[node.name] = (ok, evidence)
        with self._views_lock:
            self.views[node.name] = (view, answer.started_mono_s)
            self.judge_cluster(self.fresh_views(answer.started_mono_s), answer.started_mono_s)

    def _judge_member(self, node: str, at_mono_s: float) -> None:
        """The member's state from its latest alive check and status (hold the member lock)."""
        alive, alive_evidence, _at = self._alive.get(node, (False, "no alive check yet", 0.0))
        status_ok, status_evidence = self._status.get(node, (True, "no cluster_status yet"))
        state = State.UP if alive and status_ok else State.DOWN
        self.member_state(node, state, at_mono_s, f"{alive_evidence}; {status_evidence}")
