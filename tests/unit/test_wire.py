"""Property tests for the wire codec: every registered message round-trips; bad input is a
WireError; the ledger's fast decoder agrees with ``wire.decode`` on good and bad input."""

from __future__ import annotations

import operator
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actors.testing.commands  # noqa: F401 - registers the test plugins' test.* commands too
from osha.errors import WireError
from osha.messages import Message, MessageSpec, registry
from osha.messages._base import FieldSpec
from osha.wire import decode, encode, peek_tag

SPECS = sorted(registry().values(), key=lambda s: s.tag)

_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _field(fs: FieldSpec) -> st.SearchStrategy[Any]:
    if fs.choices is not None:
        values = st.sampled_from(sorted(fs.choices))
        return values | st.none() if type(None) in fs.types else values
    arms: list[st.SearchStrategy[Any]] = []
    for t in fs.types:
        if t is str:
            arms.append(st.text(max_size=20))
        elif t is bool:
            arms.append(st.booleans())
        elif t is int:
            arms.append(st.integers(-(2**63), 2**63 - 1))
        elif t is float:
            arms.append(st.floats(allow_nan=False))
        elif t is bytes:
            arms.append(st.binary(max_size=20))
        elif t is type(None):
            arms.append(st.none())
        elif t is tuple:
            arms.append(st.lists(st.text(max_size=8), max_size=4).map(tuple))
        elif t is dict:
            arms.append(st.dictionaries(st.text(max_size=8), _plain, max_size=4))
    return st.one_of(arms)


def _message(spec: MessageSpec) -> st.SearchStrategy[Message]:
    return st.tuples(*(_field(f) for f in spec.fields)).map(lambda values: _built(spec, values))


def _built(spec: MessageSpec, values: tuple[Any, ...]) -> Message:
    """The message of the flat field values (a nested record's fields inline, as sent)."""
    msg = spec.builders[len(values) + 1]([spec.tag, *values])
    assert msg is not None, values
    return msg


messages = st.sampled_from(SPECS).flatmap(_message)


@settings(max_examples=300)
@given(messages)
def test_every_message_round_trips(msg: Message) -> None:
    data = encode(msg)
    assert peek_tag(data) == msg.TAG
    assert decode(data) == msg
    assert type(decode(data)) is type(msg)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.tag)
def test_missing_required_field_is_a_wire_error(spec: MessageSpec) -> None:
    items = [spec.tag, "s", 1, 1.0, 2.0][: spec.required]  # at most the envelope
    data = msgpack.packb(items)
    with pytest.raises(WireError, match="missing field"):
        decode(data)


@settings(max_examples=150)
@given(st.sampled_from(SPECS).flatmap(lambda s: st.tuples(_message(s), st.integers(0, 100))))
def test_wrong_type_is_a_wire_error(case: tuple[Message, int]) -> None:
    msg, pick = case
    items = msgpack.unpackb(encode(msg))
    index = 1 + pick % (len(items) - 1)
    items[index] = object_of_wrong_type(items[index])
    data = msgpack.packb(items, use_bin_type=True)
    with pytest.raises(WireError) as info:
        decode(data)
    assert msg.TAG in str(info.value)


def object_of_wrong_type(value: Any) -> Any:
    """A value that no message field accepts in place of ``value``."""
    return [b"not", "this"] if not isinstance(value, list) else {"x": 1.5}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (msgpack.packb(["no.such-tag", "s", 1, 1.0, 1.0]), "unknown message tag"),
        (msgpack.packb({"tag": "x"}), "not a message"),
        (b"\xc1", "undecodable"),
        (msgpack.packb([]), "not a message"),
    ],
)
def test_garbage_is_a_wire_error(data: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode(data)


def test_enum_fields_decode_to_their_members() -> None:
    """A ``StrEnum`` field is sent as its value and comes back as the member (issue 13 §4),
    from a ledger written with plain strings as well; a value outside the enum is a
    WireError naming the field."""
    from osha.messages import Phase, PhaseChange, State, StateChange

    change = decode(
        msgpack.packb(["monitor.state", "m", 1, 1.0, 2.0, "t", "down", "up", None, 1.0])
    )
    assert isinstance(change, StateChange)
    assert change.state is State.DOWN  # the member itself, not an equal str
    assert change.previous is State.UP
    phase = decode(msgpack.packb(["campaign.phase", "s", 1, 1.0, 2.0, "chaos", "start"]))
    assert isinstance(phase, PhaseChange)
    assert phase.phase is Phase.CHAOS
    assert encode(phase) == msgpack.packb(
        ["campaign.phase", "s", 1, 1.0, 2.0, "chaos", "start", True, ""]
    )
    with pytest.raises(WireError, match=r"monitor.state.state: 'sideways' is not one of"):
        decode(msgpack.packb(["monitor.state", "m", 1, 1.0, 2.0, "t", "sideways", "up", None, 1.0]))


@settings(max_examples=100)
@given(messages)
def test_field_index_points_at_the_field_in_the_encoded_list(msg: Message) -> None:
    """``MessageSpec.at(name)`` is where a fast path finds a field in an undecoded record."""
    spec = next(s for s in SPECS if s.cls is type(msg))
    items = msgpack.unpackb(encode(msg))
    assert items[0] == msg.TAG
    for f in spec.fields:
        value = operator.attrgetter(f.name)(msg)  # a nested record's: outer.inner
        expected = list(value) if isinstance(value, tuple) else value
        assert items[spec.at(f.name)] == expected
    with pytest.raises(KeyError, match="no field"):
        spec.at("no_such_field")


def test_a_nested_record_is_sent_inline_as_main_7ea620c_sent_its_fields() -> None:
    """``fault.lease`` and ``fault.request`` carry a :class:`~osha.messages.Lease` (declared
    once); the codec sends its fields inline, so a ledger written before it had a record
    (flat fields, main 7ea620c) decodes to the same lease and re-encodes to the same bytes,
    followed by the fields added since with their defaults (``guard_note``,
    ``allow_quorum_loss``: issue 14)."""
    from osha.messages import FaultLease, FaultRequest, Lease

    flat = ["d1/0", "d1", "process", 0, "kill", "ctl-1", "192.0.2.1", "nova-scheduler",
            ["controller"], 5.0, 100.0, 400.0, {"pid": 7}]  # fmt: skip
    old = msgpack.packb(["fault.lease", "faults", 3, 1.5, 2.5, *flat], use_bin_type=True)
    msg = decode(old)
    assert isinstance(msg, FaultLease)
    assert msg.lease == Lease("d1/0", "d1", "process", 0, "kill", "ctl-1", "192.0.2.1",
                              "nova-scheduler", ("controller",), 5.0, 100.0, 400.0,
                              {"pid": 7})  # fmt: skip
    assert encode(msg) == msgpack.packb([*msgpack.unpackb(old), ""], use_bin_type=True)
    from osha.messages import spec_of

    assert msgpack.unpackb(old)[spec_of(FaultLease).at("lease.node")] == "ctl-1"
    request = msgpack.packb(["fault.request", "d1", 0, 1.5, 2.5, "r1", *flat, 2.0])
    asked = decode(request)
    assert isinstance(asked, FaultRequest)
    assert (asked.request_id, asked.lease, asked.wait_s) == ("r1", msg.lease, 2.0)
    assert encode(asked) == msgpack.packb([*msgpack.unpackb(request), False])
    bad = msgpack.packb(["fault.lease", "faults", 3, 1.5, 2.5, *flat[:3], "0", *flat[4:]])
    with pytest.raises(WireError, match=r"fault.lease.lease.index: expected int, got str"):
        decode(bad)
