#!/usr/bin/env python3
"""Benchmark: the cost of a full check round of ``host-services`` over N lightweight nodes,
each with 5 services, against what Cloud99 used for the same work, Ansible ad-hoc
(``ansible all -m shell -a 'pgrep ...'``), in the same run.

Usage (as root; takes a few minutes)::

    .venv/bin/python scripts/bench_monitors.py [--nodes 10,30,100] [--rounds 20]
        [--ansible-venv /tmp/osha-bench-ansible] [--no-ansible] [--cpu-seconds 10]

Nodes are network namespaces with their own PID and mount namespaces, a real sshd and 5
sleeping "services" (``bsvc-1``..``bsvc-5``), on their own bridge ``oshabench0`` and subnet
10.233.0.0/24, distinct from the lab's. The script removes everything it created on exit,
on Ctrl-C and on SIGTERM. Ansible (ansible-core) is installed into a throwaway venv the
first time (``--ansible-venv``), from PyPI.

Rounds measured, medians printed:

- osha streaming: every node's agent is asked for a full check (``r``) and the round ends
  when every node has answered: what a sub-second ``host-services`` costs per round;
- osha exec: one ``pgrep`` exec per node over persistent TCP_NODELAY connections, in
  parallel (the plain threaded-paramiko approach);
- Ansible ad-hoc, shell module, pipelining, forks = N, ControlPersist (its defaults).

CPU: the monitor's own CPU time (all threads) over ``--cpu-seconds`` at interval_s = 1.0,
and the node-side agents' and their sshd sessions' CPU, as % of one core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.common.ssh import SshCredentials, SshPool, SshTarget  # noqa: E402
from actors.monitors.host_services import HostServicesConfig, HostServicesMonitor  # noqa: E402
from osha import schema  # noqa: E402
from osha.testing import FakeContext, wait_for  # noqa: E402

BRIDGE = "oshabench0"
NET = "10.233.0"
PREFIX = "oshab-"
SERVICES = [f"bsvc-{i}" for i in range(1, 6)]

INIT = """#!/bin/bash
# PID 1 of a bench node: private /run, no pyenv .bashrc, 5 services, sshd.
set -u
D=$1
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd
for f in .bashrc .profile; do [ -e /root/$f ] && mount --bind $D/empty /root/$f; done
for s in {services}; do $D/bin/$s infinity & done
/usr/sbin/sshd -D -e -f $D/sshd_config 2>>$D/sshd.log &
trap 'exit 0' TERM
while :; do sleep 3600 & wait $!; done
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


class Nodes:
    """N bench nodes; ``close`` removes every namespace, link and process it created."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.work.mkdir(parents=True, exist_ok=True)
        self.key = work / "id_ed25519"
        self.host_key = work / "host_key"
        for path in (self.key, self.host_key):
            if not path.exists():
                sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
        (work / "authorized_keys").write_text((work / "id_ed25519.pub").read_text())
        os.chmod(work / "authorized_keys", 0o600)
        (work / "empty").write_text("")
        bindir = work / "bin"
        bindir.mkdir(exist_ok=True)
        for s in SERVICES:
            link = bindir / s
            if not link.exists():
                link.symlink_to(shutil.which("sleep") or "/bin/sleep")
        (work / "init.sh").write_text(INIT.format(services=" ".join(SERVICES)))
        os.chmod(work / "init.sh", 0o755)  # noqa: S103 - the node's init must be executable
        if sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            sh("ip", "link", "add", BRIDGE, "type", "bridge")
            sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")

    @staticmethod
    def address(i: int) -> str:
        return f"{NET}.{10 + i}"

    def known_hosts(self, count: int) -> Path:
        pub = self.host_key.with_suffix(".pub").read_text().split()
        path = self.work / "known_hosts"
        path.write_text("".join(f"{self.address(i)} {pub[0]} {pub[1]}\n" for i in range(count)))
        return path

    def ensure(self, count: int) -> None:
        """Nodes 0..count-1 running, sshd answering."""
        for i in range(count):
            if i in self.procs:
                continue
            ns, veth, d = f"{PREFIX}{i}", f"vob-{i}", self.work / f"n{i}"
            d.mkdir(exist_ok=True)
            for name in ("bin", "empty", "authorized_keys"):
                target = d / name
                if not target.exists():
                    target.symlink_to(self.work / name)
            (d / "sshd_config").write_text(
                f"ListenAddress {self.address(i)}\nHostKey {self.host_key}\nPidFile /run/sshd.pid\n"
                f"AuthorizedKeysFile {self.work / 'authorized_keys'}\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\n"
                "PermitRootLogin prohibit-password\nMaxSessions 100\nMaxStartups 100:30:200\n"
            )
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.procs[i] = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--pid", "--fork", "--mount-proc",
                 "--kill-child", str(self.work / "init.sh"), str(d)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

        def sshd_up(i: int) -> bool:
            with socket.socket() as s:
                s.settimeout(0.2)
                return s.connect_ex((self.address(i), 22)) == 0

        for i in range(count):
            wait_for(lambda i=i: sshd_up(i), timeout_s=30, what=f"sshd on bench node {i}")

    def close(self) -> None:
        for proc in self.procs.values():
            # The node's PID 1 dies, and the kernel kills the rest of its PID namespace.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)
        for i in list(self.procs):
            sh("ip", "link", "del", f"vob-{i}", check=False)
            sh("ip", "netns", "del", f"{PREFIX}{i}", check=False)
        self.procs.clear()
        sh("ip", "link", "del", BRIDGE, check=False)


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def monitor_for(nodes: Nodes, count: int, interval_s: float) -> HostServicesMonitor:
    data = {
        "interval_s": interval_s,
        "heartbeat_timeout_s": max(5.0, 3 * interval_s),
        "hosts": {f"b{i}": {"address": nodes.address(i)} for i in range(count)},
        "services": {"all": SERVICES},
        "python": "/usr/bin/python3",
        "ssh": {"private_key": str(nodes.key), "known_hosts": str(nodes.known_hosts(count))},
    }
    cfg, problems = schema.build(HostServicesConfig, data, file="bench")
    if cfg is None:
        raise SystemExit(f"bench config: {problems}")
    return HostServicesMonitor(cfg, FakeContext("bench"))


def osha_stream_rounds(mon: HostServicesMonitor, count: int, rounds: int) -> list[float]:
    wait_for(
        lambda: all(w.rounds > 0 for w in mon.watchers.values()),
        timeout_s=60,
        what="every agent's first round",
    )
    states = mon.tracker.states()
    up = sum(1 for t, s in states.items() if "@" in t and s == "up")
    if up != count * len(SERVICES):
        raise SystemExit(f"expected {count * len(SERVICES)} services up, monitor sees {up}")
    return [mon.full_round(timeout_s=10.0) for _ in range(rounds)]


def osha_exec_rounds(nodes: Nodes, count: int, rounds: int) -> list[float]:
    creds = SshCredentials(str(nodes.key), str(nodes.known_hosts(count)), connect_timeout_s=10.0)
    pool = SshPool(creds)
    targets = [SshTarget(f"b{i}", nodes.address(i)) for i in range(count)]
    command = "; ".join(f"pgrep -x {s} >/dev/null || echo {s} down" for s in SERVICES)
    try:
        with ThreadPoolExecutor(count) as ex:
            list(ex.map(pool.get, targets))  # connect first: rounds measure steady state
            times = []
            for _ in range(rounds):
                start = time.monotonic()
                results = list(ex.map(lambda t: pool.exec(t, command, timeout_s=10), targets))
                times.append(time.monotonic() - start)
                bad = [r for r in results if r.exit_status != 0 or r.stdout.strip()]
                if bad:
                    raise SystemExit(f"exec round saw problems: {bad[:3]}")
            return times
    finally:
        pool.close()


def ensure_ansible(venv: Path) -> Path:
    ansible = venv / "bin" / "ansible"
    if not ansible.exists():
        print(f"installing ansible-core into {venv} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "ansible-core"], check=True, timeout=900
        )
    return ansible


def ansible_rounds(ansible: Path, nodes: Nodes, count: int, rounds: int) -> list[float]:
    inv = nodes.work / f"inventory-{count}.ini"
    known = nodes.known_hosts(count)
    inv.write_text(
        "[bench]\n"
        + "".join(f"b{i} ansible_host={nodes.address(i)}\n" for i in range(count))
        + f"\n[all:vars]\nansible_user=root\nansible_ssh_private_key_file={nodes.key}\n"
        "ansible_python_interpreter=/usr/bin/python3\n"
        f"ansible_ssh_common_args='-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes'\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_LOCAL_TEMP": str(nodes.work / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(nodes.work / "cp"),
        "ANSIBLE_GATHERING": "explicit",
    }
    command = " ; ".join(f"pgrep -x {s}" for s in SERVICES)
    argv = [
        str(ansible),
        "all",
        "-i",
        str(inv),
        "-f",
        str(count),
        "-m",
        "shell",
        "-a",
        command,
        "-o",
    ]
    times = []
    for n in range(rounds + 1):  # the first round opens the ControlMaster connections
        start = time.monotonic()
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=600, check=False
        )
        elapsed = time.monotonic() - start
        if result.returncode != 0:
            output = result.stdout[-1500:] + result.stderr[-1500:]
            raise SystemExit(f"ansible failed (rc {result.returncode}): {output}")
        if n > 0:
            times.append(elapsed)
    return times


def cpu_at_interval(nodes: Nodes, count: int, seconds: float) -> tuple[float, float, int]:
    """(monitor %, node side %) of one core at interval_s = 1.0 over ``seconds``."""
    mon = monitor_for(nodes, count, 1.0)
    mon.setup()
    try:
        wait_for(
            lambda: all(w.rounds > 0 for w in mon.watchers.values()), timeout_s=60, what="agents"
        )
        node_procs = [
            p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and "osha-node-agent" in " ".join(p.info["cmdline"])
        ]  # fmt: skip
        node_procs += [p.parent() for p in node_procs if p.parent() is not None]  # their sshd
        me = psutil.Process()

        def node_cpu() -> float:
            total = 0.0
            for p in node_procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    continue
            return total

        t0, c0, n0 = time.monotonic(), sum(me.cpu_times()[:2]), node_cpu()
        stop = FakeContext().stopping
        deadline = t0 + seconds
        while time.monotonic() < deadline:  # poll as the actor host does
            mon.poll()
            stop.wait(1.0)
        wall = time.monotonic() - t0
        return (
            100 * (sum(me.cpu_times()[:2]) - c0) / wall,
            100 * (node_cpu() - n0) / wall,
            len(node_procs),
        )
    finally:
        mon.teardown()


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="10,30,100")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--ansible-rounds", type=int, default=5)
    ap.add_argument(
        "--ansible-venv", default=str(Path(tempfile.gettempdir()) / "osha-bench-ansible")
    )
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_monitors.py needs root (network namespaces)")
    counts = [int(n) for n in args.nodes.split(",")]
    ansible = None if args.no_ansible else ensure_ansible(Path(args.ansible_venv))
    work = Path(tempfile.mkdtemp(prefix="osha-bench-"))
    nodes = Nodes(work)
    rows = []
    try:
        with signals_as_interrupt():
            for count in counts:
                nodes.ensure(count)
                mon = monitor_for(nodes, count, 1.0)
                mon.setup()
                try:
                    stream = osha_stream_rounds(mon, count, args.rounds)
                finally:
                    mon.teardown()
                execs = osha_exec_rounds(nodes, count, args.rounds)
                ans = ansible_rounds(ansible, nodes, count, args.ansible_rounds) if ansible else []
                rows.append((count, stream, execs, ans))
                ratio = statistics.median(ans) / statistics.median(stream) if ans else float("nan")
                print(
                    f"N={count:3d}: osha streaming {fmt(stream)} | osha exec {fmt(execs)} | "
                    f"ansible {fmt(ans) if ans else '     n/a'} | ansible/streaming {ratio:6.1f}x",
                    flush=True,
                )
            big = max(counts)
            mon_cpu, node_cpu, procs = cpu_at_interval(nodes, big, args.cpu_seconds)
            print(
                f"CPU at interval_s=1.0, N={big}: monitor {mon_cpu:.1f}% of one core; "
                f"node side ({procs} processes: agents + their sshd sessions) {node_cpu:.1f}%",
                flush=True,
            )
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        nodes.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
