"""What the cluster monitors (``galera``, ``rabbitmq``, ``vip``) share: the members of a
cluster (inventory nodes in a group), one command per member per poll, each in its own lane.

A member's command runs over SSH (``transport = "ssh"``, the default) or on the osha host
(``transport = "local"``: a lab whose nodes are network namespaces on this host, or a test).
Every command is a config key with ``{node}`` and ``{address}`` placeholders, so a cloud can
point it at its own sockets and files. A command that does not answer within
``command_timeout_s`` is killed and is evidence (the member is down), never a hang: each
member has its own lane (:mod:`actors.monitors._lanes`), so one hung member delays no other.

A subclass says what to run (:meth:`ClusterMonitor.command`) and what an answer means
(:meth:`ClusterMonitor.observe`); the kit runs it, times it, and keeps the latest view of
every member for the cluster-wide targets (:meth:`ClusterMonitor.judge_cluster`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from actors.common.hosts import HostConfig, Node, credentials, resolve_nodes
from actors.common.ssh import SshCommandTimeout, SshError, SshPool, describe
from actors.monitors._kit import (
    Aggregator,
    MetricAggregator,
    ReportCadence,
    StateTracker,
    SummaryConfig,
)
from actors.monitors._lanes import Lane, Lanes
from actors.monitors.nagios import run_local
from osha.errors import PluginError
from osha.messages.monitor import State
from osha.plugin import Finding, Monitor, PluginContext
from osha.redaction import redact_text
from osha.ssh import SshConfig

__all__ = ["Answer", "ClusterConfig", "ClusterMonitor", "majority", "quote_node"]

_CLOSE_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig(SummaryConfig):
    """Keys every cluster monitor has: ``group`` (the members: inventory nodes in it),
    ``inventory``/``hosts``/``ssh`` as in ``host-services``, ``transport``,
    ``command_timeout_s``, ``expected_size`` (0: the number of members)."""

    group: str = "controller"
    inventory: str = ""
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    ssh: SshConfig = field(default_factory=SshConfig)
    transport: Literal["ssh", "local"] = "ssh"
    command_timeout_s: float = 5.0
    expected_size: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """One member's answer to one command: ``error`` says why there is none ("" if the
    command ran; then ``status`` is its exit status)."""

    node: str
    started_mono_s: float
    elapsed_s: float
    status: int
    stdout: str
    error: str = ""

    @property
    def ran(self) -> bool:
        return not self.error and self.status == 0

    def why_not(self) -> str:
        """Why the command gave no usable answer, for evidence (redacted)."""
        if self.error:
            return redact_text(self.error)
        tail = " | ".join(self.stdout.strip().splitlines()[-2:]) or "no output"
        return redact_text(f"exit {self.status}: {tail[:200]}")


def quote_node(template: str, node: Node) -> str:
    """``template`` with ``{node}`` and ``{address}`` filled in (other braces stay)."""
    return template.replace("{node}", node.name).replace("{address}", node.target.address)


V = TypeVar("V")
C = TypeVar("C", bound=ClusterConfig)


class ClusterMonitor(Monitor[C], Generic[C, V]):
    """Base of the cluster monitors. Subclasses set ``name`` and ``parse_hint`` and implement
    ``command``, ``parse`` (an answer → the member's view ``V``), ``health`` (a view → is
    the member up, and why) and ``judge_cluster`` (every member's latest view → the
    cluster-wide states). A member whose command fails, or whose answer does not parse, is
    down with that as evidence."""

    name = "cluster"
    parse_hint = "is the command right?"

    def __init__(self, config: C, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.tracker = StateTracker(self.ctx)
        self.aggregator = Aggregator()
        self.metrics = MetricAggregator()
        self.reports = ReportCadence.of(config)
        self.members: list[Node] = []
        self.views: dict[str, tuple[V | None, float]] = {}  # node → (view, answer's start)
        self._views_lock = threading.Lock()  # views, and the order of cluster judgements
        self._ssh: SshPool | None = None
        self._ssh_lock = threading.Lock()
        self.lanes = Lanes(self.name)

    # --- to implement ----------------------------------------------------------------------

    def command(self, node: Node) -> str:
        raise NotImplementedError

    def parse(self, answer: Answer) -> V:
        """The member's view from a command that ran; ValueError if it is not one."""
        raise NotImplementedError

    def health(self, node: str, view: V) -> tuple[bool, str, str]:
        """Whether the member is up by its view, the evidence, and a hint when it is not."""
        raise NotImplementedError

    def record(self, node: str, view: V) -> None:
        """Metrics from a member's view (none by default)."""

    def judge_cluster(self, views: dict[str, V | None], at_mono_s: float) -> None:
        """Emit the cluster-wide states from every member's latest view (None: no answer yet,
        none this time, or a stale one: :meth:`fresh_views`). Called with the views' lock
        held, in observation order."""
        raise NotImplementedError

    # --- members ---------------------------------------------------------------------------

    def _validate(self) -> list[Node]:
        cfg = self.config
        if cfg.command_timeout_s <= 0 or cfg.interval_s <= 0:
            raise PluginError(
                f"{self.name}: command_timeout_s ({cfg.command_timeout_s}) and interval_s "
                f"({cfg.interval_s}) must be > 0",
                hint="command_timeout_s bounds a member that does not answer (a partitioned "
                "node blocks); a few seconds is usual",
            )
        if cfg.expected_size < 0:
            raise PluginError(
                f"{self.name}: expected_size = {cfg.expected_size} is negative",
                hint="0 means the number of members; else the cluster's full size",
            )
        nodes = resolve_nodes(cfg.inventory, cfg.hosts, cfg.ssh, (cfg.group,))
        if cfg.transport == "ssh":
            credentials(cfg.ssh)  # raises PluginError naming the missing key
        return nodes

    @property
    def expected_size(self) -> int:
        return self.config.expected_size or len(self.members)

    # --- running a command -----------------------------------------------------------------

    def run(self, node: Node, command: str) -> Answer:
        """Run ``command`` on ``node`` (over SSH or locally), bounded by command_timeout_s."""
        timeout_s = self.config.command_timeout_s
        start = time.monotonic()
        if self.config.transport == "local":
            status, out, timed_out = run_local(("/bin/sh", "-c", command), timeout_s)
            elapsed = time.monotonic() - start
            if timed_out:
                return Answer(node.name, start, elapsed, -1, out, _timeout_text(timeout_s))
            return Answer(node.name, start, elapsed, status, out)
        with self._ssh_lock:  # lanes run commands at once: one pool for them all
            if self._ssh is None:
                self._ssh = SshPool(credentials(self.config.ssh))
            pool = self._ssh
        try:
            res = pool.exec(node.target, command, timeout_s=timeout_s)
        except SshCommandTimeout:
            pool.drop(node.name)  # its channel may still hang: start afresh next time
            return Answer(node.name, start, time.monotonic() - start, -1, "",
                          _timeout_text(timeout_s))  # fmt: skip
        except SshError as exc:
            return Answer(node.name, start, time.monotonic() - start, -1, "",
                          f"cannot reach {node.name}: {describe(exc)}")  # fmt: skip
        return Answer(node.name, start, res.elapsed_s, res.exit_status,
                      res.stdout + ("\n" + res.stderr if res.stderr else ""))  # fmt: skip

    # --- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        self.members = self._validate()
        with self._views_lock:
            self.views = {n.name: (None, 0.0) for n in self.members}

    def check(self) -> list[Finding]:
        try:
            members = self._validate()
        except PluginError as exc:
            return [Finding(self.name, False, exc.message, exc.hint)]
        findings = []
        for node in members:
            answer = self.run(node, self.command(node))
            findings.append(self.finding(answer))
        return findings

    def view_of(self, answer: Answer) -> V | str:
        """The member's view, or why there is none (evidence)."""
        if not answer.ran:
            return answer.why_not()
        try:
            return self.parse(answer)
        except ValueError as exc:
            return f"{exc}: {self.parse_hint}"

    def finding(self, answer: Answer) -> Finding:
        """A pre-flight finding from one member's answer."""
        target = f"{self.name}@{answer.node}"
        view = self.view_of(answer)
        if isinstance(view, str):
            return Finding(target, False, view, self.parse_hint)
        ok, evidence, hint = self.health(answer.node, view)
        return Finding(target, ok, evidence, hint)

    def poll(self) -> None:
        self.lanes.raise_failure()  # a job's exception ends the monitor, as a poll's would
        for node in self.members:
            self.lanes.offer(node.name, functools.partial(self._one, node))
        if self.reports.due():
            self.flush()

    def _one(self, node: Node, lane: Lane) -> None:
        answer = self.run(node, self.command(node))
        skipped = lane.take_skipped()
        if skipped and answer.error:
            error = f"{answer.error} ({skipped} polls skipped meanwhile)"
            answer = dataclasses.replace(answer, error=error)
        self.aggregator.add(f"{self.name}@{node.name}", ok=answer.ran, latency_s=answer.elapsed_s)
        found = self.view_of(answer)
        view = None if isinstance(found, str) else found
        if view is None:
            self.member_state(node.name, State.DOWN, answer.started_mono_s, str(found))
        else:
            self.record(node.name, view)
            ok, evidence, _hint = self.health(node.name, view)
            state = State.UP if ok else State.DOWN
            self.member_state(node.name, state, answer.started_mono_s, evidence)
        with self._views_lock:
            self.views[node.name] = (view, answer.started_mono_s)
            self.judge_cluster(self.fresh_views(answer.started_mono_s), answer.started_mono_s)

    def fresh_views(self, at_mono_s: float) -> dict[str, V | None]:
        """Every member's latest view, None for one older than a poll plus a command's
        timeout before ``at_mono_s``: that member's command hangs, and what it said before
        is no longer evidence (hold the views' lock)."""
        stale_s = self.config.interval_s + self.config.command_timeout_s
        return {
            name: view if at_mono_s - started <= stale_s else None
            for name, (view, started) in self.views.items()
        }

    def flush(self) -> None:
        self.aggregator.flush(self.ctx)
        self.metrics.flush(self.ctx)

    def teardown(self) -> None:
        stuck = self.lanes.close(_CLOSE_S)
        if stuck:
            self.ctx.log.warning("%s: commands still running at teardown: %s", self.name,
                                 ", ".join(stuck))  # fmt: skip
        if self._ssh is not None:
            self._ssh.close()
        self.flush()

    # --- helpers for subclasses ------------------------------------------------------------

    def member_state(self, node: str, state: State, at_mono_s: float, evidence: str) -> None:
        self.tracker.emit(f"{self.name}@{node}", state, at_mono_s, redact_text(evidence))

    def cluster_state(self, suffix: str, state: State, at_mono_s: float, evidence: str) -> None:
        self.tracker.emit(f"{self.name}:{suffix}", state, at_mono_s, redact_text(evidence))


def _timeout_text(timeout_s: float) -> str:
    return f"no answer within {timeout_s:g} s (command_timeout_s): killed"


def majority(size: int) -> int:
    """The smallest majority of ``size`` members."""
    return size // 2 + 1
