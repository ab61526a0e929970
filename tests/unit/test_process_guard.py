"""The ``process`` disruptor never hits more than it names: plain service names matched
exactly, and init, osha's own SSH session and its node agent refused before anything is
signalled. Against a real sshd on loopback; the "node" is this machine, so every process the
tests aim at is a throwaway one of their own (nothing here can signal PID 1: the guard's
refusal of PID 1 is checked with a command that signals nothing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from actors.disruptors._process_sh import REFUSED, guard, lookup
from actors.disruptors.process import KillScope, ProcessAction, ProcessConfig, ProcessDisruptor
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults.disruptor import load_hosts
from osha.schedule import ScheduleConfig, TargetConfig
from osha.schema import FilePath, Name, build
from osha.ssh import SshConfig
from osha.testing import FakeContext, wait_for
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the sshd fixture

# The comm of the throwaway "service" (at most 15 characters), unique to this test session:
# two unit tiers on one machine (two checkouts) must not find each other's processes.
SERVICE = f"osha-t-{os.getpid():x}"


@pytest.mark.parametrize(
    "service", [".*", "nova.*", "-h", "--help", "init", "systemd", "sshd", "ssh.service",
                "a b", "x;reboot", "$(reboot)", "n" * 101, ""],
)  # fmt: skip
def test_a_service_is_a_plain_name_never_a_pattern_nor_init_or_sshd(service: str) -> None:
    value, problems = build(ProcessConfig, {"service": service}, file="p.toml", key="d")
    assert value is None
    assert problems, service


@pytest.mark.parametrize("service", ["nova-api", "apache2.service", "getty@tty1", "ntp_d"])
def test_plain_service_names_are_accepted(service: str) -> None:
    value, problems = build(ProcessConfig, {"service": service}, file="p.toml", key="d")
    assert problems == []
    assert value is not None


def _sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                          check=False)  # fmt: skip


def test_the_guard_refuses_init_and_its_process_group() -> None:
    for pid, pgid, group in ((1, 1, False), (0, 0, False), (4242, 1, True), (1, 4242, True)):
        result = _sh(guard(pid, pgid, group=group) + "echo signalled")
        assert result.returncode == REFUSED, (pid, pgid, result)
        assert "signalled" not in result.stdout
        assert result.stdout.startswith("refused: ")


def test_the_guard_refuses_the_session_that_runs_it() -> None:
    me = os.getpid()  # this process is a parent of the shell running the guard
    result = _sh(guard(me, os.getpgid(me), group=False) + "echo signalled")
    assert result.returncode == REFUSED
    assert "osha's own SSH session or one of its parents" in result.stdout
    child = subprocess.Popen(["sleep", "60"])  # in our process group: a group kill would hit us
    try:
        result = _sh(guard(child.pid, os.getpgid(me), group=True) + "echo signalled")
        assert result.returncode == REFUSED
        assert "holds osha's own SSH session" in result.stdout
    finally:
        child.kill()
        child.wait(10)


def _named(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway process named SERVICE, in its own process group, with ``args``."""
    link = tmp_path / SERVICE
    link.symlink_to(sys.executable)
    proc = subprocess.Popen([str(link), "-c", "import time; time.sleep(120)", *args],
                            start_new_session=True)  # fmt: skip
    wait_for(lambda: psutil.Process(proc.pid).name() == SERVICE, timeout_s=10, what="its name")
    yield proc
    proc.kill()
    proc.wait(10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway process named like a service."""
    yield from _named(tmp_path)


@pytest.fixture
def agent_like(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process named like the service whose command line says it is osha's node agent."""
    yield from _named(tmp_path, "osha-node-agent")


def _disruptor(local_sshd: LocalSshd, tmp_path: Path, **changes: object) -> ProcessDisruptor:  # noqa: F811
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[nodes]\nlocal ansible_host=127.0.0.1 ansible_port={local_sshd.port} "
        f"ansible_user={local_sshd.target.user}\n"
    )
    fields: dict[str, object] = {
        "service": Name(SERVICE),
        "inventory": FilePath(str(inventory)),
        "ssh": SshConfig(
            port=local_sshd.port,
            private_key=FilePath(local_sshd.credentials.private_key),
            known_hosts=FilePath(local_sshd.credentials.known_hosts),
        ),
        "target": TargetConfig(group="nodes"),
        "schedule": ScheduleConfig(),
        "command_timeout_s": 20.0,
    }
    fields.update(changes)
    disruptor = ProcessDisruptor(ProcessConfig(**fields), FakeContext("kill"))  # type: ignore[arg-type]
    disruptor.hosts = load_hosts(disruptor.config)
    return disruptor


def _lease(disruptor: ProcessDisruptor, revert: dict[str, object]) -> Lease:
    return Lease("kill/0", "kill", "process", 0, "kill", "local", "127.0.0.1", SERVICE, (),
                 1.0, time.time(), time.time() + 60, revert)  # fmt: skip


def test_kill_finds_the_service_exactly_and_kills_its_group(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
    service: subprocess.Popen[bytes],
) -> None:
    disruptor = _disruptor(local_sshd, tmp_path)
    host = disruptor.hosts["local"]
    try:
        revert = disruptor.prepare(host)
        assert revert == {"pid": service.pid, "pgid": service.pid}
        detail = disruptor.inject(_lease(disruptor, revert))
        assert detail == f"kill -s KILL -- -{service.pid} on local"
        assert service.wait(10) == -9
    finally:
        disruptor.close()


def test_a_lookup_that_resolves_to_the_node_agent_is_refused_and_nothing_is_signalled(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
    agent_like: subprocess.Popen[bytes],
) -> None:
    disruptor = _disruptor(local_sshd, tmp_path, scope=KillScope.MAIN)
    host = disruptor.hosts["local"]
    try:
        with pytest.raises(PluginError, match="osha's node agent or one of its parents"):
            disruptor.prepare(host)  # before any lease: nothing is held, nothing reverted
        revert = {"pid": agent_like.pid, "pgid": agent_like.pid}  # as if the process changed
        with pytest.raises(PluginError, match="nothing was signalled"):
            disruptor.inject(_lease(disruptor, revert))
        findings = disruptor.check()
        assert [f.ok for f in findings] == [False]  # the health gate says so too
        assert "refused" in findings[0].message
    finally:
        disruptor.close()
    assert agent_like.poll() is None  # alive, never signalled
    assert psutil.Process(agent_like.pid).status() != psutil.STATUS_STOPPED


@pytest.mark.parametrize("scope", [KillScope.GROUP, KillScope.MAIN])
def test_a_freeze_that_resolves_to_the_node_agent_is_refused_and_nothing_is_stopped(
    local_sshd: LocalSshd,  # noqa: F811
    tmp_path: Path,
    agent_like: subprocess.Popen[bytes],
    scope: KillScope,
) -> None:
    """``freeze`` (SIGSTOP) goes through the same lookup and guard as ``kill``."""
    disruptor = _disruptor(local_sshd, tmp_path, action=ProcessAction.FREEZE, scope=scope)
    host = disruptor.hosts["local"]
    try:
        with pytest.raises(PluginError, match="osha's node agent or one of its parents"):
            disruptor.prepare(host)
        revert = {"pid": agent_like.pid, "pgid": agent_like.pid}  # as if the process changed
        with pytest.raises(PluginError, match="nothing was signalled"):
            disruptor.inject(_lease(disruptor, revert))
    finally:
        disruptor.close()
    assert agent_like.poll() is None
    assert psutil.Process(agent_like.pid).status() != psutil.STATUS_STOPPED  # never frozen


def test_a_lookup_is_exact_not_a_pattern(tmp_path: Path, service: subprocess.Popen[bytes]) -> None:
    found = _sh(lookup(SERVICE))
    assert found.stdout.split() == [str(service.pid), str(service.pid)]
    assert _sh(lookup("osha-test")).returncode == 3  # a prefix is another name
    assert _sh(lookup("osha-test-sv")).returncode == 3


def test_a_lookup_finds_a_frozen_service(service: subprocess.Popen[bytes]) -> None:
    """The agent reports a stopped process down with its PID: still the service's process
    (a kill of a frozen service, or its thaw, needs it)."""
    os.kill(service.pid, signal.SIGSTOP)
    try:
        found = _sh(lookup(SERVICE))
    finally:
        os.kill(service.pid, signal.SIGCONT)
    assert found.stdout.split() == [str(service.pid), str(service.pid)]
