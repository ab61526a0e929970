"""Disruptor configs: signal names, bad keys, and the dry-run plan of a profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.disruptors.container import ContainerConfig
from actors.disruptors.process import ProcessConfig, signal_name
from osha import profile
from osha.schema import build


@pytest.mark.parametrize(
    ("text", "name"),
    [("SIGKILL", "SIGKILL"), ("kill", "SIGKILL"), ("sigterm", "SIGTERM"), ("15", "SIGTERM")],
)
def test_signal_names(text: str, name: str) -> None:
    assert signal_name(text) == name


def test_bad_signal_name_suggests_close_ones() -> None:
    with pytest.raises(ValueError, match="did you mean SIGKILL"):
        signal_name("SIGKIL")
    with pytest.raises(ValueError, match="bad signal name"):
        signal_name("SIGNOPE")


@pytest.mark.parametrize("cls", [ProcessConfig, ContainerConfig])
def test_bad_signal_is_a_profile_problem(cls: type) -> None:
    key = "service" if cls is ProcessConfig else "container"
    value, problems = build(cls, {key: "x", "signal": "SIGFOO"}, file="p.toml", key="d")
    assert value is None
    assert "bad signal name 'SIGFOO'" in problems[0].problem


def test_unknown_action_and_missing_service() -> None:
    value, problems = build(ProcessConfig, {"action": "stopp"}, file="p.toml", key="d")
    assert value is None
    text = "\n".join(str(p) for p in problems)
    assert "did you mean 'stop'" in text
    assert "d.service: missing required key" in text


PROFILE = """
[campaign]
name = "plan"
seed = {seed}

[cloud]
inventory = "inventory.ini"

[guard]
max_down = {{ controller = 1 }}

[[disruptors]]
id = "kill-sched"
plugin = "process"
service = "nova-scheduler"
target = {{ group = "controller", pick = "random" }}
schedule = {{ start_s = 5, random = {{ min_s = 20, max_s = 60 }}, times = 4, down_s = 10 }}

[[disruptors]]
id = "stop-cond"
plugin = "process"
action = "stop"
service = "nova-conductor"
target = {{ group = "controller", pick = "node:ctl-2" }}
schedule = {{ start_s = 5, times = 1, down_s = 30 }}
"""


def write_profile(tmp_path: Path, seed: int) -> Path:
    (tmp_path / "inventory.ini").write_text(
        "[controller]\nctl-1 ansible_host=10.0.0.11\nctl-2 ansible_host=10.0.0.12\n"
    )
    path = tmp_path / f"p{seed}.toml"
    path.write_text(PROFILE.format(seed=seed))
    return path


def plan_output(path: Path, *args: str) -> str:
    from osha.cli import faults

    result = CliRunner().invoke(faults.app, ["plan", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output.split("\n", 1)[1]


def test_seeded_dry_runs_are_identical_and_differ_by_seed(tmp_path: Path) -> None:
    path = write_profile(tmp_path, 42)
    first, second = plan_output(path), plan_output(path)
    assert first == second
    assert plan_output(path, "--seed", "43") != first
    assert plan_output(path, "--seed", "42") == first
    assert first.count("kill-sched") == 4


def test_plan_shows_guard_refusals(tmp_path: Path) -> None:
    from osha.faults import plan_rows

    prof = profile.load(write_profile(tmp_path, 42))
    rows = plan_rows(prof, 42)
    at_5 = [r for r in rows if r.offset_s == 5]
    assert len(at_5) == 2
    if at_5[0].node != at_5[1].node:  # both controllers at once: the guard refuses one
        assert [bool(r.refused) for r in at_5] == [False, True]
    assert all(rows[i].offset_s <= rows[i + 1].offset_s for i in range(len(rows) - 1))
