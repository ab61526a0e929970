"""``rabbitmq``: each RabbitMQ member's view of the cluster, and the cluster's, over SSH."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Literal

from actors.common.hosts import Node
from actors.monitors._cluster import Answer, ClusterConfig, ClusterMonitor, majority, quote_node
from actors.monitors._lanes import Lane
from actors.monitors._rabbit_views import (
    LOCAL_STATUS_EVAL,
    ClusterView,
    StatusParseError,
    parse_cluster_status,
    parse_local_status,
)
from osha.errors import PluginError
from osha.messages.monitor import State
from osha.plugin import PluginContext
from osha.schema import Command

__all__ = [
    "ClusterView",
    "RabbitMqConfig",
    "RabbitMqMonitor",
    "StatusParseError",
    "parse_cluster_status",
    "parse_local_status",
]

_RABBITMQCTL, _NONE = Command("rabbitmqctl"), Command("")


@dataclass(frozen=True, slots=True, kw_only=True)
class RabbitMqConfig(ClusterConfig):
    """Settings of ``rabbitmq``. See the class docstring for each key."""

    rabbitmqctl_command: Command = _RABBITMQCTL
    node_name: str = "rabbit@{node}"
    alarms_are_down: bool = True
    alive_command: Command = _NONE
    status_interval_s: float = 0.0
    status: Literal["local", "cluster_status"] = "local"
    erl_call_command: Command = _NONE


class RabbitMqMonitor(ClusterMonitor[RabbitMqConfig, ClusterView]):
    """Asks every RabbitMQ member for its own view of the cluster each ``interval_s``, over SSH.

    ``status`` says how:

    - ``"local"`` (the default): the member alone, with calls that never leave it
      (:mod:`actors.monitors._rabbit_views`): is rabbit running on it, which members it
      runs with, which Erlang nodes it has a link to, its partitions and its own alarms.
      Through ``erl_call_command`` when set (``erl_call``, a C client shipped with Erlang:
      well under a second), else ``rabbitmqctl_command -n <node_name> -q eval``.
    - ``"cluster_status"``: ``rabbitmqctl cluster_status --formatter json`` (the only way before).
      It asks every member it knows of: while one is cut off by a ``drop`` partition, every
      member's call waits on it and times out, so the majority, which serves, reads down too.

    Each member's command runs in its own lane, bounded by ``command_timeout_s``: a member
    that does not answer in time is ``down`` with that as evidence, and delays no other.

    Targets:

    - ``rabbitmq@<node>``: ``up`` when the member answers, runs rabbit (a member paused as a
      minority by ``pause_minority`` does not), lists itself (``node_name``,
      default ``rabbit@{node}``) among the running nodes and (with ``alarms_are_down``, the
      default: an alarm blocks publishers) has no alarm of its own; else ``down``, with
      the member's view (running nodes, partitions, alarms) as evidence.
    - ``rabbitmq:cluster``: ``up`` while some member sees a majority of ``expected_size``
      running (the majority side serves, as ``pause_minority`` keeps it); ``down`` when
      none does.
    - ``rabbitmq:cluster-size``: ``up`` when some member sees ``expected_size`` nodes
      running and there is no partition; ``down`` (degraded) otherwise. With local views, two
      members that both answer but have no link to each other are a partition (a stopped
      member does not answer): the evidence says ``partition: rabbit@ctl-1 and rabbit@ctl-3
      answer but have no link``, and the ``partitioned_links`` metric of
      ``rabbitmq:cluster`` counts such pairs.

    ``monitor.metric`` summaries: ``running_nodes`` per member.

    Keys: ``group`` (default ``controller``), ``inventory``/``hosts``/``ssh`` as in
    ``host-services``, ``rabbitmqctl_command`` (default ``rabbitmqctl``; ``{node}`` and
    ``{address}`` are filled in, e.g. ``docker exec rabbitmq rabbitmqctl`` on kolla),
    ``node_name``, ``alarms_are_down``, ``status``, ``erl_call_command`` (``{node}`` and
    ``{address}`` filled in; the monitor adds ``-timeout`` and ``-e``, e.g. ``erl_call -sname
    rabbit@{node}`` run where the Erlang cookie is), ``transport`` (``ssh`` or ``local``),
    ``command_timeout_s``, ``expected_size``, ``report_interval_s``, ``alive_command`` and
    ``status_interval_s`` (below).

    ``rabbitmqctl`` starts an Erlang VM per call: seconds on an idle host, 10 s measured on
    the loaded 2-core HA lab, so a member's stop would be seen that late. ``alive_command``
    (default ``""``: off) is a fast check run on each member every ``interval_s``, exit 0
    while its broker serves, e.g. a TCP connect to its AMQP listener
    (``timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/5672'``: RabbitMQ listens only once
    booted and closes the listener first when it stops). With it, ``rabbitmq@<node>`` is
    ``down`` as soon as the check fails, and the status runs in a lane of its own
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
        # where the image has erl_call (Erlang's lib/erl_interface-*/bin)
        erl_call_command = "docker exec -i rabbitmq erl_call -sname rabbit@{node}"

        [monitors.ssh]
        private_key = "/var/lib/osha-lab/id_ed25519"
        known_hosts = "/var/lib/osha-lab/known_hosts"
    """

    config_type = RabbitMqConfig
    name = "rabbitmq"
    parse_hint = (
        "is rabbitmqctl_command (or erl_call_command) right, with the Erlang cookie it needs "
        "there?"
    )

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
        if self.config.status == "cluster_status":
            return f"{ctl} cluster_status --formatter json"
        if self.config.erl_call_command:
            call = quote_node(self.config.erl_call_command, node)
            timeout_s = max(1, int(self.config.command_timeout_s))
            return f"printf '%s\\n' '{LOCAL_STATUS_EVAL}' | {{ {call} -timeout {timeout_s} -e; }}"
        me = self.config.node_name.replace("{node}", node.name)
        return f"{ctl} -n {me} -q eval '{LOCAL_STATUS_EVAL}'"

    def parse(self, answer: Answer) -> ClusterView:
        if self.config.status == "cluster_status":
            return parse_cluster_status(answer.stdout)
        return parse_local_status(answer.stdout)

    def health(self, node: str, view: ClusterView) -> tuple[bool, str, str]:
        me = self.config.node_name.replace("{node}", node)
        problems = []
        if not view.serving:
            problems.append("rabbit is not running on it (paused as a minority, or starting)")
        elif me not in view.running:
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
        cut = cut_links(answered)
        split = any(v.partitions for v in answered) or bool(cut)
        seen = "; ".join(
            f"{n}: {v.describe() if v else 'no answer'}" for n, v in sorted(views.items())
        )
        self.metrics.add("rabbitmq:cluster", "partitioned_links", float(len(cut)))
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
            links = "; ".join(f"{a} and {b} answer but have no link" for a, b in cut)
            evidence = (
                f"degraded: at most {best} of {expected} running"
                + (f"; partition: {links}" if cut else "")
                + f" ({seen})"
            )
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
        status_ok, status_evidence = self._status.get(node, (True, "no status yet"))
        state = State.UP if alive and status_ok else State.DOWN
        self.member_state(node, state, at_mono_s, f"{alive_evidence}; {status_evidence}")


def cut_links(views: list[ClusterView]) -> list[tuple[str, str]]:
    """The pairs of members that both answered with a local view but are not connected to
    each other (either side lacks the link): a network partition between them, not a stop
    (a stopped member does not answer)."""
    local = sorted((v for v in views if v.connected is not None and v.node),
                   key=lambda v: v.node)  # fmt: skip
    return [
        (a.node, b.node)
        for i, a in enumerate(local)
        for b in local[i + 1 :]
        if b.node not in (a.connected or ()) or a.node not in (b.connected or ())
    ]
