"""What the disruptors that act on a node over SSH share (``process``, ``network``):

- :class:`ShellConfig` (their ``command_timeout_s``) and :class:`ShellDisruptor` (one SSH pool
  per actor, opened at setup, closed at teardown; :meth:`ShellDisruptor.exec` on a host);
- :func:`node_shell`: a POSIX shell on a fault's node for the dead-man switch and the reverts
  (:meth:`osha.faults.disruptor.FaultDisruptor.node_runner`): each script goes as ``sh -c
  '<script>'``, so a login shell that is not POSIX cannot break it; one connection, closed on
  exit;
- :func:`local_run` and :func:`local_shell`: the same on the machine osha runs on (a fault
  whose far end is here: ``network``'s switch-side ``link-down`` in the lab).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from actors.common.hosts import disruptor_credentials, disruptor_target
from actors.common.ssh import ExecResult, SshPool
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults.deadman import Runner
from osha.faults.disruptor import FaultConfig, FaultDisruptor

__all__ = ["ShellConfig", "ShellDisruptor", "local_run", "local_shell", "node_shell"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellConfig(FaultConfig):
    """The keys of every disruptor, and how long one command on a node may take."""

    command_timeout_s: float = 30.0


S = TypeVar("S", bound=ShellConfig)


class ShellDisruptor(FaultDisruptor[S]):
    """A fault disruptor that runs its commands on the nodes over one SSH pool."""

    def setup(self) -> None:
        self.pool = SshPool(disruptor_credentials(self.config))
        super().setup()

    def close(self) -> None:
        if hasattr(self, "pool"):
            self.pool.close()

    def exec(self, host: inventory.Host, command: str) -> ExecResult:
        """``command`` on ``host`` (``command_timeout_s``); the pool opens on first use (a
        pre-flight ``check`` runs without ``setup``)."""
        pool = getattr(self, "pool", None) or SshPool(disruptor_credentials(self.config))
        self.pool = pool
        target = disruptor_target(self.config, host.name, host.address, host.user)
        return pool.exec(target, command, timeout_s=self.config.command_timeout_s)

    @classmethod
    def node_runner(cls, config: Any, lease: Lease) -> AbstractContextManager[Runner]:
        """A POSIX sh on the node over SSH (:func:`node_shell`)."""
        assert isinstance(config, ShellConfig)
        return node_shell(config, lease, config.command_timeout_s)


@contextmanager
def node_shell(config: FaultConfig, lease: Lease, timeout_s: float) -> Iterator[Runner]:
    """Run sh scripts on ``lease.node``; each returns (exit status, stdout + stderr)."""
    pool = SshPool(disruptor_credentials(config))
    target = disruptor_target(config, lease.node, lease.address)

    def run(script: str) -> tuple[int, str]:
        result = pool.exec(target, f"sh -c {shlex.quote(script)}", timeout_s=timeout_s)
        return result.exit_status, result.stdout + result.stderr

    try:
        yield run
    finally:
        pool.close()


def local_run(script: str, timeout_s: float) -> tuple[int, str]:
    """Run a POSIX sh script on this machine; (exit status, stdout + stderr). PluginError if
    it takes longer than ``timeout_s`` (a detached child must not hold its stdout)."""
    try:
        done = subprocess.run(["sh", "-c", script], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise PluginError(f"a command on this machine took longer than {timeout_s:g} s",
                          hint="raise command_timeout_s, or see what blocks it (ps)") from None
    return done.returncode, done.stdout + done.stderr


@contextmanager
def local_shell(timeout_s: float) -> Iterator[Runner]:
    """A :data:`~osha.faults.deadman.Runner` on this machine (nothing to close)."""
    yield lambda script: local_run(script, timeout_s)
