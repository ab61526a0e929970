"""The message base class, the ``@message`` decorator and the tag registry."""

from __future__ import annotations

import dataclasses
import enum
import operator
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Literal, ParamSpec, TypeVar

__all__ = [
    "Build",
    "FieldSpec",
    "Message",
    "MessageSpec",
    "envelope",
    "message",
    "registry",
    "spec_of",
    "stamp",
]


@dataclass(frozen=True, slots=True)
class Message:
    """The envelope every message carries. Subclasses add their own fields after it."""

    TAG: ClassVar[str] = ""

    sender: str
    seq: int
    mono_s: float
    wall_s: float


_M = TypeVar("_M", bound=Message)
_P = ParamSpec("_P")

Build = Callable[Concatenate[str, int, float, float, _P], _M]
"""A message class seen as what builds it: the four envelope fields come first, then its own
fields (``_P``). ``emit(cls, /, *args: P.args, **fields: P.kwargs)`` over ``Build[P, M]`` lets
mypy check a message's fields by name and type at every emit, at no runtime cost."""
_monotonic = time.monotonic  # bound once: stamp is on every emit's path
_wall = time.time


def envelope(sender: str, seq: int) -> tuple[str, int, float, float]:
    """The four envelope fields of a message from ``sender`` with number ``seq`` in its
    sequence (0 for a control message, which is outside it), stamped now with this host's
    monotonic and wall clocks: the one place the clocks are read for an envelope.

    ``cls(*envelope(sender, seq), **fields)`` is :func:`stamp` without its second pass over
    ``fields``: the child's outbox builds every event that way (about 10 % of an emit).
    """
    return sender, seq, _monotonic(), _wall()


def stamp(cls: Build[_P, _M], sender: str, seq: int, /, *args: _P.args, **fields: _P.kwargs) -> _M:
    """A ``cls`` message with its :func:`envelope` (its fields checked by mypy: :data:`Build`)."""
    return cls(*envelope(sender, seq), *args, **fields)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one field is checked on decode."""

    name: str
    types: tuple[type, ...]  # exact types accepted (``type(v) in types``)
    choices: frozenset[str] | None  # for Literal and enum fields
    to_tuple: bool  # msgpack gives lists; tuple fields are converted back
    required: bool
    #: value → member, for a ``StrEnum`` field: decoding gives the member back, not the str
    members: dict[str, enum.StrEnum] | None = None
    #: the nested record this field belongs to (its name is ``outer.inner``), if any
    record: type | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """What the codec needs to encode and decode one message class."""

    tag: str
    cls: type[Message]
    fields: tuple[FieldSpec, ...]
    required: int  # how many leading fields have no default
    getter: Callable[[Message], tuple[Any, ...]]
    #: index n: a checker-constructor for a decoded list of n items (tag included)
    builders: tuple[Callable[[list[Any]], Message | None] | None, ...]

    def at(self, name: str) -> int:
        """Where field ``name`` (the envelope's too) sits in the encoded list, tag at 0: for a
        fast path that reads a few fields of an undecoded record. Look it up once, not per
        record."""
        for k, f in enumerate(self.fields):
            if f.name == name:
                return k + 1
        raise KeyError(f"{self.tag} has no field {name!r}")


_REGISTRY: dict[str, MessageSpec] = {}
_BY_CLASS: dict[Callable[..., Message], MessageSpec] = {}

M = TypeVar("M", bound=type[Message])


def registry() -> dict[str, MessageSpec]:
    """Tag → spec, for every message class imported so far."""
    return _REGISTRY


def spec_of(cls: Callable[..., Message]) -> MessageSpec:
    """The spec of a registered message class."""
    try:
        return _BY_CLASS[cls]
    except KeyError:
        raise TypeError(f"{cls!r} is not a registered message class") from None


def _enum_of(annotation: Any) -> type[enum.StrEnum] | None:
    """The ``StrEnum`` an annotation names (alone or in a None union), if any."""
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(annotation) if _enum_of(a) is not None]
        return found[0] if len(found) == 1 else None
    return None


def _types_for(annotation: Any, where: str) -> tuple[tuple[type, ...], frozenset[str] | None, bool]:
    """Exact accepted types, Literal or enum choices and tuple conversion for an annotation."""
    if annotation is Any:
        raise TypeError(f"{where}: Any is not allowed in a message field; name the type")
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        accepted: list[type] = []
        choices: frozenset[str] | None = None
        to_tuple = False
        for arm in typing.get_args(annotation):
            arm_types, arm_choices, arm_tuple = _types_for(arm, where)
            accepted.extend(arm_types)
            choices = arm_choices if arm_choices is not None else choices
            to_tuple = to_tuple or arm_tuple
        return tuple(dict.fromkeys(accepted)), choices, to_tuple
    if origin is Literal:
        values = typing.get_args(annotation)
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"{where}: only Literal of strings is supported")
        return (str,), frozenset(values), False
    if origin is tuple:
        return (list, tuple), None, True
    if origin is dict:
        key, _value = typing.get_args(annotation)
        if key is not str:
            raise TypeError(f"{where}: dict keys must be str")
        return (dict,), None, False
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return (str,), frozenset(m.value for m in annotation), False
    if annotation is type(None) or annotation is None:
        return (type(None),), None, False
    if annotation is float:
        return (float, int), None, False
    if annotation in (str, int, bool, bytes):
        return (annotation,), None, False
    raise TypeError(f"{where}: unsupported field type {annotation!r}")


def message(tag: str) -> Callable[[M], M]:
    """Register a frozen message dataclass under a dotted tag.

    The class must be decorated ``@dataclass(frozen=True, slots=True)`` below this decorator
    and subclass :class:`Message`.
    """
    if "." not in tag or tag != tag.strip() or len(tag) > 31:
        raise ValueError(f"message tag {tag!r} must be dotted, like 'monitor.sample', ≤ 31 chars")

    def register(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Message)):
            raise TypeError(f"@message({tag!r}) must decorate a Message subclass")
        if not dataclasses.is_dataclass(cls) or not vars(cls)["__dataclass_params__"].frozen:
            raise TypeError(f"@message({tag!r}): {cls.__qualname__} must be a frozen dataclass")
        if "__post_init__" in vars(cls):
            raise TypeError(f"@message({tag!r}): message classes may not define __post_init__")
        if tag in _REGISTRY and _REGISTRY[tag].cls is not cls:
            other = _REGISTRY[tag].cls
            raise TypeError(
                f"message tag {tag!r} is used by both {other.__module__}.{other.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        specs = _field_specs(cls, "")
        required = sum(1 for f in specs if f.required)
        names = [s.name for s in specs]
        getter = operator.attrgetter(*names)
        cls.TAG = tag
        builders = _compile_builders(tag, cls, specs, required)
        spec = MessageSpec(tag, cls, tuple(specs), required, getter, builders)
        _REGISTRY[tag] = spec
        _BY_CLASS[cls] = spec
        return cls

    return register


def _is_record(annotation: Any) -> bool:
    """A nested record: a frozen, slotted dataclass that is not a message."""
    return (
        isinstance(annotation, type)
        and dataclasses.is_dataclass(annotation)
        and not issubclass(annotation, Message)
    )


def _field_specs(cls: type, prefix: str) -> list[FieldSpec]:
    """The flat field specs of ``cls``: a nested record's fields take its field's place, each
    named ``outer.inner``, so that a record is sent as its fields, inline, one after another
    (a message with a record encodes exactly as one with those fields would)."""
    hints = typing.get_type_hints(cls)
    specs: list[FieldSpec] = []
    for f in dataclasses.fields(cls):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        hint = hints[f.name]
        where = f"{cls.__qualname__}.{f.name}"
        if _is_record(hint):
            params = vars(hint)["__dataclass_params__"]
            if prefix or has_default or not params.frozen or "__slots__" not in vars(hint):
                raise TypeError(f"{where}: a nested record is a frozen, slotted dataclass, "
                                "one level deep, without a default")  # fmt: skip
            inner = _field_specs(hint, f"{f.name}.")
            specs.extend(dataclasses.replace(i, record=hint) for i in inner)
            continue
        accepted, choices, to_tuple = _types_for(hint, where)
        kind = _enum_of(hint)
        members = None if kind is None else {m.value: m for m in kind}
        name = prefix + f.name
        specs.append(FieldSpec(name, accepted, choices, to_tuple, not has_default, members))
    return specs


def _default_of(cls: type[Message], name: str) -> Any:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        raise TypeError(
            f"{cls.__qualname__}.{name}: message fields may not use default_factory; "
            "use an immutable default such as () or None"
        )
    return field.default


def _env(cls: type[Message], specs: list[FieldSpec]) -> dict[str, Any]:
    """The names a generated builder uses: per field its slot setter (``s``), type (``t``),
    choices (``c``) and default (``d``); per nested record its class and its slot setter."""
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    for k, f in enumerate(specs):
        outer, _, inner = f.name.partition(".")
        if f.record is None:
            env[f"s{k}"] = getattr(cls, f.name).__set__
        else:  # set on the record; the record is set on the message (below)
            env[f"s{k}"] = getattr(f.record, inner).__set__
            env[f"R_{outer}"] = f.record
            env[f"S_{outer}"] = getattr(cls, outer).__set__
        env[f"t{k}"] = f.types[0] if len(f.types) == 1 else f.types
        if f.members is not None:
            env[f"c{k}"] = f.members  # a dict: ``in`` checks the value, ``[]`` gives the member
        elif f.choices is not None:
            env[f"c{k}"] = f.choices
        if not f.required:
            env[f"d{k}"] = _default_of(cls, f.name)
    return env


def _compile_builders(
    tag: str, cls: type[Message], specs: list[FieldSpec], required: int
) -> tuple[Callable[[list[Any]], Message | None] | None, ...]:
    """Generate one straight-line checker-and-constructor per valid item count.

    Index ``n`` of the result takes a decoded list of ``n`` items (the tag included) and
    returns the message, or None if any field's type or choice is wrong; the codec then
    explains what is wrong. Replaying a ledger decodes millions of messages: unpacking into
    locals with one exact ``type(x) is T`` test per field, and setting the frozen slots
    directly instead of going through the dataclass ``__init__`` (one ``object.__setattr__``
    per field), is about twice as fast as a generic loop.
    """
    env = _env(cls, specs)
    builders: list[Callable[[list[Any]], Message | None] | None] = [None] * (len(specs) + 2)
    for count in range(required, len(specs) + 1):
        checks: list[str] = []
        sets: list[str] = []
        for k, f in enumerate(specs[:count]):
            check = f"type(a{k}) is t{k}" if len(f.types) == 1 else f"type(a{k}) in t{k}"
            if f.choices is not None:
                check = f"({check} and (a{k} is None or a{k} in c{k}))"
            checks.append(check)
            value = f"(tuple(a{k}) if type(a{k}) is list else a{k})" if f.to_tuple else f"a{k}"
            if f.members is not None:  # the member, not the str (None stays None)
                nullable = type(None) in f.types
                value = f"(None if a{k} is None else c{k}[a{k}])" if nullable else f"c{k}[a{k}]"
            if f.record is None:
                sets.append(f"    s{k}(o, {value})")
                continue
            outer = f.name.partition(".")[0]
            if k == 0 or not specs[k - 1].name.startswith(f"{outer}."):
                sets.append(f"    r = new(R_{outer})")
            sets.append(f"    s{k}(r, {value})")
            if k + 1 == len(specs) or not specs[k + 1].name.startswith(f"{outer}."):
                sets.append(f"    S_{outer}(o, r)")
        sets.extend(f"    s{k}(o, d{k})" for k in range(count, len(specs)))
        names = "".join(f"a{k}, " for k in range(count))
        source = "\n".join(
            [
                "def build(v):",
                f"    _, {names}= v",
                f"    if not ({' and '.join(checks) or 'True'}):",
                "        return None",
                "    o = new(cls)",
                *sets,
                "    return o",
            ]
        )
        namespace = dict(env)
        code = compile(source, f"<message {tag} with {count} fields>", "exec")
        exec(code, namespace)  # noqa: S102 - generated from our own field specs, no user input
        builders[count + 1] = namespace["build"]
    return tuple(builders)
