"""Revert any lease with its plugin's own logic: ``cls.revert_lease(config, lease)``."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from osha import registry
from osha.errors import PluginError
from osha.faults._broker import Reverter
from osha.faults._lease import Lease
from osha.profile import Profile

__all__ = ["plugin_reverter", "reverter_for_profile"]


def plugin_reverter(configs: Mapping[str, tuple[str, Any]]) -> Reverter:
    """A reverter for leases held by the disruptors in ``configs`` (id → (plugin name, typed
    config)). Plugin classes are imported on first use."""
    lock = threading.Lock()
    classes: dict[str, Any] = {}

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
                cls = classes[plugin] = registry.load("disruptor", plugin)
        revert_lease = getattr(cls, "revert_lease", None)  # a fixed name, not user input
        if not callable(revert_lease):
            raise PluginError(
                f"disruptor plugin {plugin!r} cannot revert leases (no revert_lease)",
                hint="derive it from actors.disruptors.FaultDisruptor",
            )
        return str(revert_lease(config, lease))

    return revert


def reverter_for_profile(prof: Profile) -> Reverter:
    """The reverter for every disruptor a profile lists."""
    return plugin_reverter(
        {a.id: (a.plugin, a.config) for a in prof.actors if a.kind == "disruptor"}
    )
