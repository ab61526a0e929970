#!/usr/bin/env python3
"""The lab's data plane without OpenStack: guests of the lab hypervisor on a tenant bridge.

usage: nice -n 19 scripts/bench_guests.py [--boots 20] [--out DIR] [--nova-python PY]

Builds throwaway namespaces (names ``osha-t25-*``, removed at the end, on Ctrl-C and on
SIGTERM) standing in for two compute nodes: each a network namespace with a tenant link
(``eth1``, host side on the bridge ``osha-t25-br`` with 10.229.25.1/24) enslaved to a node
bridge, and a PID namespace whose PID 1 is the lab's hypervisor daemon
(scripts/labkit/node/hypervisor.py), as in the lab. Then, through the daemon's socket:

1. boots ``--boots`` guests one after the other on node 1: the time from the request to its
   reply, and to the first ICMP echo reply from the host's address (the issue asks <= 200 ms
   per boot), then stops them (time to stop);
2. starts 2 guests on each node and watches them with osha's own ``vm-ping`` monitor;
   stop / start / reboot of one guest: exactly it goes down and up again;
3. "powers off" node 1 (SIGKILL to its PID 1, as ``scripts/lab power cmp-1 off`` does):
   exactly node 1's guests go down, node 2's lose at most one probe; "powers it on" and
   resumes its guests (what nova does with resume_guests_state_on_host_boot): up again;
   vm-ping's outage against the ground truth (kill -> guest answering);
4. link-down of node 2's tenant link: its guests go down, and up again at link-up;
5. with ``--nova-python`` (default: the lab's services venv, if there is one): nova's side,
   the lab driver (scripts/labkit/virt) against node 2's daemon, with nova's real network
   model: spawn, get_info, power_off/on, reboot, a restart that finds the definitions back,
   resume_state_on_host_boot, destroy.

The stand-in nodes, pinger and vm-ping watch are in scripts/guest_standins.py. Prints the
figures and writes them, with both nodes' events files, to ``--out``. Needs root.
Exit 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from guest_standins import (  # noqa: E402 - after the path
    BRIDGE,
    DRIVER,
    HOST,
    NET,
    PING_INTERVAL_S,
    PREFIX,
    TCP_PORT,
    Node,
    Pinger,
    Watch,
    cleanup,
    sh,
    tcp_open,
    uuid_of,
    wait,
)  # fmt: skip


def median_ms(xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return f"{statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f})"


class Bench:
    def __init__(self, boots: int, out: Path, nova_python: str) -> None:
        self.boots = boots
        self.out = out
        self.nova_python = nova_python
        self.tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.nodes = [Node("cmp-1", 1, self.tmp), Node("cmp-2", 2, self.tmp)]
        self.figures: dict[str, Any] = {}
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)

    # --- the namespaces ----------------------------------------------------------------------

    def setup(self) -> None:
        routes = sh("ip", "-4", "route").stdout
        if f"{NET}." in routes:
            raise SystemExit(f"{NET}.0/24 is routed on this machine already:\n{routes}")
        cleanup()  # a killed earlier run's leftovers
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HOST}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for node in self.nodes:
            node.create()
            node.power_on()

    def teardown(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                node.power_off()
        cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the checks --------------------------------------------------------------------------

    def boots_and_stops(self, pinger: Pinger) -> None:
        n1 = self.nodes[0]
        reply_s, answer_s, tcp_s, stop_s = [], [], [], []
        for i in range(self.boots):
            n = 100 + i
            t0 = time.monotonic()
            n1.start(n)
            reply_s.append(time.monotonic() - t0)
            answer_s.append(pinger.first_reply(f"{NET}.{n}") - t0)
            address = f"{NET}.{n}"
            tcp_s.append(wait(lambda: tcp_open(address), "TCP") + answer_s[-1])  # noqa: B023
            t1 = time.monotonic()
            n1.call(op="stop", uuid=uuid_of(n), reason="destroy")
            stop_s.append(time.monotonic() - t1)
            assert not pinger.answers(f"{NET}.{n}"), f"vm{n} answers after its stop"
        self.say(f"guest start, request to reply:       median {median_ms(reply_s)}")
        self.say(f"guest start, request to ICMP answer: median {median_ms(answer_s)} (goal 200)")
        self.say(f"guest start, request to TCP {TCP_PORT} open: median {median_ms(tcp_s)}")
        self.say(f"guest stop (SIGKILL, veth gone):     median {median_ms(stop_s)}")
        self.figures["boot"] = {"n": self.boots, "reply_s": reply_s, "icmp_s": answer_s,
                                "tcp_s": tcp_s, "stop_s": stop_s}  # fmt: skip
        left = sh("ip", "-n", n1.netns, "-o", "link", "show", "type", "veth").stdout
        assert "tap" not in left, f"taps left on {n1.name}: {left}"

    def guest_memory(self) -> None:
        """PSS of the running guests (busybox httpd: static, its text shared)."""
        pss_kb = []
        for pid in sh("pgrep", "-f", f"httpd .*{self.tmp}/cmp", check=False).stdout.split():
            with contextlib.suppress(OSError):
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                pss_kb += [int(x.split()[1]) for x in rollup.splitlines() if x.startswith("Pss:")]
        if pss_kb:
            mean_kb = statistics.mean(pss_kb)
            self.say(f"guest memory: {mean_kb:.0f} kB PSS each ({len(pss_kb)} guests)")
            self.figures["guest_pss_kb"] = pss_kb

    def lifecycle(self, watch: Watch, pinger: Pinger) -> None:
        n1 = self.nodes[0]
        target = "vm:vm11"
        n1.call(op="stop", uuid=uuid_of(11), reason="power-off")
        wait(lambda: watch.states()[target] == "down", "vm11 down after stop")
        assert all(s == "up" for t, s in watch.states().items() if t != target), watch.states()
        n1.start(11, reason="power-on")
        wait(lambda: watch.states()[target] == "up", "vm11 up after start")
        pid = n1.call(op="status", uuid=uuid_of(11))["pid"]
        n1.call(op="stop", uuid=uuid_of(11), reason="reboot")
        n1.start(11, reason="reboot")
        assert n1.call(op="status", uuid=uuid_of(11))["pid"] != pid, "reboot kept the process"
        assert pinger.first_reply(f"{NET}.11")
        self.say("stop / start / reboot of vm11: vm-ping saw exactly vm11 down, then up; "
                 "a reboot is a new guest process")  # fmt: skip

    def power_cycle(self, watch: Watch) -> None:
        n1 = self.nodes[0]
        on_n1, on_n2 = {"vm:vm11", "vm:vm12"}, {"vm:vm21", "vm:vm22"}
        off_mono = time.monotonic()
        n1.power_off()
        wait(lambda: all(watch.states()[t] == "down" for t in on_n1), "node 1's guests down")
        down = {t for t, s in watch.states().items() if s == "down"}
        assert down == on_n1, f"down: {down}, expected exactly {on_n1}"
        gone = sh("pgrep", "-f", f"{self.tmp}/cmp1-state", check=False).stdout.split()
        assert not gone, f"node 1's guest processes outlived its power-off: {gone}"
        n1.power_on()
        on_mono = time.monotonic()
        for n in (11, 12):
            n1.start(n, reason="resume")
        resumed_mono = time.monotonic()
        wait(lambda: all(watch.states()[t] == "up" for t in on_n1), "node 1's guests up")
        lost_n2 = {t: watch.lost(t, off_mono) for t in sorted(on_n2)}
        assert all(v <= 1 for v in lost_n2.values()), f"node 2's guests lost probes: {lost_n2}"
        outages = {}
        for t in sorted(on_n1):
            changes = watch.changes(t)
            up = next(c for c in changes if c.state == "up" and c.first_bad_mono_s > off_mono)
            down = [c for c in changes if c.state == "down" and c.mono_s < up.mono_s][-1]
            outages[t] = up.first_bad_mono_s - down.first_bad_mono_s
        truth = resumed_mono - off_mono
        self.say(f"power-off of node 1: exactly {sorted(on_n1)} down; node 2's guests lost "
                 f"{lost_n2} probes; {len(gone)} guest processes left on the machine")  # fmt: skip
        self.say(f"vm-ping outage {', '.join(f'{t} {s:.3f} s' for t, s in outages.items())}; "
                 f"ground truth (kill -> guests resumed) {truth:.3f} s; node boot "
                 f"{on_mono - off_mono:.3f} s after the kill; probe every {PING_INTERVAL_S} s"
                 )  # fmt: skip
        for t, s in outages.items():
            assert abs(s - truth) <= PING_INTERVAL_S + 0.3, f"{t}: outage {s} vs truth {truth}"
        self.figures["power_cycle"] = {"outage_s": outages, "truth_s": truth, "lost_n2": lost_n2}

    def link_down(self, watch: Watch) -> None:
        n2 = self.nodes[1]
        on_n2 = {"vm:vm21", "vm:vm22"}
        sh("ip", "link", "set", n2.veth, "down")
        wait(lambda: all(watch.states()[t] == "down" for t in on_n2), "node 2's guests down")
        down = {t for t, s in watch.states().items() if s == "down"}
        assert down == on_n2, f"down: {down}"
        sh("ip", "link", "set", n2.veth, "up")
        wait(lambda: all(s == "up" for s in watch.states().values()), "all up after link-up")
        self.say("link-down of node 2's tenant link: exactly its guests down; all up after link-up")

    def nova_driver(self) -> None:
        if not self.nova_python or not os.access(self.nova_python, os.X_OK):
            self.say("nova driver: skipped (no --nova-python with nova)")
            return
        n2 = self.nodes[1]
        done = subprocess.run(
            [self.nova_python, str(ROOT / "scripts" / "labkit" / "virt" / "check_driver.py"),
             str(DRIVER), n2.sock, str(self.tmp / "instances"), NET],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        for line in done.stdout.splitlines():
            self.say(f"nova driver: {line}")
        if done.returncode != 0:
            raise AssertionError(f"nova driver check failed:\n{done.stderr[-3000:]}")

    def run(self) -> int:
        self.setup()
        pinger = Pinger()
        try:
            self.boots_and_stops(pinger)
            for node, ns in zip(self.nodes, (11, 21), strict=True):
                for n in (ns, ns + 1):
                    node.start(n)
            self.guest_memory()
            watch = Watch({f"vm{n}": f"{NET}.{n}" for n in (11, 12, 21, 22)})
            try:
                wait(lambda: list(watch.states().values()) == ["up"] * 4, "vm-ping sees all 4 up")
                self.say(f"vm-ping: all 4 guests up: {watch.states()}")
                self.lifecycle(watch, pinger)
                self.power_cycle(watch)
                self.link_down(watch)
            finally:
                watch.close()
            self.nova_driver()
        finally:
            pinger.icmp.close()
            self.save()
        return 0

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "bench_guests.txt").write_text("\n".join(self.lines) + "\n")
        (self.out / "bench_guests.json").write_text(json.dumps(self.figures, indent=1) + "\n")
        for node in self.nodes:
            if node.events.exists():
                shutil.copy(node.events, self.out / f"events-cmp{node.index}.log")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP end the bench through its finally blocks (the cleanup)."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench-guests"))
    lab_python = Path(os.environ.get("OSHA_LAB_DIR", "/var/lib/osha-lab")) / "venv/bin/python"
    parser.add_argument("--nova-python", default=str(lab_python) if lab_python.exists() else "")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_guests: needs root (namespaces, bridges)", file=sys.stderr)
        return 2
    bench = Bench(args.boots, args.out, args.nova_python)
    with signals_raise():
        try:
            return bench.run()
        except AssertionError as exc:
            bench.say(f"FAILED: {exc}")
            bench.save()
            return 1
        finally:
            bench.teardown()


if __name__ == "__main__":
    sys.exit(main())
