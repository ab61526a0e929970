"""The node side of ``host-services``: one long-lived process per node that reports changes.

This file is *shipped*, not imported: :mod:`actors.common.nodeagent` sends its source over
SSH and runs it with the node's ``python3`` (3.7+, standard library only); it forks nothing:

- services are found by scanning ``/proc`` (``stat``, and ``cmdline`` only when needed);
- each running service's main process is watched with a pidfd (Linux ≥ 5.3, Python ≥ 3.9),
  so an exit wakes the agent at once (a busy node: maybe after the restart); else it polls;
  and each round reads its state: stopped (``T``, SIGSTOP) or traced (``t``) is *down*;
- containers are inspected through the docker API on its unix socket, and their main
  process is watched with a pidfd too.

Protocol, one line per message, fields separated by one space (the last may hold spaces)::

    H <version> <boot_id> <wall_s> <pidfd 0|1> <hostname>        once, at start
    S <p|c> <name> <up|down|unknown> <pid> <start_wall_s> <obs_wall_s> <detail>
    T <round> <wall_s>                                            end of a round (heartbeat)
    E <text>                                                      a problem the agent hit

``S`` lines come only when a target's state or main process changes (``down`` with a PID: it
is frozen). The monitor writes ``r`` for a full round now (answered by a ``T``), ``q`` to
stop. With a pty the agent puts the terminal in raw mode (no echo, no CR/LF translation) and
dies with the session.

Config: argv[1] is base64 of JSON ``{"interval_s": 0.2, "services": [[name, regex|null], ...],
"containers": [name, ...], "docker_socket": path, "once": false}``.
"""

from __future__ import annotations

import base64
import calendar
import errno
import json
import os
import re
import select
import socket
import sys
import time
import tty
from typing import Any

VERSION = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
STOPPED = {"T": "stopped", "t": "traced"}  # /proc/<pid>/stat states of a frozen process
FAST_RESCAN_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32)  # after an exit: catch the restart quickly


def out(line: str) -> None:
    data = (line.replace("\n", " ") + "\n").encode("utf-8", "replace")
    while data:
        try:
            n = os.write(1, data)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise SystemExit(0) from None  # the session is gone
        data = data[n:]


def boot_offset_s() -> float:
    """wall time - boot time, so that /proc start ticks become wall-clock seconds."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Proc:
    __slots__ = ("cmdline", "comm", "pid", "ppid", "sid", "start_ticks", "state")

    def __init__(
        self, pid: int, comm: str, ppid: int, sid: int, start_ticks: int, *, state: str = "R"
    ) -> None:
        self.pid, self.comm, self.ppid, self.start_ticks = pid, comm, ppid, start_ticks
        self.sid, self.state = sid, state  # session id; R, S, D, T (stopped), t (traced), ...
        self.cmdline: list[str] | None = None

    def argv(self) -> list[str]:
        if self.cmdline is None:
            raw = read(f"/proc/{self.pid}/cmdline") or b""
            self.cmdline = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        return self.cmdline


def stat_of(pid: int) -> Proc | None:
    raw = read(f"/proc/{pid}/stat")
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    lpar, rpar = text.find("("), text.rfind(")")
    fields = text[rpar + 2 :].split()
    if lpar < 0 or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # gone, or a zombie: dead for our purpose
    comm, start = text[lpar + 1 : rpar], int(fields[19])
    return Proc(pid, comm, int(fields[1]), int(fields[3]), start, state=fields[0])


def reaps_orphans(pid: int) -> bool:
    """Is ``pid`` the init of its PID namespace, which adopts every orphan in it?"""
    status = (read(f"/proc/{pid}/status") or b"").decode("utf-8", "replace").splitlines()
    nspid = [line.split() for line in status if line.startswith("NSpid:")]
    return nspid[0][-1] == "1" if nspid else pid == 1


class Rule:
    """How to recognise a service's processes: a regex on the command line, or the name:
    the process name (comm, 15 characters at most) is the service name, or it with the ``:``
    setproctitle adds (oslo.service: ``nova-conductor: master process [...]``); longer names
    are confirmed on the command line. ``python3 /usr/bin/<name> ...`` matches too."""

    def __init__(self, name: str, pattern: str | None) -> None:
        self.name, self.comm = name, name[:15]
        self.regex = re.compile(pattern) if pattern else None

    def _named(self, word: str) -> bool:
        return os.path.basename(word).rstrip(":") == self.name

    def matches(self, p: Proc) -> bool:
        if self.regex is not None:
            return self.regex.search(" ".join(p.argv())) is not None
        comm = p.comm
        if comm == self.comm or comm.rstrip(":") == self.comm:
            if len(self.name) < 15:
                return True
            words = " ".join(p.argv()).split()  # comm is cut at 15 characters: confirm
            return any(self._named(w) for w in words[:4])
        if comm.startswith("python"):  # `python3 [-flags] /usr/bin/nova-scheduler ...`
            words = " ".join(p.argv()).split()
            script = next((w for w in words[1:4] if not w.startswith("-")), "")
            return self._named(script)
        return False


def leftover(p: Proc, by_pid: dict[int, Proc], dead: list[tuple[int, int, int, bool, int]]) -> bool:
    """A process that started while a dead instance ran (before we saw it exit) is its
    leftover, unless it descends from a restart: a child of the dead main's supervisor.
    Orphans go to their namespace's init; if the supervisor is that init (systemd), a
    restart is also a new session (systemd starts each service in one), a leftover is not.
    """
    inside = [w for w in dead if w[0] <= p.start_ticks <= w[1]]
    if not inside:
        return False
    root = p
    for _ in range(len(by_pid)):  # up to the first ancestor that is not one of the service's
        parent = by_pid.get(root.ppid)
        if parent is None:
            break
        root = parent
    return not any(
        root.ppid == sup and (not reaps or (root.sid == root.pid and root.sid != sid))
        for _, _, sup, reaps, sid in inside
    )


class Target:
    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name, self.state, self.detail = kind, name, "", ""
        self.pid, self.pidfd, self.start_wall = 0, -1, 0.0
        # The processes of the running instance, and leftovers of a dead one (orphaned
        # workers of a killed master): those never count as the service running again.
        self.family: set[int] = set()
        self.stale: set[int] = set()
        self.start_ticks = -1  # of the main process
        self.supervisor = self.sid = 0  # the main process's parent (runsv, systemd) and session
        # Dead instances: (start ticks, exit seen ticks, supervisor, it reaps orphans, sid).
        self.dead_windows: list[tuple[int, int, int, bool, int]] = []

    def set(self, state: str, pid: int, start_wall: float, obs: float, detail: str) -> None:
        if state == self.state and pid == self.pid:
            return
        if pid != self.pid:
            if self.pidfd >= 0:
                os.close(self.pidfd)
            self.pidfd = -1
            if pid and hasattr(os, "pidfd_open"):
                try:
                    self.pidfd = os.pidfd_open(pid)
                except OSError:
                    self.pidfd = -1  # gone already: the next scan sees it
        self.state, self.pid, self.start_wall, self.detail = state, pid, start_wall, detail
        out(f"S {self.kind} {self.name} {state} {pid} {start_wall:.6f} {obs:.6f} {detail}")

    def running(self, p: Proc, start_wall: float, obs: float, detail: str) -> None:
        """``p`` is the main process: up, or down while it is stopped or traced."""
        if p.state in STOPPED:
            detail = f"pid {p.pid} state {p.state} ({STOPPED[p.state]})"
        elif self.state == "down" and self.pid == p.pid:
            detail = f"pid {p.pid} thawed (state {p.state}): the same process, not a restart"
        self.set("down" if p.state in STOPPED else "up", p.pid, start_wall, obs, detail)


def docker_inspect(sock: str, name: str, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
    """GET /containers/NAME/json over the unix socket: (HTTP status, body or None)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        s.connect(sock)
        s.sendall(f"GET /containers/{name}/json HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        chunks = []
        for _ in range(10000):  # bounded: a few MB at most
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, json.loads(body.decode()) if status == 200 else None


def rfc3339_to_epoch(text: str) -> float:
    """'2024-05-01T10:00:00.123456789Z' → epoch seconds (docker always reports UTC)."""
    main, _, frac = text.rstrip("Z").partition(".")
    whole = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + frac[:9]) if frac else 0.0)


class Agent:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.interval_s = float(cfg.get("interval_s", 1.0))
        self.rules = [Rule(n, p) for n, p in cfg.get("services", [])]
        self.services = {r.name: Target("p", r.name) for r in self.rules}
        self.containers = {n: Target("c", n) for n in cfg.get("containers", [])}
        self.docker_socket = cfg.get("docker_socket") or "/var/run/docker.sock"
        self.once = bool(cfg.get("once"))
        self.me = {os.getpid(), os.getppid()}
        self.round = 0
        self.fast: list[float] = []
        self.stdin_open = True

    def scan(self, wanted: list[Rule]) -> None:
        obs = time.time()
        offset = boot_offset_s()
        found: dict[str, list[Proc]] = {r.name: [] for r in wanted}
        try:
            pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
        except OSError as exc:
            out(f"E cannot list /proc: {exc}")
            return
        for p in filter(None, (stat_of(pid) for pid in pids if pid not in self.me)):
            for rule in wanted:
                if rule.matches(p):
                    found[rule.name].append(p)
        for rule in wanted:
            target = self.services[rule.name]
            alive = {p.pid for p in found[rule.name]}
            if target.pid and target.pid not in alive:
                target.stale |= target.family  # the main process died: its workers are leftovers
            target.stale &= alive
            by_pid = {p.pid: p for p in found[rule.name]}
            procs = [p for p in found[rule.name] if p.pid not in target.stale]
            procs = [p for p in procs if not leftover(p, by_pid, target.dead_windows)]
            if not procs:
                target.set("down", 0, 0.0, obs, "no process matches")
                continue
            pids_found = {p.pid for p in procs}
            roots = [p for p in procs if p.ppid not in pids_found] or procs
            main = min(roots, key=lambda p: (p.start_ticks, p.pid))
            target.family = pids_found
            target.start_ticks = main.start_ticks
            target.supervisor, target.sid = main.ppid, main.sid
            start = offset + main.start_ticks / CLK_TCK
            detail = f"{len(procs)} process{'es' if len(procs) > 1 else ''}"
            target.running(main, start, obs, detail)

    def states(self, rescanned: list[Rule]) -> None:
        """The state of each watched main process not ``rescanned``: a pidfd says
        when it exits (stat_of is None then), not when it is frozen."""
        obs, scanned = time.time(), {r.name for r in rescanned}
        for t in self.services.values():
            p = stat_of(t.pid) if t.pidfd >= 0 and t.name not in scanned else None
            if p is not None:
                t.running(p, t.start_wall, obs, t.detail)

    def inspect(self, names: list[str]) -> None:
        for name in names:
            target = self.containers[name]
            obs = time.time()
            try:
                status, body = docker_inspect(self.docker_socket, name, max(0.5, self.interval_s))
            except (OSError, ValueError) as exc:
                target.set("unknown", 0, 0.0, obs, f"docker API {self.docker_socket}: {exc}")
                continue
            if status == 404 or body is None:
                target.set("down", 0, 0.0, obs, f"no such container (HTTP {status})")
                continue
            st = body.get("State") or {}
            running = bool(st.get("Running")) and not st.get("Paused") and not st.get("Restarting")
            status_text = f"{st.get('Status', '?')} restarts={body.get('RestartCount', '?')}"
            if running:
                start = rfc3339_to_epoch(st.get("StartedAt") or "1970-01-01T00:00:00Z")
                target.set("up", int(st.get("Pid") or 0), start, obs, status_text)
            else:
                target.set("down", 0, 0.0, obs, f"{status_text} exit={st.get('ExitCode')}")

    def do_round(self, full: bool) -> None:
        """Rescan what is not known to run (all of it when ``full`` or without pidfds)."""
        rules = [r for r in self.rules if full or self.services[r.name].pidfd < 0]
        if rules:
            self.scan(rules)
        self.states(rules)
        names = [n for n, t in self.containers.items() if full or t.pidfd < 0]
        if names:
            self.inspect(names)
        self.round += 1
        out(f"T {self.round} {time.time():.6f}")

    def on_exit(self, target: Target) -> None:
        obs = time.time()
        pid = target.pid
        target.stale |= target.family - {pid}
        if target.kind == "p" and target.start_ticks >= 0:
            # When we *saw* the exit: a busy node sees it after the restart (see leftover()).
            exit_ticks = int((obs - boot_offset_s()) * CLK_TCK)
            sup = target.supervisor
            window = (target.start_ticks, exit_ticks, sup, reaps_orphans(sup), target.sid)
            target.dead_windows = [*target.dead_windows[-3:], window]
        target.set("down", 0, 0.0, obs, f"pid {pid} exited")
        self.fast = [obs + d for d in FAST_RESCAN_S if d < self.interval_s]

    def run(self) -> None:
        boot_id = (read("/proc/sys/kernel/random/boot_id") or b"?").decode().strip()
        pidfd = int(hasattr(os, "pidfd_open"))
        out(f"H {VERSION} {boot_id} {time.time():.6f} {pidfd} {socket.gethostname()}")
        self.do_round(full=True)
        if self.once:
            return
        next_round = time.monotonic() + self.interval_s
        while self.step(next_round):  # runs until `q`, SIGHUP (pty closed) or a write fails
            if time.monotonic() >= next_round:
                self.do_round(full=False)
                next_round = max(
                    next_round + self.interval_s, time.monotonic() + self.interval_s / 10
                )

    def step(self, next_round: float) -> bool:
        """Wait for an exit, a command or the next timer; handle it. False: stop."""
        wake = next_round - time.monotonic()
        if self.fast:
            wake = min(wake, self.fast[0] - time.time())
        targets = [*self.services.values(), *self.containers.values()]
        watched = {t.pidfd: t for t in targets if t.pidfd >= 0}
        fds = list(watched) + ([0] if self.stdin_open else [])
        try:
            ready, _, _ = select.select(fds, [], [], max(0.0, wake))
        except InterruptedError:
            return True
        for fd in ready:
            if fd in watched:
                self.on_exit(watched[fd])
            elif not self.command():
                return False
        if self.fast and time.time() >= self.fast[0]:
            self.fast = [t for t in self.fast if t > time.time()]
            self.scan([r for r in self.rules if self.services[r.name].pidfd < 0])
            self.inspect([n for n, t in self.containers.items() if t.pidfd < 0])
        return True

    def command(self) -> bool:
        """Read what the monitor wrote: ``r`` = a full round now, ``q`` = stop."""
        try:
            data = os.read(0, 64)
        except OSError:
            data = b""
        if not data:
            self.stdin_open = False  # no stdin: carry on until the session ends
        if b"q" in data:
            return False
        if b"r" in data:
            self.do_round(full=True)
        return True


def main() -> None:
    cfg = json.loads(base64.b64decode(sys.argv[1]).decode())
    if os.isatty(0):
        tty.setraw(0)  # no echo of what the monitor writes, no \n → \r\n on output
    try:
        Agent(cfg).run()
    except re.error as exc:
        out(f"E bad match pattern: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
