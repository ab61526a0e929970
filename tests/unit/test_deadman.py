"""The dead-man switch with real processes: this machine is the node, ``sh -c`` the transport.

Every wait is bounded (``wait_for``) by :func:`deadman.expiry_bound_s`: ttl + one poll step +
a 2 s scheduling margin (forks of ``sleep``/``flock`` on a loaded 2-core machine).
The systemd detachment is tested for its generated command only (PID 1 here is not systemd):
a stand-in ``systemd-run`` on PATH records its arguments and starts the command with setsid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha.faults import deadman
from osha.faults.deadman import DeadmanError, Detach, State
from osha.testing import wait_for

POLL_S = 0.1
LEASE = "disruptor/process/3"


def run(script: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                          timeout=30, env=env, check=False)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def _watchdogs(state_dir: Path) -> list[int]:
    """Pids of the watchdogs (``sh <state_dir>/.../watch.sh``) running now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # the process ended while we looked
        if f"{state_dir}/" in cmdline and "watch.sh" in cmdline:
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except FileNotFoundError:
        return False  # it ended (and was reaped) between the signal and the read
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "deadman"
    yield directory
    for pid in _watchdogs(directory):  # only the watchdogs this test started
        with contextlib.suppress(ProcessLookupError):  # it ended after the listing: done
            os.kill(pid, signal.SIGKILL)


def _revert(tmp_path: Path, extra: str = "") -> tuple[str, Path]:
    """A revert command that appends the node's uptime to a file (one line per run)."""
    marker = tmp_path / "reverted"
    return f"read -r up _ < /proc/uptime; echo $up >> {marker}{extra}", marker


def _runs(marker: Path) -> list[float]:
    return [float(line) for line in marker.read_text().split()] if marker.exists() else []


def test_expiry_runs_the_revert_at_the_node_deadline(tmp_path: Path, state_dir: Path) -> None:
    command, marker = _revert(tmp_path)
    ttl_s = 1.0
    watchdog = deadman.arm(run, LEASE, command, ttl_s, state_dir=str(state_dir), poll_s=POLL_S)
    armed = watchdog.armed
    assert armed is not None
    assert armed.state is State.ARMED
    assert armed.detach == "setsid"
    assert armed.remaining_s == pytest.approx(ttl_s, abs=0.011)  # relative, on /proc/uptime
    wait_for(lambda: _runs(marker), timeout_s=deadman.expiry_bound_s(ttl_s, POLL_S),
             what="the revert at the deadline")  # fmt: skip
    (ran_at,) = _runs(marker)
    assert armed.deadline_s is not None
    assert ran_at >= armed.deadline_s
    status = wait_for(lambda: (s := watchdog.status()).state is State.REVERTED and s,
                      timeout_s=5, what="the revert's result")  # fmt: skip
    assert status.revert_status == 0
    assert "revert exited with status 0" in status.log
    directory = state_dir / deadman.unit_name(LEASE)
    assert sorted(p.name for p in directory.iterdir()) == ["fired", "lock", "log", "result"]
    assert watchdog.disarm().state is State.REVERTED  # osha collects the result...
    assert not directory.exists()  # ...and the lease's files go
    assert _runs(marker) == [ran_at]


def test_renew_pushes_the_deadline(tmp_path: Path, state_dir: Path) -> None:
    command, marker = _revert(tmp_path)
    # The renew must land before the first deadline: an arm and a renew are two forks of sh
    # (0.12 s median, 0.2 s max on the loaded 2-core machine, where the 0.5 s this test had
    # was a race); the first ttl is deadman's own scheduling margin for such a fork.
    first_ttl_s, renewed_ttl_s = 2.0, 3.0
    watchdog = deadman.arm(run, LEASE, command, first_ttl_s, state_dir=str(state_dir),
                           poll_s=POLL_S)  # fmt: skip
    first = watchdog.deadline_s
    renewed = watchdog.renew(renewed_ttl_s)
    assert first is not None
    assert renewed.deadline_s is not None
    # both deadlines are whole centiseconds of one clock, the renew's "now" >= the arm's
    assert renewed.deadline_s >= first + (renewed_ttl_s - first_ttl_s) - 1e-9
    assert renewed.pid == watchdog.pid
    wait_for(lambda: _runs(marker), timeout_s=deadman.expiry_bound_s(renewed_ttl_s, POLL_S),
             what="the revert at the renewed deadline")  # fmt: skip
    assert _runs(marker)[0] >= renewed.deadline_s  # not at the first deadline


def test_disarm_stops_the_watchdog_without_the_revert(tmp_path: Path, state_dir: Path) -> None:
    command, marker = _revert(tmp_path)
    # a broken disarm lets it fire; a working one ends it at once. The disarm must come before
    # the deadline: longer than an arm and a disarm (two forks of sh) on a loaded machine
    ttl_s = 5.0
    watchdog = deadman.arm(run, LEASE, command, ttl_s, state_dir=str(state_dir), poll_s=POLL_S)
    pid = watchdog.pid
    assert pid is not None
    assert _alive(pid)
    assert watchdog.disarm().state is State.ABSENT
    wait_for(lambda: not _alive(pid), timeout_s=deadman.expiry_bound_s(ttl_s, POLL_S),
             what="the disarmed watchdog to exit")  # fmt: skip
    assert _runs(marker) == []  # it exited without running the revert: nothing else can
    assert not (state_dir / deadman.unit_name(LEASE)).exists()
    assert watchdog.status().state is State.ABSENT
    assert watchdog.disarm().state is State.ABSENT  # idempotent


_ARMER = """
import subprocess, sys
from osha.faults import deadman
def run(script):
    p = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr
w = deadman.arm(run, sys.argv[1], sys.argv[2], float(sys.argv[3]), state_dir=sys.argv[4],
                poll_s=float(sys.argv[5]))
print(w.pid, flush=True)
sys.stdin.read()  # hold the session open until killed
"""


def test_the_watchdog_survives_a_kill_9_of_the_session_that_armed_it(
    tmp_path: Path, state_dir: Path
) -> None:
    command, marker = _revert(tmp_path)
    ttl_s = 6.0  # longer than the armer's start-up, so the kill lands before the deadline
    armer = subprocess.Popen(
        [sys.executable, "-c", _ARMER, LEASE, command, str(ttl_s), str(state_dir), str(POLL_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert armer.stdout is not None
        pid = int(armer.stdout.readline())
    finally:
        os.killpg(armer.pid, signal.SIGKILL)  # osha and its whole session, as kill -9 does
        armer.wait(timeout=10)
    assert os.getsid(pid) != armer.pid  # its own session
    watchdog = deadman.Watchdog.attach(run, LEASE, state_dir=str(state_dir))
    assert watchdog.status().state is State.ARMED
    assert _runs(marker) == []
    wait_for(lambda: _runs(marker), timeout_s=deadman.expiry_bound_s(ttl_s, POLL_S),
             what="the orphaned watchdog's revert")  # fmt: skip


def test_a_re_arm_keeps_one_watchdog_and_one_revert(tmp_path: Path, state_dir: Path) -> None:
    command, marker = _revert(tmp_path)
    # The re-arm must land before the first deadline, whatever the load: the first ttl is
    # long, the re-arm's short. Its revert running at the re-arm's deadline, with the re-arm's
    # command, shows that a re-arm replaces the deadline (not keeps the later one) and command.
    first = deadman.arm(run, LEASE, "exit 9", 60.0, state_dir=str(state_dir), poll_s=POLL_S)
    again = deadman.arm(run, LEASE, command, 3.0, state_dir=str(state_dir), poll_s=POLL_S)
    assert again.pid == first.pid
    assert _watchdogs(state_dir) == [first.pid]
    assert again.deadline_s is not None
    assert first.deadline_s is not None
    assert again.deadline_s < first.deadline_s
    status = wait_for(lambda: (s := again.status()).state is State.REVERTED and s,
                      timeout_s=deadman.expiry_bound_s(3.0, POLL_S), what="the revert")  # fmt: skip
    assert status.revert_status == 0  # the re-arm's command, not the first one's
    assert len(_runs(marker)) == 1
    assert _runs(marker)[0] >= again.deadline_s
    with pytest.raises(DeadmanError, match="already expired"):
        deadman.arm(run, LEASE, command, 1.0, state_dir=str(state_dir), poll_s=POLL_S)


def test_renew_racing_expiry_runs_the_revert_once(tmp_path: Path, state_dir: Path) -> None:
    command, marker = _revert(tmp_path)
    watchdog = deadman.arm(run, LEASE, command, 0.05, state_dir=str(state_dir), poll_s=0.05)
    refused = None
    for _ in range(400):  # each renew leaves 10 ms: the watchdog wins within a few tries
        try:
            watchdog.renew(0.01)
        except DeadmanError as exc:
            refused = exc
            break
    assert refused is not None
    assert "reverted" in str(refused) or "reverting" in str(refused)
    status = wait_for(lambda: (s := watchdog.status()).state is State.REVERTED and s,
                      timeout_s=5, what="the revert")  # fmt: skip
    assert status.revert_status == 0
    assert len(_runs(marker)) == 1


def test_a_failing_revert_is_logged_with_its_status(tmp_path: Path, state_dir: Path) -> None:
    watchdog = deadman.arm(run, LEASE, "echo cannot start nova-api >&2; exit 7", 0.2,
                           state_dir=str(state_dir), poll_s=POLL_S)  # fmt: skip
    status = wait_for(lambda: (s := watchdog.status()).state is State.REVERTED and s,
                      timeout_s=deadman.expiry_bound_s(0.2, POLL_S), what="the revert")  # fmt: skip
    assert status.revert_status == 7
    assert "revert exited with status 7" in status.log
    assert "cannot start nova-api" in status.log
    collected = watchdog.disarm()
    assert collected.revert_status == 7
    assert "cannot start nova-api" in collected.log


def test_systemd_detachment_generates_a_transient_unit(tmp_path: Path, state_dir: Path) -> None:
    bin_dir, calls = tmp_path / "bin", tmp_path / "systemd-run.args"
    bin_dir.mkdir()
    fake = bin_dir / "systemd-run"  # records its argv, then starts the command (after options)
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {calls}\n'
                    'while [ "${1#--}" != "$1" ]; do shift; done\nsetsid "$@" &\n')  # fmt: skip
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command, marker = _revert(tmp_path)
    watchdog = deadman.arm(lambda s: run(s, env), LEASE, command, 0.3, state_dir=str(state_dir),
                           poll_s=POLL_S, detach=Detach.SYSTEMD)  # fmt: skip
    assert watchdog.armed is not None
    assert watchdog.armed.detach == "systemd"
    unit = deadman.unit_name(LEASE)
    directory = f"{state_dir}/{unit}"
    assert calls.read_text().splitlines() == [
        f"--unit={unit}", "--collect", "--quiet", "--property=KillMode=process",
        f"--description=osha dead-man switch for lease {LEASE}",
        "sh", f"{directory}/watch.sh", directory, "0.1", LEASE,
    ]  # fmt: skip
    wait_for(lambda: _runs(marker), timeout_s=deadman.expiry_bound_s(0.3, POLL_S),
             what="the revert")  # fmt: skip


def test_errors_say_what_to_do(tmp_path: Path, state_dir: Path) -> None:
    no_tools = {**os.environ, "PATH": str(tmp_path / "empty")}
    with pytest.raises(DeadmanError, match="flock is missing") as caught:
        deadman.arm(lambda s: run(s, no_tools), LEASE, "true", 1.0, state_dir=str(state_dir))
    assert "faults recover" in caught.value.hint
    with pytest.raises(DeadmanError, match="revert command is empty"):
        deadman.arm(run, LEASE, " ", 1.0, state_dir=str(state_dir))
    with pytest.raises(DeadmanError, match="ttl_s must be"):
        deadman.arm(run, LEASE, "true", 0, state_dir=str(state_dir))
    with pytest.raises(DeadmanError, match=r"cannot renew .* absent") as refused:
        deadman.Watchdog.attach(run, LEASE, state_dir=str(state_dir)).renew(1.0)
    assert "revert the fault now" in refused.value.hint
    cut = deadman.Watchdog.attach(lambda _: (-1, ""), LEASE)  # the transport lost the node
    with pytest.raises(DeadmanError, match=r"status of lease .* failed \(exit -1\)"):
        cut.status()


def test_unit_names_are_safe_and_distinct() -> None:
    assert deadman.unit_name("disruptor/process/3").startswith("osha-deadman-disruptor-process-3-")
    assert deadman.unit_name("a/b") != deadman.unit_name("a-b")
    assert deadman.unit_name("../..").startswith("osha-deadman-")
    assert "/" not in deadman.unit_name("../..")


def test_a_watchdog_killed_mid_revert_reads_dead(tmp_path: Path, state_dir: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    os.mkfifo(release)
    watchdog = deadman.arm(run, LEASE, f"touch {started}; read -r _ < {release}", 0.1,
                           state_dir=str(state_dir), poll_s=POLL_S)  # fmt: skip
    try:
        wait_for(started.exists, timeout_s=deadman.expiry_bound_s(0.1, POLL_S), what="the revert")
        reverting = watchdog.status()
        assert reverting.state is State.REVERTING
        assert reverting.pid == watchdog.pid
        assert watchdog.pid is not None
        os.kill(watchdog.pid, signal.SIGKILL)  # the node's OOM killer, say
        wait_for(lambda: not _alive(watchdog.pid or 0), timeout_s=5, what="the watchdog's end")
        with release.open("w") as fifo:  # let the orphaned revert end
            fifo.write("go\n")
    finally:  # a failed assertion must not leave the revert blocked on the fifo for ever
        with contextlib.suppress(OSError):  # ENXIO: no reader left, nothing is blocked
            fd = os.open(release, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"go\n")
            os.close(fd)
    assert watchdog.status().state is State.DEAD
    assert watchdog.disarm().state is State.DEAD
    assert (state_dir / deadman.unit_name(LEASE) / "fired").exists()  # evidence stays
