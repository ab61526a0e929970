"""The profile loader: TOML text in, a validated :class:`~osha.profile.Profile` out, with every
problem collected (file, key, problem, hint) before one :class:`~osha.errors.ProfileError`."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from osha import registry, schema
from osha.audit import audit_entries
from osha.errors import OshaError, Problem, ProfileError
from osha.plugin import Kind
from osha.profile._campaign import LOAD_PLUGINS, CampaignSettings
from osha.profile._settings import (
    ActorEntry,
    CloudSettings,
    GuardSettings,
    LedgerSettings,
    LoadEntry,
    Profile,
    Restart,
    _ActorCommon,
    _LoadCommon,
    ssh_table,
)
from osha.ssh import FLAT_SSH_KEYS
from osha.supervisor import SupervisorFlags
from osha.textfile import InputFileError, read_text

__all__ = ["MAX_PROFILE_BYTES", "load", "parse"]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

_SECTIONS: dict[str, Kind] = {"monitors": "monitor", "disruptors": "disruptor", "runners": "runner"}
#: A monitor watches until stopped; a disruptor's schedule and a runner's workload end, and
#: are then done: restarted only after a crash.
_SHUTDOWN_S = 10.0
_DEFAULT_RESTART: dict[Kind, Restart] = {
    "monitor": "permanent",
    "disruptor": "transient",
    "runner": "transient",
}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


MAX_PROFILE_BYTES = 1024 * 1024


def load(path: str | Path, *, old_ssh_keys: bool = False) -> Profile:
    """Read and validate a profile file. Raises ProfileError with every problem found.

    ``old_ssh_keys``: read a disruptor's flat SSH keys (``ssh_user = ...``, from before the
    ``ssh`` table) into its table instead of refusing them: ``osha faults recover`` reverts
    with the profile a dead run recorded, whatever its age."""
    path = Path(path)
    name = str(path)
    try:
        text = read_text(path, "profile", MAX_PROFILE_BYTES)
    except InputFileError as exc:
        hint = "check the path; profiles/ has examples"
        raise ProfileError([Problem(name, "(file)", exc.reason, hint)]) from None
    return parse(text, path=path, old_ssh_keys=old_ssh_keys)


def parse(text: str, *, path: Path, old_ssh_keys: bool = False) -> Profile:
    """Validate profile text. ``path`` names the file in problems and anchors relative paths;
    ``old_ssh_keys``: see :func:`load`."""
    name = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        key = f"line {match.group(1)}" if match else "(syntax)"
        raise ProfileError(
            [Problem(name, key, f"not valid TOML: {exc}", "see https://toml.io for the syntax")]
        ) from exc
    except RecursionError:
        raise ProfileError(
            [
                Problem(
                    name,
                    "(syntax)",
                    "arrays or tables are nested too deeply to read",
                    "a profile nests a few levels at most; flatten it",
                )
            ]
        ) from None
    return _Loader(name, path.resolve().parent, old_ssh_keys).profile(data, path.resolve())


class _Loader:
    """Collects every problem of one profile while building its typed parts."""

    def __init__(self, file: str, base_dir: Path, old_ssh_keys: bool = False) -> None:
        self.file = file
        self.base_dir = base_dir
        self.old_ssh_keys = old_ssh_keys
        self.problems: list[Problem] = []
        self.cloud = CloudSettings()  # [cloud] gives defaults to the plugins' keys

    def problem(self, key: str, text: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, key, text, hint))

    def profile(self, data: dict[str, Any], path: Path) -> Profile:
        known = {"campaign", "cloud", "guard", "supervisor", "ledger", "load", "slo", "audits",
                 *_SECTIONS}  # fmt: skip
        for key in data:
            if key not in known:
                self.problem(key, "unknown section", f"known sections: {', '.join(sorted(known))}")
        campaign = self.section(CampaignSettings, data, "campaign")
        cloud = self.section(CloudSettings, data, "cloud")
        guard = self.section(GuardSettings, data, "guard")
        supervisor = self.section(SupervisorFlags, data, "supervisor")
        ledger = self.section(LedgerSettings, data, "ledger")
        if cloud is not None:
            self.cloud = cloud
        actors = self.actors(data)
        if not any(data.get(section) for section in _SECTIONS):
            self.problem(
                "(profile)",
                "runs nothing: it has no [[monitors]], [[disruptors]] or [[runners]]",
                "add at least a monitor, e.g. [[monitors]] id = \"tick\" plugin = \"ticker\"; "
                "profiles/ has examples",
            )
        loads = self.loads(data, {a.id for a in actors})
        cloud_keys = dataclasses.asdict(self.cloud)  # [cloud] gives cloud and clouds_yaml
        audits, found = audit_entries(
            data.get("audits", []), file=self.file, base_dir=self.base_dir, defaults=cloud_keys
        )
        self.problems.extend(found)
        slo = self.slo(data)
        if campaign is not None and campaign.abort_on_breach:
            self.abort_keys(campaign.abort_on_breach, slo)
        if (  # a section is None only with its problems recorded
            self.problems
            or campaign is None
            or cloud is None
            or guard is None
            or supervisor is None
            or ledger is None
        ):
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
            audits=tuple(audits),
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
            raw = self.cloud.defaults_for(
                config_type, {k: v for k, v in item.items() if k not in ("id", "plugin")}
            )
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

    def section(self, cls: type[T], data: Mapping[str, Any], key: str) -> T | None:
        """A ``[key]`` table as ``cls``; None with its problems recorded."""
        table = data.get(key, {})
        if not isinstance(table, Mapping):
            self.problem(key, "must be a table", f"write it as [{key}]")
            return None
        value, found = schema.build(cls, table, file=self.file, key=key, base_dir=self.base_dir)
        self.problems.extend(found)
        return value

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
                # checked before the rest of the entry, so that it is reported with every
                # other problem, not only once the rest is valid
                raw_id = item.get("id")
                duplicate = isinstance(raw_id, str) and raw_id in seen
                if duplicate and isinstance(raw_id, str):
                    self.problem(
                        f"{where}.id",
                        f"duplicate id {raw_id!r} (also used by {seen[raw_id]})",
                        "give every monitor, disruptor and runner its own id",
                    )
                elif isinstance(raw_id, str):
                    seen[raw_id] = where
                entry = self.actor(kind, item, where)
                if entry is not None and not duplicate:
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
        own = {k: v for k, v in item.items() if k not in common_keys}
        if ssh_table(plugin_cls.config_type):
            own = self.flat_ssh_keys(own, where, section=f"[[{kind}s]]")
        raw = self.cloud.defaults_for(plugin_cls.config_type, own)
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

    def flat_ssh_keys(self, raw: dict[str, Any], where: str, section: str) -> dict[str, Any]:
        """The flat SSH keys of old profiles (``ssh_user = ...``) are refused, each with its
        spelling in the ``ssh`` table; the rest of the entry is checked as usual. With
        ``old_ssh_keys`` they are read into the table instead (what it sets itself wins)."""
        flat = {field: raw[key] for key, field in FLAT_SSH_KEYS.items() if key in raw}
        rest = {k: v for k, v in raw.items() if k not in FLAT_SSH_KEYS}
        if self.old_ssh_keys:
            table = rest.get("ssh", {})
            if flat and isinstance(table, Mapping):
                rest["ssh"] = {**flat, **table}
            return rest
        for key, field in FLAT_SSH_KEYS.items():
            if key in raw:
                self.problem(
                    f"{where}.{key}",
                    f"{key} is no longer a key of its own: the SSH settings are one table, "
                    "as the monitors have",
                    f"write {section} ssh = {{ {field} = {_toml(raw[key])} }} "
                    f"instead of {key} = {_toml(raw[key])}",
                )
        return rest


def _toml(value: Any) -> str:
    """A scalar as TOML writes it (for hints)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
