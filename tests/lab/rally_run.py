"""Run one Rally task on the lab with the lab's own Rally (lab.json ``rally``), as an operator
runs it, and read its report back.

The environment and the task are named explicitly: Rally's "default" environment and task
live in ~/.rally/globals, which every Rally on the machine shares (another lab instance,
osha's runner tests).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab.client import REPO, Lab

__all__ = ["TASKS", "RallyRun", "atomic_names", "passed", "run_task", "validate_task"]

TASK_UUID = re.compile(r"Task .*?([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}): started")
#: The shipped Rally tasks (osha's runner profiles name them as rally/<file>).
TASKS = REPO / "profiles" / "rally"


@dataclass(frozen=True)
class RallyRun:
    """A finished task: its uuid and its report (``rally task report --json``, Rally's
    current format: per workload ``data`` (iterations), ``sla_results`` and
    ``contexts_results``)."""

    uuid: str
    report: dict[str, Any]

    @property
    def workload(self) -> dict[str, Any]:
        """The task's only workload."""
        (subtask,) = self.report["tasks"][0]["subtasks"]
        (workload,) = subtask["workloads"]
        return dict(workload)


def run_task(lab: Lab, task: Path | str, args: dict[str, Any], *, bound_s: float,
             tmp_path: Path) -> RallyRun:  # fmt: skip
    """``rally task start`` to its end within ``bound_s`` (exit 0 asserted), then its report."""
    rally = lab.desc["rally"]
    base = [rally["bin"], "--config-file", rally["config_file"]]
    started = subprocess.run(
        [*base, "task", "start", str(task), "--task-args", json.dumps(args),
         "--env", rally["env"], "--tag", "lab-test", "--no-use"],
        capture_output=True, text=True, timeout=bound_s, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    found = TASK_UUID.search(started.stdout)
    assert found, started.stdout[-3000:]
    out = tmp_path / f"rally-{found.group(1)}.json"
    subprocess.run(
        [*base, "task", "report", found.group(1), "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=lab.bounds.command_s, check=True,
    )  # fmt: skip
    return RallyRun(uuid=found.group(1), report=json.loads(out.read_text()))


def validate_task(lab: Lab, task: Path, args: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``rally task validate`` (renders the template with ``args``, checks the cloud has
    what it names), within one command bound; not asserted."""
    rally = lab.desc["rally"]
    return subprocess.run(
        [rally["bin"], "--config-file", rally["config_file"], "task", "validate", str(task),
         "--task-args", json.dumps(args), "--env", rally["env"]],
        capture_output=True, text=True, timeout=lab.bounds.command_s, check=False,
    )  # fmt: skip


def atomic_names(actions: list[dict[str, Any]]) -> set[str]:
    """The names of Rally atomic actions, nested ones included."""
    names: set[str] = set()
    for action in actions:
        names.add(str(action["name"]))
        names |= atomic_names(action.get("children", []))
    return names


def passed(workload: dict[str, Any], times: int) -> list[dict[str, Any]]:
    """The workload's iterations, asserted all ``times`` of them error-free and every SLA
    met (Rally's default ``failure_rate`` max 0 where the task sets none)."""
    data: list[dict[str, Any]] = workload["data"]
    assert len(data) == times, data
    assert [i["error"] for i in data] == [[]] * times, [i["error"] for i in data]
    sla = workload["sla_results"]
    assert sla["sla"], sla
    assert all(s["success"] for s in sla["sla"]), sla
    return data
