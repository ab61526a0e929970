"""`scripts/lab down` leaves no namespace, process, mount or bridge behind.

Collected last (see conftest): it takes the session's lab down.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.conftest import LAB_DIR, Lab, run_lab

pytestmark = pytest.mark.lab


def _alive(pid: int) -> bool:
    """True for a live process; a zombie counts as dead (this VM's init reaps slowly)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _lab_processes() -> set[int]:
    """Processes that mention the lab directory in their command line, or run in a lab netns."""
    lab_netns = set()
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if name.startswith("osha-"):
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
        if (str(LAB_DIR) in cmdline or netns in lab_netns) and _alive(int(entry)):
            found.add(int(entry))
    return found


@pytest.mark.timeout(120)
def test_down_leaves_nothing_behind(lab: Lab) -> None:
    before = _lab_processes()
    assert len(before) > 20, "the lab should be running before it is taken down"

    # down's own waits: the BMC (10 s) and each of 4 nodes (10 s) to stop, plus the teardown
    result = run_lab("down", timeout_s=100)
    assert result.returncode == 0, result.stdout + result.stderr

    assert not [pid for pid in before if _alive(pid)], "processes of the lab survived"
    assert not _lab_processes()
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "osha-" not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "oshalab0" not in links
    assert " vo-" not in links
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(LAB_DIR) not in mounts
    assert "/run/netns/osha-" not in mounts
    assert not list(Path("/sys/fs/cgroup").glob("*/osha-lab-*"))
