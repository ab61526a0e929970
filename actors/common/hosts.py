"""Nodes and SSH settings as monitor and disruptor configs declare them, and the SSH check of
``[cloud]``'s nodes that a campaign's preflight runs.

Hosts come from an Ansible inventory file (``inventory = "/etc/kolla/multinode"``), from the
profile (``hosts = { ctl-1 = { address = "10.0.0.11", groups = ["controller"] } }``), or
both: a profile entry overrides the inventory's entry of the same name. ``limit`` keeps only
hosts in the listed groups or with the listed names.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from actors.common.ssh import SshCredentials, SshError, SshTarget, connect
from osha import inventory as inv
from osha.errors import PluginError
from osha.plugin import Finding
from osha.schema import FilePath
from osha.ssh import SshConfig

if TYPE_CHECKING:  # types only: a monitor's child need not import the fault or profile layers
    from osha.faults.disruptor import FaultConfig
    from osha.profile import CloudSettings

__all__ = [
    "HostConfig",
    "Node",
    "SshConfig",
    "check_cloud_ssh",
    "credentials",
    "disruptor_credentials",
    "disruptor_target",
    "resolve_nodes",
]


@dataclass(frozen=True, slots=True)
class HostConfig:
    """One host in the profile. Empty values fall back to the inventory, then to ``ssh``
    (then root, port 22)."""

    address: str = ""
    groups: tuple[str, ...] = ()
    user: str = ""
    port: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    target: SshTarget
    groups: tuple[str, ...] = field(default=())


def credentials(
    ssh: SshConfig, keys: tuple[str, str] = ("ssh.private_key", "ssh.known_hosts")
) -> SshCredentials:
    """The one way osha's plugins build SSH credentials (monitors, disruptors, the preflight
    check of ``[cloud]``). ``keys`` name the private key and known_hosts settings in errors."""
    if not ssh.private_key:
        raise PluginError(
            "no SSH private key given",
            hint=f'set {keys[0]} = "/abs/path/id_ed25519" (and {keys[1]}) on the plugin, or '
            "ssh_key (and known_hosts) in [cloud]",
        )
    for label, path in zip(keys, (ssh.private_key, ssh.known_hosts), strict=True):
        if path and not Path(path).is_absolute():
            raise PluginError(
                f"{label} = {path!r} is a relative path",
                hint="give an absolute path (a campaign resolves relative paths for you)",
            )
    return SshCredentials(
        private_key=ssh.private_key,
        known_hosts=ssh.known_hosts,
        host_key_check=ssh.host_key_check,
        connect_timeout_s=ssh.connect_timeout_s,
    )


def disruptor_credentials(config: FaultConfig) -> SshCredentials:
    """How a disruptor logs in: its ``ssh`` table (``[cloud]`` gives its defaults)."""
    return credentials(config.ssh)


def disruptor_target(
    config: FaultConfig, node: str, address: str, user: str | None = None
) -> SshTarget:
    """Where a disruptor logs in: ``ssh.user``, else the inventory's user, else root; on
    ``ssh.port``."""
    return SshTarget(node, address, config.ssh.port, config.ssh.user or user or "root")


def resolve_nodes(
    inventory: str,
    hosts: dict[str, HostConfig],
    ssh: SshConfig,
    limit: tuple[str, ...] = (),
) -> list[Node]:
    """Every node to watch, in inventory order then profile order. PluginError if none."""
    merged: dict[str, inv.Host] = {}
    if inventory:
        if not Path(inventory).is_absolute():
            raise PluginError(
                f"inventory = {inventory!r} is a relative path",
                hint="give an absolute path (a campaign resolves relative paths for you)",
            )
        try:
            merged.update(inv.load(inventory).hosts)
        except inv.InventoryError as exc:
            raise PluginError(exc.message, hint=exc.hint) from None
    for name, h in hosts.items():
        base = merged.get(name)
        merged[name] = inv.Host(
            name=name,
            address=h.address or (base.address if base else name),
            port=h.port or (base.port if base else None),
            user=h.user or (base.user if base else None),
            groups=tuple(dict.fromkeys(("all", *(base.groups if base else ()), *h.groups))),
            osha_vars=base.osha_vars if base else (),
        )
    nodes = [
        Node(
            h.name,
            SshTarget(h.name, h.address, h.port or ssh.port, h.user or ssh.user or "root"),
            h.groups,
        )
        for h in merged.values()
        if not limit or h.name in limit or set(limit) & set(h.groups)
    ]
    if not nodes:
        raise PluginError(
            "no hosts to watch" + (f" (limit = {list(limit)})" if limit else ""),
            hint='set inventory = "/abs/path/inventory" or hosts = { node = { address = ... } }',
        )
    return nodes


def check_cloud_ssh(cloud: CloudSettings) -> list[Finding]:
    """The campaign's preflight check of ``[cloud]`` (entry point ``osha.preflight: ssh``):
    every inventory host answers SSH, its host key matches ``known_hosts`` (an unknown or
    changed key fails), and ``ssh_key`` logs in. No finding without an inventory or a key."""
    if cloud.inventory is None or cloud.ssh_key is None:
        return []
    hosts = inv.load(cloud.inventory).hosts.values()
    ssh = SshConfig(private_key=cloud.ssh_key, known_hosts=FilePath(cloud.known_hosts or ""))
    creds = credentials(ssh, ("[cloud] ssh_key", "[cloud] known_hosts"))

    def one(host: inv.Host) -> Finding:
        target = SshTarget(
            host.name, host.address, host.port or 22, cloud.ssh_user or host.user or "root"
        )
        try:
            conn = connect(target, creds, prime_interactive=False)
        except SshError as exc:
            return Finding(f"node:{host.name}", False, exc.message, exc.hint)
        try:
            result = conn.exec("true", timeout_s=creds.connect_timeout_s)
        except SshError as exc:
            return Finding(f"node:{host.name}", False, exc.message, exc.hint)
        finally:
            conn.close()
        ok = result.exit_status == 0
        text = "SSH ok, host key verified" if ok else f"`true` exited {result.exit_status}"
        return Finding(f"node:{host.name}", ok, text)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="osha-ssh-check") as pool:
        return list(pool.map(one, hosts))
