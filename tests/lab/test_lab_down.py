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
from conftest import LAB_DIR, Lab, run_lab

pytestmark = pytest.mark.lab


def _alive(pid: int) -> bool:
    """True for a live process; a zombie counts as dead (this VM's init reaps slowly)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _names_lab_dir(cmdline: str) -> bool:
    """The command line names this lab's directory (not one that merely starts the same:
    /var/lib/osha-lab is a prefix of instance 1's /var/lib/osha-lab-1)."""
    return f"{LAB_DIR}/" in cmdline or f"{LAB_DIR} " in cmdline + " "


def _lab_processes(netns_prefix: str) -> set[int]:
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
        if (_names_lab_dir(cmdline.strip()) or netns in lab_netns) and _alive(int(entry)):
            found.add(int(entry))
    return found


@pytest.mark.timeout(120)
def test_down_leaves_nothing_behind(lab: Lab) -> None:
    network = lab.desc["network"]
    netns_prefix, veth_prefix = network["netns_prefix"], network["veth_prefix"]
    before = _lab_processes(netns_prefix)
    assert len(before) > 20, "the lab should be running before it is taken down"

    result = run_lab("down", timeout_s=100)
    assert result.returncode == 0, result.stdout + result.stderr

    assert not [pid for pid in before if _alive(pid)], "processes of the lab survived"
    assert not _lab_processes(netns_prefix)
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
