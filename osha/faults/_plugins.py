"""Revert any lease with its plugin's own logic: ``cls.revert_lease(config, lease)``; collect
its dead-man switch with ``cls.collect_switch(config, lease)``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from osha import registry
from osha.errors import PluginError
from osha.faults._broker import Reverter
from osha.faults._lease import Lease
from osha.faults._switch import Collector
from osha.faults.deadman import Status
from osha.faults.disruptor import FaultDisruptor
from osha.profile import Profile

__all__ = [
    "collector_for_profile",
    "fault_class",
    "plugin_collector",
    "plugin_reverter",
    "reverter_for_profile",
]

_Plugin = type[FaultDisruptor[Any]]


def fault_class(plugin: str) -> type[FaultDisruptor[Any]] | None:
    """The disruptor plugin ``plugin`` if it is a fault disruptor (it plans, leases and
    reverts faults), else None (e.g. ``noop``)."""
    cls = registry.load("disruptor", plugin)
    return cls if issubclass(cls, FaultDisruptor) else None


def _lookup(configs: Mapping[str, tuple[str, Any]]) -> Callable[[Lease], tuple[_Plugin, Any]]:
    """The plugin class and config of a lease's holder (classes imported on first use)."""
    lock = threading.Lock()
    classes: dict[str, _Plugin] = {}

    def find(lease: Lease) -> tuple[_Plugin, Any]:
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
        return cls, config

    return find


def plugin_reverter(configs: Mapping[str, tuple[str, Any]]) -> Reverter:
    """A reverter for leases held by the disruptors in ``configs`` (id → (plugin name, typed
    config)). Plugin classes are imported on first use."""
    find = _lookup(configs)

    def revert(lease: Lease) -> str:
        cls, config = find(lease)
        return cls.revert_lease(config, lease)

    return revert


def plugin_collector(configs: Mapping[str, tuple[str, Any]]) -> Collector:
    """Collects the dead-man switch of a lease held by a disruptor in ``configs`` (as
    :func:`plugin_reverter`): disarms it, says what the node did; None if it has none."""
    find = _lookup(configs)

    def collect(lease: Lease) -> Status | None:
        cls, config = find(lease)
        return cls.collect_switch(config, lease)

    return collect


def _configs(prof: Profile) -> dict[str, tuple[str, Any]]:
    return {a.id: (a.plugin, a.config) for a in prof.actors if a.kind == "disruptor"}


def reverter_for_profile(prof: Profile) -> Reverter:
    """The reverter for every disruptor a profile lists."""
    return plugin_reverter(_configs(prof))


def collector_for_profile(prof: Profile) -> Collector:
    """The dead-man switch collector for every disruptor a profile lists."""
    return plugin_collector(_configs(prof))
