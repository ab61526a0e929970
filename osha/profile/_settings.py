"""The typed parts of a profile: the sections osha itself reads, and the validated entries."""

from __future__ import annotations

import dataclasses
import fnmatch
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from osha.audit import AuditEntry
from osha.ledger.retention import RetentionPolicy
from osha.ledger.writer import LedgerOptions
from osha.plugin import Kind
from osha.profile._campaign import CampaignSettings, ServersLoadConfig
from osha.schema import FilePath, Name
from osha.ssh import CLOUD_SSH_KEYS, SshConfig
from osha.supervisor import SupervisorFlags

__all__ = [
    "ActorEntry",
    "CloudSettings",
    "GuardSettings",
    "LedgerSettings",
    "LoadEntry",
    "Profile",
    "QuorumRule",
    "Restart",
    "ssh_table",
]

Restart = Literal["permanent", "transient", "temporary"]


@dataclass(frozen=True, slots=True)
class CloudSettings:
    """``[cloud]``: where the cloud and its nodes are. Each key is also the default of the
    same-named key of every plugin that declares one (e.g. a monitor's ``inventory``)."""

    cloud: Name | None = None  # the clouds.yaml entry (openstacksdk conventions)
    clouds_yaml: FilePath | None = None  # else OS_CLIENT_CONFIG_FILE or the usual places
    inventory: FilePath | None = None  # Ansible inventory, INI or YAML
    known_hosts: FilePath | None = None  # host keys are verified against this file
    ssh_user: Name | None = None  # else the inventory's ansible_user
    ssh_key: FilePath | None = None  # private key for the nodes

    def defaults_for(self, config_type: type[Any], raw: Mapping[str, Any]) -> dict[str, Any]:
        """A plugin's keys as written (``raw``) with this section's defaults filled in: every
        key of the same name that ``config_type`` declares, and the fields of its
        ``ssh = { ... }`` table that :mod:`osha.ssh` maps (``private_key`` and
        ``known_hosts`` from ``ssh_key`` and ``known_hosts``; a disruptor's ``user`` from
        ``ssh_user``). What the plugin sets itself wins."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        declared = {f.name for f in dataclasses.fields(config_type)}
        out = {**raw, **{k: v for k, v in given.items() if k in declared and k not in raw}}
        table = out.get("ssh", {})
        if ssh_table(config_type) and isinstance(table, Mapping):
            keys: Mapping[str, str] = getattr(config_type, "cloud_ssh_keys", CLOUD_SSH_KEYS)
            extra = {field: given[key] for key, field in keys.items() if key in given}
            if extra:
                out["ssh"] = {**extra, **table}
        return out


def ssh_table(config_type: type[Any]) -> bool:
    """Whether a plugin's config declares the ``ssh = { ... }`` table (:class:`SshConfig`)."""
    if "ssh" not in {f.name for f in dataclasses.fields(config_type)}:
        return False
    return typing.get_type_hints(config_type).get("ssh") is SshConfig


@dataclass(frozen=True, slots=True)
class QuorumRule:
    """``[guard] quorum``'s rule for one cluster (see :mod:`osha.faults._quorum`): how many
    members must stay up (``"majority"`` of the members the monitors report, or a count),
    and which faults take a member: those on its node whose resource matches a pattern of
    ``resources`` (fnmatch; ``""`` matches node-wide faults such as a power-off; default
    ``["*"]``: every fault on the node)."""

    min_members: Literal["majority"] | int = "majority"
    resources: tuple[str, ...] = ("*",)

    def __post_init__(self) -> None:
        if isinstance(self.min_members, int) and self.min_members < 1:
            raise ValueError(f'min_members = {self.min_members}: at least 1, or "majority"')

    def need(self, members: int) -> int:
        return members // 2 + 1 if self.min_members == "majority" else int(self.min_members)

    def label(self, members: int) -> str:
        kind = "majority" if self.min_members == "majority" else "min_members"
        return f"{kind} {self.need(members)}"

    def takes(self, resource: str) -> bool:
        """Whether a fault on ``resource`` (a lease's; ``""``: node-wide) takes a member."""
        return any(fnmatch.fnmatchcase(resource, p) for p in self.resources)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """``[guard]``: the blast-radius limit and the quorum guard. ``max_down = { controller = 1
    }`` means at most one controller (or one instance of a service in that group) disrupted
    at any moment, counting the active faults of every disruptor. ``quorum = { galera =
    "majority", rabbitmq = 2 }`` keeps each cluster at its quorum (a count is
    ``min_members``; the table form ``{ min_members, resources }`` also says which faults take
    a member): see :mod:`osha.faults._quorum`."""

    max_down: dict[str, int] = field(default_factory=dict)
    quorum: dict[str, Literal["majority"] | int | QuorumRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for group, count in self.max_down.items():
            if count < 0:
                raise ValueError(f"max_down.{group} = {count}: a count of nodes, 0 or more")
        for cluster, rule in self.quorum.items():
            if isinstance(rule, int) and rule < 1:
                raise ValueError(f'quorum.{cluster} = {rule}: at least 1 member, or "majority"')
            if isinstance(rule, QuorumRule) and not rule.resources:
                raise ValueError(
                    f"quorum.{cluster}.resources is empty: no fault would count; leave it out "
                    "(every fault on a member counts) or list patterns"
                )

    def describe_quorum(self) -> str:
        """The quorum rules in a line, for a dry run ("" without any)."""
        parts = []
        for cluster, rule in sorted(self.quorum_rules().items()):
            need = "majority" if rule.min_members == "majority" else f"{rule.min_members} up"
            named = ", ".join(r or "node-wide" for r in rule.resources)
            which = "" if rule.resources == ("*",) else f" (faults on {named})"
            parts.append(f"{cluster}: {need}{which}")
        return "; ".join(parts)

    def quorum_rules(self) -> dict[str, QuorumRule]:
        """Every ``quorum`` entry in its table form."""
        return {c: r if isinstance(r, QuorumRule) else QuorumRule(min_members=r)
                for c, r in self.quorum.items()}  # fmt: skip


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
    audits: tuple[AuditEntry, ...] = ()  # [[audits]]: swept before and after the campaign

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
