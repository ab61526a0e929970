"""Plugin discovery through entry points, never by walking the filesystem.

Groups: ``osha.monitors``, ``osha.disruptors``, ``osha.runners``. Names are kebab-case and
unique within a kind; a duplicate name is an error that names both providers, and an unknown
name is an error that lists the known ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from osha.errors import PluginError, UnknownPluginError
from osha.plugin import Kind, Plugin

__all__ = ["GROUPS", "PluginInfo", "available", "load"]

GROUPS: dict[Kind, str] = {
    "monitor": "osha.monitors",
    "disruptor": "osha.disruptors",
    "runner": "osha.runners",
}

_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One registered plugin: where it comes from, not yet imported."""

    kind: Kind
    name: str
    value: str  # "module:Class"
    distribution: str

    @property
    def provider(self) -> str:
        return f"{self.value} (from {self.distribution})"


def _distribution(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


@cache
def available(kind: Kind) -> dict[str, PluginInfo]:
    """Every plugin of a kind, by name. Raises PluginError on duplicates or bad names."""
    group = GROUPS[kind]
    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=group):
        info = PluginInfo(kind, ep.name, ep.value, _distribution(ep))
        if not _KEBAB.match(ep.name):
            raise PluginError(
                f"plugin name {ep.name!r} in entry-point group {group} is not kebab-case "
                f"({info.provider})",
                hint="rename the entry point, e.g. 'my-monitor'",
            )
        if ep.name in found and found[ep.name].value != ep.value:
            raise PluginError(
                f"two {kind} plugins are named {ep.name!r}: {found[ep.name].provider} and "
                f"{info.provider}",
                hint="uninstall one of the two packages, or rename one entry point",
            )
        found[ep.name] = info
    return found


def load(kind: Kind, name: str) -> type[Plugin[Any]]:
    """Import and return the plugin class registered as ``name`` for ``kind``."""
    plugins = available(kind)
    info = plugins.get(name)
    if info is None:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise UnknownPluginError(
            f"unknown {kind} plugin {name!r}; known {kind} plugins: {known}",
            hint=f"check the spelling, or install the package that provides it "
            f"(entry-point group {GROUPS[kind]})",
        )
    ep = EntryPoint(name=info.name, value=info.value, group=GROUPS[kind])
    try:
        cls = ep.load()
    except (ImportError, AttributeError) as exc:
        raise PluginError(
            f"{kind} plugin {name!r} is registered as {info.value} but cannot be imported: {exc}",
            hint=f"reinstall {info.distribution}",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin) and cls.kind == kind):
        raise PluginError(
            f"{kind} plugin {name!r} ({info.value}) is not a {kind.capitalize()} subclass",
            hint="derive the class from osha.plugin.Monitor, Disruptor or Runner",
        )
    return cls
