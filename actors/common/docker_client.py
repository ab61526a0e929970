"""A docker SDK client for a node's engine: over ``ssh://`` through osha's own SSH layer, or a
configured URL (``unix://``, ``tcp://``).

Why not ``docker.DockerClient(base_url="ssh://...")`` as is: its paramiko transport reads
``~/.ssh/config`` and the *system* known_hosts of whoever runs osha, and leaves TCP_NODELAY off.
Here the SSH connection comes from :func:`actors.common.ssh.connect` (the profile's key and
known_hosts, host keys verified, TCP_NODELAY, timeouts), and the SDK talks HTTP to
``docker system dial-stdio`` on the node over channels of that connection, exactly as the SDK's
own ssh transport does.
"""

from __future__ import annotations

import threading
from typing import Any

import docker
from docker.transport.sshconn import SSHHTTPAdapter

from actors.common.ssh import SshConnection, SshCredentials, SshTarget, connect

__all__ = ["docker_client"]

_PLACEHOLDER_API = "1.41"  # replaced by the engine's own version right after connecting


class _Connector:
    """What the SDK's adapter expects of a paramiko SSHClient: ``get_transport`` and
    ``close``, backed by one osha SSH connection, reconnected when it died."""

    def __init__(self, target: SshTarget, credentials: SshCredentials) -> None:
        self._target = target
        self._credentials = credentials
        self._lock = threading.Lock()
        self._conn: SshConnection | None = None

    def get_transport(self) -> Any:
        with self._lock:
            if self._conn is None or not self._conn.alive:
                self._conn = connect(self._target, self._credentials, prime_interactive=False)
            return self._conn.transport

    def connect(self, **_kwargs: Any) -> None:
        self.get_transport()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Adapter(SSHHTTPAdapter):  # type: ignore[misc]  # docker ships no type information
    def __init__(self, connector: _Connector, base_url: str, timeout_s: float) -> None:
        super().__init__(base_url, timeout=timeout_s, shell_out=True)  # no paramiko of its own
        self.ssh_client = connector

    def _connect(self) -> None:
        self.ssh_client.connect()


def docker_client(
    url: str,
    *,
    target: SshTarget | None = None,
    credentials: SshCredentials | None = None,
    timeout_s: float = 30.0,
) -> docker.DockerClient:
    """A DockerClient for ``url``. For ``ssh://`` URLs, ``target`` and ``credentials`` say how
    to log in; other URLs go to the SDK unchanged."""
    if not url.startswith("ssh://"):
        return docker.DockerClient(base_url=url, timeout=int(timeout_s))
    if target is None or credentials is None:
        raise ValueError("an ssh:// docker URL needs an SSH target and credentials")
    api = docker.APIClient(
        base_url=url, version=_PLACEHOLDER_API, timeout=int(timeout_s), use_ssh_client=True
    )
    adapter = _Adapter(_Connector(target, credentials), url, timeout_s)
    api._custom_adapter = adapter  # replace the SDK transport with ours
    api.mount("http+docker://ssh", adapter)
    api._version = api._retrieve_server_version()  # as the SDK does for "auto"
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client
