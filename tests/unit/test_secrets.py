# ruff: noqa: S105 - these tests feed fake secrets to osha on purpose
"""No secret in clear on disk, nothing a ledger string can do to a terminal: the redactor's
command-line patterns and keys, children's logs, run directories private whatever the umask,
and control sequences neutralised in `ledger show`, `tail` and `report`."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from osha import profile
from osha.campaign import StartOptions, run_campaign
from osha.cli import app
from osha.messages import Sample
from osha.redaction import REDACTED, RedactingStream, is_secret_key, redact_text
from osha.testing import SyntheticLedger

runner = CliRunner()
SECRET = "hunter2-Xq9"


@pytest.mark.parametrize(
    "text",
    [
        f"ipmitool -I lanplus -H 10.0.0.5 -U admin -P {SECRET} chassis power status",
        f"ipmitool -P'{SECRET}' power on",
        f"sshpass -p {SECRET} ssh root@ctl-1",
        f"mysql -uroot -p{SECRET} nova",
        f"mysqldump -h db -p{SECRET} keystone",
        f"curl -u admin:{SECRET} http://192.0.2.1:5000/v3",
        f"curl --user=admin:{SECRET} http://192.0.2.1",
        f"passwd {SECRET}",
        f"echo 'root:{SECRET}' | chpasswd",
    ],
)
def test_tool_password_arguments_are_redacted(text: str) -> None:
    out = redact_text(text)
    assert SECRET not in out
    assert REDACTED in out


def test_tool_arguments_that_are_not_passwords_stay() -> None:
    assert redact_text("mysql -p nova") == "mysql -p nova"  # -p alone prompts; nova is the db
    assert redact_text("passwd -l root") == "passwd -l root"


@pytest.mark.parametrize("key", ["pw", "db_pw", "root_pw", "passwords", "ipmi_passwords"])
def test_more_secret_keys(key: str) -> None:
    assert is_secret_key(key)


def test_a_redacting_stream_sees_a_secret_split_across_writes() -> None:
    target = io.StringIO()
    stream = RedactingStream(target)
    stream.write("Traceback: connect failed, pass")
    stream.write(f"word={SECRET}\nnext line")
    stream.flush()
    assert SECRET not in target.getvalue()
    assert target.getvalue().endswith("next line")


PROFILE = f"""\
[campaign]
name = "private"
warmup_s = 0
baseline_s = 0.3
chaos_s = 0.3
recovery_timeout_s = 5
recovery_hold_s = 0.1

[[monitors]]
id = "tick"
plugin = "ticker"
interval_s = 0.1

[[runners]]
id = "crash"
plugin = "crasher"
restart = "temporary"
crash_after_s = 0.1
raise_error = true
error_text = "mysql -uroot -p{SECRET} failed; password={SECRET}"
"""


def test_a_run_directory_is_private_whatever_the_umask_and_holds_no_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    old = os.umask(0)
    try:
        outcome = run_campaign(
            profile.load(path),
            StartOptions(live=False, ledger_dir=tmp_path / "runs"),
            Console(file=io.StringIO(), width=120),
        )
    finally:
        os.umask(old)
    run = outcome.run_dir
    entries = [run, *run.rglob("*")]
    assert any(p.parent.name == "logs" for p in entries)
    for entry in entries:
        mode = stat.S_IMODE(entry.lstat().st_mode)
        assert mode == (0o700 if entry.is_dir() else 0o600), (entry, oct(mode))
    holding = [p for p in entries if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert holding == []
    log = (run / "logs" / "crash.log").read_text()
    assert "crasher: crash requested" in log  # the traceback is there, redacted
    assert REDACTED in log


ESC = "\x1b[2J\x1b]0;owned\x07"


def test_ledger_strings_cannot_drive_the_terminal(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "r.osha", run_id=f"run{ESC}")
    led.target("hs", f"nova-api{ESC}@ctl-1", end_s=30.0, down=[(10.0, 12.0)])
    led.add(1.0, f"hs{ESC}", Sample, target=f"t\u202e{ESC}", count=1, failures=0)
    run = led.write(stop_s=31.0)
    for argv in (["ledger", "show", str(run)], ["ledger", "tail", str(run), "-n", "50"],
                 ["report", str(run)]):  # fmt: skip
        result = runner.invoke(app, argv)
        assert "\x1b" not in result.output, argv
        assert "\u202e" not in result.output, argv
        assert "\x07" not in result.output, argv
        assert "\\x1b" in result.output, argv
