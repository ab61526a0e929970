"""Profiles: one TOML file describes what to run. Validated completely before anything runs.

Every problem is collected (file, key, problem, hint) and raised together as a
:class:`~osha.errors.ProfileError` (exit code 2): an unknown plugin, an unknown key, a wrong
type, a duplicate id, a TOML syntax error with its line.

Layout (the README's "Profile reference" documents every key)::

    [campaign]           name, seed, baseline_s, chaos_s, recovery_timeout_s, recovery_hold_s,
                         preflight_timeout_s, ledger_dir; soak: mode, cycles, until,
                         cycle_baseline_s, cycle_recovery_s, abort_on_breach
                         (osha.campaign.config)
    [cloud]              cloud, clouds_yaml, inventory, known_hosts, ssh_user, ssh_key:
                         defaults for every plugin that declares a key of the same name
    [guard]              max_down: how many nodes or service instances per group may be
                         disrupted at once, across all disruptors
    [supervisor]         the supervisor's flags: strategy, intensity, period_s, backoff,
                         heartbeats (osha.supervisor.SupervisorFlags)
    [ledger]             flush_interval_s, flush_records, segment_size_bytes, raw_retention,
                         disk_floor_mib, resources_interval_s
    [[load]]             id, plugin ("servers"), then its keys: the initial load
    [slo]                the service-level objectives the verdict judges (osha.analysis.slo)
    [[monitors]]         id, plugin, restart, shutdown_s, then the plugin's own keys
    [[disruptors]]       (same; restart defaults to "transient": a finished schedule is done)
    [[runners]]          (same; restart defaults to "transient": a finished workload is done)
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from osha import registry, schema
from osha.errors import OshaError, Problem, ProfileError
from osha.ledger.retention import RetentionPolicy
from osha.ledger.writer import LedgerOptions
from osha.plugin import Kind
from osha.schema import FilePath
from osha.supervisor import SupervisorFlags

if TYPE_CHECKING:
    from osha.campaign.config import CampaignSettings, ServersLoadConfig

__all__ = [
    "ActorEntry",
    "LedgerSettings",
    "LoadEntry",
    "Profile",
    "load",
    "parse",
]

T = TypeVar("T")

_SECTIONS: dict[str, Kind] = {"monitors": "monitor", "disruptors": "disruptor", "runners": "runner"}
Restart = Literal["permanent", "transient", "temporary"]
#: A monitor watches until stopped; a disruptor's schedule and a runner's workload end, and
#: are then done: restarted only after a crash.
_SHUTDOWN_S = 10.0
_DEFAULT_RESTART: dict[Kind, Restart] = {
    "monitor": "permanent",
    "disruptor": "transient",
    "runner": "transient",
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class CloudSettings:
    """``[cloud]``: where the cloud and its nodes are. Each key is also the default of the
    same-named key of every plugin that declares one (e.g. a monitor's ``inventory``)."""

    cloud: str | None = None  # the clouds.yaml entry (openstacksdk conventions)
    clouds_yaml: FilePath | None = None  # else OS_CLIENT_CONFIG_FILE or the usual places
    inventory: FilePath | None = None  # Ansible inventory, INI or YAML
    known_hosts: FilePath | None = None  # host keys are verified against this file
    ssh_user: str | None = None  # else the inventory's ansible_user
    ssh_key: FilePath | None = None  # private key for the nodes


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """``[guard]``: the blast-radius limit. ``max_down = { controller = 1 }`` means at most one
    controller (or one instance of a service in that group) disrupted at any moment, counting
    the active faults of every disruptor."""

    max_down: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """``[ledger]``: durability, segment size, raw-sample retention, and the guards of a long
    run. ``raw_retention``: keep only so much of the raw-sample lane (``keep_segments``,
    ``keep_bytes``, ``keep_age_s``; state changes, faults and verdicts are always kept).
    ``disk_floor_mib``: stop the run cleanly when the ledger's file system has less free
    space than this (0: never). ``resources_interval_s``: how often osha samples its own RSS
    and CPU into the ledger."""

    flush_interval_s: float = 0.05
    flush_records: int = 10_000
    segment_size_bytes: int = 64 * 1024 * 1024
    raw_retention: RetentionPolicy | None = None
    disk_floor_mib: int = 256
    resources_interval_s: float = 10.0

    def options(self) -> LedgerOptions:
        """The writer's options for these settings."""
        return LedgerOptions(
            segment_size_bytes=self.segment_size_bytes,
            flush_interval_s=self.flush_interval_s,
            flush_records=self.flush_records,
            retention=self.raw_retention,
        )

    def __post_init__(self) -> None:
        if self.disk_floor_mib < 0:
            raise ValueError(f"disk_floor_mib must be >= 0, not {self.disk_floor_mib}")
        if self.resources_interval_s <= 0:
            raise ValueError("resources_interval_s must be > 0")


@dataclass(frozen=True, slots=True)
class _ActorCommon:
    id: str
    plugin: str
    restart: Restart | None = None  # None: the default of its kind (_DEFAULT_RESTART)
    shutdown_s: float | None = None  # None: the plugin's default_shutdown_s, else _SHUTDOWN_S


@dataclass(frozen=True, slots=True)
class _LoadCommon:
    id: str
    plugin: str


@dataclass(frozen=True, slots=True)
class LoadEntry:
    """One ``[[load]]`` entry, validated: created before the baseline, deleted at teardown."""

    id: str
    plugin: str
    config: ServersLoadConfig


@dataclass(frozen=True, slots=True)
class ActorEntry:
    """One ``[[monitors]]``, ``[[disruptors]]`` or ``[[runners]]`` entry, validated."""

    kind: Kind
    id: str
    plugin: str
    restart: Restart
    shutdown_s: float
    config: Any  # the plugin's own config dataclass
    #: the plugin's keys as the child process gets them: as written, plus defaults from
    #: [cloud], with relative paths resolved from the profile's folder
    raw_config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile."""

    path: Path
    campaign: CampaignSettings
    cloud: CloudSettings
    guard: GuardSettings
    supervisor: SupervisorFlags  # the [supervisor] table is the supervisor's own flags
    ledger: LedgerSettings
    actors: tuple[ActorEntry, ...]
    raw: dict[str, Any] = field(repr=False)
    loads: tuple[LoadEntry, ...] = ()
    slo: Any = None  # an osha.analysis.slo.SloSpec, or None without an [slo] table

    def of_kind(self, kind: Kind) -> tuple[ActorEntry, ...]:
        """The monitors, disruptors or runners, in profile order."""
        return tuple(a for a in self.actors if a.kind == kind)

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
    return _Loader(name, path.resolve().parent).profile(data, path.resolve())


class _Loader:
    """Collects every problem of one profile while building its typed parts."""

    def __init__(self, file: str, base_dir: Path) -> None:
        self.file = file
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.cloud_defaults: dict[str, Any] = {}

    def problem(self, key: str, text: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, key, text, hint))

    def profile(self, data: dict[str, Any], path: Path) -> Profile:
        # osha.campaign imports this module: its settings types are imported when used.
        from osha.campaign.config import CampaignSettings  # noqa: PLC0415 - import cycle

        known = {"campaign", "cloud", "guard", "supervisor", "ledger", "load", "slo", *_SECTIONS}
        for key in data:
            if key not in known:
                self.problem(key, "unknown section", f"known sections: {', '.join(sorted(known))}")
        campaign = self.section(CampaignSettings, data, "campaign")
        cloud = self.section(CloudSettings, data, "cloud")
        guard = self.section(GuardSettings, data, "guard")
        supervisor = self.section(SupervisorFlags, data, "supervisor")
        ledger = self.section(LedgerSettings, data, "ledger")
        if cloud is not None:
            self.cloud_defaults = {
                k: v for k, v in dataclasses.asdict(cloud).items() if v is not None
            }
        actors = self.actors(data)
        loads = self.loads(data, {a.id for a in actors})
        slo = self.slo(data)
        if campaign is not None and campaign.abort_on_breach:
            self.abort_keys(campaign.abort_on_breach, slo)
        if self.problems:
            raise ProfileError(self.problems)
        return Profile(
            path,
            campaign,
            cloud,
            guard,
            supervisor,
            ledger,
            tuple(actors),
            data,
            loads=tuple(loads),
            slo=slo,
        )

    def abort_keys(self, names: tuple[str, ...], slo: Any) -> None:
        """``[campaign] abort_on_breach`` names SLOs that the ``[slo]`` table sets."""
        table = slo.to_table() if slo is not None else {}
        for i, name in enumerate(names):
            if name not in table:
                self.problem(
                    f"campaign.abort_on_breach[{i}]",
                    f"{name!r} is not an SLO set in [slo]",
                    f"set in [slo]: {', '.join(sorted(table)) or 'nothing'}",
                )

    def loads(self, data: Mapping[str, Any], actor_ids: set[str]) -> list[LoadEntry]:
        from osha.campaign.config import LOAD_PLUGINS  # noqa: PLC0415 - import cycle

        items = data.get("load", [])
        if not isinstance(items, list):
            self.problem("load", "must be an array of tables", "write each as [[load]]")
            return []
        entries: list[LoadEntry] = []
        seen = set(actor_ids)
        for index, item in enumerate(items):
            where = f"load[{index}]"
            if not isinstance(item, Mapping):
                self.problem(where, "must be a table", "write it as [[load]]")
                continue
            head = {k: item[k] for k in ("id", "plugin") if k in item}
            head.setdefault("id", f"load-{index + 1}")
            common, found = schema.build(_LoadCommon, head, file=self.file, key=where)
            self.problems.extend(found)
            if common is None:
                continue
            config_type = LOAD_PLUGINS.get(common.plugin)
            if config_type is None:
                self.problem(
                    f"{where}.plugin",
                    f"unknown load plugin {common.plugin!r}",
                    f"known load plugins: {', '.join(sorted(LOAD_PLUGINS))}",
                )
                continue
            if common.id in seen:
                self.problem(f"{where}.id", f"duplicate id {common.id!r}", "give each its own id")
                continue
            seen.add(common.id)
            raw = {k: v for k, v in item.items() if k not in ("id", "plugin")}
            declared = {f.name for f in dataclasses.fields(config_type)}
            for key, value in self.cloud_defaults.items():
                if key in declared and key not in raw:
                    raw[key] = value
            config, found = schema.build(
                config_type, raw, file=self.file, key=where, base_dir=self.base_dir
            )
            self.problems.extend(found)
            if config is not None:
                entries.append(LoadEntry(common.id, common.plugin, config))
        return entries

    def slo(self, data: Mapping[str, Any]) -> Any:
        table = data.get("slo")
        if table is None:
            return None
        if not isinstance(table, Mapping):
            self.problem("slo", "must be a table", "write it as [slo]")
            return None
        try:
            from osha.analysis.slo import SloSpec  # noqa: PLC0415 - only needed for [slo]
        except ModuleNotFoundError as exc:
            if exc.name not in ("osha.analysis", "osha.analysis.slo"):
                raise
            self.problem(
                "slo",
                "this osha cannot judge SLOs: its analysis package (osha.analysis) is missing",
                "reinstall osha (scripts/venv), or remove the [slo] table",
            )
            return None

        value, found = schema.build(SloSpec, table, file=self.file, key="slo")
        self.problems.extend(found)
        return value

    def section(self, cls: type[T], data: Mapping[str, Any], key: str) -> T:
        table = data.get(key, {})
        if not isinstance(table, Mapping):
            self.problem(key, "must be a table", f"write it as [{key}]")
            return None  # type: ignore[return-value]  # a problem is recorded: never returned
        value, found = schema.build(cls, table, file=self.file, key=key, base_dir=self.base_dir)
        self.problems.extend(found)
        return value  # type: ignore[return-value]  # None only with problems recorded

    def actors(self, data: Mapping[str, Any]) -> list[ActorEntry]:
        entries: list[ActorEntry] = []
        seen: dict[str, str] = {}
        for section, kind in _SECTIONS.items():
            items = data.get(section, [])
            if not isinstance(items, list):
                self.problem(section, "must be an array of tables", f"write each as [[{section}]]")
                continue
            for index, item in enumerate(items):
                where = f"{section}[{index}]"
                if not isinstance(item, Mapping):
                    self.problem(where, "must be a table", f"write it as [[{section}]]")
                    continue
                entry = self.actor(kind, item, where)
                if entry is None:
                    continue
                if entry.id in seen:
                    self.problem(
                        f"{where}.id",
                        f"duplicate id {entry.id!r} (also used by {seen[entry.id]})",
                        "give every monitor, disruptor and runner its own id",
                    )
                    continue
                seen[entry.id] = where
                entries.append(entry)
        return entries

    def actor(self, kind: Kind, item: Mapping[str, Any], where: str) -> ActorEntry | None:
        common_keys = {"id", "plugin", "restart", "shutdown_s"}
        common, found = schema.build(
            _ActorCommon,
            {k: v for k, v in item.items() if k in common_keys},
            file=self.file,
            key=where,
        )
        self.problems.extend(found)
        if common is None:
            return None
        ok = True
        restart: Restart = common.restart or _DEFAULT_RESTART[kind]
        if not _ID.match(common.id):
            self.problem(
                f"{where}.id",
                f"{common.id!r} is not a valid id",
                "use lower-case letters, digits, '-' and '_', e.g. id = \"sched-kill-1\"",
            )
            ok = False
        try:
            plugin_cls = registry.load(kind, common.plugin)
        except OshaError as exc:  # unknown, duplicate or broken plugin: one problem like others
            self.problem(f"{where}.plugin", exc.message, exc.hint)
            return None
        raw = {k: v for k, v in item.items() if k not in common_keys}
        declared = {f.name: f for f in dataclasses.fields(plugin_cls.config_type)}
        for key, value in self.cloud_defaults.items():
            if key in declared and key not in raw:
                raw[key] = value
        config, found = schema.build(
            plugin_cls.config_type, raw, file=self.file, key=where, base_dir=self.base_dir
        )
        self.problems.extend(found)
        if config is None or not ok:
            return None
        # The child process gets the values as validated here: paths resolved (it does not
        # know where the profile is) and ${VARS} expanded, also inside nested tables.
        raw = {key: schema.to_raw(getattr(config, key)) for key in raw}
        shutdown_s = common.shutdown_s
        if shutdown_s is None:
            shutdown_s = float(getattr(plugin_cls, "default_shutdown_s", _SHUTDOWN_S))
        return ActorEntry(kind, common.id, common.plugin, restart, shutdown_s, config, raw)

