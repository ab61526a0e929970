"""Hosts from an Ansible inventory, INI or YAML, as operators already keep them.

kolla-ansible and openstack-ansible deployments come with an inventory; osha reads the same
file, so nobody maintains a second host list::

    inv = inventory.load("/etc/kolla/multinode")
    for host in inv.in_groups(["controller"]):
        print(host.name, host.address, host.groups)

Supported, as Ansible reads them:

- INI: ``[group]`` host lines with ``key=value`` vars, ``[group:children]``, ``[group:vars]``,
  hosts before any section (group ``ungrouped``), numeric and letter ranges
  (``node[01:03]``, ``rack-[a:c]``), ``#`` and ``;`` comments;
- YAML: nested ``hosts`` / ``children`` / ``vars`` under top-level groups (usually ``all``).

From the vars, osha uses ``ansible_host`` (the address; default the host name),
``ansible_port`` and ``ansible_user`` (and their old ``ansible_ssh_*`` spellings), and keeps
every ``osha_*`` var as text for the plugins (:meth:`Host.var`: e.g. ``osha_switch_port``,
the switch-side port of the node's link, for ``network``'s ``link-down``). Host vars
win over group vars, and a child group's vars over its parent's. Every host is in ``all``.
Dynamic inventory scripts and plugins are not supported: export them with
``ansible-inventory -i SRC --list -y > inventory.yml`` first.
"""

from __future__ import annotations

import importlib
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osha.errors import EXIT_INVALID, OshaError
from osha.textfile import InputFileError, read_text

__all__ = ["Host", "Inventory", "InventoryError", "load", "parse_ini", "parse_yaml"]

MAX_HOSTS = 10_000  # what one range may expand to: a typo must not fill the memory
_ADDRESS_VARS = ("ansible_host", "ansible_ssh_host")
_PORT_VARS = ("ansible_port", "ansible_ssh_port")
_USER_VARS = ("ansible_user", "ansible_ssh_user")


class InventoryError(OshaError, ValueError):
    """An inventory file cannot be read or parsed."""

    exit_code = EXIT_INVALID


@dataclass(frozen=True, slots=True)
class Host:
    """One host: its inventory name, how to reach it, and every group it is in."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    groups: tuple[str, ...] = ()
    osha_vars: tuple[tuple[str, str], ...] = ()  # ("osha_switch_port", "eth3"), ...

    def var(self, name: str) -> str | None:
        """The host's ``osha_*`` var ``name`` (``"osha_switch_port"``), None if not set."""
        return dict(self.osha_vars).get(name)


@dataclass(slots=True)
class _Group:
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> host vars
    children: set[str] = field(default_factory=set)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Hosts by name, in file order."""

    hosts: dict[str, Host]
    source: str = ""

    def in_groups(self, patterns: Iterable[str]) -> list[Host]:
        """Hosts in any of the groups or with any of the names given (``all`` = every host)."""
        wanted = set(patterns)
        return [h for h in self.hosts.values() if h.name in wanted or wanted & set(h.groups)]


def load(path: str | Path) -> Inventory:
    """Read an inventory file; YAML if it ends in .yml/.yaml or starts like YAML, else INI."""
    p = Path(path)
    try:
        text = read_text(p, "inventory")
    except InputFileError as exc:
        raise InventoryError(
            f"cannot read inventory {p}: {exc.reason}",
            hint="give the absolute path of an Ansible inventory file (INI or YAML)",
        ) from None
    stripped = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    looks_yaml = bool(stripped) and (
        stripped[0].rstrip().endswith(":") or stripped[0].startswith("---")
    )
    try:
        if p.suffix in (".yml", ".yaml") or (
            looks_yaml and not stripped[0].lstrip().startswith("[")
        ):
            return parse_yaml(text, source=str(p))
        return parse_ini(text, source=str(p))
    except RecursionError:
        raise InventoryError(
            f"{p}: groups are nested too deeply to read",
            hint="an inventory nests a few levels of children at most",
        ) from None


# --- INI ---------------------------------------------------------------------------------

_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])(?::([0-9]+))?\]")


def _expand(pattern: str, where: str) -> list[str]:
    """Expand Ansible host ranges: ``node[01:03]`` → node01, node02, node03."""
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    start, end, step_text = m.group(1), m.group(2), m.group(3)
    step = int(step_text) if step_text else 1
    numeric = start.isdigit() and end.isdigit()
    if step < 1 or (numeric and (int(end) - int(start)) // step > MAX_HOSTS):
        raise InventoryError(
            f"{where}: the host range {m.group(0)!r} is empty or names more than {MAX_HOSTS} hosts",
            hint="check the range's bounds and step",
        )
    head, tail = pattern[: m.start()], pattern[m.end() :]
    if start.isdigit() != end.isdigit():
        raise InventoryError(f"{where}: bad host range {m.group(0)!r}", hint="use [01:10] or [a:f]")
    if start.isdigit():
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    else:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    if not items:
        raise InventoryError(f"{where}: empty host range {m.group(0)!r}")
    names = [name for item in items for name in _expand(head + item + tail, where)]
    if len(names) > MAX_HOSTS:
        raise InventoryError(
            f"{where}: the host range {pattern!r} names {len(names)} hosts, more than {MAX_HOSTS}",
            hint="check the range's bounds",
        )
    return names


def _ini_value(text: str) -> Any:
    """INI var values: quoted strings stay strings; bare numbers become numbers."""
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def _unquote(text: str, where: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            return shlex.split(text)[0]
        except ValueError as exc:
            raise InventoryError(f"{where}: {exc}: {text}") from None
    return text


def _kv(tokens: list[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if not sep or not key:
            raise InventoryError(
                f"{where}: expected key=value, got {tok!r}",
                hint="host lines look like: ctl-1 ansible_host=10.0.0.11 ansible_user=root",
            )
        out[key] = _ini_value(value)
    return out


def parse_ini(text: str, *, source: str = "<inventory>") -> Inventory:
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    order: list[str] = []
    section, kind = "ungrouped", "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{lineno}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            name, _, kind = line[1:-1].partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InventoryError(f"{where}: unknown section kind {kind!r} in {line}")
            section = name.strip()
            groups.setdefault(section, _Group())
            continue
        group = groups[section]
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise InventoryError(
                    f"{where}: expected key = value in [{section}:vars], got {line!r}"
                )
            group.vars[key.strip()] = _ini_value(_unquote(value.strip(), where))
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{where}: {exc}: {line}") from None
        if not tokens:
            continue
        if kind == "hosts":
            host_vars = _kv(tokens[1:], where)
            for name in _expand(tokens[0], where):
                if name not in order:
                    order.append(name)
                group.hosts.setdefault(name, {}).update(host_vars)
        else:  # children
            group.children.add(tokens[0])
            groups.setdefault(tokens[0], _Group())
    return _resolve(groups, order, source)


# --- YAML --------------------------------------------------------------------------------


def parse_yaml(text: str, *, source: str = "<inventory>") -> Inventory:
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise InventoryError(
            f"{source}: reading a YAML inventory needs PyYAML",
            hint="pip install pyyaml (openstacksdk brings it), or use an INI inventory",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InventoryError(f"{source}: a YAML inventory is a mapping of groups, like all:")
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    order: list[str] = []

    def walk(name: str, body: Any, path: str) -> None:
        group = groups.setdefault(name, _Group())
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InventoryError(
                f"{source}: {path}: expected hosts/children/vars, got {body!r:.40}"
            )
        unknown = set(body) - {"hosts", "children", "vars"}
        if unknown:
            raise InventoryError(
                f"{source}: {path}: unknown key(s) {sorted(unknown)}",
                hint="a group holds only hosts, children and vars",
            )
        for host, hvars in (body.get("hosts") or {}).items():
            if hvars is not None and not isinstance(hvars, Mapping):
                raise InventoryError(f"{source}: {path}.hosts.{host}: host vars must be a mapping")
            for expanded in _expand(str(host), f"{source}: {path}"):
                if expanded not in order:
                    order.append(expanded)
                group.hosts.setdefault(expanded, {}).update(dict(hvars or {}))
        group.vars.update(dict(body.get("vars") or {}))
        for child, child_body in (body.get("children") or {}).items():
            group.children.add(str(child))
            walk(str(child), child_body, f"{path}.children.{child}")

    for top, body in data.items():
        walk(str(top), body, str(top))
    return _resolve(groups, order, source)


# --- shared --------------------------------------------------------------------------------


def _resolve(groups: dict[str, _Group], order: list[str], source: str) -> Inventory:
    parents: dict[str, set[str]] = {name: set() for name in groups}
    for name, group in groups.items():
        for child in group.children:
            parents.setdefault(child, set()).add(name)

    def ancestors(name: str) -> dict[str, int]:
        """Group → depth below ``all`` for the group and its ancestors (bounded by the count)."""
        depth: dict[str, int] = {}
        frontier = [(name, 0)]
        for _ in range(len(groups) * len(groups) + 1):
            if not frontier:
                break
            g, d = frontier.pop()
            if g in depth and depth[g] >= d:
                continue
            depth[g] = d
            frontier.extend((p, d + 1) for p in parents.get(g, ()))
        return depth

    hosts: dict[str, Host] = {}
    for name in order:
        direct = [g for g, grp in groups.items() if name in grp.hosts]
        levels: dict[str, int] = {}
        for g in direct:
            for anc, up in ancestors(g).items():
                levels[anc] = max(levels.get(anc, -1), up)
        levels.pop("all", None)
        if not direct or direct == ["ungrouped"]:
            levels.setdefault("ungrouped", 0)
        elif "ungrouped" in levels and len(direct) > 1:
            levels.pop("ungrouped")
        # apply vars: all first, then groups from the farthest ancestor to the nearest
        merged: dict[str, Any] = dict(groups["all"].vars)
        for g in sorted(levels, key=lambda g: (-levels[g], g)):
            merged.update(groups[g].vars)
        for g in direct:
            merged.update(groups[g].hosts[name])
        hosts[name] = Host(
            name=name,
            address=str(_first(merged, _ADDRESS_VARS) or name),
            port=_port(_first(merged, _PORT_VARS), name, source),
            user=_str_or_none(_first(merged, _USER_VARS)),
            groups=("all", *sorted(levels)),
            osha_vars=tuple(
                (k, str(v)) for k, v in sorted(merged.items())
                if k.startswith("osha_") and v not in (None, "")
            ),
        )
    return Inventory(hosts, source)


def _first(values: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in values and values[key] not in (None, ""):
            return values[key]
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _port(value: Any, host: str, source: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InventoryError(
            f"{source}: host {host}: ansible_port {value!r} is not a number"
        ) from None
