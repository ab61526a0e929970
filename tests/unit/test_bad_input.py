"""Every bad input gets one screen (file, key, problem, hint), exit 2, and no traceback:
profiles, the files they name, numbers and names, odd files, odd command-line values."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from osha.cli import main
from osha.ledger.testing import write_ledger
from osha.testing import SyntheticLedger

RALLY = """\
[[runners]]
id = "boot"
plugin = "rally"
task = "{task}"
cloud = "lab"
clouds_yaml = "{clouds}"
"""

PROCESS = """\
[[disruptors]]
id = "kill"
plugin = "process"
service = "nova-api"
inventory = "{inventory}"
ssh = {{ private_key = "{key}", known_hosts = "{known}" }}
target = {{ group = "controller" }}
"""

TICK = """\
[[monitors]]
id = "tick"
plugin = "ticker"
"""


def _osha(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the CLI in-process as `osha ARGV`; (exit code, stdout + stderr)."""
    code: int | str | None = 0
    try:
        main(list(argv))
    except SystemExit as done:
        code = done.code
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    return (code if isinstance(code, int) else 0), text


def _write(tmp_path: Path, body: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _files(tmp_path: Path) -> dict[str, Path]:
    return {k: tmp_path / k for k in ("task", "clouds", "inventory", "key", "known")}


def test_validate_checks_every_file_a_profile_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = _files(tmp_path)
    profile = _write(tmp_path, RALLY.format(**names) + PROCESS.format(**names))
    code, text = _osha(capsys, "campaign", "validate", str(profile))
    assert code == 2
    for key in ("runners[0].task", "runners[0].clouds_yaml", "disruptors[0].inventory",
                "disruptors[0].ssh.private_key", "disruptors[0].ssh.known_hosts"):  # fmt: skip
        assert f"{key}: " in text
        assert "no such file" in text, (key, text)
    assert "valid" not in text.split("\n")[0]


def test_validate_refuses_folders_fifos_devices_and_unparsable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = _files(tmp_path)
    names["task"].mkdir()
    os.mkfifo(names["key"])
    names["known"] = Path("/dev/zero")
    names["clouds"].write_text("clouds:\n  other:\n    auth: {}\n")
    names["inventory"].write_text("[controller]\nctl-[1:99999999]\n")
    profile = _write(tmp_path, RALLY.format(**names) + PROCESS.format(**names))
    code, text = _osha(capsys, "campaign", "validate", str(profile))
    assert code == 2
    assert "runners[0].task" in text
    assert "it is a folder, not a file" in text
    assert "disruptors[0].ssh.private_key" in text
    assert "it is a FIFO" in text
    assert "disruptors[0].ssh.known_hosts" in text
    assert "it is a device" in text
    assert "has no cloud 'lab' (clouds in it: other)" in text
    assert "more than 10000 hosts" in text


def test_a_rally_task_that_is_not_yaml_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = _files(tmp_path)
    names["task"].write_text("NovaServers.boot: [\n")
    names["clouds"].write_text("clouds:\n  lab:\n    auth: {}\n")
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, RALLY.format(**names))))
    assert code == 2
    assert "runners[0].task" in text
    assert "not valid YAML or JSON" in text
    names["task"].write_text("---\nNovaServers.boot: [{ runner: { times: {{ times }} } }]\n")
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, RALLY.format(**names))))
    assert code == 0, text  # a Jinja2 template is left to `rally task validate`


def test_a_profile_that_runs_nothing_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _osha(capsys, "campaign", "validate",
                       str(_write(tmp_path, '[campaign]\nname = "x"\n')))  # fmt: skip
    assert code == 2
    assert "runs nothing" in text
    assert "hint" in text


def test_a_duplicate_id_is_reported_with_every_other_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = TICK + TICK + 'colour = "red"\n' + '[campaign]\nseed = "x"\n'
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, body)))
    assert code == 2
    assert "duplicate id 'tick'" in text
    assert "monitors[1].colour: unknown key" in text
    assert "campaign.seed: expected integer" in text


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[ledger]\nflush_interval_s = inf", "ledger.flush_interval_s: inf is not a finite number"),
        ("[ledger]\nflush_interval_s = nan", "ledger.flush_interval_s: nan is not a finite number"),
        ("[campaign]\nchaos_s = -inf", "campaign.chaos_s: -inf is not a finite number"),
        ("[campaign]\nseed = 100000000000000000000000000000000000000",
         "does not fit in a signed 64-bit integer"),
        ('[campaign]\nname = "run\\u0000one"', "holds the control character '\\x00'"),
        ('[campaign]\nname = "run\\u001b[31m"', "holds the control character '\\x1b'"),
        (f'[campaign]\nname = "{"n" * 101}"', "is 101 characters long"),
        ('[slo]\nmax_downtime_s = { "a\\tb" = 5 }', "the key 'a\\tb' holds the control character"),
        ("[guard]\nmax_down = { controller = -1 }", "max_down.controller = -1"),
    ],
)  # fmt: skip
def test_numbers_and_names_osha_cannot_hold_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, TICK + line + "\n")))
    assert code == 2
    assert problem in text, text


def test_odd_profile_files_are_clean_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = _write(tmp_path, TICK + "x = " + "[" * 50_000 + "]" * 50_000 + "\n", "deep.toml")
    code, text = _osha(capsys, "campaign", "validate", str(deep))
    assert code == 2
    assert "nested too deeply" in text
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # nobody writes to it: reading it would hang
    code, text = _osha(capsys, "campaign", "validate", str(fifo))
    assert code == 2
    assert "it is a FIFO" in text
    code, text = _osha(capsys, "campaign", "validate", "/dev/zero")
    assert code == 2
    assert "it is a device" in text
    code, text = _osha(capsys, "faults", "plan", str(tmp_path))
    assert code == 2
    assert "it is a folder" in text


def test_odd_command_line_values_are_clean_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 5)])
    code, text = _osha(capsys, "ledger", "export", str(run), "-o", str(tmp_path))
    assert code == 2
    assert "it is a folder" in text
    code, text = _osha(capsys, "ledger", "export", str(run), "-o", str(tmp_path / "no/x.jsonl"))
    assert code == 2
    assert "No such file or directory" in text
    code, _ = _osha(capsys, "ledger", "tail", str(run), "-n", str(10**30))
    assert code == 2
    code, _ = _osha(capsys, "ledger", "tail", str(run), "--poll-s", "nan", "-f")
    assert code == 2
    for since in ("nan", "1e400", "-inf"):  # float() reads them: NaN filters nothing out
        code, text = _osha(capsys, "ledger", "export", str(run), "--since", since)
        assert code == 2, (since, text)
        assert f"--since {since!r} is not a finite number of seconds" in text
    code, text = _osha(capsys, "report", str(run), "--slo", "max_recovery_s=")
    assert code == 2
    assert "gives max_recovery_s no value" in text
    code, _ = _osha(capsys, "report", str(run), "--k", "nan")
    assert code == 2
    code, _ = _osha(capsys, "campaign", "start", "x.toml", "--chaos-s", "inf")
    assert code == 2


def test_a_damaged_campaign_json_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "r.osha"
    run.mkdir()
    (run / "campaign.json").write_text(json.dumps({"run_id": "r", "pid": "twelve"}))
    code, text = _osha(capsys, "campaign", "status", str(run))
    assert code == 2
    assert "campaign.json is damaged: pid is 'twelve', not a int" in text


def test_report_of_two_different_campaigns_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for name in ("alpha", "beta"):
        led = SyntheticLedger(tmp_path / f"{name}.osha", profile={"campaign": {"name": name}})
        led.target("hs", "nova-api@ctl-1", end_s=60.0)
        runs.append(str(led.write(stop_s=61.0)))
    code, text = _osha(capsys, "report", *runs)
    assert code == 0
    assert "A and B are different campaigns (A: 'alpha'" in text


@pytest.mark.parametrize("command", [("faults", "plan"), ("faults", "check")])
def test_faults_plan_and_check_check_the_files_a_profile_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, str]
) -> None:
    names = _files(tmp_path)
    os.mkfifo(names["inventory"])  # nobody writes to it: reading it would hang
    names["key"].write_text("")
    names["known"].write_text("")
    profile = _write(tmp_path, PROCESS.format(**names))
    code, text = _osha(capsys, *command, str(profile))
    assert code == 2, text
    assert "disruptors[0].inventory: " in text
    assert "it is a FIFO" in text


def test_a_disruptors_flat_ssh_keys_are_refused_with_the_new_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flat ``ssh_*`` keys of a disruptor became one ``ssh = { ... }`` table, as the
    monitors have: an old profile gets one screen naming each key and its new spelling."""
    body = (
        '[[disruptors]]\nid = "kill"\nplugin = "process"\nservice = "nova-api"\n'
        'ssh_user = "stack"\nssh_port = 2222\nssh_key = "/k/id"\nknown_hosts = "/k/kh"\n'
        "connect_timeout_s = 2.5\n"
    )
    code, text = _osha(capsys, "campaign", "validate", str(_write(tmp_path, body)))
    assert code == 2
    assert str(tmp_path / "p.toml") in text
    for old, new in (
        ('ssh_user = "stack"', 'ssh = { user = "stack" }'),
        ("ssh_port = 2222", "ssh = { port = 2222 }"),
        ('ssh_key = "/k/id"', 'ssh = { private_key = "/k/id" }'),
        ('known_hosts = "/k/kh"', 'ssh = { known_hosts = "/k/kh" }'),
        ("connect_timeout_s = 2.5", "ssh = { connect_timeout_s = 2.5 }"),
    ):
        key = old.split(" =")[0]
        assert f"disruptors[0].{key}: {key} is no longer a key of its own" in text, text
        assert f"write [[disruptors]] {new} instead of {old}" in text, text
    assert "unknown key" not in text  # one problem a key, not two
