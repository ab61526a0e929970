"""Fixtures and helpers for the lab tier: tests against the real lab OpenStack.

The session brings the lab up once (`scripts/lab up`, which reuses a lab that is already
up) and every test that disrupts it leaves it healthy again (`scripts/lab reset`, through
the ``healthy_lab`` fixture). If the lab cannot come up, every lab test fails loudly; nothing
is skipped. `test_lab_down.py` runs last, because it takes the lab down. One test session at
a time uses the lab: a second session waits for the first (a lock in the lab directory), so
that tests never hurt each other's cloud.

**Healthy** means what `scripts/lab up` and `reset` wait for and `status` reports, checked
the same way by all three (scripts/labkit/lib/health.sh):

- the BMC emulator runs, and every node is powered on;
- every node's sshd completes a full SSH login and runs a command (not just a TCP accept);
- every runit service of every node runs, and every container runs (not paused);
- the cloud agrees: every nova service is up and every neutron agent alive, each with a
  heartbeat newer than the start of its current process (the node's events), so a service
  that just restarted is not judged by its predecessor's heartbeat; every hypervisor is
  listed; the image and placement APIs answer.

So a test that rebooted, powered off, killed or froze something returns only after the lab
is whole again, and the next test starts from a lab that `reset` proved healthy.

**Time bounds** come from the lab's settings plus a stated margin: ``lab.bounds``
(tests/lab/bounds.py). A test's ``pytest.mark.timeout`` is a hang guard above the sum of its
bounds. When SSH to a node breaks mid-protocol, the error names a file with the node's
ground truth at that moment (tests/lab/diagnostics.py).

The ``Lab`` client, the bounded waits and ``run_lab`` are in tests/lab/client.py; this
module holds only pytest's hooks and fixtures.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.client import (
    LAB_DIR,
    RESET_TIMEOUT_S,
    SESSION_WAIT_S,
    UP_TIMEOUT_S,
    Lab,
    run_lab,
    wait_for,
)
from tests.lab.scheduler_run import SchedulerRun
from tests.lab.scheduler_run import run_once as run_scheduler_campaign
from tests.lab.smoke_run import SmokeRun
from tests.lab.smoke_run import run_once as run_smoke_campaign


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run test_lab_down.py last: it takes the shared lab down."""
    items.sort(key=lambda item: item.path.name == "test_lab_down.py")


_LAB_PROBLEM = pytest.StashKey[str | None]()  # None: the lab is up; else why it is not
_session_lock: list[Any] = []  # keeps the session lock's file open (held) until exit


def lock_holders() -> list[tuple[int, str]]:
    """The processes (pid, command line) that have the lab's test-session lock file open."""
    lock = str(LAB_DIR / ".test-session.lock")
    found: list[tuple[int, str]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        if lock in fds:
            found.append((int(proc.name), cmd.strip()[:120]))
    return found


def _take_session_lock() -> None:
    """Hold ``$OSHA_LAB_DIR/.test-session.lock`` for this session; wait for another session."""
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    handle = (LAB_DIR / ".test-session.lock").open("w")
    _session_lock.append(handle)

    def locked() -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    if not locked():
        holders = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in lock_holders()[:5])
        sys.stderr.write(
            f"\nlab: another test session uses the lab; waiting (<= {SESSION_WAIT_S}s)"
            f" [the lock is open in: {holders or 'no process this user can see'}]\n"
        )
        wait_for(locked, timeout_s=SESSION_WAIT_S, interval_s=2, what="the other test session")


_hog: list[subprocess.Popen[bytes]] = []


def _start_hog() -> None:
    """``OSHA_TEST_HOG_CPUS=N`` (set by `scripts/test --hog`): a CPU hog of N workers while
    this session holds the lab, as on a busy CI machine; stopped when the session ends."""
    cpus = os.environ.get("OSHA_TEST_HOG_CPUS", "")
    if not cpus:
        return
    # It dies with this session: a SIGTERM'd or killed pytest runs no pytest_unconfigure, so
    # the kernel sends the hog SIGKILL when its parent dies (setpriv --pdeathsig); and it ends
    # by itself after 6 hours in any case.
    hog = subprocess.Popen(
        ["setpriv", "--pdeathsig", "KILL", "stress-ng", "--cpu", cpus, "--timeout", "6h",
         "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    _hog.append(hog)
    sys.stderr.write(f"\nlab: CPU hog stress-ng --cpu {cpus} (pid {hog.pid})\n")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the CPU hog, if this session started one."""
    for hog in _hog:
        hog.terminate()
        hog.wait(30)


def _bring_up() -> str | None:
    """Take the session lock and run `scripts/lab up`; return why it failed, or None."""
    try:
        _take_session_lock()
    except AssertionError as exc:
        return str(exc)
    _start_hog()
    started = time.monotonic()
    try:
        result = run_lab("up", timeout_s=UP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"scripts/lab up did not finish within {UP_TIMEOUT_S}s"
    if result.returncode != 0:
        return (
            f"scripts/lab up failed (rc={result.returncode}) after "
            f"{time.monotonic() - started:.0f}s:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Bring the lab up once, before the first lab test, outside any test's timeout."""
    if session.config.option.collectonly:
        return
    if any("lab" in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[_LAB_PROBLEM] = _bring_up()


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The lab, brought up once per session (or reused when it is already up)."""
    problem = request.config.stash.get(_LAB_PROBLEM, "the lab was not brought up")
    if problem:
        pytest.fail(problem, pytrace=False)
    return Lab(json.loads((LAB_DIR / "lab.json").read_text()))


@pytest.fixture
def healthy_lab(lab: Lab) -> Iterator[Lab]:
    """The lab for one test; afterwards every node is on and every service running again."""
    yield lab
    result = run_lab("reset", timeout_s=RESET_TIMEOUT_S)
    assert result.returncode == 0, f"scripts/lab reset failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def scheduler_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> SchedulerRun:
    """The tier's one nova-scheduler campaign, run when a test first asks for it and shared
    by test_campaign, test_report_campaign and test_audit (tests/lab/scheduler_run.py)."""
    return run_scheduler_campaign(lab, tmp_path_factory.mktemp("scheduler"))


@pytest.fixture(scope="session")
def smoke_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """The tier's one clean campaign, run when a test first asks for it and shared by
    test_campaign and test_hardening (tests/lab/smoke_run.py)."""
    return run_smoke_campaign(lab, tmp_path_factory.mktemp("smoke"))


@pytest.fixture
def server_cleanup(lab: Lab) -> Iterator[list[Any]]:
    """Servers appended to this list are deleted after the test, whatever happened."""
    servers: list[Any] = []
    yield servers
    for server in servers:
        with contextlib.suppress(Exception):  # best effort: the server may be gone already
            lab.delete_server(server)
