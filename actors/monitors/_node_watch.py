"""One node of ``host-services``: keep an SSH stream to the node agent, turn its lines into
state changes, and reconnect with backoff when the node goes away.

Clocks: the agent stamps what it sees with the *node's* wall clock. The watcher maps those
stamps onto this host's monotonic clock with an offset ``mono - node_wall`` taken as the
minimum over recent heartbeats (the one-way delay only ever adds to it), so a process start
time or an exit seen by a pidfd keeps its node-side precision in ``monitor.state``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from actors.common import nodeagent
from actors.common.ssh import (
    Backoff,
    SshAuthError,
    SshConnection,
    SshCredentials,
    SshError,
    SshHostKeyError,
    SshTarget,
    SshUnreachableError,
    close_quietly,
    connect,
    describe,
)
from actors.monitors._kit import Aggregator, StateTracker
from osha.messages.monitor import HostBoot, State
from osha.plugin import PluginContext

__all__ = ["NodeWatcher", "WatchSettings", "fmt_wall"]


def fmt_wall(wall_s: float) -> str:
    """10:42:07.123, local time: for evidence strings."""
    return time.strftime("%H:%M:%S", time.localtime(wall_s)) + f".{int(wall_s % 1 * 1000):03d}"


@dataclass(frozen=True, slots=True)
class WatchSettings:
    credentials: SshCredentials
    python: str
    pty: bool
    heartbeat_timeout_s: float
    reconnect_max_s: float


@dataclass(slots=True)
class _Proc:
    pid: int
    start_wall_s: float
    frozen: bool = False  # down while stopped (SIGSTOP) or traced: the same PID may thaw


class NodeWatcher:
    """A thread per node. Thread-safe: state goes through the tracker and the aggregator."""

    def __init__(
        self,
        name: str,
        target: SshTarget,
        agent: nodeagent.AgentConfig,
        settings: WatchSettings,
        *,
        ctx: PluginContext,
        tracker: StateTracker,
        aggregator: Aggregator,
        stop: threading.Event,
        pkey: paramiko.PKey,
        known: paramiko.HostKeys | None,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.node_target = f"node:{name}"
        self.target = target
        self.agent = agent
        self.settings = settings
        self.ctx = ctx
        self.tracker = tracker
        self.agg = aggregator
        self.stop = stop
        self.pkey = pkey
        self.known = known
        self.on_round = on_round
        self.targets = [f"{n}@{name}" for n, _ in agent.services] + [
            f"{c}@{name}" for c in agent.containers
        ]
        self.boot_id = ""
        self.rounds = 0
        self._offsets: collections.deque[float] = collections.deque(maxlen=64)
        self._procs: dict[str, _Proc] = {}
        self._noise: collections.deque[str] = collections.deque(maxlen=5)
        self._chan: paramiko.Channel | None = None
        self._conn: SshConnection | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"host-services:{name}", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, conn: SshConnection | None = None) -> None:
        self._conn = conn
        self.thread.start()

    def close(self) -> None:
        with self._lock:
            chan, conn = self._chan, self._conn
        if chan is not None:
            close_quietly(chan)
        if conn is not None:
            conn.close()

    def request_round(self) -> bool:
        """Ask the agent for a full round now (answered by a heartbeat). False if offline."""
        with self._lock:
            chan = self._chan
        if chan is None:
            return False
        try:
            chan.sendall(b"r")
        except (OSError, EOFError, paramiko.SSHException):
            return False
        return True

    def _run(self) -> None:
        backoff = Backoff(0.1, self.settings.reconnect_max_s)
        while not self.stop.is_set():  # bounded: each pass waits at least the backoff
            conn = self._conn
            self._conn = None
            try:
                if conn is None:
                    conn = connect(
                        self.target,
                        self.settings.credentials,
                        pkey=self.pkey,
                        known=self.known,
                        prime_interactive=not self.settings.pty,
                    )
                with self._lock:
                    self._conn = conn
                self._stream(conn, backoff)
                evidence = "stream ended"
            except (SshHostKeyError, SshAuthError) as exc:
                self.ctx.log.error("host-services: %s: %s", self.name, describe(exc))
                evidence = describe(exc)
            except SshError as exc:
                evidence = describe(exc)
            finally:
                with self._lock:
                    self._chan, self._conn = None, None
                if conn is not None:
                    conn.close()
            if self.stop.is_set():
                break
            self._lost(evidence)
            self.stop.wait(backoff.next_delay())

    # --- the stream ----------------------------------------------------------------------

    def _stream(self, conn: SshConnection, backoff: Backoff) -> None:
        command = nodeagent.agent_command(self.agent, python=self.settings.python)
        chan = conn.open_stream(command, pty=self.settings.pty)
        chan.settimeout(self.settings.heartbeat_timeout_s)
        with self._lock:
            self._chan = chan
        buf = b""
        while not self.stop.is_set():  # bounded by the stop flag and the heartbeat timeout
            try:
                data = chan.recv(65536)
            except TimeoutError:
                raise SshUnreachableError(
                    f"{self.name}: no heartbeat for {self.settings.heartbeat_timeout_s} s"
                ) from None
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise SshUnreachableError(f"{self.name}: stream lost: {exc}") from None
            if not data:
                status = chan.exit_status if chan.exit_status_ready() else None
                noise = " | ".join(self._noise)
                raise SshUnreachableError(
                    f"{self.name}: node agent stream ended (exit status {status})"
                    + (f": {noise}" if noise else "")
                )
            recv_mono = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                self._handle(raw.decode("utf-8", "replace").rstrip("\r"), recv_mono, backoff)
            if len(buf) > 1 << 16:
                buf = b""  # a runaway line is noise, not protocol

    def _mono(self, wall_s: float, recv_mono: float) -> float:
        if not self._offsets:
            return recv_mono
        return min(wall_s + min(self._offsets), recv_mono)

    def _handle(self, line: str, recv_mono: float, backoff: Backoff) -> None:
        if not line:
            return
        try:
            msg = nodeagent.parse_line(line)
        except nodeagent.ParseError:
            self._noise.append(line[:200])
            self.ctx.log.warning("host-services: %s: %s", self.name, line[:200])
            return
        if isinstance(msg, nodeagent.RoundEnd):
            self._offsets.append(recv_mono - msg.wall_s)
            self._round(self._mono(msg.wall_s, recv_mono))
        elif isinstance(msg, nodeagent.TargetLine):
            self._target_line(msg, recv_mono)
        elif isinstance(msg, nodeagent.Hello):
            self._offsets.clear()
            self._offsets.append(recv_mono - msg.wall_s)
            self._hello(msg, recv_mono)
            backoff.reset()
        else:
            self.ctx.log.warning("host-services: %s agent: %s", self.name, msg.text)

    def _hello(self, msg: nodeagent.Hello, recv_mono: float) -> None:
        previous = self.boot_id
        self.boot_id = msg.boot_id
        if msg.boot_id != previous:
            self.ctx.emit(
                HostBoot,
                target=self.node_target,
                boot_id=msg.boot_id,
                previous=previous,
                observed_mono_s=recv_mono,
            )
            self._procs.clear()
        if previous and previous != msg.boot_id:
            evidence = f"rebooted: boot id {previous} -> {msg.boot_id}"
        else:
            evidence = (
                f"agent connected; boot id {msg.boot_id}; pidfd={'yes' if msg.pidfd else 'no'}"
            )
        self.tracker.emit(self.node_target, State.UP, recv_mono, evidence)

    def _target_line(self, msg: nodeagent.TargetLine, recv_mono: float) -> None:
        target = f"{msg.name}@{self.name}"
        obs = self._mono(msg.obs_wall_s, recv_mono)
        old = self._procs.get(msg.name)
        if msg.state != "up":
            self._procs.pop(msg.name, None)
            if msg.state == "down" and msg.pid:  # frozen: the agent says so with its PID
                self._procs[msg.name] = _Proc(msg.pid, msg.start_wall_s, frozen=True)
            self.tracker.emit(target, State(msg.state), obs, msg.detail)
            return
        if old is not None and old.frozen and old.pid == msg.pid:
            # Thawed: the same process runs again since some time after the last round
            # that saw it stopped, not since it started.
            self._procs[msg.name] = _Proc(msg.pid, msg.start_wall_s)
            self.tracker.emit(target, State.UP, obs, msg.detail)
            return
        start = self._mono(msg.start_wall_s, recv_mono)
        self._procs[msg.name] = _Proc(msg.pid, msg.start_wall_s)
        started = f"pid {msg.pid} started {fmt_wall(msg.start_wall_s)}"
        if old is not None and old.pid != msg.pid and self.tracker.state(target) == "up":
            # Restarted between two looks: the old process was gone by the time the new
            # one started.
            self.tracker.emit(
                target,
                State.DOWN,
                max(start, self.tracker.last_seen(target) or start),
                f"restarted: pid {old.pid} (started {fmt_wall(old.start_wall_s)}) replaced by "
                f"{started}",
            )
        self.tracker.emit(target, State.UP, obs, f"{started} ({msg.detail})", since_mono_s=start)

    def _round(self, at_mono: float) -> None:
        """A heartbeat: every target is re-confirmed in its state as of ``at_mono``."""
        self.rounds += 1
        add, touch, state = self.agg.add, self.tracker.touch, self.tracker.state
        add(self.node_target, ok=True)
        touch(self.node_target, at_mono)
        for target in self.targets:
            touch(target, at_mono)
            add(target, ok=state(target) == "up")
        if self.on_round is not None:
            self.on_round()

    def _lost(self, evidence: str) -> None:
        now = time.monotonic()
        self.tracker.emit(self.node_target, State.UNREACHABLE, now, evidence)
        self.agg.add(self.node_target, ok=False)
        for target in self.targets:
            self.tracker.emit(target, State.UNKNOWN, now, f"node {self.name} unreachable")
