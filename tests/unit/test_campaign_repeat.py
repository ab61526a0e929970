"""``osha campaign start PROFILE --repeat N``: N campaigns back to back, each with its own seed
and ledger, then their aggregate; a stop ends the current run and starts no other; the exit
code is the worst of the runs. The built-in test plugins: no cloud needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import osha.campaign.repeat as repeat_module
from osha.campaign.repeat import repeat_seed
from osha.campaign.session import Outcome
from osha.campaign.verdict import Judgement
from osha.cli import app
from osha.ledger import LedgerReader
from osha.messages.campaign import CampaignStop, CampaignVerdict
from tests.unit.test_aggregate import _three
from tests.unit.test_campaign import NEVER_ESCALATES, _profile, _records, _run_dir_in_chaos


def test_the_seed_rule() -> None:
    # run 1: the profile's seed; run i: (seed · 1,000,003 + crc32("repeat:i")) & 0x7FFFFFFF
    assert repeat_seed(42, 1) == 42
    assert repeat_seed(42, 2) == (42 * 1_000_003 + zlib.crc32(b"repeat:2")) & 0x7FFF_FFFF
    assert repeat_seed(42, 3) == (42 * 1_000_003 + zlib.crc32(b"repeat:3")) & 0x7FFF_FFFF
    assert len({repeat_seed(42, i) for i in range(1, 101)}) == 100
    with pytest.raises(ValueError, match="count from 1"):
        repeat_seed(42, 0)


@pytest.mark.timeout(120)
def test_repeat_runs_n_campaigns_with_their_seeds_then_the_aggregate(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "osha", "campaign", "start", str(_profile(tmp_path)), "--plain",
         "--ledger-dir", str(tmp_path / "runs"), "--repeat", "2"],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted((tmp_path / "runs").glob("*.osha"), key=lambda p: p.stat().st_mtime)
    assert len(runs) == 2
    headers = [LedgerReader(r).header() for r in runs]
    assert [h.seed for h in headers if h is not None] == [1, repeat_seed(1, 2)]
    # each ledger's copy of the profile carries its run's seed, and nothing else differs
    profiles = [h.profile for h in headers if h is not None]
    assert [p["campaign"]["seed"] for p in profiles] == [1, repeat_seed(1, 2)]
    assert {**profiles[0], "campaign": {}} == {**profiles[1], "campaign": {}}
    assert "repeat 1/2: seed 1" in result.stdout
    assert f"repeat 2/2: seed {repeat_seed(1, 2)}" in result.stdout
    assert "aggregate of 2 run(s) of campaign 't'" in result.stdout
    assert "osha report --aggregate " in result.stdout


@pytest.mark.timeout(150)  # the 60 s chaos guard, then the stop
def test_ctrl_c_stops_the_current_run_and_starts_no_other(tmp_path: Path) -> None:
    out = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "osha", "campaign", "start",
         str(_profile(tmp_path, NEVER_ESCALATES, chaos_s=60)), "--plain", "--ledger-dir",
         str(tmp_path / "runs"), "--repeat", "3"],
        stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        run_dir = _run_dir_in_chaos(tmp_path)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    assert list((tmp_path / "runs").glob("*.osha")) == [run_dir]
    records = _records(run_dir)
    assert [m.source for m in records if isinstance(m, CampaignStop)] == ["SIGINT"]
    assert [m.exit_code for m in records if isinstance(m, CampaignVerdict)] == [3]
    text = (tmp_path / "out.txt").read_text()
    assert "run 1/3 was stopped (SIGINT" in text
    assert "2 run(s) not started" in text
    assert "aggregate of 1 run(s)" in text


def test_the_exit_code_is_the_worst_of_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ledgers").mkdir()
    ledgers = iter(_three(tmp_path / "ledgers"))
    codes = iter([0, 1, 0])
    seeds: list[int] = []

    def fake_run(prof: object, options: object, console: object) -> Outcome:
        seeds.append(prof.campaign.seed)  # type: ignore[attr-defined]
        code = next(codes)
        return Outcome(Judgement(code == 0, code, {}, f"exit {code}"), next(ledgers), "r")

    monkeypatch.setattr(repeat_module, "run_campaign", fake_run)
    result = CliRunner().invoke(app, ["campaign", "start", str(_profile(tmp_path)),
                                      "--plain", "--repeat", "3"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert seeds == [1, repeat_seed(1, 2), repeat_seed(1, 3)]
    assert "aggregate of 3 run(s)" in result.output
