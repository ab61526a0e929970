"""The files a profile names, checked before anything runs (``osha campaign validate`` and
the validate phase of ``osha campaign start``, ``osha faults plan`` and ``check``), and what
a plugin checks of its config against them (:func:`plugin_problems`).

Every :data:`~osha.schema.FilePath` value of the profile (``[cloud]``, every actor's config,
every ``[[load]]``) must be a readable regular file: not missing, not a folder, FIFO or device.
Some are also parsed, by the key that names them (the same key names ``[cloud]`` gives its
defaults by):

- ``inventory``: an Ansible inventory that :mod:`osha.inventory` reads;
- ``clouds_yaml``: YAML whose ``clouds`` holds the entry the same table names in ``cloud``;
- ``task``: a Rally task, YAML or JSON, whose top level is a mapping. A Jinja2 template
  (``{{ }}``, ``{% %}``) is left to ``rally task validate`` at the health gate;
- ``rally_bin``: executable.

A value that ``[cloud]`` gives several tables is checked once, under the first key.
:data:`~osha.schema.DirPath` values are folders osha creates and are not checked.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from osha import inventory, profile, registry
from osha.errors import Problem, ProfileError
from osha.plugin import Kind
from osha.profile import Profile
from osha.schema import FilePath
from osha.textfile import InputFileError, check_input_file, read_text

__all__ = ["check_inputs", "load_checked", "plugin_problems"]

Check = Callable[[Path, Any], str]  # (path, the table it is in) -> a problem, or ""


def _inventory(path: Path, _table: Any) -> str:
    try:
        inventory.load(path)
    except inventory.InventoryError as exc:
        return exc.message
    return ""


def _yaml(path: Path, what: str) -> tuple[Any, str]:
    """The parsed YAML of ``path`` (JSON is YAML), or a problem."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:  # PyYAML comes with the plugins that read these files
        return None, ""
    try:
        return yaml.safe_load(read_text(path, what)), ""
    except InputFileError as exc:
        return None, exc.reason
    except RecursionError:
        return None, "nested too deeply to read"
    except yaml.YAMLError as exc:
        return None, f"not valid YAML or JSON: {str(exc).splitlines()[0]}"


def _clouds_yaml(path: Path, table: Any) -> str:
    data, problem = _yaml(path, "clouds.yaml")
    if problem or data is None:
        return problem
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(clouds, dict):
        return "has no clouds: mapping (openstacksdk's clouds.yaml format)"
    name = getattr(table, "cloud", None)
    if isinstance(name, str) and name and name not in clouds:
        known = ", ".join(sorted(map(str, clouds))) or "none"
        return f"has no cloud {name!r} (clouds in it: {known})"
    return ""


def _task(path: Path, _table: Any) -> str:
    try:
        text = read_text(path, "Rally task")
    except InputFileError as exc:
        return exc.reason
    if "{{" in text or "{%" in text:
        return ""  # a Jinja2 template: rendered and checked by `rally task validate`
    data, problem = _yaml(path, "Rally task")
    if problem:
        return problem
    if not isinstance(data, dict):
        return "is not a Rally task: its top level is not a mapping of scenarios"
    return ""


def _executable(path: Path, _table: Any) -> str:
    return "" if os.access(path, os.X_OK) else "is not executable"


_CONTENT: dict[str, tuple[str, Check]] = {
    "inventory": ("inventory", _inventory),
    "clouds_yaml": ("clouds.yaml", _clouds_yaml),
    "task": ("Rally task", _task),
    "rally_bin": ("Rally binary", _executable),
}


def _paths(table: Any, where: str) -> Iterator[tuple[str, str, str, Any]]:
    """(key, field name, path, the table) for every FilePath in a config dataclass."""
    if not dataclasses.is_dataclass(table) or isinstance(table, type):
        return
    hints = typing.get_type_hints(type(table))
    for f in dataclasses.fields(table):
        value = getattr(table, f.name)
        key = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            yield from _paths(value, key)
        elif _holds_path(hints[f.name]):
            items = value if isinstance(value, tuple) else (value,)
            for i, item in enumerate(items):
                if isinstance(item, str) and item:
                    yield (f"{key}[{i}]" if isinstance(value, tuple) else key, f.name, item, table)


def _holds_path(tp: Any) -> bool:
    if tp is FilePath:
        return True
    return any(_holds_path(arg) for arg in typing.get_args(tp))


_ACTOR_SECTIONS: tuple[tuple[Kind, str], ...] = (
    ("monitor", "monitors"),
    ("disruptor", "disruptors"),
    ("runner", "runners"),
)


def _tables(prof: Profile) -> Iterator[tuple[str, Any]]:
    yield "cloud", prof.cloud
    for kind, section in _ACTOR_SECTIONS:
        for i, entry in enumerate(prof.of_kind(kind)):
            yield f"{section}[{i}]", entry.config
    for i, load in enumerate(prof.loads):
        yield f"load[{i}]", load.config


def check_inputs(prof: Profile) -> list[Problem]:
    """Every problem with the files ``prof`` names (file, key, problem, hint)."""
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for where, table in _tables(prof):
        for key, name, raw, owner in _paths(table, where):
            what, content = _CONTENT.get(name, ("file", None))
            cloud = str(getattr(owner, "cloud", "") or "")
            if (name, raw, cloud) in seen:
                continue
            seen.add((name, raw, cloud))
            path = Path(raw)
            try:
                check_input_file(path, what)
            except InputFileError as exc:
                problems.append(Problem(str(prof.path), key, f"{path}: {exc.reason}",
                                        f"give the path of a readable {what}"))  # fmt: skip
                continue
            text = content(path, owner) if content is not None else ""
            if text:
                problems.append(Problem(str(prof.path), key, f"{path}: {text}",
                                        f"fix the {what}, or point {name} at another"))  # fmt: skip
    return problems


def plugin_problems(prof: Profile) -> list[Problem]:
    """What a plugin finds wrong in its config once the files it names are known good (the
    ``network`` disruptor: a peer group or node its inventory lacks): its
    ``input_problems(config)`` classmethod, if it has one, gives ``(key, problem, hint)``."""
    problems: list[Problem] = []
    for kind, section in _ACTOR_SECTIONS:
        for i, entry in enumerate(prof.of_kind(kind)):
            check = getattr(registry.load(kind, entry.plugin), "input_problems", None)
            for key, text, hint in check(entry.config) if check is not None else ():
                problems.append(Problem(str(prof.path), f"{section}[{i}].{key}", text, hint))
    return problems


def load_checked(path: Path) -> Profile:
    """The profile at ``path``, validated completely: keys, types, plugins, ids, and the
    files it names (they exist, are regular readable files, and parse). ProfileError (exit
    2) with every problem. For the commands that act on a profile (``campaign validate`` and
    ``start``, ``faults plan`` and ``check``); a recovery reads its recorded profile as it is."""
    prof = profile.load(path)
    problems = check_inputs(prof) or plugin_problems(prof)
    if problems:
        raise ProfileError(problems)
    return prof
