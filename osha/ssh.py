"""The ``ssh = { ... }`` table: how a plugin logs in to the nodes, one vocabulary for monitors
and disruptors, with ``[cloud]`` giving its defaults.

Plain settings only (no paramiko): the profile validates them, core's disruptor contract
declares them, and the plugins build their connections from them
(:func:`actors.common.hosts.credentials`).

Who logs in as whom: a monitor's ``ssh.user`` is the user for hosts whose inventory entry
names none; a disruptor's ``ssh.user`` (default ``[cloud]``'s ``ssh_user``) comes before the
inventory's user. A disruptor logs in on ``ssh.port``; a monitor on the host's own port, else
``ssh.port``. (As before the table existed: one vocabulary, the same logins.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from osha.schema import FilePath

__all__ = ["CLOUD_SSH_KEYS", "FLAT_SSH_KEYS", "SshConfig"]

_NO_PATH = FilePath("")


@dataclass(frozen=True, slots=True)
class SshConfig:
    """``ssh = { user, port, private_key, known_hosts, host_key_check, connect_timeout_s }``.
    Paths must be absolute (a campaign resolves relative ones against the profile's directory
    before the plugin sees them). ``user = ""``: the inventory's user, else root."""

    user: str = ""
    port: int = 22
    private_key: FilePath = _NO_PATH  # FilePath: ${VARS} and relative paths resolved
    known_hosts: FilePath = _NO_PATH
    host_key_check: Literal["strict", "off"] = "strict"
    connect_timeout_s: float = 5.0


#: ``[cloud]``'s keys that default the fields of a plugin's ``ssh`` table. A config type may
#: name its own (a ``ClassVar`` of this name): a disruptor's adds ``ssh_user`` → ``user``.
CLOUD_SSH_KEYS: dict[str, str] = {"ssh_key": "private_key", "known_hosts": "known_hosts"}

#: The flat keys a disruptor took before the ``ssh`` table, and their field in it: a profile
#: that still has one is refused with the new spelling.
FLAT_SSH_KEYS: dict[str, str] = {
    "ssh_key": "private_key",
    "ssh_user": "user",
    "ssh_port": "port",
    "known_hosts": "known_hosts",
    "connect_timeout_s": "connect_timeout_s",
}
