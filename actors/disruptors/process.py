"""``process``: kill, stop or freeze a service on a node, over SSH.

It never hits more than it names: the service is a plain name matched exactly, and the
process (group) found for it is refused when it is the node's init, osha's own SSH session or
its node agent (see :mod:`actors.disruptors._process_sh`).
"""

from __future__ import annotations

import enum
import shlex
import signal
import time
from dataclasses import dataclass
from typing import Any

from actors.common.hosts import disruptor_credentials, disruptor_target
from actors.common.ssh import ExecResult, SshPool
from actors.disruptors._node_shell import ShellConfig, ShellDisruptor
from actors.disruptors._process_sh import (
    NO_PROCESS,
    REFUSED,
    check_service_name,
    guard,
    lookup,
    signal_command,
)
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.schema import Name

__all__ = ["KillScope", "ProcessAction", "ProcessConfig", "ProcessDisruptor", "signal_name"]

_UNIT_MISSING = 4  # systemctl's "no such unit"
_POLL_S = 0.5


class ProcessAction(enum.StrEnum):
    KILL = "kill"  # send `signal` (SIGKILL by default); the service's supervisor restarts it
    STOP = "stop"  # systemctl stop, held down_s, then systemctl start
    FREEZE = "freeze"  # SIGSTOP, held down_s, then SIGCONT: hung, not dead


class KillScope(enum.StrEnum):
    GROUP = "group"  # the main process's group (or, if it leads none, it and its children)
    MAIN = "main"  # the main process only


def signal_name(text: str) -> str:
    """``"SIGKILL"``, ``"KILL"``, ``"sigterm"`` or ``"9"`` → the canonical ``"SIGKILL"``.
    ValueError, naming close matches, for anything else."""
    raw = text.strip().upper()
    if raw.isdigit():
        try:
            return signal.Signals(int(raw)).name
        except ValueError:
            raise ValueError(f"signal {text!r} is not a signal number here") from None
    name = raw if raw.startswith("SIG") else f"SIG{raw}"
    if name in signal.Signals.__members__:
        return name
    import difflib  # noqa: PLC0415 - only on the error path

    close = difflib.get_close_matches(name, list(signal.Signals.__members__), n=2)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; e.g. SIGKILL, SIGTERM"
    raise ValueError(f"bad signal name {text!r}{hint}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessConfig(ShellConfig):
    """Settings of ``process``; see :class:`ProcessDisruptor`."""

    service: Name
    action: ProcessAction = ProcessAction.KILL
    signal: str = "SIGKILL"
    scope: KillScope = KillScope.GROUP
    restart_timeout_s: float = 30.0
    command_timeout_s: float = 45.0

    def __post_init__(self) -> None:
        check_service_name(self.service)
        signal_name(self.signal)


def _refused(result: ExecResult, node: str) -> PluginError | None:
    """The error for a guarded command the node refused, None if it was not refused."""
    if result.exit_status != REFUSED:
        return None
    reason = (result.stdout.strip().splitlines() or ["refused"])[-1]
    return PluginError(
        f"{reason} on {node}: nothing was signalled",
        hint="osha never signals the node's init, its own SSH session or its node agent; "
        "check the service name",
    )


class ProcessDisruptor(ShellDisruptor[ProcessConfig]):
    """Kills, stops or freezes a service on the target nodes over SSH (paramiko).

    - ``action = "kill"``: ``signal`` (default SIGKILL; ``"SIGTERM"``, ``"TERM"`` or ``"15"``)
      to the service's process group (``scope = "group"``) or main PID only (``"main"``).
      The main process is systemd's MainPID, else the oldest process named like the service.
      Revert: the service's supervisor (systemd, runit) restarts it; if it is not back within
      ``restart_timeout_s``, ``systemctl start``.
    - ``action = "stop"``: ``systemctl stop``, held ``schedule.down_s``; revert ``systemctl
      start`` (only if it was active before).
    - ``action = "freeze"``: SIGSTOP, held ``down_s``: a hung process, not a dead one; revert
      SIGCONT to the same processes.

    ``stop`` and ``freeze`` never heal by themselves: before the fault goes in, a dead-man
    switch is armed on the node (``osha.faults.deadman``), which runs the revert (``systemctl
    start``, SIGCONT) by itself at the lease's ``revert_by`` unless osha renews it, so a
    ``kill -9`` of osha never leaves the service down. ``kill`` needs none: the service's
    supervisor restarts it.

    Plus the keys of every disruptor (``target``, ``schedule``, ``inventory``,
    ``ssh = { user, port, private_key, known_hosts, ... }``, ...; see
    ``osha.faults.disruptor.FaultConfig``).

    Profile::

        [[disruptors]]
        id = "kill-scheduler"
        plugin = "process"
        service = "nova-scheduler"
        action = "kill"
        signal = "SIGKILL"
        target = { group = "controller", pick = "node:ctl-1" }
        schedule = { start_s = 5, times = 1, down_s = 10 }
    """

    config_type = ProcessConfig
    plugin_name = "process"

    def action(self) -> str:
        return self.config.action.value

    def resource(self) -> str:
        return self.config.service

    def probe(self, host: inventory.Host) -> None:
        service = self.config.service
        if self.config.action is ProcessAction.STOP:
            result = self.exec(host, f"systemctl status {shlex.quote(service)} >/dev/null 2>&1")
            if result.exit_status == _UNIT_MISSING:
                units = self.exec(host, "systemctl list-units --type=service --all 2>/dev/null")
                names = sorted({u.split()[0].removesuffix(".service") for u in
                                units.stdout.splitlines() if u.strip()})  # fmt: skip
                raise PluginError(
                    f"unknown service {service!r} on {host.name}",
                    hint=f"services on {host.name}: {', '.join(names[:40]) or 'none found'}",
                )
            return
        self._guarded_lookup(host)

    def _guarded_lookup(self, host: inventory.Host) -> tuple[int, int]:
        """The service's main PID and its process group on ``host``, refused (PluginError)
        if none runs or if signalling them would hit init, osha's session or its agent."""
        service = self.config.service
        result = self.exec(host, lookup(service))
        if result.exit_status != 0 or len(result.stdout.split()) < 2:
            why = "no process" if result.exit_status == NO_PROCESS else result.stderr.strip()
            raise PluginError(
                f"no running process for service {service!r} on {host.name} ({why[:200]})",
                hint="check the service name (systemctl status NAME on the node); it must be "
                "running before it can be killed or frozen",
            )
        pid, pgid = (int(x) for x in result.stdout.split()[:2])
        group = self.config.scope is KillScope.GROUP
        refused = _refused(self.exec(host, guard(pid, pgid, group=group) + "true"), host.name)
        if refused is not None:
            raise refused
        return pid, pgid

    def prepare(self, host: inventory.Host) -> dict[str, Any]:
        if self.config.action is ProcessAction.STOP:
            active = self.exec(host, f"systemctl is-active {shlex.quote(self.config.service)}")
            return {"was_active": active.exit_status == 0}
        pid, pgid = self._guarded_lookup(host)
        return {"pid": pid, "pgid": pgid}

    def inject(self, lease: Lease) -> str:
        host = self.hosts[lease.node]
        service = shlex.quote(self.config.service)
        if self.config.action is ProcessAction.STOP:
            if not lease.revert.get("was_active"):
                return "already inactive: nothing stopped"
            command = f"systemctl stop {service}"
        else:
            sig = "SIGSTOP" if self.config.action is ProcessAction.FREEZE else self.config.signal
            pid, pgid = int(lease.revert["pid"]), int(lease.revert["pgid"])
            group = self.config.scope is KillScope.GROUP
            command = signal_command(signal_name(sig), pid, pgid, group=group)
        result = self.exec(host, command)
        refused = _refused(result, lease.node)
        if refused is not None:
            raise refused
        if result.exit_status != 0:
            raise PluginError(
                f"{command!r} on {lease.node} exited {result.exit_status}: "
                f"{(result.stderr or result.stdout).strip()[:300]}"
            )
        return f"{command.splitlines()[-1]} on {lease.node}"

    @classmethod
    def switch_command(cls, config: Any, lease: Lease) -> str | None:
        """``systemctl start`` for a stop (of a service that was active), SIGCONT for a freeze
        (guarded like the SIGSTOP); none for a kill: its supervisor restarts it."""
        assert isinstance(config, ProcessConfig)
        if lease.action == ProcessAction.STOP and lease.revert.get("was_active"):
            return f"systemctl start {shlex.quote(config.service)}"
        if lease.action == ProcessAction.FREEZE:
            pid, pgid = int(lease.revert["pid"]), int(lease.revert["pgid"])
            return signal_command("SIGCONT", pid, pgid, group=config.scope is KillScope.GROUP)
        return None

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        assert isinstance(config, ProcessConfig)
        pool = SshPool(disruptor_credentials(config))
        target = disruptor_target(config, lease.node, lease.address)
        service = shlex.quote(config.service)

        def run(command: str) -> ExecResult:
            return pool.exec(target, command, timeout_s=config.command_timeout_s)

        try:
            if lease.action == ProcessAction.STOP:
                if not lease.revert.get("was_active"):
                    return "was inactive before: left as it was"
                return _start(run, service, lease.node)
            if lease.action == ProcessAction.FREEZE:
                pid, pgid = int(lease.revert["pid"]), int(lease.revert["pgid"])
                group = config.scope is KillScope.GROUP
                command = signal_command("SIGCONT", pid, pgid, group=group)
                result = run(f"{command} 2>/dev/null; ps -o stat= -p {pid} || true")
                if result.exit_status == REFUSED:
                    return "SIGCONT refused by the guard: nothing was stopped"
                if result.stdout.strip().startswith("T"):
                    raise PluginError(f"pid {pid} on {lease.node} is still stopped after SIGCONT")
                return f"{command.splitlines()[-1]} on {lease.node}"
            return _await_restart(run, config, service, int(lease.revert["pid"]), lease.node)
        finally:
            pool.close()


def _start(run: Any, service: str, node: str) -> str:
    result = run(f"systemctl start {service} && systemctl is-active {service}")
    if result.exit_status != 0:
        raise PluginError(
            f"systemctl start {service} on {node} failed (exit {result.exit_status}): "
            f"{(result.stderr or result.stdout).strip()[:300]}"
        )
    return f"systemctl start {service} on {node}"


def _await_restart(run: Any, config: ProcessConfig, service: str, old_pid: int, node: str) -> str:
    """A killed service: give its supervisor ``restart_timeout_s`` to bring it back."""
    began_s = time.monotonic()
    deadline_s = began_s + config.restart_timeout_s
    while True:  # bounded by the deadline
        result = run(lookup(config.service))
        if result.exit_status == 0:
            pid = int(result.stdout.split()[0])
            if pid != old_pid:
                waited_s = time.monotonic() - began_s
                return f"restarted by its supervisor: pid {pid} (was {old_pid}), {waited_s:.1f} s"
        if time.monotonic() >= deadline_s:
            break
        time.sleep(_POLL_S)  # a remote poll interval, not a test synchronisation
    detail = _start(run, service, node)
    return f"not back within {config.restart_timeout_s:g} s; {detail}"
