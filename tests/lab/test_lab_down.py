"""`scripts/lab down` leaves no namespace, process, mount or bridge of its instance behind.

Collected last (see conftest): it takes the session's lab down. Every name it checks comes
from the instance's lab.json, so another instance on the machine is neither counted nor
touched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.client import LAB_DIR, Lab, run_lab

pytestmark = pytest.mark.lab


#: A process: its pid and its start time (clock ticks after boot, /proc/PID/stat field 22).
#: The pair, not the pid, says "the same process": pid_max is 32768 here, and a pid that the
#: lab freed can be handed to another process within the test (a fresh-clone CI run, stop
#: 32: a lab pid "survived" as a kernel worker started after it).
Proc = tuple[int, int]


def _stat(pid: int) -> tuple[str, int] | None:
    """The process's state letter and start time; None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the comm, which may hold spaces
    return fields[0], int(fields[19])  # field 3 (state) and field 22 (starttime)


def _alive(proc: Proc) -> bool:
    """True while that process lives; a zombie counts as dead (this VM's init reaps slowly)."""
    now = _stat(proc[0])
    return now is not None and now[1] == proc[1] and now[0] != "Z"


def _describe(proc: Proc) -> str:
    """What a survivor is: its state and command line, for the failure message."""
    try:
        cmdline = Path(f"/proc/{proc[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = "?"
    now = _stat(proc[0])
    return f"pid {proc[0]} state {now[0] if now else '?'}: {cmdline.strip()[:200]}"


def _names_lab_dir(cmdline: str) -> bool:
    """The command line names this lab's directory (not one that merely starts the same:
    /var/lib/osha-lab is a prefix of instance 1's /var/lib/osha-lab-1)."""
    return f"{LAB_DIR}/" in cmdline or f"{LAB_DIR} " in cmdline + " "


def _lab_processes(netns_prefix: str) -> set[Proc]:
    """Processes that name the lab directory in their command line, or run in its netns."""
    lab_netns = set()
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if name.startswith(netns_prefix):
            lab_netns.add(os.stat(f"/run/netns/{name}").st_ino)
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            netns = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        stat = _stat(int(entry))
        if (_names_lab_dir(cmdline.strip()) or netns in lab_netns) and stat and stat[0] != "Z":
            found.add((int(entry), stat[1]))
    return found


@pytest.mark.timeout(120)
def test_down_leaves_nothing_behind(lab: Lab) -> None:
    network = lab.desc["network"]
    netns_prefix, veth_prefix = network["netns_prefix"], network["veth_prefix"]
    before = _lab_processes(netns_prefix)
    assert len(before) > 20, "the lab should be running before it is taken down"

    # down's own waits: the BMC (10 s) and each of 4 nodes (10 s) to stop, plus the teardown
    result = run_lab("down", timeout_s=100)
    assert result.returncode == 0, result.stdout + result.stderr

    survivors = [_describe(proc) for proc in sorted(before) if _alive(proc)]
    assert not survivors, f"processes of the lab survived: {survivors}"
    left = [_describe(proc) for proc in sorted(_lab_processes(netns_prefix))]
    assert not left, f"processes of the lab: {left}"
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [n for n in netns if n.startswith(netns_prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    assert network["bridge"] not in names
    assert not [n for n in names if n.startswith(veth_prefix)]
    mounts = Path("/proc/self/mountinfo").read_text()
    assert f"{LAB_DIR}/" not in mounts
    assert f"/run/netns/{netns_prefix}" not in mounts
    assert not Path(lab.desc["owner_file"]).exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{lab.desc['cgroup_prefix']}*"))
