"""``node``: reboot a node over SSH, or power it off or cycle it through its BMC."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from actors.common.hosts import disruptor_credentials, disruptor_target
from actors.common.power import PowerConfig, PowerDriver, PowerError, PowerState, power_driver
from actors.common.ssh import SshError, SshPool, connect
from osha import inventory
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults.disruptor import FaultConfig, FaultDisruptor

__all__ = ["NodeAction", "NodeConfig", "NodeDisruptor"]

_BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
_POLL_S = 0.5


class NodeAction(enum.StrEnum):
    REBOOT = "reboot"  # a soft reboot over SSH
    POWER_OFF = "power-off"  # hard off through the BMC, held down_s, then on
    POWER_CYCLE = "power-cycle"  # hard off and on through the BMC


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig(FaultConfig):
    """Settings of ``node``; see :class:`NodeDisruptor`."""

    action: NodeAction = NodeAction.REBOOT
    power: PowerConfig | None = None
    reboot_command: str = "reboot"
    return_timeout_s: float = 300.0
    command_timeout_s: float = 10.0


def _boot_id(config: NodeConfig, node: str, address: str) -> str:
    conn = connect(
        disruptor_target(config, node, address),
        disruptor_credentials(config),
        prime_interactive=False,
    )
    try:
        result = conn.exec(_BOOT_ID, timeout_s=config.command_timeout_s)
    finally:
        conn.close()
    if result.exit_status != 0 or not result.stdout.strip():
        raise PluginError(f"cannot read the boot id of {node}: {result.stderr.strip()[:200]}")
    return result.stdout.strip()


def _wait_back(config: NodeConfig, lease: Lease, before: str) -> str:
    """Wait until SSH answers with a boot id other than ``before``; the time it took."""
    began_s = time.monotonic()
    deadline_s = began_s + config.return_timeout_s
    last = "no answer yet"
    while True:  # bounded by return_timeout_s
        try:
            now = _boot_id(config, lease.node, lease.address)
        except SshError as exc:
            last = exc.message
        else:
            if now != before:
                return f"back after {time.monotonic() - began_s:.1f} s, new boot id {now[:8]}"
            last = f"still boot id {now[:8]} (not rebooted yet)"
        if time.monotonic() >= deadline_s:
            raise PluginError(
                f"{lease.node} is not back within {config.return_timeout_s:g} s: {last}",
                hint="check its console; osha keeps retrying until the lease's deadline",
            )
        time.sleep(_POLL_S)  # a remote poll interval, not a test synchronisation


class NodeDisruptor(FaultDisruptor[NodeConfig]):
    """Reboots nodes, or powers them off or cycles them out of band, and waits for them.

    - ``action = "reboot"``: ``reboot_command`` over SSH (a soft reboot). Revert: wait until
      SSH answers with a new boot id (``return_timeout_s``); if the node stays off and a
      BMC is configured, power it on.
    - ``action = "power-off"``: hard off through the BMC, held ``schedule.down_s``. Revert:
      power on, then wait for SSH and a new boot id.
    - ``action = "power-cycle"``: chassis power cycle. Revert: power on if off; wait for it.
    - ``power = { driver = "ipmi", user, password_file, bmcs = { NODE = { address, port } } }``
      (see ``actors.common.power``); needed for the power actions.

    Revert waits for the node to boot: give the actor a ``shutdown_s`` that covers a boot,
    or the broker finishes the revert after the run stops the actor.

    Plus the keys of every disruptor (``target``, ``schedule``, ``inventory``, ``ssh``...).

    Profile::

        [[disruptors]]
        id = "cycle-compute"
        plugin = "node"
        action = "power-off"
        shutdown_s = 60
        target = { group = "compute", pick = "node:cmp-2" }
        schedule = { start_s = 5, times = 1, down_s = 15 }

        [disruptors.power]
        user = "admin"
        password_file = "/var/lib/osha-lab/bmc-password"
        bmcs = { cmp-2 = { address = "127.0.0.1", port = 6233 } }
    """

    config_type = NodeConfig
    plugin_name = "node"

    def __init__(self, config: NodeConfig, ctx: Any) -> None:
        super().__init__(config, ctx)
        self._drivers: dict[str, PowerDriver] = {}

    def action(self) -> str:
        return self.config.action.value

    def _driver(self, node: str) -> PowerDriver:
        if self.config.power is None:
            raise PowerError(
                f"{self.config.action.value} needs a power driver, and none is configured",
                hint='add power = { driver = "ipmi", password_file = "...", bmcs = { ... } }',
            )
        driver = self._drivers.get(node)
        if driver is None:
            driver = self._drivers[node] = power_driver(self.config.power, node)
        return driver

    def probe(self, host: inventory.Host) -> None:
        _boot_id(self.config, host.name, host.address)
        if self.config.action is not NodeAction.REBOOT:
            state = self._driver(host.name).state()
            if state is not PowerState.ON:
                raise PluginError(f"{host.name} is powered {state.value}, not on")

    def prepare(self, host: inventory.Host) -> dict[str, Any]:
        return {"boot_id": _boot_id(self.config, host.name, host.address)}

    def inject(self, lease: Lease) -> str:
        action = self.config.action
        if action is NodeAction.POWER_OFF:
            self._driver(lease.node).power_off()
            return f"powered off {lease.node} through its BMC"
        if action is NodeAction.POWER_CYCLE:
            self._driver(lease.node).power_cycle()
            return f"power-cycled {lease.node} through its BMC"
        pool = SshPool(disruptor_credentials(self.config))
        target = disruptor_target(self.config, lease.node, lease.address)
        try:
            result = pool.exec(target, self.config.reboot_command, timeout_s=3.0)
        except SshError as exc:  # the connection drops as the node goes down: expected
            return f"{self.config.reboot_command!r} on {lease.node} (connection dropped: {exc})"
        finally:
            pool.close()
        if result.exit_status not in (0, -1):
            raise PluginError(
                f"{self.config.reboot_command!r} on {lease.node} exited {result.exit_status}: "
                f"{(result.stderr or result.stdout).strip()[:300]}"
            )
        return f"{self.config.reboot_command!r} on {lease.node}"

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        assert isinstance(config, NodeConfig)
        powered = ""
        if config.power is not None and config.power.bmcs.get(lease.node) is not None:
            driver = power_driver(config.power, lease.node)
            try:
                if driver.state() is not PowerState.ON:
                    driver.power_on()
                    powered = "powered on; "
            finally:
                driver.close()
        elif lease.action != NodeAction.REBOOT:
            raise PowerError(f"cannot power {lease.node} on: no BMC configured for it")
        return powered + _wait_back(config, lease, str(lease.revert.get("boot_id", "")))

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()
