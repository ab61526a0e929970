"""Fuzz: a real recorded ledger, damaged at random, never crashes the report, never hangs it,
never yields a PASS while anything was skipped, and never loses a record before the damage.

The ledger is recorded once per module by a real campaign of the built-in test plugins (the
supervisor, child processes, the recorder and its group commit), whose verdict is a PASS.
Each example copies it and damages one segment: a bit flip, a truncation, garbage written
over it, or a record with a valid frame and a payload of the wrong shape inserted at a record
boundary.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from osha import profile
from osha.analysis import analyze
from osha.campaign import StartOptions, run_campaign
from osha.errors import OshaError
from osha.ledger import LedgerReader, list_segments, verify
from osha.record import frame_record
from osha.report import dumps, render_summary, terminal_safe, to_dict, to_junit

PROFILE = """\
[campaign]
name = "fuzz"
seed = 7
warmup_s = 0
baseline_s = 2.0
chaos_s = 0.5
recovery_timeout_s = 5
recovery_hold_s = 0.2

[ledger]
segment_size_bytes = 4096

[[monitors]]
id = "tick"
plugin = "ticker"
interval_s = 0.02
targets = ["demo@node-1", "demo@node-2"]

[[disruptors]]
id = "noop"
plugin = "noop"
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz")
    path = base / "p.toml"
    path.write_text(PROFILE)
    outcome = run_campaign(
        profile.load(path),
        StartOptions(live=False, ledger_dir=base / "runs"),
        Console(file=io.StringIO(), width=120),
    )
    assert outcome.judgement.exit_code == 0
    run = outcome.run_dir
    assert analyze(run).verdict.passed
    assert len(list_segments(run)) >= 3  # damage can land in a first, middle or last segment
    return run


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _records(run: Path) -> list[tuple[int, int, bytes]]:
    return [(r.segment, r.offset, r.payload) for r in LedgerReader(run).records()]


def _wrong_payload(data: st.DataObject, originals: list[tuple[int, int, bytes]]) -> bytes:
    """A payload of the wrong shape: any msgpack value, or a real record with one field
    replaced or cut short."""
    if data.draw(st.booleans()):
        return msgpack.packb(data.draw(_values))  # type: ignore[no-any-return]
    _seg, _off, payload = data.draw(st.sampled_from(originals))
    items = msgpack.unpackb(payload)
    if data.draw(st.booleans()):
        items = items[: data.draw(st.integers(0, len(items) - 1))]
    else:
        items[data.draw(st.integers(0, len(items) - 1))] = data.draw(_values)
    return msgpack.packb(items)  # type: ignore[no-any-return]


def _damage(data: st.DataObject, run: Path, originals: list[tuple[int, int, bytes]]) -> int:
    """Damage one segment of ``run``; the number of the damaged segment and where the
    damage starts, as one key ``(segment, offset)`` packed in an int."""
    segments = list_segments(run)
    seg = data.draw(st.sampled_from(segments), label="segment")
    blob = bytearray(seg.path.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "garbage", "payload"]), label="kind")
    if kind == "flip":
        at = data.draw(st.integers(0, len(blob) - 1), label="byte")
        blob[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    elif kind == "truncate":
        at = data.draw(st.integers(0, len(blob) - 1), label="length")
        del blob[at:]
    elif kind == "garbage":
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        junk = data.draw(st.binary(min_size=1, max_size=64), label="junk")
        blob[at : at + len(junk)] = junk
    else:
        starts = [off for s, off, _ in originals if s == seg.number] or [len(blob)]
        at = data.draw(st.sampled_from(starts), label="boundary")
        blob[at:at] = frame_record(_wrong_payload(data, originals))
    seg.path.write_bytes(bytes(blob))
    return seg.number * 2**32 + at


@pytest.mark.timeout(600)
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_damaged_real_ledger_is_reported_never_passed(
    recorded: Path, data: st.DataObject
) -> None:
    originals = _records(recorded)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / recorded.name
        shutil.copytree(recorded, run)
        where = _damage(data, run, originals)
        failure: OshaError | None = None
        try:
            a = analyze(run)
            for text in (render_summary(a), to_junit(a), dumps(to_dict(a))):
                assert terminal_safe(text)
            report = verify(run)
        except OshaError as exc:  # a clean one-screen error is acceptable, a traceback is not
            failure = exc
        if failure is not None:
            assert failure.exit_code == 2, failure
            assert failure.message
            return
        read = _records(run)
    skipped = Counter(p for _, _, p in originals) - Counter(p for _, _, p in read)
    if skipped or a.run.damage.damaged:
        assert not a.verdict.passed, (skipped, a.verdict.summary)
        assert a.verdict.exit_code != 0
    if skipped:
        assert a.run.damage.damaged, "records were lost and the analysis did not see it"
        assert report.exit_code() != 0, "records were lost and verify did not see it"
    before = [(s, o, p) for s, o, p in originals if s * 2**32 + o + 10 + len(p) <= where]
    assert set(before) <= set(read), "an intact record before the damage was lost"
