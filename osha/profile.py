"""Profiles: one TOML file describes what to run. Validated completely before anything runs.

Every problem is collected (file, key, problem, hint) and raised together as a
:class:`~osha.errors.ProfileError` (exit code 2): an unknown plugin, an unknown key, a wrong
type, a duplicate id, a TOML syntax error with its line.

Layout (the README's "Profile reference" documents every key)::

    [campaign]           name, seed, duration_s, ledger_dir
    [supervisor]         strategy, intensity, period_s, heartbeat_interval_s, heartbeat_timeout_s
    [ledger]             flush_interval_s, flush_records, segment_size_bytes
    [[monitors]]         id, plugin, restart, shutdown_s, then the plugin's own keys
    [[disruptors]]       (same)
    [[runners]]          (same)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from osha import registry, schema
from osha.errors import OshaError, Problem, ProfileError
from osha.plugin import Kind

__all__ = [
    "ActorEntry",
    "CampaignSettings",
    "LedgerSettings",
    "Profile",
    "SupervisorSettings",
    "load",
    "parse",
]

_SECTIONS: dict[str, Kind] = {"monitors": "monitor", "disruptors": "disruptor", "runners": "runner"}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    """``[campaign]``: what the run is called, its seed, and how long it lasts."""

    name: str = "osha-run"
    seed: int = 0
    duration_s: float | None = None  # None: until Ctrl-C or `osha campaign stop`
    ledger_dir: str = "runs"


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """``[supervisor]``: how crashed actors are restarted (Erlang/OTP semantics)."""

    strategy: Literal["one_for_one", "one_for_all", "rest_for_one"] = "one_for_one"
    intensity: int = 5  # restarts allowed ...
    period_s: float = 30.0  # ... within this many seconds, then escalate
    backoff_initial_s: float = 0.0
    backoff_max_s: float = 5.0
    heartbeat_interval_s: float = 0.5
    heartbeat_timeout_s: float = 3.0


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """``[ledger]``: durability and segment size."""

    flush_interval_s: float = 0.05
    flush_records: int = 10_000
    segment_size_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _ActorCommon:
    id: str
    plugin: str
    restart: Literal["permanent", "transient", "temporary"] = "permanent"
    shutdown_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ActorEntry:
    """One ``[[monitors]]``, ``[[disruptors]]`` or ``[[runners]]`` entry, validated."""

    kind: Kind
    id: str
    plugin: str
    restart: Literal["permanent", "transient", "temporary"]
    shutdown_s: float
    config: Any  # the plugin's own config dataclass
    raw_config: dict[str, Any]  # the plugin's keys as written, for the child process


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile."""

    path: Path
    campaign: CampaignSettings
    supervisor: SupervisorSettings
    ledger: LedgerSettings
    actors: tuple[ActorEntry, ...]
    raw: dict[str, Any] = field(repr=False)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the profile resolve from its own folder."""
        return self.path.parent

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)


def load(path: str | Path) -> Profile:
    """Read and validate a profile file. Raises ProfileError with every problem found."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(
            [Problem(name, "(file)", "no such file", "check the path; profiles/ has examples")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError([Problem(name, "(file)", f"cannot read: {exc}")]) from exc
    return parse(text, path=path)


def parse(text: str, *, path: Path) -> Profile:
    """Validate profile text. ``path`` names the file in problems and anchors relative paths."""
    name = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        key = f"line {match.group(1)}" if match else "(syntax)"
        raise ProfileError(
            [Problem(name, key, f"not valid TOML: {exc}", "see https://toml.io for the syntax")]
        ) from exc

    problems: list[Problem] = []
    known = {"campaign", "supervisor", "ledger", *_SECTIONS}
    for key in data:
        if key not in known:
            problems.append(
                Problem(name, key, "unknown section", f"known sections: {', '.join(sorted(known))}")
            )

    campaign = _section(CampaignSettings, data, "campaign", name, problems)
    supervisor = _section(SupervisorSettings, data, "supervisor", name, problems)
    ledger = _section(LedgerSettings, data, "ledger", name, problems)
    actors = _actors(data, name, problems)

    if problems:
        raise ProfileError(problems)
    assert campaign is not None
    assert supervisor is not None
    assert ledger is not None
    return Profile(path.resolve(), campaign, supervisor, ledger, tuple(actors), data)


def _section(
    cls: type[Any], data: Mapping[str, Any], key: str, file: str, problems: list[Problem]
) -> Any:
    table = data.get(key, {})
    if not isinstance(table, Mapping):
        problems.append(Problem(file, key, "must be a table", f"write it as [{key}]"))
        return None
    value, found = schema.build(cls, table, file=file, key=key)
    problems.extend(found)
    return value


def _actors(data: Mapping[str, Any], file: str, problems: list[Problem]) -> list[ActorEntry]:
    entries: list[ActorEntry] = []
    seen: dict[str, str] = {}
    for section, kind in _SECTIONS.items():
        items = data.get(section, [])
        if not isinstance(items, list):
            problems.append(
                Problem(file, section, "must be an array of tables", f"write each as [[{section}]]")
            )
            continue
        for index, item in enumerate(items):
            where = f"{section}[{index}]"
            if not isinstance(item, Mapping):
                problems.append(
                    Problem(file, where, "must be a table", f"write it as [[{section}]]")
                )
                continue
            entry = _actor(kind, item, where, file, problems)
            if entry is None:
                continue
            if entry.id in seen:
                problems.append(
                    Problem(
                        file,
                        f"{where}.id",
                        f"duplicate id {entry.id!r} (also used by {seen[entry.id]})",
                        "give every monitor, disruptor and runner its own id",
                    )
                )
                continue
            seen[entry.id] = where
            entries.append(entry)
    return entries


def _actor(
    kind: Kind, item: Mapping[str, Any], where: str, file: str, problems: list[Problem]
) -> ActorEntry | None:
    common_keys = {"id", "plugin", "restart", "shutdown_s"}
    common, found = schema.build(
        _ActorCommon, {k: v for k, v in item.items() if k in common_keys}, file=file, key=where
    )
    problems.extend(found)
    if common is None:
        return None
    ok = True
    if not _ID.match(common.id):
        problems.append(
            Problem(
                file,
                f"{where}.id",
                f"{common.id!r} is not a valid id",
                "use lower-case letters, digits, '-' and '_', e.g. id = \"sched-kill-1\"",
            )
        )
        ok = False
    try:
        plugin_cls = registry.load(kind, common.plugin)
    except OshaError as exc:  # unknown, duplicate or broken plugin: one problem like any other
        problems.append(Problem(file, f"{where}.plugin", exc.message, exc.hint))
        return None
    raw = {k: v for k, v in item.items() if k not in common_keys}
    config, found = schema.build(plugin_cls.config_type, raw, file=file, key=where)
    problems.extend(found)
    if config is None or not ok:
        return None
    return ActorEntry(
        kind, common.id, common.plugin, common.restart, common.shutdown_s, config, dict(raw)
    )
