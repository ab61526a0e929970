"""The keys every fault disruptor has (:class:`FaultConfig`) and its inventory
(:func:`load_hosts`); :mod:`osha.faults.disruptor` re-exports both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from osha import inventory
from osha.errors import PluginError
from osha.schedule import ScheduleConfig, TargetConfig
from osha.schema import FilePath
from osha.ssh import CLOUD_SSH_KEYS, SshConfig

__all__ = ["FaultConfig", "load_hosts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """Keys every disruptor has (``[cloud]`` gives the defaults of the SSH and inventory keys).

    - ``target = { group, pick }`` and ``schedule = { start_s, times | every_s | random,
      stop_s, down_s, cooldown_s, mode }``: see :mod:`osha.schedule`;
    - ``inventory``: Ansible inventory (INI/YAML) the target group is resolved in;
    - ``ssh = { user, port, private_key, known_hosts, host_key_check, connect_timeout_s }``
      (:class:`osha.ssh.SshConfig`, the monitors' table): ``user`` (default ``[cloud]``'s
      ``ssh_user``) comes before the inventory's ``ansible_user``, else root; ``port`` is
      the port logged in on; ``private_key`` and ``known_hosts`` default to ``[cloud]``'s
      ``ssh_key`` and ``known_hosts`` (host keys are verified);
    - ``revert_timeout_s``: reverts are retried with backoff until the fault's planned end
      plus this; ``lease_timeout_s``: how long to wait for the broker's grant;
    - ``allow_quorum_loss``: this disruptor may take a cluster below ``[guard] quorum`` on
      purpose (the lease records what the guard would have refused).
    """

    target: TargetConfig = field(default_factory=TargetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    inventory: FilePath | None = None
    ssh: SshConfig = field(default_factory=SshConfig)
    revert_timeout_s: float = 120.0
    lease_timeout_s: float = 15.0
    allow_quorum_loss: bool = False

    #: [cloud]'s keys that default the ``ssh`` table: ``ssh_user`` too (see :mod:`osha.ssh`)
    cloud_ssh_keys: ClassVar[dict[str, str]] = {**CLOUD_SSH_KEYS, "ssh_user": "user"}


def load_hosts(config: FaultConfig) -> dict[str, inventory.Host]:
    """The inventory's hosts by name. PluginError if there is none or it cannot be read."""
    if config.inventory is None:
        raise PluginError(
            "no inventory given",
            hint='set inventory = "/path/inventory.ini" on the disruptor, or in [cloud]',
        )
    try:
        return inventory.load(Path(config.inventory)).hosts
    except inventory.InventoryError as exc:
        raise PluginError(exc.message, hint=exc.hint) from None
