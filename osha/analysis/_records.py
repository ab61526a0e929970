"""Checking records as the analysis reads them: a damaged one is counted, never a crash.

The reader hands over records whose frame and CRC are good; their payload may still not be a
valid message (written by a bug, a different version, or crafted): not an array, too few
fields, an unknown tag, a wrong field type, a clock reading that is NaN or infinite. Each such
record is a :class:`~osha.errors.WireError` here, which the pass records as damage with the
record's position and goes on with the next one.

The checks are split by cost: every record's envelope (sender, seq, monotonic time) is
checked inline by the pass; the frequent ``monitor.sample`` is read positionally and checked
field by field; every other record is built into its typed message by the codec's compiled
checkers and its float fields are checked to be finite
(:func:`~osha.ledger.damage.require_finite`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osha.errors import WireError
from osha.ledger import LedgerReader
from osha.ledger.damage import DamageCollector
from osha.messages import LedgerHeader, Message, registry, spec_of
from osha.wire import decode

__all__ = ["MONO_AT", "NUMBER", "SENDER_AT", "SEQ_AT", "bad_envelope", "first_header", "typed"]

NUMBER = (float, int)
_registry = registry()
#: where an undecoded record holds its envelope's sender, seq and mono_s (the tag is at 0): the
#: codec's field index, the same for every message
SENDER_AT, SEQ_AT, MONO_AT = (spec_of(LedgerHeader).at(n) for n in ("sender", "seq", "mono_s"))


def bad_envelope(items: Any) -> WireError:
    """The error for a payload whose envelope (``[tag, sender, seq, mono_s, wall_s]``) is not
    a message's."""
    if type(items) is not list or len(items) < 5:
        return WireError(f"not a message: expected [tag, sender, seq, mono_s, wall_s, ...], "
                         f"got {type(items).__name__} {items!r:.60}")  # fmt: skip
    tag, sender, seq, mono = items[0], items[SENDER_AT], items[SEQ_AT], items[MONO_AT]
    if type(tag) is not str or tag not in _registry:
        return WireError(f"unknown message tag {tag!r:.60}")
    if type(sender) is not str or type(seq) is not int:
        return WireError(f"{tag}: sender {sender!r:.40} or seq {seq!r:.20} has the wrong type")
    return WireError(f"{tag} from {sender!r}: mono_s {mono!r:.30} is not a finite number")


def typed(items: list[Any], payload: bytes) -> Message:
    """The typed message of an unpacked record, every field checked (WireError if not)."""
    spec = _registry.get(items[0])
    if spec is not None and len(items) < len(spec.builders):
        build = spec.builders[len(items)]
        if build is not None:
            msg = build(items)
            if msg is not None:
                return msg
    return decode(payload)  # raises the WireError that explains it


def first_header(
    reader: LedgerReader, payload: bytes, segment: int, damage: DamageCollector, run_dir: Path
) -> tuple[LedgerHeader, bool]:
    """The run's header from the first record read, else from the writer's copy, else made
    up from what is known (so that the intact rest can still be read); and whether it is the
    real first record. Damage is recorded."""
    try:
        msg = decode(payload)
    except WireError:
        msg = None
    if isinstance(msg, LedgerHeader) and segment == 1:
        return msg, True
    copy = reader.header_copy()
    found = "damaged" if msg is None else f"a {msg.TAG!r} record"
    if copy is not None:
        damage.add("damaged header", f"the first record is {found}, not the ledger header; "
                   "the header's copy in header.rec was used")  # fmt: skip
        return copy, False
    damage.add(
        "damaged header",
        f"the first record is {found}, not the ledger header, and header.rec holds no good "
        "copy: run id, seed and recorded SLOs are unknown",
    )
    mono = msg.mono_s if msg is not None else 0.0
    wall = msg.wall_s if msg is not None else 0.0
    name = run_dir.name.removesuffix(".osha")
    return LedgerHeader("?", 1, mono, wall, 0, "?", name, "?", wall, 0, {}), False
