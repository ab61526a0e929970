"""Fake cluster members for the cluster monitor tests: each member's answer is a file the test
rewrites, served by a small shell script run with ``transport = "local"`` (a real subprocess,
as on a lab whose nodes are namespaces on this host). A member whose ``hang`` file exists
blocks until killed, as ``rabbitmqctl cluster_status`` does on a partitioned node."""

from __future__ import annotations

from pathlib import Path

SCRIPT = """#!/bin/sh
# fake-member DIR NODE [args ignored]: print DIR/NODE.out, exit with DIR/NODE.rc (default 0)
dir=$1; node=$2
if [ -e "$dir/$node.hang" ]; then exec sleep 600; fi
cat "$dir/$node.out" 2>/dev/null
rc=0; [ -e "$dir/$node.rc" ] && rc=$(cat "$dir/$node.rc")
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
        tmp = self.dir / f"{node}.out.tmp"
        tmp.write_text(text)
        tmp.replace(self.dir / f"{node}.out")  # atomic: a poll never reads half an answer
        (self.dir / f"{node}.rc").write_text(str(rc))

    def hang(self, node: str, on: bool = True) -> None:
        path = self.dir / f"{node}.hang"
        if on:
            path.write_text("")
        else:
            path.unlink(missing_ok=True)
