"""The quorum guard: ``[guard] quorum = { galera = "majority", rabbitmq = { min_members = 2 } }``.

Core never imports a plugin: the guard learns a cluster's members and their states from the
``monitor.state`` records the cluster monitors publish (targets ``<cluster>@<node>`` and
``<cluster>:cluster``, e.g. ``galera@ctl-1``), and what is about to be down from every active
lease. Before a fault is granted it counts, per guarded cluster:

- the members (every node with a ``<cluster>@<node>`` state);
- the members down: not ``up`` by their monitor, or the node of an active lease that takes a
  member (its resource matches the rule's ``resources``, default every fault on the node);
- whether the new fault takes one more member;

and refuses a fault that would leave fewer members up than the rule needs, or any fault while
a guarded cluster is already below it (never kick a cloud that is down). A disruptor with
``allow_quorum_loss = true`` is let through, and the grant says what it overrode::

    galera: 3 members, 1 down (ctl-3, lease kill-db/0), this fault takes ctl-1: 1 left < majority 2
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from osha.faults._lease import Lease
from osha.messages.monitor import State, StateChange
from osha.profile import QuorumRule

__all__ = ["ClusterStates", "QuorumCheck", "QuorumGuard", "QuorumRule"]


class ClusterStates:
    """The latest state of every cluster member and cluster target, from ``monitor.state``
    records. Thread-safe and cheap: the broker feeds it from the supervisor's threads."""

    def __init__(self, clusters: Iterable[str]) -> None:
        self._clusters = frozenset(clusters)
        self._lock = threading.Lock()
        self._members: dict[str, dict[str, tuple[State, str]]] = {c: {} for c in self._clusters}
        self._whole: dict[str, tuple[State, str]] = {}

    def observe(self, msg: StateChange) -> None:
        cluster, at, node = msg.target.partition("@")
        if at and cluster in self._clusters and node:
            with self._lock:
                self._members[cluster][node] = (msg.state, msg.evidence)
            return
        cluster, colon, what = msg.target.partition(":")
        if colon and what == "cluster" and cluster in self._clusters:
            with self._lock:
                self._whole[cluster] = (msg.state, msg.evidence)

    def members(self, cluster: str) -> dict[str, tuple[State, str]]:
        with self._lock:
            return dict(self._members.get(cluster, {}))

    def whole(self, cluster: str) -> tuple[State, str] | None:
        with self._lock:
            return self._whole.get(cluster)


@dataclass(frozen=True, slots=True)
class QuorumCheck:
    """The guard's answer: ``refusal`` (the reason, "" if none) under ``limit``
    (``quorum.galera``), and ``note``: what an ``allow_quorum_loss`` grant overrode."""

    limit: str = ""
    refusal: str = ""
    note: str = ""
    active: tuple[str, ...] = ()


class QuorumGuard:
    """Checks a new lease against every guarded cluster (see the module docstring)."""

    def __init__(self, rules: Mapping[str, QuorumRule]) -> None:
        self.rules = dict(rules)
        self.states = ClusterStates(self.rules)

    def check(self, active: Iterable[Lease], new: Lease, *, allow_loss: bool) -> QuorumCheck:
        current = list(active)
        for cluster, rule in sorted(self.rules.items()):
            reason, counted = self._arithmetic(cluster, rule, current, new)
            if not reason:
                continue
            leases = tuple(f"{x.lease_id} {x.what}" for x in counted)
            if allow_loss:
                return QuorumCheck(f"quorum.{cluster}", "", f"allow_quorum_loss: {reason}", leases)
            return QuorumCheck(f"quorum.{cluster}", reason, "", leases)
        return QuorumCheck()

    def _arithmetic(
        self, cluster: str, rule: QuorumRule, active: list[Lease], new: Lease
    ) -> tuple[str, list[Lease]]:
        """Why ``new`` breaks ``cluster``'s rule ("" if it does not), and the leases counted."""
        members = self.states.members(cluster)
        if not members:
            return (
                f"{cluster}: no member known (no monitor has reported a {cluster}@<node> "
                "target yet); the quorum guard does not guess",
                [],
            )
        down: dict[str, str] = {}
        for node, (state, _evidence) in sorted(members.items()):
            if state != State.UP:
                down[node] = f"{node}, {state}"
        counted = []
        for lease in active:
            if lease.node in members and rule.takes(lease.resource):
                counted.append(lease)
                if lease.node not in down:
                    down[lease.node] = f"{lease.node}, lease {lease.lease_id}"
        total, need = len(members), rule.need(len(members))
        up = total - len(down)
        why = "; ".join(down[n] for n in sorted(down))
        head = f"{cluster}: {total} members, {len(down)} down" + (f" ({why})" if why else "")
        whole = self.states.whole(cluster)
        if whole is not None and whole[0] != State.UP:
            return (f"{head}; {cluster}:cluster is {whole[0]} ({whole[1]}): already below "
                    "quorum, no fault until it recovers", counted)  # fmt: skip
        if up < need:
            return (f"{head}: {up} up < {rule.label(total)}: already below quorum, no fault "
                    "until it recovers", counted)  # fmt: skip
        if new.node in members and new.node not in down and rule.takes(new.resource):
            left = up - 1
            if left < need:
                return (f"{head}, this fault takes {new.node}: {left} left < "
                        f"{rule.label(total)}", counted)  # fmt: skip
        return "", counted
