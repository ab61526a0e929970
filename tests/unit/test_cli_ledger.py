"""``osha ledger show|tail|export|verify`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osha.cli.ledger import app
from osha.errors import LedgerError, OshaError
from osha.ledger import segment_name
from osha.ledger.testing import write_ledger

runner = CliRunner()


@pytest.fixture
def run(tmp_path: Path) -> Path:
    directory = tmp_path / "r.osha"
    write_ledger(directory, [("a", 1, 20), ("b", 1, 10)])
    return directory


def test_show(run: Path) -> None:
    result = runner.invoke(app, ["show", str(run)])
    assert result.exit_code == 0, result.output
    assert "32 records" in result.output
    assert "closed cleanly: yes" in result.output
    assert "a=20" in result.output
    assert "monitor.sample=30" in result.output


def test_verify_clean_and_corrupt(run: Path) -> None:
    assert runner.invoke(app, ["verify", str(run), "--strict"]).exit_code == 0
    seg = run / segment_name(1)
    data = bytearray(seg.read_bytes())
    data[400] ^= 0x40
    seg.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(run)])
    assert result.exit_code == 1
    assert "corrupt record in 000001.seg at byte" in result.output
    stop = runner.invoke(app, ["verify", str(run), "--stop-at-corruption"])
    assert stop.exit_code == 1
    assert "reading stopped" in stop.output


def test_tail(run: Path) -> None:
    result = runner.invoke(app, ["tail", str(run), "-n", "3"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert "run.stopped" in lines[-1]
    assert "b#10" in lines[-2]
    follow = runner.invoke(app, ["tail", str(run), "-n", "1", "--follow", "--follow-for-s", "0.1"])
    assert follow.exit_code == 0
    assert len(follow.output.splitlines()) == 1


def test_export_filters(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["export", str(run), "--sender", "b", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, 11))
    assert rows[0]["tag"] == "monitor.sample"
    assert rows[0]["target"] == "nova-api@ctl-1"
    tags = runner.invoke(app, ["export", str(run), "--tag", "ledger.*", "--tag", "run.*"])
    assert [json.loads(x)["tag"] for x in tags.output.splitlines()] == [
        "ledger.header",
        "run.stopped",
    ]
    # samples have wall_s 1.7e9 + seq: a window by ISO time
    since = runner.invoke(
        app, ["export", str(run), "--sender", "a", "--until", "2023-11-14T22:13:25+00:00"]
    )
    assert [json.loads(x)["seq"] for x in since.output.splitlines()] == [1, 2, 3, 4, 5]


def test_errors_are_osha_errors_with_hints(tmp_path: Path, run: Path) -> None:
    result = runner.invoke(app, ["show", str(tmp_path / "nope")])
    assert isinstance(result.exception, LedgerError)
    assert "runs/<id>.osha" in result.exception.hint
    bad = runner.invoke(app, ["export", str(run), "--since", "yesterday"])
    assert isinstance(bad.exception, OshaError)
    assert bad.exception.exit_code == 2
