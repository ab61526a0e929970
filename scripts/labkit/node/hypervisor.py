#!/usr/bin/env python3
"""The lab's hypervisor on a compute node: it starts, stops and lists guests (stdlib only).

A guest is one process in its own network namespace, holding the server's fixed IP on the
tenant network: the kernel answers ICMP, and with ``--tcp-port`` a busybox httpd answers TCP
(so ``check_tcp`` can watch an "application"). Its ``eth0`` is one end of a veth pair whose
other end (``tap<uuid>``) is a port of the node's tenant bridge; that bridge's uplink is the
node's tenant link to the lab's tenant bridge on the machine. So a guest is on the network
only while its compute node is: a power-off (SIGKILL to the node's PID 1) kills the guest
process, its namespace and its veth with it; a link-down of the node's tenant link cuts it off.
Once its port forwards, a starting guest announces its address (a gratuitous ARP, as a
booting OS sends; why the lab needs it: ``garp.py``).

This daemon runs inside the compute node (a runit service, as libvirtd runs on a hypervisor
host); nova's lab driver (``scripts/labkit/virt``) talks to it over a unix socket, from the
node itself or from the kolla-style container. Guests are children of this daemon in their
own sessions: they outlive a restart of the daemon or of nova-compute, not the node. Which
guest runs is kept in ``--state`` (the node's private /run: gone at power-off, as a real
host's running VMs are); definitions are nova's business (the driver keeps them).

Every transition is a ground-truth line in the node's events file:

    <epoch> guest-start <uuid> server=<name> ip=<a,b> pid=<pid> reason=<spawn|power-on|...>
    <epoch> guest-stop <uuid> pid=<pid> reason=<power-off|reboot|destroy>

usage:
  hypervisor.py serve SOCKET --events FILE --bridge BRIDGE --state DIR [--tcp-port N]
  hypervisor.py call SOCKET '{"op": "list"}'

Requests are one JSON object a line; each gets one JSON line back, ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``:
  {"op": "start", "uuid": U, "server": NAME, "ips": ["10.231.1.5/24"], "mac": M, "reason": R}
                                               (no ips: a guest on the bridge without an address)
  {"op": "stop", "uuid": U, "reason": R}       stopping a stopped guest is not an error
  {"op": "status", "uuid": U}                  -> {"running": bool, "pid": int|null}
  {"op": "list"}                               -> {"running": {uuid: pid}}
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import garp  # node/garp.py, beside this script

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
REASON_RE = re.compile(r"^[a-z][a-z-]{0,31}$")
GUEST_ENV = "OSHA_GUEST"  # the guest process carries its uuid here (/proc/PID/environ)
NETNS_WAIT_S = 5.0  # unshare(1) has made the guest's namespace: a few ms, loaded 100s of ms
GONE_WAIT_S = 5.0  # a killed guest's namespace and veth are freed by the kernel
REQUEST_MAX_BYTES = 65536
FORWARDING_WAIT_S = 3.0  # a new bridge port forwards when the kernel has seen its carrier
BR_STATE_FORWARDING = "3"  # /sys/class/net/<port>/brport/state (BR_STATE_FORWARDING)


class GuestError(Exception):
    """A request that cannot be done; its text goes back to the caller."""


def stamp() -> str:
    """Epoch seconds with nanoseconds, as the other ground-truth lines."""
    ns = time.time_ns()
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def tap_name(uuid: str) -> str:
    """The node-side veth of a guest (15 characters at most, the kernel's limit): the
    uuid's last 11 hex digits (random in a uuid4, as nova's are)."""
    return "tap" + uuid.replace("-", "")[-11:]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie's namespaces are already freed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_guest(pid: int, uuid: str) -> bool:
    """``pid`` is the guest ``uuid`` (not a recycled pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{GUEST_ENV}={uuid}".encode() in environ.split(b"\0") and alive(pid)


@dataclass(frozen=True, slots=True)
class StartRequest:
    uuid: str
    server: str
    ips: tuple[str, ...]
    mac: str
    reason: str

    @classmethod
    def parse(cls, req: dict[str, Any]) -> StartRequest:
        uuid = _uuid(req)
        ips = req.get("ips")
        if not isinstance(ips, list):
            raise GuestError("start: 'ips' must be a list such as ['10.231.1.5/24']")
        checked = []
        for ip in ips:
            try:
                iface = ipaddress.IPv4Interface(str(ip))
            except ValueError:
                raise GuestError(f"start: {ip!r} is not an IPv4 address/prefix") from None
            if iface.network.prefixlen == 32 and "/" not in str(ip):
                raise GuestError(f"start: {ip!r} has no prefix length (10.231.1.5/24)")
            checked.append(str(iface))
        mac = str(req.get("mac") or "").lower()
        if mac and not MAC_RE.match(mac):
            raise GuestError(f"start: {mac!r} is not a MAC address")
        server = re.sub(r"[^A-Za-z0-9_.-]", "_", str(req.get("server") or "-"))[:64]
        return cls(uuid, server, tuple(checked), mac, _reason(req, "spawn"))


def _uuid(req: dict[str, Any]) -> str:
    uuid = str(req.get("uuid") or "").lower()
    if not UUID_RE.match(uuid):
        raise GuestError(f"{req.get('op')}: 'uuid' must be an instance uuid, not {uuid!r}")
    return uuid


def _reason(req: dict[str, Any], default: str) -> str:
    reason = str(req.get("reason") or default)
    if not REASON_RE.match(reason):
        raise GuestError(f"{req.get('op')}: reason {reason!r} is not a word like 'power-off'")
    return reason


class Hypervisor:
    """Guests of one compute node. One request at a time (a start takes milliseconds)."""

    def __init__(self, events: Path, bridge: str, state: Path, tcp_port: int = 0) -> None:
        self.events = events
        self.bridge = bridge
        self.state = state
        self.tcp_port = tcp_port
        self.lock = threading.Lock()
        self.own_netns = os.readlink("/proc/self/ns/net")
        state.mkdir(parents=True, exist_ok=True)
        (state / "www").mkdir(exist_ok=True)  # what a guest's httpd serves: nothing

    # --- ground truth ----------------------------------------------------------------------

    def event(self, kind: str, uuid: str, **fields: object) -> None:
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        with self.events.open("a") as f:
            f.write(f"{stamp()} {kind} {uuid} {text}\n")

    # --- state -----------------------------------------------------------------------------

    def pid_of(self, uuid: str) -> int | None:
        """The running guest's pid, None when it does not run."""
        try:
            pid = int((self.state / f"{uuid}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if is_guest(pid, uuid) else None

    def running(self) -> dict[str, int]:
        found = {}
        for path in sorted(self.state.glob("*.pid")):
            pid = self.pid_of(path.stem)
            if pid is not None:
                found[path.stem] = pid
        return found

    # --- transitions ------------------------------------------------------------------------

    def start(self, req: StartRequest) -> dict[str, Any]:
        pid = self.pid_of(req.uuid)
        if pid is not None:
            return {"ok": True, "pid": pid, "already": True}
        self._wait_gone(req.uuid)  # a guest stopped a moment ago may still hold its tap
        argv = ["unshare", "--net", "--", "sleep", "infinity"]
        if self.tcp_port:
            www = str(self.state / "www")
            argv = ["unshare", "--net", "--", "busybox", "httpd", "-f", "-p", str(self.tcp_port),
                    "-h", www]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), GUEST_ENV: req.uuid}
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )  # fmt: skip
        threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
        try:
            self._plumb(proc.pid, req)
        except Exception:
            proc.kill()
            raise
        (self.state / f"{req.uuid}.pid").write_text(str(proc.pid))
        self.event("guest-start", req.uuid, server=req.server, ip=",".join(req.ips),
                   pid=proc.pid, reason=req.reason)  # fmt: skip
        return {"ok": True, "pid": proc.pid}

    def _plumb(self, pid: int, req: StartRequest) -> None:
        deadline = time.monotonic() + NETNS_WAIT_S
        while True:  # bounded by the deadline
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/net") != self.own_netns:
                    break
            if time.monotonic() > deadline or not alive(pid):
                raise GuestError(f"start {req.uuid}: the guest's namespace did not appear")
            time.sleep(0.001)
        tap = tap_name(req.uuid)
        mac = ["address", req.mac] if req.mac else []
        peer = ["peer", "name", "eth0", *mac, "netns", str(pid)]
        _ip(["link", "add", tap, "type", "veth", *peer])
        _ip(["link", "set", tap, "master", self.bridge, "up"])
        batch = "link set lo up\n" + "".join(f"addr add {ip} dev eth0\n" for ip in req.ips)
        _ip(["-batch", "-"], batch + "link set eth0 up\n", netns_pid=pid)
        self._wait_forwarding(tap)
        # then the guest announces itself, as a booting OS does (why: garp.py)
        try:
            garp.announce(pid, req.ips)
        except OSError as exc:  # the guest runs, as a real one whose announcement got lost
            print(f"{stamp()} {req.uuid}: no gratuitous ARP: {exc}", flush=True)

    @staticmethod
    def _wait_forwarding(tap: str) -> None:
        """The bridge forwards through the port only once it has seen the carrier come up (the
        kernel's linkwatch may delay that by up to a second): until then an ARP request for
        the guest is dropped, and the asker retries only a second later."""
        state = Path(f"/sys/class/net/{tap}/brport/state")
        deadline = time.monotonic() + FORWARDING_WAIT_S
        while state.read_text().strip() != BR_STATE_FORWARDING:  # bounded by the deadline
            if time.monotonic() > deadline:
                print(f"{stamp()} {tap}: not forwarding after {FORWARDING_WAIT_S} s", flush=True)
                break
            time.sleep(0.002)

    def stop(self, uuid: str, reason: str) -> dict[str, Any]:
        pid = self.pid_of(uuid)
        (self.state / f"{uuid}.pid").unlink(missing_ok=True)
        if pid is None:
            return {"ok": True, "pid": None}
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a VM's power-off is immediate
        deadline = time.monotonic() + GONE_WAIT_S
        while alive(pid):  # bounded by the deadline
            if time.monotonic() > deadline:
                raise GuestError(f"stop {uuid}: pid {pid} still alive after SIGKILL")
            time.sleep(0.002)
        self._wait_gone(uuid)
        self.event("guest-stop", uuid, pid=pid, reason=reason)
        return {"ok": True, "pid": pid}

    def _wait_gone(self, uuid: str) -> None:
        """The kernel frees a dead guest's namespace (and so its veth) asynchronously."""
        tap = tap_name(uuid)
        deadline = time.monotonic() + GONE_WAIT_S
        while _has_link(tap):  # bounded by the deadline
            if time.monotonic() > deadline:
                _ip(["link", "del", tap])  # a leftover of a guest that died another way
                return
            time.sleep(0.002)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        with self.lock:
            if op == "start":
                return self.start(StartRequest.parse(req))
            if op == "stop":
                return self.stop(_uuid(req), _reason(req, "power-off"))
            if op == "status":
                pid = self.pid_of(_uuid(req))
                return {"ok": True, "running": pid is not None, "pid": pid}
            if op == "list":
                return {"ok": True, "running": self.running()}
        raise GuestError(f"unknown op {op!r}; use start, stop, status or list")


def _has_link(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _ip(args: list[str], stdin: str | None = None, netns_pid: int | None = None) -> None:
    argv = ["ip", *args]
    if netns_pid is not None:
        argv = ["nsenter", "-t", str(netns_pid), "-n", *argv]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise GuestError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(REQUEST_MAX_BYTES)
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise GuestError("a request is one JSON object")
            reply = self.server.hypervisor.handle(req)
        except (GuestError, ValueError) as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the caller gets it; the daemon stays up
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(f"{stamp()} request {line[:200]!r} failed: {reply['error']}", flush=True)
        self.wfile.write((json.dumps(reply) + "\n").encode())


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, hypervisor: Hypervisor) -> None:
        self.hypervisor = hypervisor
        super().__init__(path, _Handler)


def call(path: str, req: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    """One request to the daemon at ``path`` (the driver has its own copy of this)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(path)
        s.sendall((json.dumps(req) + "\n").encode())
        with s.makefile("rb") as f:
            reply: dict[str, Any] = json.loads(f.readline(REQUEST_MAX_BYTES))
    return reply


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hypervisor.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("socket")
    serve.add_argument("--events", required=True, type=Path)
    serve.add_argument("--bridge", required=True)
    serve.add_argument("--state", required=True, type=Path)
    serve.add_argument("--tcp-port", type=int, default=0)
    client = sub.add_parser("call", help="send one JSON request, print the reply")
    client.add_argument("socket")
    client.add_argument("request")
    args = parser.parse_args(argv)
    if args.command == "call":
        reply = call(args.socket, json.loads(args.request))
        print(json.dumps(reply))
        return 0 if reply.get("ok") else 1
    if not _has_link(args.bridge):
        print(f"hypervisor: no bridge {args.bridge} in this node's namespace", file=sys.stderr)
        return 2
    hypervisor = Hypervisor(args.events, args.bridge, args.state, args.tcp_port)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)  # a dead boot's socket
    server = _Server(args.socket, hypervisor)
    os.chmod(args.socket, 0o600)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"{stamp()} serving on {args.socket}, guests on {args.bridge}", flush=True)
    server.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
