"""``container``: stop, kill, restart or pause a container through the node's docker engine."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from actors.common.docker_client import docker_client
from actors.common.hosts import disruptor_credentials, disruptor_target
from actors.disruptors.process import signal_name
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults.disruptor import FaultConfig, FaultDisruptor

__all__ = ["ContainerAction", "ContainerConfig", "ContainerDisruptor"]

_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException, OSError)


class ContainerAction(enum.StrEnum):
    STOP = "stop"  # docker stop (TERM, then KILL after stop_timeout_s)
    KILL = "kill"  # docker kill with `signal`
    RESTART = "restart"  # docker restart
    PAUSE = "pause"  # docker pause (cgroup freezer), held down_s, then unpause


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig(FaultConfig):
    """Settings of ``container``; see :class:`ContainerDisruptor`."""

    container: str
    action: ContainerAction = ContainerAction.STOP
    signal: str = "SIGKILL"
    docker_url: str = "ssh://{user}@{address}"
    stop_timeout_s: float = 10.0
    api_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.container:
            raise ValueError('container must name a container, e.g. container = "nova_compute"')
        signal_name(self.signal)


def _client(config: ContainerConfig, node: str, address: str, user: str | None) -> Any:
    target = disruptor_target(config, node, address, user)
    url = config.docker_url.format(node=node, address=address, user=target.user)
    try:
        return docker_client(
            url,
            target=target,
            credentials=disruptor_credentials(config) if url.startswith("ssh://") else None,
            timeout_s=config.api_timeout_s,
        )
    except _ENGINE_ERRORS as exc:
        raise PluginError(
            f"cannot reach the docker engine of {node} at {url}: {exc}",
            hint="is dockerd running on the node, and docker_url right?",
        ) from None


def _container(client: Any, name: str, node: str) -> Any:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        names = sorted(c.name for c in client.containers.list(all=True))
        raise PluginError(
            f"unknown container {name!r} on {node}",
            hint=f"containers on {node}: {', '.join(names) or 'none'}",
        ) from None


def _restore(container: Any, before: str) -> str:
    """Bring ``container`` back to the state it had before the fault (idempotent)."""
    container.reload()
    now = container.status
    steps: list[str] = []
    if before in ("running", "paused"):
        if now == "paused" and before == "running":
            container.unpause()
            steps.append("unpaused")
        elif now not in ("running", "paused"):
            container.start()  # also clears the "manually stopped" mark of an API stop/kill
            steps.append("started")
        container.reload()
        if before == "paused" and container.status == "running":
            container.pause()
            steps.append("paused again")
    elif now in ("running", "paused"):  # it was not running before the fault
        if now == "paused":
            container.unpause()
        container.stop()
        steps.append("stopped again")
    container.reload()
    if container.status != before and not (before == "exited" and container.status != "running"):
        raise PluginError(f"{container.name} is {container.status}, was {before}")
    return f"{container.name} {', '.join(steps) or 'already'} {container.status}"


class ContainerDisruptor(FaultDisruptor[ContainerConfig]):
    """Stops, kills, restarts or pauses a container (kolla style names, e.g. ``nova_compute``)
    through the docker SDK: the node's engine over ``ssh://`` (osha's SSH key and verified host
    keys) or a configured ``docker_url`` (``{node}``, ``{address}``, ``{user}`` are filled in).

    - ``action = "stop"`` (``stop_timeout_s`` before KILL), ``"kill"`` (``signal``,
      default SIGKILL), ``"restart"``, ``"pause"`` (held ``schedule.down_s``).
    - Revert restores the state the container had before: start, unpause, or nothing. An
      API stop or kill marks a container as stopped by hand, so its restart policy does not
      bring it back (in docker 20.10 even a non-fatal signal such as SIGHUP does): revert
      starts it explicitly, which clears that mark.

    Plus the keys of every disruptor (``target``, ``schedule``, ``inventory``, ``ssh``...).

    Profile::

        [[disruptors]]
        id = "pause-compute"
        plugin = "container"
        container = "nova_compute"
        action = "pause"
        target = { group = "container_hosts", pick = "one" }
        schedule = { start_s = 5, times = 1, down_s = 20 }
    """

    config_type = ContainerConfig
    plugin_name = "container"

    def __init__(self, config: ContainerConfig, ctx: Any) -> None:
        super().__init__(config, ctx)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def action(self) -> str:
        return self.config.action.value

    def resource(self) -> str:
        return self.config.container

    def _get(self, host: inventory.Host) -> Any:
        with self._lock:
            client = self._clients.get(host.name)
            if client is None:
                client = _client(self.config, host.name, host.address, host.user)
                self._clients[host.name] = client
        return _container(client, self.config.container, host.name)

    def probe(self, host: inventory.Host) -> None:
        try:
            self._get(host)
        except _ENGINE_ERRORS as exc:
            raise PluginError(f"docker engine of {host.name}: {exc}") from None

    def prepare(self, host: inventory.Host) -> dict[str, Any]:
        container = self._get(host)
        policy = container.attrs.get("HostConfig", {}).get("RestartPolicy", {}).get("Name", "")
        return {"status": container.status, "id": container.id[:12], "restart_policy": policy}

    def inject(self, lease: Lease) -> str:
        container = self._get(self.hosts[lease.node])
        action = self.config.action
        try:
            if action is ContainerAction.STOP:
                container.stop(timeout=int(self.config.stop_timeout_s))
            elif action is ContainerAction.KILL:
                container.kill(signal=signal_name(self.config.signal))
            elif action is ContainerAction.RESTART:
                container.restart(timeout=int(self.config.stop_timeout_s))
            else:
                container.pause()
        except _ENGINE_ERRORS as exc:
            raise PluginError(f"docker {action.value} {container.name}: {exc}") from None
        container.reload()
        return f"docker {action.value} {container.name} on {lease.node}: now {container.status}"

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        assert isinstance(config, ContainerConfig)
        client = _client(config, lease.node, lease.address, None)
        try:
            container = _container(client, config.container, lease.node)
            return _restore(container, str(lease.revert.get("status", "running")))
        finally:
            client.close()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
