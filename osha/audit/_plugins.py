"""Audit plugins: found through the entry-point group ``osha.audits``, built from
``[[audits]]`` entries of a profile.

A profile names its audits, each with the plugin's own keys::

    [[audits]]
    plugin = "servers"        # the entry point's name
    id = "servers"            # optional; the plugin's name by default, unique
    stuck_after_s = 600

``cloud`` and ``clouds_yaml`` default to ``[cloud]``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from osha.audit._plugin import Audit
from osha.entrypoints import load_entry
from osha.errors import PluginError, Problem
from osha.schema import build

__all__ = ["AUDIT_GROUP", "AuditEntry", "audit_entries", "available_audits", "load_audit"]

AUDIT_GROUP = "osha.audits"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One ``[[audits]]`` entry, validated: its id, plugin name and the plugin's config."""

    id: str
    plugin: str
    config: Any  # the plugin's config dataclass (an AuditConfig)

    def build(self) -> Audit[Any]:
        """The plugin, ready to run."""
        cls: type[Audit[Any]] = load_audit(self.plugin)
        return cls(self.config)


@cache
def available_audits() -> dict[str, str]:
    """Every registered audit plugin: name → ``module:Class``."""
    return {ep.name: ep.value for ep in entry_points(group=AUDIT_GROUP)}


def load_audit(name: str) -> type[Audit[Any]]:
    """The audit plugin class registered as ``name``."""
    cls = load_entry(
        AUDIT_GROUP,
        name,
        "audit plugin",
        import_hint="install osha with the extras of your plugins: pip install 'osha[openstack]'",
    )
    if not (isinstance(cls, type) and issubclass(cls, Audit)):
        raise PluginError(f"audit plugin {name!r} is not an osha.audit.Audit")
    return cls


def audit_entries(
    items: Any,
    *,
    file: str,
    base_dir: Path | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[list[AuditEntry], list[Problem]]:
    """Validate an ``[[audits]]`` array: every entry's plugin and keys, ids unique. Returns
    the entries and every problem found (none are raised here)."""
    problems: list[Problem] = []
    if not isinstance(items, Sequence) or isinstance(items, str):
        return [], [Problem(file, "audits", "must be an array of tables", "write [[audits]]")]
    out: list[AuditEntry] = []
    seen: set[Any] = set()  # every id, also of an entry with problems: all are reported
    for index, item in enumerate(items):
        where = f"audits[{index}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(file, where, "must be a table", "write it as [[audits]]"))
            continue
        audit_id = item.get("id", item.get("plugin"))
        if isinstance(audit_id, str) and audit_id in seen:
            problems.append(
                Problem(file, f"{where}.id", f"audit id {audit_id!r} is used twice",
                        'give one of them its own id = "..."')
            )  # fmt: skip
            continue
        seen.add(audit_id)
        entry = _entry(
            item, where, file=file, base_dir=base_dir, defaults=defaults or {}, problems=problems
        )
        if entry is not None:
            out.append(entry)
    return out, problems


def _entry(
    item: Mapping[str, Any],
    where: str,
    *,
    file: str,
    base_dir: Path | None,
    defaults: Mapping[str, Any],
    problems: list[Problem],
) -> AuditEntry | None:
    plugin = item.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        problems.append(
            Problem(
                file,
                f"{where}.plugin",
                "is missing",
                f"name an audit: {', '.join(sorted(available_audits()))}",
            )
        )
        return None  # fmt: skip
    audit_id = item.get("id", plugin)
    if not isinstance(audit_id, str) or not audit_id:
        problems.append(Problem(file, f"{where}.id", "must be a non-empty string"))
        return None
    try:
        cls = load_audit(plugin)
    except PluginError as exc:
        problems.append(Problem(file, f"{where}.plugin", exc.message, exc.hint))
        return None
    raw = {k: v for k, v in item.items() if k not in ("plugin", "id")}
    declared = set(getattr(cls.config_type, "__dataclass_fields__", {}))
    raw = {**{k: v for k, v in defaults.items() if k in declared and v}, **raw}
    config, found = build(cls.config_type, raw, file=file, key=where, base_dir=base_dir)
    problems.extend(found)
    if config is not None and config.cleanup and not cls.can_clean():
        problems.append(Problem(file, f"{where}.cleanup", f"the {plugin} audit cannot clean up",
                                "remove cleanup = true: it only reports"))  # fmt: skip
        return None
    return None if config is None else AuditEntry(audit_id, plugin, config)
