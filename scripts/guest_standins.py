"""Stand-ins for scripts/bench_guests.py: compute nodes in throwaway ``osha-t25-*``
namespaces running the lab's hypervisor daemon, an ICMP pinger, and osha's vm-ping watching.

A stand-in node is what a lab compute node is for its guests: a network namespace with a
tenant link (``eth1``, host side on the bridge ``osha-t25-br``) enslaved to a node bridge, and
a PID namespace whose PID 1 is scripts/labkit/node/hypervisor.py; its "power-off" is SIGKILL
to that PID 1 (the kernel kills every process of the node), as in the lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.monitors._icmp import IcmpSocket  # noqa: E402 - after the path
from actors.monitors.vm_ping import VmPingConfig, VmPingMonitor  # noqa: E402
from osha.messages.monitor import Sample, StateChange  # noqa: E402
from osha.testing import FakeContext  # noqa: E402

HYPERVISOR = ROOT / "scripts" / "labkit" / "node" / "hypervisor.py"
DRIVER = ROOT / "scripts" / "labkit" / "virt" / "nova" / "virt" / "osha_lab.py"
PREFIX = "osha-t25-"
BRIDGE = f"{PREFIX}br"
NET = "10.229.25"
HOST = f"{NET}.1"
TCP_PORT = 8080
PING_INTERVAL_S = 0.1
PING_TIMEOUT_S = 0.3
DOWN_AFTER_LOST = 3
WAIT_S = 10.0  # any condition of this bench; they take milliseconds

def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def wait(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
    """Poll until true (bounded); the seconds it took."""
    t0 = time.monotonic()
    while not predicate():  # bounded by timeout_s
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s: {what}")
        time.sleep(0.002)
    return time.monotonic() - t0


@dataclass
class Node:
    """A stand-in compute node: netns + tenant link + PID namespace running the daemon."""

    name: str
    index: int
    tmp: Path
    unshare: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> str:
        return f"{PREFIX}cmp{self.index}"

    @property
    def veth(self) -> str:
        return f"{PREFIX}v{self.index}"

    @property
    def sock(self) -> str:
        return str(self.tmp / f"cmp{self.index}.sock")

    @property
    def events(self) -> Path:
        return self.tmp / f"cmp{self.index}-events.log"

    def create(self) -> None:
        sh("ip", "netns", "add", self.netns)
        peer = ["peer", "name", "eth1", "netns", self.netns]
        sh("ip", "link", "add", self.veth, "type", "veth", *peer)
        sh("ip", "link", "set", self.veth, "master", BRIDGE, "up")
        for cmd in ("link set lo up", "link add br-tenant type bridge",
                    "link set eth1 master br-tenant", "link set eth1 up", "link set br-tenant up"):
            sh("ip", "-n", self.netns, *cmd.split())  # fmt: skip

    def power_on(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)
        self.events.touch()
        self.unshare = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--pid", "--fork", "--mount-proc",
             "--kill-child", sys.executable, "-I", str(HYPERVISOR), "serve", self.sock,
             "--events", str(self.events), "--bridge", "br-tenant",
             "--state", str(self.tmp / f"cmp{self.index}-state"), "--tcp-port", str(TCP_PORT)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(self.tmp / f"cmp{self.index}.log").open("a"),
        )  # fmt: skip
        wait(self.answers, f"{self.name}'s hypervisor answers on its socket")

    def answers(self) -> bool:
        try:
            self.call(op="list")
        except OSError:
            return False
        return True

    def init_pid(self) -> int | None:
        """The machine-visible pid of the node's PID 1 (the daemon)."""
        if self.unshare is None or self.unshare.poll() is not None:
            return None
        kids = sh("pgrep", "-P", str(self.unshare.pid), check=False).stdout.split()
        return int(kids[0]) if kids else None

    def power_off(self) -> None:
        """SIGKILL to the node's PID 1: the kernel kills every process of the node."""
        pid = self.init_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        if self.unshare is not None:
            self.unshare.wait(WAIT_S)

    def call(self, **req: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT_S)
            s.connect(self.sock)
            s.sendall((json.dumps(req) + "\n").encode())
            with s.makefile("rb") as f:
                reply: dict[str, Any] = json.loads(f.readline())
        if not reply.get("ok"):
            raise AssertionError(f"{self.name}: {req['op']}: {reply.get('error')}")
        return reply

    def start(self, n: int, reason: str = "spawn") -> dict[str, Any]:
        return self.call(op="start", uuid=uuid_of(n), server=f"vm{n}", ips=[f"{NET}.{n}/24"],
                         mac=f"fa:16:3e:00:00:{n:02x}", reason=reason)  # fmt: skip


def uuid_of(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


class Pinger:
    """First echo reply per address after ``arm``, timed with the monotonic clock."""

    def __init__(self) -> None:
        self.replies: dict[str, float] = {}
        self.lock = threading.Lock()
        self.icmp = IcmpSocket(self._on_reply)
        self.seq = 0

    def _on_reply(self, address: str, seq: int, recv_mono: float) -> None:
        with self.lock:
            self.replies.setdefault(address, recv_mono)

    def first_reply(self, address: str, timeout_s: float = WAIT_S) -> float:
        with self.lock:
            self.replies.pop(address, None)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # bounded
            self.seq = (self.seq + 1) & 0xFFFF
            self.icmp.send(address, self.seq)
            time.sleep(0.002)
            with self.lock:
                if address in self.replies:
                    return self.replies[address]
        raise AssertionError(f"no echo reply from {address} in {timeout_s} s")

    def answers(self, address: str, timeout_s: float = 0.3) -> bool:
        try:
            self.first_reply(address, timeout_s)
        except AssertionError:
            return False
        return True


def tcp_open(address: str) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((address, TCP_PORT)) == 0


@dataclass
class Watch:
    """osha's vm-ping monitor, polled every PING_INTERVAL_S by a thread (as its actor host)."""

    targets: dict[str, str]
    ctx: FakeContext = field(default_factory=lambda: FakeContext("vm-ping"))
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        cfg = VmPingConfig(interval_s=PING_INTERVAL_S, timeout_s=PING_TIMEOUT_S,
                           down_after_lost=DOWN_AFTER_LOST, report_interval_s=0.0,
                           targets=self.targets)  # fmt: skip
        self.mon = VmPingMonitor(cfg, self.ctx)
        self.mon.setup()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(PING_INTERVAL_S):
            self.mon.poll()

    def states(self) -> dict[str, str]:
        return {t: str(s) for t, s in self.mon.tracker.states().items()}

    def changes(self, target: str) -> list[StateChange]:
        return [c for c in self.ctx.of(StateChange) if c.target == target]

    def lost(self, target: str, since_mono_s: float) -> int:
        return sum(s.failures for s in self.ctx.of(Sample) if s.target == target and
                   s.mono_s >= since_mono_s)  # fmt: skip

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        self.mon.teardown()


def cleanup() -> None:
    """Every osha-t25-* namespace and link (a node's veth goes with its namespace)."""
    for ns in sh("ip", "netns", "list").stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(PREFIX):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", name, check=False)
    for link in sh("ip", "-o", "link", "show").stdout.splitlines():
        name = link.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            sh("ip", "link", "del", name, check=False)


