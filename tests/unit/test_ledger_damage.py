"""A damaged ledger is never a silent PASS: the verdict, JUnit, compare and the CLI say where
it is damaged and what was skipped; damaged records, a damaged header and closed.json
mismatches are found; resynchronisation costs time linear in the segment."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import msgpack
import pytest
from typer.testing import CliRunner

from osha import record as record_module
from osha.analysis import AnalysisOptions, analyze, compare
from osha.cli import app
from osha.errors import LedgerError
from osha.ledger import LedgerReader, LedgerWriter, segment_name, verify
from osha.ledger.segment import SegmentHeader
from osha.ledger.testing import header, sample, write_ledger
from osha.messages import FaultInjected, RunStopped, StateChange
from osha.record import HEADER_BYTES, frame_record
from osha.report import render_comparison, render_summary, to_junit
from osha.testing import SyntheticLedger
from osha.wire import decode, encode

runner = CliRunner()


def _outage_run(path: Path) -> Path:
    """A 35 s outage of one target: the recorded [slo] passes only if the outage is lost."""
    led = SyntheticLedger(path, profile={"slo": {"min_availability": {"*": 0.99}}})
    led.target("hs", "nova-api@ctl-1", end_s=300.0, down=[(100.0, 135.0)])
    return led.write(stop_s=301.0)


def _flip_in_record(run: Path, pick: type, state: str | None = None) -> int:
    """Flip one bit in the payload of the first record of type ``pick``; its offset."""
    for rec in LedgerReader(run).records():
        msg = decode(rec.payload)
        if isinstance(msg, pick) and (state is None or getattr(msg, "state", None) == state):
            path = run / segment_name(rec.segment)
            data = bytearray(path.read_bytes())
            data[rec.offset + HEADER_BYTES + len(rec.payload) // 2] ^= 0x04
            path.write_bytes(bytes(data))
            return rec.offset
    raise AssertionError(f"no {pick.__name__} record")


def test_a_flipped_bit_in_a_state_change_is_not_a_pass(tmp_path: Path) -> None:
    run = _outage_run(tmp_path / "a.osha")
    whole = analyze(run)
    assert whole.verdict.exit_code == 1  # 35 s down of 300: availability below 0.99
    offset = _flip_in_record(run, StateChange, "down")
    a = analyze(run)
    assert a.targets[0].availability == 1.0  # the outage is gone from the intact part ...
    assert not a.verdict.passed  # ... but that is not a pass
    assert a.verdict.exit_code == 1
    assert a.verdict.summary.startswith("DAMAGED LEDGER:")
    damage = a.run.damage
    assert damage.damaged
    assert any(f"000001.seg at byte {offset}" in p for p in damage.problems)
    assert any("sequence gap for 'hs'" in p for p in damage.problems)
    assert damage.skipped_records >= 1
    text = render_summary(a)
    assert "LEDGER DAMAGED (not judged as a pass)" in text
    assert f"byte {offset}" in text
    # JUnit carries a failing ledger-integrity case
    root = ET.fromstring(to_junit(a))  # noqa: S314 - our own output
    [case] = [c for c in root.iter("testcase") if c.get("name") == "ledger-integrity"]
    assert case.find("failure") is not None
    assert root.get("failures") == "1"
    # --accept-damaged judges the intact part, and says so
    accepted = analyze(run, options=AnalysisOptions(accept_damaged=True))
    assert accepted.verdict.exit_code == 0
    assert "judged as accepted (--accept-damaged)" in accepted.verdict.summary
    root = ET.fromstring(to_junit(accepted))  # noqa: S314 - our own output
    [case] = [c for c in root.iter("testcase") if c.get("name") == "ledger-integrity"]
    assert case.find("failure") is None
    assert "accepted" in (case.findtext("system-out") or "")


def test_compare_shows_the_damage_of_each_ledger(tmp_path: Path) -> None:
    good = _outage_run(tmp_path / "a.osha")
    bad = _outage_run(tmp_path / "b.osha")
    _flip_in_record(bad, StateChange, "down")
    text = render_comparison(compare(analyze(good), analyze(bad)))
    assert "B: " in text
    assert "DAMAGED LEDGER" in text
    assert "LEDGER DAMAGED" in text.split("B: ")[1]
    result = runner.invoke(app, ["report", str(good), str(bad)])
    assert result.exit_code == 1
    result = runner.invoke(app, ["report", str(bad), str(good)])  # B passes? A is damaged
    assert result.exit_code == 1
    assert "LEDGER DAMAGED" in result.output


def _ledger_with_payloads(path: Path, payloads: list[bytes]) -> tuple[Path, list[int]]:
    """A closed ledger: the header, a good sample, ``payloads`` as framed records, a good
    sample; returns the offsets of the odd payloads."""
    writer = LedgerWriter.create(path, header())
    writer.append_payloads([encode(sample("m", 1))])
    writer.append_payloads(payloads)
    writer.append_payloads([encode(sample("m", 2))])
    writer.append(RunStopped("supervisor", 2, 9.0, 1_700_000_009.0, "test-run", "end", 0))
    writer.close()
    offsets = [r.offset for r in LedgerReader(path).records()][2 : 2 + len(payloads)]
    return path, offsets


WRONG_SHAPES = {
    "a map": msgpack.packb({"tag": "monitor.sample"}),
    "an int": msgpack.packb(7),
    "too few fields": msgpack.packb(["monitor.sample", "m", 3]),
    "unknown tag": msgpack.packb(["no.such", "m", 3, 1.0, 2.0]),
    "sample missing counts": msgpack.packb(["monitor.sample", "m", 3, 1.0, 2.0, "t@n"]),
    "NaN time": msgpack.packb(["monitor.sample", "m", 3, float("nan"), 2.0, "t@n", 1, 0]),
    "wrong field type": msgpack.packb(["monitor.state", "m", 3, 1.0, 2.0, "t", 5]),
    "infinite field": encode(
        StateChange("m", 3, 1.0, 2.0, "t@n", "down", "up", None, float("inf"))
    ),
}


@pytest.mark.parametrize("what", list(WRONG_SHAPES))
def test_a_valid_frame_with_a_wrong_payload_is_one_damaged_record(
    tmp_path: Path, what: str
) -> None:
    run, [offset] = _ledger_with_payloads(tmp_path / "r.osha", [WRONG_SHAPES[what]])
    a = analyze(run)  # no crash, the whole ledger is not refused
    assert a.run.records == 5  # the header, two samples, the odd one and run.stopped
    assert [t.samples for t in a.targets] == [20]  # both good samples were read
    damage = a.run.damage
    assert ("damaged record", 1) in damage.by_kind
    assert any(f"000001.seg byte {offset}" in p for p in damage.problems), damage.problems
    assert a.verdict.exit_code == 1
    report = verify(run)
    assert report.exit_code() == 1
    assert report.undecodable_count == 1


def test_a_damaged_header_record_uses_its_copy(tmp_path: Path) -> None:
    run = _outage_run(tmp_path / "a.osha")
    first = next(LedgerReader(run).records())
    path = run / segment_name(1)
    data = bytearray(path.read_bytes())
    data[first.offset + HEADER_BYTES + 3] ^= 0x10
    path.write_bytes(bytes(data))
    a = analyze(run)  # the recorded [slo] comes from the copy
    assert a.run.run_id == "synthetic"
    assert a.slo.min_availability == {"*": 0.99}
    assert ("damaged header", 1) in a.run.damage.by_kind
    assert a.verdict.exit_code == 1
    report = verify(run)
    assert report.header is not None
    assert "copy in header.rec was used" in report.header_problem
    result = runner.invoke(app, ["ledger", "export", str(run), "--since", "50"])
    assert result.exit_code == 1  # exported what is intact, and said it is damaged
    assert '"tag":"monitor.state"' in result.stdout
    assert "give the run directory" not in result.output


def test_a_header_damaged_without_a_copy_still_reports(tmp_path: Path) -> None:
    run = _outage_run(tmp_path / "a.osha")
    (run / "header.rec").unlink()
    first = next(LedgerReader(run).records())
    path = run / segment_name(1)
    data = bytearray(path.read_bytes())
    data[first.offset + HEADER_BYTES + 3] ^= 0x10
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 1, result.output
    assert "header.rec holds no good copy" in result.output
    assert "give the run directory" not in result.output


def test_verify_compares_closed_json_with_the_disk(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10)])
    assert verify(run).exit_code() == 0
    extra = run / segment_name(2)
    extra.write_bytes(SegmentHeader(2).pack())
    report = verify(run)
    assert report.exit_code() == 1
    assert any("000002.seg is on disk too" in p for p in report.close_problems)
    extra.unlink()
    with (run / segment_name(1)).open("ab") as seg:  # a torn tail after a clean close
        seg.write(frame_record(encode(sample("a", 11)))[:7])
    report = verify(run)
    assert report.exit_code() == 1
    assert "ERROR torn tail" in report.render()


def test_show_exits_non_zero_when_it_prints_failed(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10), ("a", 13, 5)])  # a sequence gap
    result = runner.invoke(app, ["ledger", "show", str(run)])
    assert "FAILED" in result.output
    assert result.exit_code == 1


def test_a_symlinked_segment_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10)])
    outside = tmp_path / "elsewhere.seg"
    (run / segment_name(1)).rename(outside)
    (run / segment_name(1)).symlink_to(outside)
    with pytest.raises(LedgerError, match="symbolic link"):
        list(LedgerReader(run).records())
    result = runner.invoke(app, ["report", str(run)])
    assert isinstance(result.exception, LedgerError)  # main() prints it and exits 2
    assert result.exception.exit_code == 2


FAKE_LENGTH = 15 * 1024 * 1024


def _fake_header(length: int = FAKE_LENGTH) -> bytes:
    return struct.pack("<HII", 0x05A5, length, 0xDEADBEEF)


@pytest.mark.timeout(120)
def test_resync_past_fake_headers_reads_each_byte_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of fake headers claiming 15 MiB: checking each claim by reading it would
    hash gigabytes; resynchronisation hashes each byte of the segment a few times at most."""
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 5)], close=False)
    good = frame_record(encode(sample("a", 6)))
    body = bytearray()
    for _ in range(100):  # fake headers between good records: the main loop meets them
        body += _fake_header() + good
    body += b"\x00\x01" + _fake_header() * 2000  # a corrupt stretch of fake headers
    body += bytes(FAKE_LENGTH + 1024)  # room for every claim to fit in the file
    body += frame_record(encode(sample("a", 7)))
    with (run / segment_name(1)).open("ab") as seg:
        seg.write(body)
    size = (run / segment_name(1)).stat().st_size
    hashed = [0]
    real = zlib.crc32

    def counting(data: bytes | memoryview, value: int = 0) -> int:
        hashed[0] += len(data)
        return real(data, value)

    monkeypatch.setattr(zlib, "crc32", counting)
    monkeypatch.setattr(record_module, "_crc", counting)  # the one record-scanning loop
    reader = LedgerReader(run)
    seqs = [m.seq for m in reader.messages() if m.sender == "a"]
    assert seqs == [1, 2, 3, 4, 5, *([6] * 100), 7]
    assert len(reader.corruptions) == 101
    assert hashed[0] < 4 * size, f"hashed {hashed[0]} bytes of a {size}-byte segment"


def test_records_missing_from_a_cleanly_closed_ledger_are_damage(tmp_path: Path) -> None:
    """A cleanly closed ledger cut at a record boundary (no torn tail, no sequence gap: the
    lost record is the supervisor's last) is found by closed.json's record count."""
    run = tmp_path / "r.osha"
    written = write_ledger(run, [("a", 1, 10)])
    last = list(LedgerReader(run).records())[-1]
    with (run / segment_name(last.segment)).open("r+b") as seg:
        seg.truncate(last.offset)
    report = verify(run)
    assert report.exit_code() == 1
    assert f"closed.json says {written} records were written, {written - 1} were read" in (
        report.close_problems
    )
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 1  # damaged, not "aborted" (3): the lost record said it stopped
    assert "LEDGER DAMAGED" in result.output
    assert "verdict: DAMAGED LEDGER: 1 problem: 1 closed.json mismatch" in result.output
    assert "the intact part reads as aborted (the ledger ends without run.stopped" in (
        result.output
    )


def test_a_flipped_bit_in_a_fault_injected_record_is_not_a_pass(tmp_path: Path) -> None:
    """The fault's inject is lost, so its outage would be judged against the wrong fault (or
    none): the verdict is not a pass, and says where the damage is."""
    led = SyntheticLedger(tmp_path / "a.osha")
    led.target("hs", "nova-api@ctl-1", end_s=300.0, down=[(100.0, 110.0), (200.0, 230.0)])
    led.fault("kill/0", inject_s=99.0, revert_s=105.0)
    led.fault("kill/1", inject_s=199.0, revert_s=205.0)
    run = led.write(stop_s=301.0)
    assert analyze(run).verdict.passed  # whole, it passes (every fault reverted)
    offset = _flip_in_record(run, FaultInjected)
    a = analyze(run)
    assert not a.verdict.passed
    assert a.verdict.summary.startswith("DAMAGED LEDGER:")
    assert any(f"byte {offset}" in p for p in a.run.damage.problems), a.run.damage.problems


def test_report_accept_damaged_judges_the_intact_part_and_says_so(tmp_path: Path) -> None:
    run = _outage_run(tmp_path / "a.osha")
    _flip_in_record(run, StateChange, "down")
    junit = tmp_path / "junit.xml"
    refused = runner.invoke(app, ["report", str(run)])
    assert refused.exit_code == 1
    result = runner.invoke(app, ["report", str(run), "--accept-damaged", "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert "--accept-damaged" in result.output
    root = ET.fromstring(junit.read_text())  # noqa: S314 - our own output
    [case] = [c for c in root.iter("testcase") if c.get("name") == "ledger-integrity"]
    assert case.find("failure") is None
    assert "accepted" in (case.findtext("system-out") or "")
