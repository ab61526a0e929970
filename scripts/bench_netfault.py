#!/usr/bin/env python3
"""The ``network`` disruptor's nftables tables, for real, without OpenStack: two throwaway
namespaces ``osha-t25-nf-a`` (10.233.25.1, the "node") and ``osha-t25-nf-b`` (10.233.25.2, its
peer) on a bridge in a third, ``osha-t25-nf-br``. The tables are the plugin's own (its config,
``rules_of``, ``_nft.apply_script``, ``switch_command``), applied with ``ip netns exec A sh -c``
as the plugin does with ``sh -c`` over SSH. Prints its figures; asserts nothing.

  (a) partition, drop: ICMP loss a->b and b->a (expect 100 %); TCP to a's "SSH" port from b
      (the management path, accepted first) still connects, TCP to another port hangs;
  (b) partition, reject: TCP to a's other port is refused at once (a reset);
  (c) loss_pct = 30: loss over 500 probes each way (acceptance 30 +- 8 %);
  (d) a foreign table planted in a (``inet`` and ``ip``) is byte-for-byte the same after
      inject and revert;
  (f) bandwidth: ``rate_kbit = 8000`` (tc tbf on a's eth0): a 4 MB TCP transfer a->b, its
      rate against the cap (acceptance within 15 %); a foreign root qdisc (htb on b's eth0)
      makes the inject refuse and survives;
  (e) the dead-man switch: a holder process arms the switch, applies a partition, renews
      every 2 s (ttl 6 s); it is ``kill -9``-ed; the node deletes the table by itself: the
      time from the node's deadline to the table gone, and traffic flowing again.

Usage (root; niced): nice -n 19 .venv/bin/python scripts/bench_netfault.py [DEADMAN_RUNS]
Installs nftables if ``nft`` is missing. Namespaces, watchdogs and state are removed at the
end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from actors.disruptors import _nft, _tc
from actors.disruptors.network import (
    NetworkAction,
    NetworkConfig,
    NetworkDisruptor,
    PartitionMode,
    PeersConfig,
    rules_of,
)
from osha.faults import Lease, deadman
from osha.faults import _switch as switch
from osha.testing import wait_for
from tests.lab import netprobe
from tests.lab.netprobe import ping_loss_pct

A, B, BR = "osha-t25-nf-a", "osha-t25-nf-b", "osha-t25-nf-br"
IP_A, IP_B = "10.233.25.1", "10.233.25.2"
MGMT_PORT, OTHER_PORT = 2222, 2223  # a's stand-in for sshd, and a service behind the cut
STATE = "/run/osha-t25/deadman"
HOLDER_TTL_S, HOLDER_EVERY_S = 6.0, 2.0


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def in_ns(ns: str, script: str) -> tuple[int, str]:
    """The plugin's Runner, with ``ip netns exec`` for SSH."""
    p = sh("ip", "netns", "exec", ns, "sh", "-c", script, check=False)
    return p.returncode, p.stdout + p.stderr


def up() -> None:
    for ns in (A, B, BR):
        sh("ip", "netns", "add", ns)
    sh("ip", "-n", BR, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", BR, "link", "set", "br0", "up")
    for ns, addr, port in ((A, IP_A, "pa"), (B, IP_B, "pb")):
        sh("ip", "-n", BR, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)  # fmt: skip
        sh("ip", "-n", BR, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")


def down() -> None:
    for pid in _watchdogs():
        os.kill(pid, signal.SIGKILL)
    for ns in (A, B, BR):
        sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(Path(STATE).parent, ignore_errors=True)


def _watchdogs() -> list[int]:
    """Our watchdogs (their command line names our state dir), by pid."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if STATE.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue  # it exited meanwhile
    return pids


_LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

_CONNECT = """
import socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    r = "connected"
except OSError as e:
    r = type(e).__name__
print(f"{r} {time.monotonic() - t:.3f}")
"""


def connect(dst: str, port: int, timeout_s: float = 2.0, src: str = B) -> str:
    p = sh("ip", "netns", "exec", src, sys.executable, "-c", _CONNECT, dst, str(port),
           str(timeout_s), check=False)  # fmt: skip
    result, elapsed = [*p.stdout.split(), "?", "?"][:2]
    return f"{result} after {float(elapsed) * 1000:.0f} ms" if elapsed != "?" else p.stderr


def lease_for(config: NetworkConfig, key: str) -> Lease:
    """A lease as the plugin's prepare and the disruptor's _one build it."""
    mgmt = {"address": IP_B, "port": MGMT_PORT} if config.protect_management else None
    revert = {"peers": [IP_B], "ports": list(config.ports), "management": mgmt, switch.KEY: key}
    return Lease(key.rsplit("/", 1)[0], "bench", "network", 0, config.action.value, A, IP_A,
                 "", ("compute",), 30.0, time.time(), time.time() + 60, revert)  # fmt: skip


def inject(config: NetworkConfig, lease: Lease) -> str:
    table = _nft.table_name(str(lease.revert[switch.KEY]))
    rc, out = in_ns(A, _nft.apply_script(table, _nft.ruleset(table, rules_of(config, lease))))
    if rc != 0:
        raise SystemExit(f"inject failed ({rc}): {out}")
    return table


def revert(config: NetworkConfig, lease: Lease) -> None:
    command = NetworkDisruptor.switch_command(config, lease)
    assert command is not None
    rc, out = in_ns(A, command)
    if rc != 0:
        raise SystemExit(f"revert failed ({rc}): {out}")


def partition(mode: str, before: str) -> None:
    config = NetworkConfig(action=NetworkAction.PARTITION, peers=PeersConfig(cidrs=(IP_B,)),
                           mode=PartitionMode(mode))  # fmt: skip
    lease = lease_for(config, f"bench/{mode}/0/aa")
    inject(config, lease)
    try:
        if mode == "drop":
            print(f"(a) partition drop: ICMP loss a->b {ping_loss_pct(A, IP_B, 100):.0f} %, "
                  f"b->a {ping_loss_pct(B, IP_A, 100):.0f} %")  # fmt: skip
            print(f"    management path b->a:{MGMT_PORT}: {connect(IP_A, MGMT_PORT)}; "
                  f"other port b->a:{OTHER_PORT}: {connect(IP_A, OTHER_PORT)}")  # fmt: skip
            print(f"(d) foreign tables unchanged while the partition is held: "
                  f"{foreign_text() == before}")  # fmt: skip
        else:
            print(f"(b) partition reject: b->a:{OTHER_PORT}: {connect(IP_A, OTHER_PORT)}; "
                  f"a->b:{OTHER_PORT}: {connect(IP_B, OTHER_PORT, src=A)}; "
                  f"management b->a:{MGMT_PORT}: {connect(IP_A, MGMT_PORT)}")  # fmt: skip
    finally:
        revert(config, lease)
    print(f"    after the revert: ICMP loss b->a {ping_loss_pct(B, IP_A, 20):.0f} %, "
          f"b->a:{OTHER_PORT}: {connect(IP_A, OTHER_PORT)}")  # fmt: skip


def loss(probes: int) -> None:
    config = NetworkConfig(action=NetworkAction.LOSS, loss_pct=30)
    lease = lease_for(config, "bench/loss/0/bb")
    inject(config, lease)
    try:
        ab = ping_loss_pct(A, IP_B, probes)
        ba = ping_loss_pct(B, IP_A, probes)
    finally:
        revert(config, lease)
    verdict = "within" if all(22 <= x <= 38 for x in (ab, ba)) else "OUTSIDE"
    print(f"(c) loss_pct = 30 over {probes} probes: a->b {ab:.1f} %, b->a {ba:.1f} % "
          f"({verdict} 30 +- 8 %)")  # fmt: skip


def transfer_kbit(size: int, port: int) -> float:
    """A TCP transfer of ``size`` bytes a->b; the rate the receiver saw, in kbit/s."""
    with netprobe.transfer(A, B, IP_B, port, size) as (sink, source):
        source.wait(timeout=120)
        assert sink.stdout is not None
        n, seconds = sink.stdout.readline().split()
    return int(n) * 8 / 1000 / float(seconds)


def bandwidth() -> None:
    rate = 8000
    config = NetworkConfig(action=NetworkAction.BANDWIDTH, interface="eth0", rate_kbit=rate)
    lease = lease_for(config, "bench/bw/0/ee")
    free = transfer_kbit(4_000_000, 2230)
    rc, out = in_ns(A, _tc.add_command("eth0", _tc.tbf(rate)))
    if rc != 0:
        raise SystemExit(f"tbf failed ({rc}): {out}")
    try:
        capped = transfer_kbit(4_000_000, 2231)
    finally:
        revert(config, lease)
    after = in_ns(A, "tc qdisc show dev eth0 root")[1].split()[:3]
    off = 100 * (capped - rate) / rate
    verdict = "within" if abs(off) <= 15 else "OUTSIDE"
    print(f"(f) bandwidth rate_kbit = {rate}: 4 MB a->b at {capped:.0f} kbit/s ({off:+.1f} %, "
          f"{verdict} 15 %); without the cap {free:.0f} kbit/s; root qdisc after the revert: "
          f"{' '.join(after)}")  # fmt: skip
    sh("ip", "netns", "exec", B, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:",
       "htb", "default", "0")  # fmt: skip
    before = in_ns(B, "tc qdisc show dev eth0 root")[1]
    rc, out = in_ns(B, _tc.add_command("eth0", _tc.tbf(rate)))
    rc2, _ = in_ns(B, NetworkDisruptor.switch_command(config, lease) or "false")
    same = in_ns(B, "tc qdisc show dev eth0 root")[1] == before
    print(f"    a foreign root qdisc (htb 1:) on b: inject exit {rc} ({out.strip()[:60]}), "
          f"revert exit {rc2}; it is unchanged: {same}")  # fmt: skip


def foreign_text() -> str:
    return netprobe.foreign_tables_text(A)


def foreign() -> str:
    return netprobe.plant_foreign_tables(A)


HOLDER = """
import subprocess, sys, time
from osha.faults import deadman
from actors.disruptors import _nft
ns, key, state, command, script, ttl, every = sys.argv[1:8]
def run(s):
    p = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", s], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr
w = deadman.arm(run, key, command, float(ttl), state_dir=state, detach=deadman.Detach.SETSID)
rc, out = run(script)
print("armed", w.pid, rc, out.strip(), flush=True)
for i in range(10_000):  # held until killed; each pass sleeps `every`
    time.sleep(float(every))
    print("renewed", w.renew(float(ttl)).deadline_s, flush=True)
"""


def deadman_run(i: int, before: str) -> float:
    config = NetworkConfig(action=NetworkAction.PARTITION, peers=PeersConfig(cidrs=(IP_B,)))
    lease = lease_for(config, f"bench/deadman/{i}/cc{i}")
    key = str(lease.revert[switch.KEY])
    table = _nft.table_name(key)
    command = NetworkDisruptor.switch_command(config, lease)
    assert command is not None
    script = _nft.apply_script(table, _nft.ruleset(table, rules_of(config, lease)))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, A, key, STATE, command, script, str(HOLDER_TTL_S),
         str(HOLDER_EVERY_S)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None
    lines = [holder.stdout.readline() for _ in range(3)]  # armed, then two renews
    holder.kill()  # SIGKILL: nothing of osha's side runs any more
    holder.wait()
    assert lines[0].startswith("armed"), lines
    assert lines[2].startswith("renewed"), lines
    status = deadman.Watchdog.attach(lambda s: in_ns(A, s), key, state_dir=STATE).status()
    assert status.deadline_s is not None, status
    assert status.now_s is not None, status
    loss_held = ping_loss_pct(B, IP_A, 10)

    def gone() -> float | None:
        if in_ns(A, f"nft list table inet {table}")[0] == 0:
            return None
        return float(Path("/proc/uptime").read_text().split()[0])

    gone_s = wait_for(gone, timeout_s=HOLDER_TTL_S + 10, interval_s=0.05, what="the revert")
    lag_s = gone_s - status.deadline_s
    flowing = ping_loss_pct(B, IP_A, 10)
    collected = deadman.Watchdog.attach(lambda s: in_ns(A, s), key, state_dir=STATE).disarm()
    same = foreign_text() == before
    print(f"(e) dead-man #{i}: holder kill -9'ed {status.remaining_s:.2f} s before the "
          f"deadline; loss while held {loss_held:.0f} %; table gone {lag_s:+.2f} s after the "
          f"deadline; loss after {flowing:.0f} %; node says {collected.state.value} "
          f"(exit {collected.revert_status}); foreign tables unchanged: {same}")  # fmt: skip
    return lag_s


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if os.geteuid() != 0:
        raise SystemExit("run as root (it makes network namespaces)")
    if shutil.which("nft") is None:
        sh("nice", "-n", "19", "apt-get", "install", "-y", "-q", "nftables")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"nft: {sh('nft', '--version').stdout.strip()}; kernel {os.uname().release}; "
          f"host {socket.gethostname()}")  # fmt: skip
    listeners: list[subprocess.Popen[str]] = []
    try:
        up()
        for ns, addr, port in ((A, IP_A, MGMT_PORT), (A, IP_A, OTHER_PORT), (B, IP_B, OTHER_PORT)):
            listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                         _LISTEN, addr, str(port)],
                                        stdout=subprocess.PIPE, text=True)  # fmt: skip
            listeners.append(listener)
            assert listener.stdout is not None
            assert listener.stdout.readline().startswith("ready")
        print(f"baseline: ICMP loss b->a {ping_loss_pct(B, IP_A, 20):.0f} %, "
              f"b->a:{OTHER_PORT}: {connect(IP_A, OTHER_PORT)}")  # fmt: skip
        before = foreign()
        partition("drop", before)
        partition("reject", before)
        for _ in range(3):
            loss(500)
        bandwidth()
        print(f"(d) foreign tables unchanged after inject + revert: {foreign_text() == before}; "
              f"tables now: {in_ns(A, 'nft list tables')[1].split(chr(10))}")  # fmt: skip
        lags = [deadman_run(i, before) for i in range(runs)]
        print(f"(e) dead-man: table gone after the deadline: max {max(lags):+.2f} s, "
              f"min {min(lags):+.2f} s over {runs} kill -9 (bound: poll 0.5 s + 2 s margin)")
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()
        down()


if __name__ == "__main__":
    main()
