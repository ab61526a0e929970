"""Hardening against the lab: a disruptor never hits more than it names, and a finished run
leaves no secret of the lab on disk.

- ``campaign validate`` refuses a ``process`` disruptor naming ``.*``, ``init``, ``sshd`` or
  ``-h`` (exit 2), before anything runs;
- a service whose lookup resolves to PID 1 of a node (the node's init: ``hostinit.sh`` in the
  lab) is refused at inject time, and so is a lease naming the node's sshd; the node's ground
  truth shows nothing was signalled (same boot, same PID 1, same sshd, no halt or boot event);
- every file of a finished campaign (ledger, logs, Rally's work dir) is grepped for the lab's
  passwords (the clouds.yaml admin password, the BMC password) and holds none; the run
  directory is 0700 and every file in it 0600.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from actors.disruptors.process import KillScope, ProcessConfig, ProcessDisruptor
from osha.errors import PluginError
from osha.faults import Lease
from osha.faults.disruptor import load_hosts
from osha.schedule import ScheduleConfig, TargetConfig
from osha.schema import FilePath, Name
from osha.ssh import SshConfig
from osha.testing import FakeContext
from tests.lab.client import LAB_DIR, REPO, Lab
from tests.lab.test_disruptors_support import header

if TYPE_CHECKING:
    from tests.lab.smoke_run import SmokeRun

pytestmark = [pytest.mark.lab]

NODE = "ctl-2"


def _osha(*argv: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osha", *argv], capture_output=True, text=True, timeout=timeout_s,
        check=False, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", [".*", "init", "sshd", "-h"])
def test_validate_refuses_a_service_that_is_a_pattern_init_or_sshd(
    lab: Lab, tmp_path: Path, service: str
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        header(lab)
        + f"""
[[disruptors]]
id = "proc"
plugin = "process"
service = "{service}"
target = {{ group = "controller", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = 1 }}
"""
    )
    done = _osha("campaign", "validate", str(profile), timeout_s=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"disruptors[0]: service = {service!r}" in done.stderr
    assert "Traceback" not in done.stderr


def _truth(lab: Lab) -> dict[str, str]:
    """What must not change on the node: its boot, its PID 1 and its sshd."""
    return {
        "boot": lab.boot_id(NODE),
        "init": lab.check(NODE, "ps -o lstart=,comm= -p 1").strip(),
        "sshd": lab.check(NODE, "pgrep -o -x sshd").strip(),
    }


def _disruptor(lab: Lab, service: str, scope: KillScope, signal: str) -> ProcessDisruptor:
    config = ProcessConfig(
        service=Name(service),
        signal=signal,
        scope=scope,
        inventory=FilePath(lab.desc["inventory"]),
        ssh=SshConfig(
            private_key=FilePath(lab.desc["ssh"]["private_key"]),
            known_hosts=FilePath(lab.desc["ssh"]["known_hosts"]),
        ),
        target=TargetConfig(group="controller", pick=f"node:{NODE}"),
        schedule=ScheduleConfig(),
    )
    disruptor = ProcessDisruptor(config, FakeContext("guarded"))
    disruptor.hosts = load_hosts(config)
    return disruptor


def _lease(pid: int, pgid: int) -> Lease:
    return Lease("guarded/0", "guarded", "process", 0, "kill", NODE, "", "x", ("controller",),
                 1.0, time.time(), time.time() + 60, {"pid": pid, "pgid": pgid})  # fmt: skip


@pytest.mark.timeout(180)
def test_a_lookup_that_resolves_to_pid_1_is_refused_and_nothing_is_signalled(
    healthy_lab: Lab,
) -> None:
    lab = healthy_lab
    started_s = time.time()
    before = _truth(lab)
    init = lab.check(NODE, "ps -o comm= -p 1").strip()  # the node's init: hostinit.sh
    sshd = int(before["sshd"])
    # SIGCONT: even a broken guard would signal nothing harmful; the guard is what is tested
    group = _disruptor(lab, init, KillScope.GROUP, "SIGCONT")
    main = _disruptor(lab, init, KillScope.MAIN, "SIGCONT")
    host = group.hosts[NODE]
    try:
        with pytest.raises(PluginError, match="refused: pid 1 is the node's init"):
            group.prepare(host)  # the lookup resolves to PID 1: refused before any lease
        with pytest.raises(PluginError, match=r"pid 1 is the node.s init.*nothing was signalled"):
            main.inject(_lease(1, 1))
        with pytest.raises(PluginError, match=r"one of its parents.*nothing was signalled"):
            main.inject(_lease(sshd, sshd))  # the node's sshd is a parent of osha's session
        [finding] = group.check()
        assert not finding.ok
        assert "refused" in finding.message
    finally:
        group.close()
        main.close()
    assert _truth(lab) == before
    events = [e for e in lab.events(NODE) if e.time_s >= started_s - 1]
    assert [e for e in events if e.kind in ("halt", "boot", "power-off")] == []
    assert [e for e in events if e.kind == "exit" and e.name == "sshd"] == []


def _lab_passwords(lab: Lab) -> dict[str, str]:
    clouds = yaml.safe_load(Path(lab.desc["clouds_yaml"]).read_text())
    found = {
        f"clouds.yaml {name}": str(cloud["auth"]["password"])
        for name, cloud in clouds["clouds"].items()
        if cloud.get("auth", {}).get("password")
    }
    found["bmc-password"] = (LAB_DIR / "bmc-password").read_text().strip()
    for node, desc in lab.nodes.items():
        found[f"bmc of {node}"] = str(desc["bmc"]["password"])
    return found


def _leaks(data: bytes, password: str) -> bool:
    """Whether ``data`` holds ``password``. A long one is searched as it is; a short one (the
    lab's admin password is its user name, ``admin``) only as the value of a secret (after
    ``password``, ``passwd``, ``secret`` or ``token`` and a few separators: JSON, msgpack,
    ``KEY=VALUE``), since the word itself appears as a user and project name."""
    if len(password) >= 8:
        return password.encode() in data
    pattern = re.compile(
        rb"(?i)(?:pass(?:word|wd)?|secret|token)[^A-Za-z0-9]{1,12}"
        + re.escape(password.encode())
        + rb"(?![A-Za-z0-9])"
    )
    return pattern.search(data) is not None


def test_a_finished_run_holds_none_of_the_labs_passwords(lab: Lab, smoke_run: SmokeRun) -> None:
    """The tier's clean campaign (tests/lab/smoke_run.py): lab-smoke with Rally, and a node
    disruptor whose health gate and setup use the BMC password, its fault planned after the
    run's end."""
    # the run must finish (its verdict, Rally's speed on a loaded lab, is the smoke test's)
    assert smoke_run.code in (0, 1), smoke_run.out[-6000:]
    run = smoke_run.run_dir
    assert (run / "closed.json").is_file()
    assert (run / "rally").is_dir()  # Rally's work dir, with its database, is part of the run
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "rally.db" for p in files)
    lab_db = Path(lab.desc["rally"]["db"]).read_bytes()
    passwords = _lab_passwords(lab)
    # the check can see a leak: the lab's own Rally database holds the admin password
    assert _leaks(lab_db, passwords["clouds.yaml lab"])
    for what, password in passwords.items():
        holding = [str(p) for p in files if _leaks(p.read_bytes(), password)]
        assert holding == [], f"the {what} password is in {holding}"
    for entry in [run, *run.rglob("*")]:
        mode = stat.S_IMODE(entry.lstat().st_mode)
        assert mode == (0o700 if entry.is_dir() else 0o600), (entry, oct(mode))
