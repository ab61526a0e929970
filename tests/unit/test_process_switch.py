"""The ``process`` disruptor's dead-man switch: which faults get one, the command it runs at
the deadline, and that command run by a real watchdog over a real SSH session (loopback
sshd; the "node" is this machine and the service a throwaway process of this test)."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from actors.common.ssh import ExecResult
from actors.disruptors.process import KillScope, ProcessAction, ProcessConfig, ProcessDisruptor
from osha.faults import Lease, deadman
from osha.schema import Name
from osha.testing import wait_for
from tests.unit.test_process_guard import SERVICE, _disruptor
from tests.unit.test_process_guard import service as service  # noqa: PLC0414 - the fixture
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the sshd fixture


def lease(action: ProcessAction, revert: dict[str, object]) -> Lease:
    return Lease("p/0", "p", "process", 0, action.value, "ctl-1", "10.0.0.11",
                 "nova-scheduler", (), 5.0, time.time(), time.time() + 60, revert)  # fmt: skip


def command(action: ProcessAction, revert: dict[str, object],
            scope: KillScope = KillScope.GROUP) -> str | None:  # fmt: skip
    config = ProcessConfig(service=Name("nova-scheduler"), action=action, scope=scope)
    return ProcessDisruptor.switch_command(config, lease(action, revert))


def test_stop_and_freeze_get_a_switch_kill_needs_none() -> None:
    assert command(ProcessAction.STOP, {"was_active": True}) == "systemctl start nova-scheduler"
    assert command(ProcessAction.STOP, {"was_active": False}) is None  # nothing was stopped
    freeze = command(ProcessAction.FREEZE, {"pid": 41, "pgid": 41})
    assert freeze is not None
    assert freeze.splitlines()[-1] == "kill -s CONT -- -41"
    assert "osha_refuse" in freeze  # guarded like the SIGSTOP it undoes
    main = command(ProcessAction.FREEZE, {"pid": 41, "pgid": 7}, scope=KillScope.MAIN)
    assert main is not None
    assert main.splitlines()[-1] == "kill -s CONT 41"
    # a killed service comes back by its supervisor (runit, systemd): no switch
    assert command(ProcessAction.KILL, {"pid": 41, "pgid": 41}) is None


def test_a_frozen_service_is_continued_by_the_node_when_nobody_renews(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
    service: subprocess.Popen[bytes],
) -> None:
    """As after a kill -9 of osha: armed, frozen, never renewed; the watchdog on the node
    sends SIGCONT at the deadline (ttl + one poll + the scheduling margin)."""
    disruptor = _disruptor(local_sshd, tmp_path, action=ProcessAction.FREEZE)
    config = disruptor.config
    state = tmp_path / "deadman"
    try:
        revert = disruptor.prepare(disruptor.hosts["local"])
        held = Lease("freeze/0", "freeze", "process", 0, "freeze", "local", "127.0.0.1",
                     SERVICE, (), 60.0, time.time(), time.time() + 60, revert)  # fmt: skip
        switch_command = ProcessDisruptor.switch_command(config, held)
        assert switch_command is not None
        ttl_s = 10.0  # the freeze over SSH took 1-3 s on the loaded machine: it must land first
        with ProcessDisruptor.node_runner(config, held) as run:
            began_s = time.monotonic()
            deadman.arm(run, "freeze/0/t", switch_command, ttl_s, state_dir=str(state))
            disruptor.inject(held)
            # the kernel stops it once it is scheduled to take the signal: a wait, not a check
            wait_for(lambda: psutil.Process(service.pid).status() == psutil.STATUS_STOPPED,
                     timeout_s=5.0, what="the freeze")  # fmt: skip
        # osha is "gone": the connection is closed, nothing renews
        wait_for(lambda: psutil.Process(service.pid).status() != psutil.STATUS_STOPPED,
                 timeout_s=deadman.expiry_bound_s(ttl_s), what="SIGCONT from the node")  # fmt: skip
        assert time.monotonic() - began_s >= ttl_s - 0.1  # at the deadline (10 ms ticks)
        with ProcessDisruptor.node_runner(config, held) as run:
            status = deadman.Watchdog.attach(run, "freeze/0/t", state_dir=str(state)).disarm()
        assert (status.state, status.revert_status) == (deadman.State.REVERTED, 0)
    finally:
        disruptor.close()
        subprocess.run(["pkill", "-f", f"{state}/"], check=False)
    assert service.poll() is None  # continued, never killed


def test_the_node_runner_sends_one_sh_c_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A login shell that is not POSIX cannot break the switch's script: it goes as
    ``sh -c '<script>'``; the connection is closed after use."""
    sent: list[str] = []
    closed: list[bool] = []

    class Pool:
        def __init__(self, credentials: object) -> None:
            pass

        def exec(self, target: object, cmd: str, timeout_s: float) -> ExecResult:
            sent.append(cmd)
            return ExecResult(3, "out\n", "err\n", 0.01)

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr("actors.disruptors._node_shell.SshPool", Pool)
    monkeypatch.setattr("actors.disruptors._node_shell.disruptor_credentials", lambda c: None)
    config = ProcessConfig(service=Name("nova-scheduler"), action=ProcessAction.STOP)
    held = lease(ProcessAction.STOP, {"was_active": True})
    with ProcessDisruptor.node_runner(config, held) as run:
        assert run("echo 'a b'; exit 3") == (3, "out\nerr\n")
    assert shlex.split(sent[0]) == ["sh", "-c", "echo 'a b'; exit 3"]
    assert closed == [True]
