"""Helpers for the disruptor lab tests (no tests here): run a profile under the fault harness
(``python -m osha.harness``) in a subprocess, signal it, read its ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from osha.ledger import LedgerReader
from osha.messages import ActorStarted, Message
from tests.lab.bounds import OSHA_START_S
from tests.lab.client import LAB_DIR, REPO, Lab, wait_for

#: osha and its actors are gone after a kill -9: the kernel ends the harness at once, and each
#: actor exits on its socket's EOF (milliseconds; seconds on a loaded 2-core machine)
KILLED_S = 10.0


def header(lab: Lab, *, seed: int = 1, max_down: str = "") -> str:
    guard = f"[guard]\nmax_down = {{ {max_down} }}\n" if max_down else ""
    return f"""
[campaign]
name = "disruptors"
seed = {seed}

[cloud]
inventory = "{lab.desc["inventory"]}"
known_hosts = "{lab.desc["ssh"]["known_hosts"]}"
ssh_key = "{lab.desc["ssh"]["private_key"]}"

[supervisor]
heartbeat_interval_s = 0.2
heartbeat_timeout_s = 3.0

{guard}"""


def power_table(lab: Lab, node: str) -> str:
    bmc = lab.nodes[node]["bmc"]
    return (
        f'power = {{ user = "{bmc["user"]}", password_file = "{LAB_DIR / "bmc-password"}", '
        f'bmcs = {{ {node} = {{ address = "{bmc["host"]}", port = {bmc["port"]} }} }} }}'
    )


class Harness:
    """One supervised run of a profile with the fault broker, in its own process."""

    def __init__(self, tmp_path: Path, profile_text: str, *, duration_s: float | None = None):
        self.profile = tmp_path / "profile.toml"
        self.profile.write_text(profile_text)
        self.run_dir = tmp_path / "run.osha"
        self.out = tmp_path / "harness.out"
        argv = [
            sys.executable,
            "-m",
            "osha.harness",
            str(self.profile),
            "--run-dir",
            str(self.run_dir),
        ]
        if duration_s is not None:
            argv += ["--duration-s", str(duration_s)]
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_started(self, timeout_s: float = OSHA_START_S) -> None:
        wait_for(
            lambda: "started" in self.output() or self.proc.poll() is not None,
            timeout_s,
            0.1,
            "the harness to start its actors",
        )
        assert self.proc.poll() is None, self.output()

    def messages(self, cls: type[Message] | None = None) -> list[Any]:
        if not (self.run_dir / "000001.seg").exists():
            return []
        msgs = list(LedgerReader(self.run_dir).messages())
        return msgs if cls is None else [m for m in msgs if isinstance(m, cls)]

    def wait_tag(self, tag: str, timeout_s: float = 60.0, count: int = 1) -> list[Any]:
        def found() -> list[Any] | None:
            hits = [m for m in self.messages() if tag == m.TAG]
            return hits if len(hits) >= count else None

        return wait_for(found, timeout_s, 0.1, f"{count} {tag} record(s)")

    def actor_pid(self, actor_id: str) -> int:
        started = [m for m in self.messages(ActorStarted) if m.actor_id == actor_id]
        return int(started[-1].pid)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill_all(self) -> None:
        """kill -9 the harness's process group; its actors (each in its own process group)
        exit on the EOF of their sockets at once, doing nothing more (no revert: nobody could
        record it), as after a crash. Returns once they are gone: nothing of osha is left."""
        actors = self._actors()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=KILLED_S)
        _, alive = psutil.wait_procs(actors, timeout=KILLED_S)
        assert not alive, f"actors outlived osha's kill -9 by {KILLED_S:g} s: {alive}"

    def _actors(self) -> list[psutil.Process]:
        """The harness's actor processes (its children that host one)."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [c for c in children if _hosts_an_actor(c)]

    def wait(self, timeout_s: float = 120.0) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"the harness did not exit:\n{self.output()[-3000:]}") from None

    def close(self) -> None:
        """Stop gracefully if still running (the faults are reverted), else nothing."""
        if self.proc.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.kill_all()


def _hosts_an_actor(proc: psutil.Process) -> bool:
    try:
        return "osha.actorhost" in proc.cmdline()
    except psutil.NoSuchProcess:
        return False


def faults_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osha", "faults", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def failed_check(path: Path, text: str) -> str:
    """``osha faults check`` of the profile ``text`` (written to ``path``), which must fail its
    pre-flight cleanly (exit 1, no traceback); its output."""
    path.write_text(text)
    result = faults_cli("check", str(path))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    return out


def in_netns(lab: Lab, node: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    """A command in the node's network namespace, from outside it (no SSH, which a partition
    may cut)."""
    netns = f"{lab.desc['network']['netns_prefix']}{node}"
    return subprocess.run(["ip", "netns", "exec", netns, *command], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip


def nft_table_present(lab: Lab, node: str, table: str) -> bool:
    """Whether the node has nftables table ``inet <table>`` (read from outside it)."""
    return in_netns(lab, node, ["nft", "list", "table", "inet", table]).returncode == 0


def now_s() -> float:
    return time.monotonic()
