"""host-services without the lab: the node agent run locally, its stream parsed, and the
whole monitor against a throwaway sshd on loopback with fake services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.common import nodeagent
from actors.common.ssh import SshCredentials, SshTarget
from actors.monitors import Aggregator, StateTracker
from actors.monitors._node_watch import NodeWatcher, WatchSettings
from actors.monitors.host_services import HostServicesConfig, HostServicesMonitor
from osha import schema
from osha.errors import PluginError
from osha.messages.monitor import HostBoot, Sample, StateChange
from osha.testing import FakeContext, wait_for
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the fixture

MASTER = """#!{python} -S
import os, signal, time
if os.fork() == 0:          # a worker, with the same name, like oslo.service's workers
    time.sleep(600)
    os._exit(0)
time.sleep(600)
"""


@pytest.fixture
def fake_service(tmp_path: Path) -> Iterator[Any]:
    """Start processes named like a service (a unique name); all killed afterwards."""
    name = f"osha-u{uuid.uuid4().hex[:6]}"  # short: the -m variant stays within comm's 15
    sleeper = tmp_path / name
    sleeper.symlink_to("/bin/sleep")
    master = tmp_path / f"{name}-m"
    master.write_text(MASTER.format(python=sys.executable))
    master.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []

    class Service:
        def __init__(self) -> None:
            self.name = name
            self.master_name = master.name

        def start(self) -> subprocess.Popen[bytes]:
            procs.append(subprocess.Popen([str(sleeper), "600"], start_new_session=True))
            return procs[-1]

        def start_master(self) -> subprocess.Popen[bytes]:
            procs.append(subprocess.Popen([str(master)], start_new_session=True))
            return procs[-1]

    yield Service()
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        p.wait(5)


class AgentRun:
    """The node agent as a local subprocess; lines parsed as they come."""

    def __init__(self, config: nodeagent.AgentConfig) -> None:
        cmd = nodeagent.agent_command(config, python=sys.executable)
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lines: list[nodeagent.Line] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(nodeagent.parse_line(raw.decode().rstrip("\n")))

    def targets(self, name: str) -> list[nodeagent.TargetLine]:
        with self._lock:
            return [x for x in self.lines if isinstance(x, nodeagent.TargetLine) and x.name == name]

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.send(b"q")
        self.proc.wait(5)


def test_agent_reports_a_kill_at_once_and_the_restart_with_its_start_time(
    fake_service: Any,
) -> None:
    first = fake_service.start()
    agent = AgentRun(nodeagent.AgentConfig(0.2, ((fake_service.name, None), ("no-such-svc", None))))
    try:
        # the first round reports both targets, one line each: wait for both lines
        wait_for(
            lambda: agent.targets(fake_service.name) and agent.targets("no-such-svc"),
            timeout_s=10,
            what="first report of both targets",
        )
        assert agent.targets(fake_service.name)[0].state == "up"
        assert agent.targets(fake_service.name)[0].pid == first.pid
        assert agent.targets("no-such-svc")[0].state == "down"
        first.kill()
        down = wait_for(lambda: agent.targets(fake_service.name)[1:], timeout_s=5, what="down")[0]
        assert (down.state, down.detail) == ("down", f"pid {first.pid} exited")
        second = fake_service.start()
        up = wait_for(lambda: agent.targets(fake_service.name)[2:], timeout_s=5, what="up")[0]
        assert (up.state, up.pid) == ("up", second.pid)
        assert down.obs_wall_s <= up.start_wall_s + 0.011 <= up.obs_wall_s + 0.011
        # `r` asks for a full round: answered by a heartbeat
        rounds = len([x for x in agent.lines if isinstance(x, nodeagent.RoundEnd)])
        agent.send(b"r")
        wait_for(
            lambda: len([x for x in agent.lines if isinstance(x, nodeagent.RoundEnd)]) > rounds,
            timeout_s=2,
            what="a round",
        )
    finally:
        agent.stop()


def test_agent_reports_a_frozen_service_down_and_its_thaw_up_with_the_same_pid(
    fake_service: Any,
) -> None:
    """SIGSTOP (os-faults' freeze) leaves the process alive, so its pidfd stays quiet: the
    agent reads the process's state each round."""
    proc = fake_service.start()
    name = fake_service.name
    agent = AgentRun(nodeagent.AgentConfig(0.2, ((name, None),)))
    try:
        wait_for(lambda: agent.targets(name), timeout_s=10, what="first report")
        assert [(t.state, t.pid) for t in agent.targets(name)] == [("up", proc.pid)]
        os.kill(proc.pid, signal.SIGSTOP)
        down = wait_for(lambda: agent.targets(name)[1:], timeout_s=5, what="down")[0]
        assert (down.state, down.pid) == ("down", proc.pid)
        assert down.detail == f"pid {proc.pid} state T (stopped)"
        agent.send(b"r")  # a full rescan finds it, still stopped: no new line
        rounds = len([x for x in agent.lines if isinstance(x, nodeagent.RoundEnd)])
        wait_for(
            lambda: len([x for x in agent.lines if isinstance(x, nodeagent.RoundEnd)]) > rounds + 1,
            timeout_s=5,
            what="two more rounds",
        )
        assert len(agent.targets(name)) == 2
        os.kill(proc.pid, signal.SIGCONT)
        up = wait_for(lambda: agent.targets(name)[2:], timeout_s=5, what="thawed")[0]
        assert (up.state, up.pid, up.start_wall_s) == ("up", proc.pid, down.start_wall_s)
        assert "thawed" in up.detail
        assert "not a restart" in up.detail
        os.kill(proc.pid, signal.SIGSTOP)  # frozen again, then killed while frozen
        wait_for(lambda: agent.targets(name)[3:], timeout_s=5, what="frozen again")
        proc.kill()
        gone = wait_for(lambda: agent.targets(name)[4:], timeout_s=5, what="exit")[0]
        assert [(t.state, t.pid) for t in agent.targets(name)[3:]] == [
            ("down", proc.pid),
            ("down", 0),
        ]
        assert gone.detail == f"pid {proc.pid} exited"
    finally:
        agent.stop()


def test_a_stopped_or_traced_main_process_is_down() -> None:
    from actors.common._node_agent import Proc, Target

    for code, word in (("T", "stopped"), ("t", "traced")):
        target = Target("p", "svc")
        target.running(Proc(os.getpid(), "svc", 1, 1, 10, state="S"), 5.0, 6.0, "1 process")
        target.running(Proc(os.getpid(), "svc", 1, 1, 10, state=code), 5.0, 7.0, "1 process")
        assert (target.state, target.pid) == ("down", os.getpid())
        assert target.detail == f"pid {os.getpid()} state {code} ({word})"
        target.running(Proc(os.getpid(), "svc", 1, 1, 10, state="R"), 5.0, 8.0, "1 process")
        assert (target.state, target.pid) == ("up", os.getpid())
        assert target.detail.startswith(f"pid {os.getpid()} thawed (state R)")
        target.set("down", 0, 0.0, 9.0, "gone")  # closes its pidfd


def test_agent_does_not_take_an_orphaned_worker_for_the_service(fake_service: Any) -> None:
    name = fake_service.master_name
    master = fake_service.start_master()
    agent = AgentRun(nodeagent.AgentConfig(0.1, ((name, None),)))
    try:
        up = wait_for(
            lambda: [t for t in agent.targets(name) if t.state == "up"], timeout_s=10, what="up"
        )[0]
        assert up.pid == master.pid
        wait_for(
            lambda: (
                subprocess.run(
                    ["pgrep", "-P", str(master.pid)], capture_output=True, check=False
                ).stdout
            ),
            timeout_s=5,
            what="the worker",
        )
        os.kill(master.pid, signal.SIGKILL)  # the worker lives on, orphaned
        wait_for(lambda: agent.targets(name)[-1].state == "down", timeout_s=5, what="down")
        agent.send(b"r")  # a full rescan still must not count the orphan
        count = len(agent.lines)
        wait_for(lambda: len(agent.lines) > count, timeout_s=2, what="the round")
        assert agent.targets(name)[-1].state == "down"
        again = fake_service.start_master()
        wait_for(
            lambda: (
                agent.targets(name)[-1].state == "up" and agent.targets(name)[-1].pid == again.pid
            ),
            timeout_s=5,
            what="the new master",
        )
    finally:
        agent.stop()


def _start_ticks(pid: int) -> int:
    """A process's start time in clock ticks since boot, as the agent reads it."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_agent_sees_a_restart_that_came_before_it_noticed_the_exit(fake_service: Any) -> None:
    """Issue 20: on a busy node the agent may notice a kill -9 only after the supervisor
    restarted the service. The restart started while (as far as the agent knew) the dead
    instance still ran, and was taken for one of its leftovers: down forever."""
    first = fake_service.start()
    agent = AgentRun(nodeagent.AgentConfig(0.2, ((fake_service.name, None),)))
    try:
        wait_for(lambda: agent.targets(fake_service.name), timeout_s=10, what="first report")
        busy = psutil.Process(agent.proc.pid)  # the agent (sh exec'ed python)
        busy.suspend()  # a busy node: the agent does not run for a while
        try:
            first.kill()
            first.wait(5)
            second = fake_service.start()  # the supervisor restarts it at once
            started_s = _start_ticks(second.pid) / os.sysconf("SC_CLK_TCK")
            wait_for(
                lambda: time.clock_gettime(time.CLOCK_BOOTTIME) - started_s > 0.1,
                timeout_s=5,
                what="the restart to be 100 ms old before the agent runs again",
            )
        finally:
            busy.resume()
        wait_for(
            lambda: [(t.state, t.pid) for t in agent.targets(fake_service.name)[1:]]
            == [("down", 0), ("up", second.pid)],
            timeout_s=5,
            what="down, then up with the new pid",
        )
    finally:
        agent.stop()


def test_leftover_or_restart_by_supervisor_and_session() -> None:
    """Who started a process in a dead instance's window decides what it is."""
    from actors.common._node_agent import Proc, leftover

    def proc(pid: int, ppid: int, sid: int, start: int) -> Proc:
        return Proc(pid, "svc", ppid, sid, start)

    # runit: runsv (48) supervises; orphans go to the node's init (1)
    runit = [(100, 200, 48, False, 48)]
    new_main, new_worker = proc(60, 48, 48, 150), proc(61, 60, 48, 160)
    orphan, later = proc(55, 1, 48, 120), proc(70, 48, 48, 250)
    by_pid = {p.pid: p for p in (new_main, new_worker, orphan, later)}
    assert [leftover(p, by_pid, runit) for p in (new_main, new_worker, orphan, later)] == [
        False,
        False,
        True,
        False,
    ]
    # systemd (PID 1) supervises and adopts orphans: a restart is a new session
    systemd = [(100, 200, 1, True, 50)]
    restart, orphan = proc(80, 1, 80, 150), proc(56, 1, 50, 120)
    by_pid = {p.pid: p for p in (restart, orphan)}
    assert leftover(restart, by_pid, systemd) is False
    assert leftover(orphan, by_pid, systemd) is True


def test_agent_once_mode_and_bad_pattern() -> None:
    once = nodeagent.agent_command(
        nodeagent.AgentConfig(1.0, (("x", "("),), once=True), python=sys.executable
    )
    out = subprocess.run(["/bin/sh", "-c", once], capture_output=True, timeout=10, check=False)
    assert out.returncode == 2
    assert b"E bad match pattern" in out.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("T 7 1700000000.500000", nodeagent.RoundEnd(7, 1700000000.5)),
        (
            "S p nova-api up 12 1700000000.100000 1700000000.200000 3 processes",
            nodeagent.TargetLine(
                "p", "nova-api", "up", 12, 1700000000.1, 1700000000.2, "3 processes"
            ),
        ),
        (
            "H 1 abc-def 1700000000.000000 1 ctl-1",
            nodeagent.Hello(1, "abc-def", 1700000000.0, True, "ctl-1"),
        ),
        ("E something", nodeagent.Problem("something")),
    ],
)
def test_agent_lines_parse(line: str, expected: object) -> None:
    assert nodeagent.parse_line(line) == expected


@pytest.mark.parametrize("line", ["bash: python3: command not found", "S x y up", "T x y"])
def test_noise_is_not_protocol(line: str) -> None:
    with pytest.raises(nodeagent.ParseError):
        nodeagent.parse_line(line)


def _watcher(ctx: FakeContext) -> NodeWatcher:
    creds = SshCredentials(private_key="/k", host_key_check="off")
    return NodeWatcher(
        "n1",
        SshTarget("n1", "127.0.0.1"),
        nodeagent.AgentConfig(0.2, (("svc", None),)),
        WatchSettings(creds, "python3", True, 2.0, 1.0),
        ctx=ctx,
        tracker=StateTracker(ctx),
        aggregator=Aggregator(),
        stop=threading.Event(),
        pkey=None,
        known=None,
    )


def test_a_restart_between_two_looks_is_down_then_up_with_both_pids() -> None:
    ctx = FakeContext()
    w = _watcher(ctx)
    handle = w._handle  # the stream's line handler, fed directly
    from actors.common.ssh import Backoff

    b = Backoff()
    handle("H 1 boot-a 1000.000000 0 n1", 50.0, b)  # node wall 1000 = our mono 50
    handle("S p svc up 10 990.000000 1000.000000 1 process", 50.0, b)
    handle("T 1 1000.200000", 50.2, b)
    handle("S p svc up 11 1000.300000 1000.400000 1 process", 50.4, b)  # new pid, no exit seen
    states = [(c.state, c.previous) for c in ctx.of(StateChange) if c.target == "svc@n1"]
    assert states == [("up", "unknown"), ("down", "up"), ("up", "down")]
    down, up = [c for c in ctx.of(StateChange) if c.target == "svc@n1"][1:]
    assert "pid 10" in down.evidence
    assert "pid 11" in down.evidence
    assert down.last_good_mono_s == pytest.approx(50.2)  # the last heartbeat
    assert down.first_bad_mono_s == pytest.approx(50.3)  # the new process's start
    assert up.first_bad_mono_s == pytest.approx(50.3)
    # a reboot: the stream drops, then the agent says hello with a new boot id
    w._lost("stream ended")
    assert w.tracker.state("svc@n1") == "unknown"
    handle("H 1 boot-b 1010.000000 0 n1", 60.0, b)
    boots = ctx.of(HostBoot)
    assert [(x.boot_id, x.previous) for x in boots] == [("boot-a", ""), ("boot-b", "boot-a")]
    assert "rebooted" in [c for c in ctx.of(StateChange) if c.target == "node:n1"][-1].evidence


def test_a_freeze_is_down_with_its_pid_and_a_thaw_is_up_when_seen() -> None:
    ctx = FakeContext()
    w = _watcher(ctx)
    from actors.common.ssh import Backoff

    b = Backoff()
    w._handle("H 1 boot-a 1000.000000 1 n1", 50.0, b)  # node wall 1000 = our mono 50
    w._handle("S p svc up 10 990.000000 1000.000000 1 process", 50.0, b)
    w._handle("T 1 1000.200000", 50.2, b)
    w._handle("S p svc down 10 990.000000 1000.400000 pid 10 state T (stopped)", 50.4, b)
    w._handle("T 2 1000.400000", 50.4, b)
    w._handle("T 3 1000.600000", 50.6, b)
    thaw = "pid 10 thawed (state S): the same process, not a restart"
    w._handle(f"S p svc up 10 990.000000 1000.800000 {thaw}", 50.8, b)
    down, up = [c for c in ctx.of(StateChange) if c.target == "svc@n1"][1:]
    assert (down.state, down.evidence) == ("down", "pid 10 state T (stopped)")
    assert down.last_good_mono_s == pytest.approx(50.2)
    assert down.first_bad_mono_s == pytest.approx(50.4)
    assert (up.state, up.evidence) == ("up", thaw)
    assert up.last_good_mono_s == pytest.approx(50.6)  # the last round that saw it stopped
    assert up.first_bad_mono_s == pytest.approx(50.8)  # not its start time (990)


def _config(**data: Any) -> HostServicesConfig:
    cfg, problems = schema.build(HostServicesConfig, data, file="t")
    assert not problems, problems
    assert cfg is not None
    return cfg


def test_bad_settings_are_refused_before_connecting(tmp_path: Path) -> None:
    key = str(tmp_path / "k")
    cases = [
        (
            {"hosts": {"a": {}}, "ssh": {"private_key": key}, "match": {"x": "("}},
            "regular expression",
        ),
        (
            {"hosts": {"a": {}}, "ssh": {"private_key": key}, "heartbeat_timeout_s": 0.1},
            "heartbeat",
        ),
        ({"ssh": {"private_key": key}}, "no hosts"),
        ({"hosts": {"a": {}}, "ssh": {"private_key": "rel/key"}}, "relative"),
        ({"hosts": {"a": {}}, "inventory": "inv.ini", "ssh": {"private_key": key}}, "relative"),
    ]
    for data, expected in cases:
        mon = HostServicesMonitor(_config(**data), FakeContext())
        with pytest.raises(PluginError, match=expected):
            mon.setup()
        findings = mon.check()
        assert [f.ok for f in findings] == [False]
        assert expected in findings[0].message.lower() + findings[0].message


@pytest.mark.timeout(60)
def test_monitor_over_ssh_sees_a_kill_and_a_restart(
    local_sshd: LocalSshd,  # noqa: F811 - the imported fixture, requested by name
    fake_service: Any,
) -> None:
    proc = fake_service.start()
    cfg = _config(
        interval_s=0.2,
        hosts={
            "local": {
                "address": "127.0.0.1",
                "port": local_sshd.port,
                "user": local_sshd.target.user,
            }
        },
        services={"all": [fake_service.name]},
        python=sys.executable,
        ssh={
            "private_key": local_sshd.credentials.private_key,
            "known_hosts": local_sshd.credentials.known_hosts,
        },
    )
    ctx = FakeContext("hosts")
    mon = HostServicesMonitor(cfg, ctx)
    target = f"{fake_service.name}@local"
    findings = mon.check()
    assert all(f.ok for f in findings), findings
    mon.setup()
    try:
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=10, what="up")
        assert mon.full_round() < 1.0
        proc.kill()
        wait_for(lambda: mon.tracker.state(target) == "down", timeout_s=5, what="down")
        again = fake_service.start()
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=5, what="up again")
        os.kill(again.pid, signal.SIGSTOP)
        wait_for(lambda: mon.tracker.state(target) == "down", timeout_s=5, what="frozen")
        [frozen] = [f for f in mon.check() if not f.ok]  # the pre-flight says what to do
        assert f"pid {again.pid} state T (stopped)" in frozen.message
        assert f"kill -CONT {again.pid}" in frozen.hint
        os.kill(again.pid, signal.SIGCONT)
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=5, what="thawed")
        mon.poll()
    finally:
        mon.teardown()
    changed = [c for c in ctx.of(StateChange) if c.target == target]
    assert [c.state for c in changed] == ["up", "down", "up", "down", "up"]
    assert changed[3].evidence == f"pid {again.pid} state T (stopped)"
    assert "thawed" in changed[4].evidence
    samples = [s for s in ctx.of(Sample) if s.target == target]
    assert samples
    assert samples[0].count > 0
