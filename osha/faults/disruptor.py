"""The disruptor contract: what every fault disruptor shares (targets, the schedule, leases,
hold and guaranteed revert) and what a concrete one provides. Plugins derive from it; core
(:mod:`osha.faults`) plans and reverts through it and never imports a plugin.

A concrete disruptor says what its fault is (:meth:`FaultDisruptor.action` and
:meth:`FaultDisruptor.resource`), validates a node (:meth:`~FaultDisruptor.probe`), captures
what revert needs before injecting (:meth:`~FaultDisruptor.prepare`), injects
(:meth:`~FaultDisruptor.inject`), and reverts from its config and the lease alone
(:meth:`~FaultDisruptor.revert_lease`, a classmethod, so that the supervisor process and
``osha faults recover`` can call it without this actor).

The life of one planned fault (:meth:`FaultDisruptor.run`):

1. wait for its planned time (``fault.synced`` gave the chaos start);
2. ``prepare`` → ``fault.request`` to the broker → wait for ``fault.grant`` (the lease is
   durable in the ledger by then) or a refusal;
3. ``inject`` → ``fault.injected``; on failure ``fault.inject_failed`` (never retried);
4. ``hold`` (``down_s``, or until the actor is stopped);
5. revert with retries (``fault.revert_attempted``/``reverted``/``revert_failed``), even after a
   failed inject, since it may have half-happened; then ``fault.release``.

A fault that never heals by itself has a **dead-man switch** (:mod:`osha.faults._switch`):
the plugin gives its node-side revert (:meth:`~FaultDisruptor.switch_command`) and a shell on
the node (:meth:`~FaultDisruptor.node_runner`); the switch is armed before 3 (a failed arm is
a failed inject: nothing injected), renewed during 4, and collected after each revert.

``teardown`` reverts anything still held (a failure in ``run``).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any, ClassVar, TypedDict, TypeVar

from osha import inventory
from osha.errors import PluginError
from osha.faults import _switch as switch
from osha.faults._config import FaultConfig, load_hosts
from osha.faults._lease import Lease
from osha.faults._revert import RetryPolicy, revert_with_retry
from osha.faults._roles import ROLE_KEY, candidates_of, host_of
from osha.faults.deadman import DEFAULT_STATE_DIR, Runner, Status
from osha.messages import (
    FaultGrant,
    FaultInjected,
    FaultInjectFailed,
    FaultPlanned,
    FaultRelease,
    FaultRequest,
    FaultSync,
    FaultSynced,
)
from osha.plugin import Disruptor, Finding, PluginContext, RequestAborted, RequestTimeout
from osha.schedule import ChaosClock, PlannedFault, cycle_seed, expand, in_cycle, resolve_targets

__all__ = ["FaultConfig", "FaultDisruptor", "load_hosts"]

log = logging.getLogger("osha.disruptors")

_RELEASE_TIMEOUT_S = 5.0


class _Which(TypedDict):
    """Which fault a ``fault.injected`` or ``fault.inject_failed`` is about (typed, so that
    mypy checks ``emit(..., **which)`` against the message's fields)."""

    lease_id: str
    index: int
    action: str
    node: str
    resource: str


#: How long a disruptor waits for the chaos clock (the campaign's warm-up and baseline come
#: first); a stop ends the wait at once.
_SYNC_TIMEOUT_S = 24 * 3600.0


C = TypeVar("C", bound=FaultConfig)


class FaultDisruptor(Disruptor[C]):
    """Base of the ``process``, ``node`` and ``container`` disruptors."""

    config_type: ClassVar[type[Any]] = FaultConfig
    plugin_name: ClassVar[str] = ""  # the entry-point name, recorded in each lease
    policy: ClassVar[RetryPolicy] = RetryPolicy(initial_s=0.5, max_s=5.0, min_window_s=30.0)

    def __init__(self, config: C, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self.hosts: dict[str, inventory.Host] = {}
        self.plan: list[PlannedFault] = []
        self._held: dict[str, Lease] = {}
        self._held_lock = threading.Lock()
        self.schedule_done = threading.Event()  # every planned fault handled (or stopped)

    # -- what a concrete disruptor provides ------------------------------------------------

    def action(self) -> str:
        raise NotImplementedError

    def resource(self) -> str:
        """The service or container acted on; "" for a whole node."""
        return ""

    def probe(self, host: inventory.Host) -> None:
        """Raise PluginError (with a hint) if this node cannot take the fault."""

    def prepare(self, host: inventory.Host) -> dict[str, Any]:
        """Read what revert needs (plain data, no secrets), before the lease is asked for."""
        return {}

    def inject(self, lease: Lease) -> str:
        """Inject the fault; return a detail; raise if it failed (it is never retried)."""
        raise NotImplementedError

    def hold(self, lease: Lease) -> None:
        """Keep the fault for ``down_s``; return early when the actor is stopped."""
        self.ctx.wait(lease.down_s)

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        """Undo the fault of ``lease`` (idempotent); return a detail; raise if it failed."""
        raise NotImplementedError

    #: where the dead-man switches live on the nodes (tests point it elsewhere)
    switch_state_dir: ClassVar[str] = DEFAULT_STATE_DIR

    @classmethod
    def switch_command(cls, config: Any, lease: Lease) -> str | None:
        """The node-side sh command (idempotent) the dead-man switch runs at the lease's
        deadline if osha is gone; None (the default): the fault needs no switch (it heals
        by itself, or the node cannot host one)."""
        return None

    @classmethod
    def node_runner(cls, config: Any, lease: Lease) -> AbstractContextManager[Runner]:
        """A shell on ``lease.node`` for the dead-man switch (a plugin with a
        :meth:`switch_command` provides it): runs a POSIX sh script, returns its exit status
        and output; closes its connection on exit."""
        raise PluginError(f"{cls.__name__} gives a switch command but no node runner",
                          hint="override node_runner(config, lease)")  # fmt: skip

    @classmethod
    def collect_switch(cls, config: Any, lease: Lease) -> Status | None:
        """After a revert of ``lease``: disarm its dead-man switch and say what the node did
        (None: it has none)."""
        key = lease.revert.get(switch.KEY)
        if key is None:
            return None
        with cls.node_runner(config, lease) as run:
            return switch.disarm(run, str(key), state_dir=cls.switch_state_dir)

    def close(self) -> None:
        """Release connections (called from teardown)."""

    # -- plan ------------------------------------------------------------------------------

    @classmethod
    def timeline(cls, config: C, seed: int) -> list[PlannedFault]:
        """The planned faults for ``config`` and this actor's seed: what the run will do."""
        hosts = load_hosts(config)
        candidates = resolve_targets(config.target, list(hosts.values()))
        return expand(config.schedule, config.target, candidates, seed)

    # -- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        self.hosts = load_hosts(self.config)
        self.plan = self.timeline(self.config, self.ctx.seed)
        for name in dict.fromkeys(n for p in self.plan for n in self._candidates(p.node)):
            self.probe(self.hosts[name])

    def _candidates(self, node: str) -> list[str]:
        return candidates_of(self.config, self.hosts, node)

    def check(self) -> list[Finding]:
        findings: list[Finding] = []
        try:
            hosts = load_hosts(self.config)
            plan = self.timeline(self.config, self.ctx.seed)
        except PluginError as exc:
            return [Finding(self.ctx.actor_id, False, exc.message, exc.hint)]
        for name in dict.fromkeys(p.node for p in plan):
            where = f"{self.resource() or self.action()}@{name}"
            try:
                host, found = host_of(self.config, hosts, name)  # a role: resolved live
                if found is not None:
                    findings.append(Finding(where, True, f"{name}: {found.describe()}"))
                self.probe(host)
            except PluginError as exc:
                findings.append(Finding(where, False, exc.message, exc.hint))
            else:
                findings.append(Finding(where, True, f"{self.action()} can run on {name}"))
        return findings

    def teardown(self) -> None:
        for lease in self._holding():
            self._revert_and_release(lease)
        self.close()

    def run(self) -> None:
        try:  # the campaign fixes the chaos start once every actor is up: wait for it
            synced = self.ctx.request(
                FaultSync, timeout_s=_SYNC_TIMEOUT_S, holder=self.ctx.actor_id
            )
        except RequestAborted:
            return  # stopped before the chaos started: nothing was planned or struck
        assert isinstance(synced, FaultSynced)
        clock = ChaosClock(
            synced.chaos_start_wall_s, synced.cycle_s, synced.first_cycle, synced.cycles
        )
        done = set(synced.done)
        running: dict[str, tuple[threading.Thread, float]] = {}  # node -> fault, planned end
        for cycle in clock.numbers():
            if self.ctx.stopping.is_set():
                break
            t0_wall_s = clock.window_wall_s(cycle)
            if clock.cycles > 1 and t0_wall_s + clock.cycle_s <= time.time():
                # A soak's cycle that is over (this incarnation started later: a restart):
                # none of its faults is due any more, and planning it costs ms a cycle.
                continue
            plan = self._cycle_plan(cycle)
            if not done.intersection(p.index for p in plan):  # not planned by an earlier me
                self._emit_plan(plan, t0_wall_s)
            if self._strike(plan, t0_wall_s, done, running):
                break
        for thread, _ in list(running.values()):
            thread.join()  # each ends: its hold returns on stop, and its revert is bounded
        self.schedule_done.set()
        self.ctx.stopping.wait()  # schedule done: stay up (holding nothing) until the run ends

    def _cycle_plan(self, cycle: int) -> list[PlannedFault]:
        """Cycle ``cycle``'s timeline (cycle 0 is :meth:`setup`'s plan)."""
        if cycle == 0:
            return self.plan
        return in_cycle(self.timeline(self.config, cycle_seed(self.ctx.seed, cycle)), cycle)

    def _emit_plan(self, plan: list[PlannedFault], t0_wall_s: float) -> None:
        for p in plan:
            self.ctx.emit(
                FaultPlanned,
                index=p.index,
                round=p.round,
                action=self.action(),
                node=p.node,
                resource=self.resource(),
                planned_offset_s=p.offset_s,
                down_s=p.down_s,
                chaos_start_wall_s=t0_wall_s,
            )

    def _strike(
        self,
        plan: list[PlannedFault],
        t0_wall_s: float,
        done: set[int],
        running: dict[str, tuple[threading.Thread, float]],
    ) -> bool:
        """Start each fault of ``plan`` at its time, in the plan's order; True if the actor
        was stopped meanwhile.

        A fault the plan ends before this one starts (a sequential round's previous target,
        an earlier round, any on the same node) is reverted and released first: one that ran
        late (a slow inject or revert) delays this one (``actual_wall_s`` says by how much)
        instead of overlapping it, which under ``max_down`` lost it (a sequential round with
        ``cooldown_s = 0`` struck only its first target) or without one put two down."""
        for planned in plan:
            if planned.index in done:
                continue
            start_wall_s = t0_wall_s + planned.offset_s
            if self.ctx.wait(max(0.0, start_wall_s - time.time())):
                return True
            for node, (previous, end_wall_s) in list(running.items()):
                if node == planned.node or end_wall_s <= start_wall_s + 1e-6:  # float sums
                    previous.join()  # its hold returns on stop; its revert is bounded
            if self.ctx.stopping.is_set():
                return True
            thread = threading.Thread(
                target=self._one, args=(planned, t0_wall_s), name=f"fault-{planned.index}"
            )
            thread.daemon = True
            running[planned.node] = (thread, start_wall_s + planned.down_s)
            thread.start()
        return False

    # -- one fault ------------------------------------------------------------------------

    def _one(self, planned: PlannedFault, t0_wall_s: float) -> None:
        planned_wall_s = t0_wall_s + planned.offset_s
        lease_id = f"{self.ctx.actor_id}/{planned.index}"
        failed = _Which(lease_id=lease_id, index=planned.index, action=self.action(),
                        node=planned.node, resource=self.resource())  # fmt: skip
        try:
            host, found = host_of(self.config, self.hosts, planned.node)  # a role: live
            failed["node"] = host.name
            revert = self.prepare(host)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed fault; never retried
            self.ctx.emit(FaultInjectFailed, error=f"before the lease: {_text(exc)}", **failed)
            return
        start_wall_s = max(planned_wall_s, time.time())
        lease = Lease(
            lease_id=lease_id,
            holder=self.ctx.actor_id,
            plugin=self.plugin_name,
            index=planned.index,
            action=self.action(),
            node=host.name,
            address=host.address,
            resource=self.resource(),
            groups=host.groups,
            down_s=planned.down_s,
            planned_wall_s=planned_wall_s,
            revert_by_wall_s=start_wall_s + planned.down_s + self.config.revert_timeout_s,
            revert=revert if found is None else {**revert, ROLE_KEY: found.describe()},
        )
        if type(self).switch_command(self.config, lease) is not None:
            lease = replace(lease, revert={**lease.revert, switch.KEY: switch.new_key(lease_id)})
        try:
            wait_s = self.config.lease_timeout_s
            grant = self.ctx.request(FaultRequest, timeout_s=wait_s, wait_s=wait_s, lease=lease,
                                     allow_quorum_loss=self.config.allow_quorum_loss)  # fmt: skip
        except RequestAborted:
            return
        except RequestTimeout as exc:
            self.ctx.emit(FaultInjectFailed, error=f"no lease: {exc.message}", **failed)
            return
        assert isinstance(grant, FaultGrant)
        if not grant.granted:
            log.warning("%s refused: %s", lease.what, grant.reason)
            return
        with self._held_lock:
            self._held[lease.lease_id] = lease
        try:
            self._inject_and_hold(lease, planned_wall_s, failed)
        finally:
            self._revert_and_release(lease)

    def _inject_and_hold(self, lease: Lease, planned_wall_s: float, failed: _Which) -> None:
        cls = type(self)
        command = cls.switch_command(self.config, lease)
        shell = nullcontext(None) if command is None else cls.node_runner(self.config, lease)
        with shell as run:
            watchdog, stage = None, ""
            try:
                if run is not None and command is not None:  # armed before the inject
                    stage = "dead-man switch not armed, nothing injected: "
                    watchdog = switch.arm(run, lease, command, self.ctx.emit,
                                          state_dir=cls.switch_state_dir)  # fmt: skip
                    stage = ""
                actual_wall_s = time.time()
                detail = self.inject(lease)
            except Exception as exc:  # noqa: BLE001 - recorded; never retried; reverted anyway
                self.ctx.emit(FaultInjectFailed, error=stage + _text(exc), **failed)
                return
            self.ctx.emit(
                FaultInjected,
                planned_wall_s=planned_wall_s,
                actual_wall_s=actual_wall_s,
                detail=detail[:2000],
                **failed,
            )
            if watchdog is None:
                self.hold(lease)
            else:
                switch.hold_renewing(watchdog, lease, self.ctx.wait, self.ctx.emit)

    def _revert_and_release(self, lease: Lease) -> None:
        with self._held_lock:
            if self._held.pop(lease.lease_id, None) is None:
                return  # reverted already (run and teardown both try)
        ok = revert_with_retry(
            lease,
            lambda held: type(self).revert_lease(self.config, held),
            self.ctx.emit,
            by="holder",
            policy=self.policy,
            abort=self.ctx.stopping,
            collect=lambda held: type(self).collect_switch(self.config, held),
        )
        try:
            self.ctx.request(
                FaultRelease, timeout_s=_RELEASE_TIMEOUT_S, lease_id=lease.lease_id, reverted=ok
            )
        except (RequestAborted, RequestTimeout) as exc:  # sent; the broker acts on it later
            log.info("release of %s not acknowledged: %s", lease.lease_id, exc.message)

    def _holding(self) -> list[Lease]:
        with self._held_lock:
            return list(self._held.values())


def _text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:2000]
