"""Typed configs from TOML tables: check every key and type, collect every problem.

A plugin declares its settings as a frozen dataclass; :func:`build` turns a TOML table into
that dataclass or into a list of :class:`~osha.errors.Problem`, each naming the file, the
dotted key, what is wrong and a hint. Nothing stops at the first problem.

Supported field types: ``str``, :data:`Name`, ``int``, ``float`` (an int is accepted),
``bool``, ``None`` unions, ``Literal`` of strings, ``Enum`` (by value), ``tuple[X, ...]`` /
``list[X]`` (stored as tuples), ``dict[str, X]``, nested dataclasses, :data:`FilePath` (an
input file) and :data:`DirPath` (a folder osha creates).

What no value may be, whatever its field (each is refused with its key):

- a number that is NaN or infinite (TOML allows ``nan`` and ``inf``; a flush interval of
  ``inf`` kills a thread, ``nan`` makes it spin);
- an integer the ledger cannot hold (outside the signed 64-bit range, e.g. ``10**38``);
- a string holding NUL or a control character other than tab and newline, or longer than
  :data:`MAX_TEXT` characters;
- a *name* (a :data:`Name` field, a table key) that holds any control character or is
  longer than :data:`MAX_NAME` characters.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from osha.errors import Problem

__all__ = [
    "MAX_NAME",
    "MAX_TEXT",
    "Command",
    "DirPath",
    "FilePath",
    "Name",
    "build",
    "describe_type",
    "example_value",
    "to_raw",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: A dataclass that :func:`build` makes from a table
T = TypeVar("T", bound="DataclassInstance")

#: A path in a profile. ``${NAME}`` and ``${NAME:-default}`` expand from the environment
#: (e.g. ``"${OSHA_LAB_DIR:-/var/lib/osha-lab}/clouds.yaml"``), ``~`` to the home folder, and
#: relative paths resolve from the profile's own folder, so a profile and the files it names
#: (inventory, known_hosts, Rally tasks) can move together.
FilePath = typing.NewType("FilePath", str)
#: A folder osha creates if needed (e.g. a Rally work dir): resolved like :data:`FilePath`,
#: but not required to exist.
DirPath = typing.NewType("DirPath", str)
#: A command run on a node (a monitor's ``mysql_command``, ``rabbitmqctl_command``...):
#: ``${OSHA_NAME}`` and ``${OSHA_NAME:-default}`` expand from osha's environment, like a path's
#: variables (e.g. ``"${OSHA_LAB_DIR:-/var/lib/osha-lab}/etc/rabbitmq/rabbitmqctl"``); every
#: other ``$`` is left for the node's shell.
Command = typing.NewType("Command", str)
#: A name: printable, at most :data:`MAX_NAME` characters (a service, a cloud entry, a run's
#: name). Table keys are names too.
Name = typing.NewType("Name", str)

MAX_NAME = 100
MAX_TEXT = 4096
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what the ledger (msgpack) holds as a signed integer
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # but tab and newline
_NAME_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OSHA_REF = re.compile(r"\$\{(OSHA_[A-Za-z0-9_]*)(?::-([^}]*))?\}")

_MISSING = dataclasses.MISSING


def describe_type(tp: Any) -> str:
    """A short human name for a type, as a profile author would write it."""
    if tp in (FilePath, DirPath):
        return "path"
    if tp is Name:
        return "name"
    if tp is Command:
        return "command"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(tp))
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if origin in (tuple, list):
        return f"list of {describe_type(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"table of {describe_type(typing.get_args(tp)[1])}"
    if tp is type(None):
        return "nothing"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(repr(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def example_value(tp: Any) -> str:
    """A TOML snippet of the right type, for hints."""
    if tp in (FilePath, DirPath):
        return '"relative/or/absolute/path"'
    if tp is Name:
        return '"a-name"'
    if tp is Command:
        return '"a command"'
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return example_value(arms[0]) if arms else '""'
    if origin is Literal:
        return repr(typing.get_args(tp)[0]).replace("'", '"')
    if origin in (tuple, list):
        return f"[{example_value(typing.get_args(tp)[0])}]"
    if origin is dict:
        return f"{{ key = {example_value(typing.get_args(tp)[1])} }}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f'"{next(iter(tp)).value}"'
    return {str: '"text"', int: "1", float: "1.0", bool: "true"}.get(tp, "{ }")


class _Checker:
    def __init__(self, file: str, base_dir: Path | None) -> None:
        self.file = file
        self.base_dir = base_dir
        self.problems: list[Problem] = []

    def problem(self, key: str, text: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, key, text, hint))

    def value(self, tp: Any, value: Any, key: str) -> Any:  # noqa: PLR0912 - one branch per supported type
        if tp in (FilePath, DirPath):
            return self._path(tp, value, key)
        if tp is Name:
            if not isinstance(value, str):
                return self._wrong(tp, value, key)
            return value if self._name(value, key) else None
        if tp is Command:
            if not isinstance(value, str):
                return self._wrong(tp, value, key)
            return self._expand_env(value, key, _OSHA_REF) if self._text(value, key) else None
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            arms = typing.get_args(tp)
            for arm in arms:
                if _matches(arm, value):
                    return self.value(arm, value, key)
            return self._wrong(tp, value, key)
        if origin is Literal:
            choices = typing.get_args(tp)
            if value in choices:
                return value
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {describe_type(tp)}"
            self.problem(key, f"{value!r} is not one of {describe_type(tp)}", hint)
            return None
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            for member in tp:
                if member.value == value:
                    return member
            values = [str(m.value) for m in tp]
            close = difflib.get_close_matches(str(value), values, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {describe_type(tp)}"
            self.problem(key, f"{value!r} is not one of {describe_type(tp)}", hint)
            return None
        if origin in (tuple, list):
            if not isinstance(value, list | tuple):
                return self._wrong(tp, value, key)
            item_tp = typing.get_args(tp)[0]
            return tuple(self.value(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value))
        if origin is dict:
            if not isinstance(value, Mapping):
                return self._wrong(tp, value, key)
            item_tp = typing.get_args(tp)[1]
            return {
                str(k): self.value(item_tp, v, f"{key}.{k}")
                for k, v in value.items()
                if self._name(str(k), f"{key}.{k}", what="key")
            }
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if not isinstance(value, Mapping):
                return self._wrong(tp, value, key)
            return self.dataclass(tp, value, key)
        if _matches(tp, value):
            return self._scalar(tp, value, key)
        return self._wrong(tp, value, key)

    def _path(self, tp: Any, value: Any, key: str) -> Any:
        """A path: ``${VARS}`` and ``~`` expanded, relative to ``base_dir``."""
        if not isinstance(value, str) or not value:
            return self._wrong(tp, value, key)
        if not self._text(value, key):
            return None
        expanded = self._expand_env(value, key)
        if expanded is None:
            return None
        path = Path(expanded).expanduser()
        if self.base_dir is not None and not path.is_absolute():
            path = self.base_dir / path
        return tp(str(path))

    def _scalar(self, tp: Any, value: Any, key: str) -> Any:
        """A str, int, float or bool that has the right type: is it a value osha can hold?"""
        if tp is float and not math.isfinite(value):
            self.problem(key, f"{value!r} is not a finite number", "write a plain number, like 1.5")
            return None
        if tp in (int, float) and isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            self.problem(
                key,
                f"{value} does not fit in a signed 64-bit integer (the ledger records it)",
                f"use a number between {INT_MIN} and {INT_MAX}",
            )
            return None
        if tp is str and not self._text(value, key):
            return None
        return float(value) if tp is float else value

    def _text(self, value: str, key: str) -> bool:
        """Whether a free-form string is fit to keep (a problem is recorded if not)."""
        bad = _CONTROL.search(value)
        if bad:
            self.problem(key, f"holds the control character {bad.group()!r}",
                         "remove it: profile strings are plain text")  # fmt: skip
            return False
        if len(value) > MAX_TEXT:
            self.problem(key, f"is {len(value)} characters long, more than {MAX_TEXT}",
                         "shorten it")  # fmt: skip
            return False
        return True

    def _name(self, value: str, key: str, what: str = "name") -> bool:
        """Whether a name (or table key) is printable and short (a problem is recorded if
        not)."""
        bad = _NAME_CONTROL.search(value)
        if bad:
            self.problem(key, f"the {what} {value[:40]!r} holds the control character "
                         f"{bad.group()!r}", f"a {what} is printable text")  # fmt: skip
            return False
        if not value or len(value) > MAX_NAME:
            self.problem(key, f"the {what} {value[:40]!r}... is {len(value)} characters long"
                         if value else f"the {what} is empty",
                         f"a {what} has 1 to {MAX_NAME} characters")  # fmt: skip
            return False
        return True

    def _expand_env(self, value: str, key: str, refs: re.Pattern[str] = _ENV_REF) -> str | None:
        """``${NAME}`` / ``${NAME:-default}`` from the environment; None (and a problem) when
        a variable without a default is not set."""
        missing: list[str] = []

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found:
                return found
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = refs.sub(repl, value)
        if missing:
            self.problem(
                key,
                f"environment variable {missing[0]} is not set (in {value!r})",
                f"export {missing[0]}=..., or give a default: ${{{missing[0]}:-/some/path}}",
            )
            return None
        return expanded

    def _wrong(self, tp: Any, value: Any, key: str) -> None:
        self.problem(
            key,
            f"expected {describe_type(tp)}, got {_toml_type(value)} {value!r:.40}",
            f"write it like {key.rsplit('.', 1)[-1]} = {example_value(tp)}",
        )

    def dataclass(self, cls: type[T], data: Mapping[str, Any], prefix: str) -> T | None:
        """``cls`` from ``data``; None when a problem was recorded."""
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, value in data.items():
            key = f"{prefix}.{name}" if prefix else name
            if name not in fields:
                close = difflib.get_close_matches(name, list(fields), n=1)
                known = ", ".join(sorted(fields)) or "no settings"
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {known}"
                self.problem(key, "unknown key", hint)
                continue
            values[name] = self.value(hints[name], value, key)
        for name, f in fields.items():
            if name not in data and f.default is _MISSING and f.default_factory is _MISSING:
                key = f"{prefix}.{name}" if prefix else name
                self.problem(
                    key,
                    "missing required key",
                    f"add {name} = {example_value(hints[name])}",
                )
        if any(p.key.startswith(prefix) for p in self.problems) and prefix:
            return None
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            self.problem(prefix or "(top level)", str(exc))
            return None


def _matches(tp: Any, value: Any) -> bool:
    """Whether a value's shape fits a type well enough to check it against that type."""
    if tp in (FilePath, DirPath, Name, Command):
        return isinstance(value, str)
    origin = typing.get_origin(tp)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (tuple, list):
        return isinstance(value, list | tuple)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, Mapping)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return any(m.value == value for m in tp)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return False


def _toml_type(value: Any) -> str:
    return {
        bool: "true/false",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def build(
    cls: type[T],
    data: Mapping[str, Any],
    *,
    file: str,
    key: str = "",
    base_dir: Path | None = None,
) -> tuple[T | None, list[Problem]]:
    """Build ``cls`` from ``data``; return it (or None) and every problem found.

    :data:`FilePath` values resolve against ``base_dir`` when they are relative.
    """
    checker = _Checker(file, base_dir)
    result = checker.dataclass(cls, data, key)
    if checker.problems:
        return None, checker.problems
    return result, []


def to_raw(value: Any) -> Any:
    """A value :func:`build` made, as plain TOML-like data again (tables, lists, enum values),
    so that it can be built again elsewhere (an actor's child process)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_raw(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_raw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_raw(v) for v in value]
    return value
