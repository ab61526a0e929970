"""Fake cluster members for the cluster monitor tests: each member's answer is a file the test
rewrites, served by a small shell script run with ``transport = "local"`` (a real subprocess,
as on a lab whose nodes are namespaces on this host). A member whose ``hang`` file exists
blocks until killed, as ``rabbitmqctl cluster_status`` does on a partitioned node."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from actors.monitors._cluster import ClusterMonitor
from osha import schema
from osha.messages.monitor import StateChange
from osha.testing import FakeContext, wait_for

SCRIPT = """#!/bin/sh
# fake-member DIR NODE [args ignored]: DIR/NODE.ans is the exit status on its first line, then
# the output (one file, replaced atomically: a poll never mixes two answers)
dir=$1; node=$2
if [ -e "$dir/$node.hang" ]; then exec sleep 600; fi
[ -e "$dir/$node.ans" ] || exit 0
{ read -r rc; cat; } < "$dir/$node.ans"
exit "$rc"
"""


class FakeMembers:
    """Members ``ctl-1..n`` whose answers live in ``tmp``; ``command`` is the command prefix
    a monitor's ``*_command`` key takes."""

    def __init__(self, tmp: Path, count: int = 3) -> None:
        self.dir = tmp
        self.script = tmp / "fake-member.sh"
        self.script.write_text(SCRIPT)
        self.script.chmod(0o755)
        self.names = [f"ctl-{i}" for i in range(1, count + 1)]
        self.command = f"{self.script} {tmp} {{node}}"

    def hosts(self) -> dict[str, dict[str, object]]:
        return {
            n: {"address": f"10.9.0.{i}", "groups": ["controller"]}
            for i, n in enumerate(self.names, 1)
        }

    def answer(self, node: str, text: str, rc: int = 0) -> None:
        tmp = self.dir / f"{node}.ans.tmp"
        tmp.write_text(f"{rc}\n{text}")
        tmp.replace(self.dir / f"{node}.ans")  # atomic: a poll never reads half an answer

    def hang(self, node: str, on: bool = True) -> None:
        path = self.dir / f"{node}.hang"
        if on:
            path.write_text("")
        else:
            path.unlink(missing_ok=True)


M = TypeVar("M", bound=ClusterMonitor[Any, Any])


def build_monitor(
    cls: type[M], fake: FakeMembers, data: dict[str, Any], *, setup: bool = True
) -> tuple[M, FakeContext]:
    """A cluster monitor over ``fake``'s members, run locally, polling fast."""
    table = {"transport": "local", "hosts": fake.hosts(), "interval_s": 0.05,
             "command_timeout_s": 1.0, **data}  # fmt: skip
    config, problems = schema.build(cls.config_type, table, file="test")
    assert not problems, problems
    assert config is not None
    ctx = FakeContext(cls.name)
    monitor = cls(config, ctx)
    if setup:
        monitor.setup()
    return monitor, ctx


def last_state(ctx: FakeContext, target: str) -> StateChange | None:
    """The last state change of ``target`` the monitor emitted."""
    changes = [m for m in ctx.of(StateChange) if m.target == target]
    return changes[-1] if changes else None


def poll_until(monitor: ClusterMonitor[Any, Any], ctx: FakeContext, want: dict[str, str],
               what: str, timeout_s: float = 10.0) -> None:  # fmt: skip
    """Poll until every target of ``want`` is in its state."""

    def done() -> bool:
        monitor.poll()
        return all((c := last_state(ctx, t)) is not None and c.state == s for t, s in want.items())

    wait_for(done, timeout_s=timeout_s, interval_s=0.05, what=what)
