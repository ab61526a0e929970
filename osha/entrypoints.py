"""Loading one object named in an entry-point group, with errors that say what to do.

A leaf helper for the plugin kinds that are not actors (audits, role resolvers); actor
plugins have their own registry (:mod:`osha.registry`), which also checks names and
duplicates."""

from __future__ import annotations

from importlib.metadata import entry_points

from osha.errors import PluginError, UnknownPluginError

__all__ = ["load_entry"]


def load_entry(group: str, name: str, what: str, *, import_hint: str = "") -> object:
    """Import the object registered as ``name`` in entry-point ``group`` (``what`` names the
    kind in errors: "audit plugin", "role"). The caller checks its type."""
    eps = {ep.name: ep for ep in entry_points(group=group)}
    if name not in eps:
        raise UnknownPluginError(
            f"unknown {what} {name!r}",
            hint=f"known: {', '.join(sorted(eps)) or 'none'} (entry-point group {group}; "
            "is the package that provides it installed?)",
        )
    ep = eps[name]
    try:
        return ep.load()
    except (ImportError, AttributeError) as exc:
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "its package"
        raise PluginError(
            f"{what} {name!r} ({ep.value}) cannot be imported: {exc}",
            hint=import_hint or f"reinstall {dist}",
        ) from exc
