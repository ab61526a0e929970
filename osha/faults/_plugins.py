"""Revert any lease with its plugin's own logic: ``cls.revert_lease(config, lease)``."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from osha import registry
from osha.errors import PluginError
from osha.faults._broker import Reverter
from osha.faults._lease import Lease, Revertible
from osha.faults.disruptor import FaultDisruptor
from osha.profile import Profile

__all__ = ["fault_class", "plugin_reverter", "reverter_for_profile"]


def fault_class(plugin: str) -> type[FaultDisruptor[Any]] | None:
    """The disruptor plugin ``plugin`` if it is a fault disruptor (it plans, leases and
    reverts faults), else None (e.g. ``noop``)."""
    cls = registry.load("disruptor", plugin)
    return cls if issubclass(cls, FaultDisruptor) else None


def plugin_reverter(configs: Mapping[str, tuple[str, Any]]) -> Reverter:
    """A reverter for leases held by the disruptors in ``configs`` (id → (plugin name, typed
    config)). Plugin classes are imported on first use."""
    lock = threading.Lock()
    classes: dict[str, Revertible] = {}

    def revert(lease: Lease) -> str:
        entry = configs.get(lease.holder)
        if entry is None:
            raise PluginError(
                f"lease {lease.lease_id}: no disruptor {lease.holder!r} in the profile",
                hint="pass the profile the run used (osha faults recover --profile PATH)",
            )
        plugin, config = entry
        with lock:
            cls = classes.get(plugin)
            if cls is None:
                found = fault_class(plugin)
                if found is None:
                    raise PluginError(
                        f"disruptor plugin {plugin!r} cannot revert leases (it is not a "
                        "fault disruptor)",
                        hint="derive it from osha.faults.disruptor.FaultDisruptor",
                    )
                cls = classes[plugin] = found
        return cls.revert_lease(config, lease)

    return revert


def reverter_for_profile(prof: Profile) -> Reverter:
    """The reverter for every disruptor a profile lists."""
    return plugin_reverter(
        {a.id: (a.plugin, a.config) for a in prof.actors if a.kind == "disruptor"}
    )
