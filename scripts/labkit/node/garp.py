"""A guest's gratuitous ARP (stdlib only): what a booting OS sends when its link comes up.

Why the lab needs it (issue 16, the power-off test: vm-ping's outage 8.91 s against a guest
resumed 8.19 s after the power-off). The machine pings its guests every 0.2 s. While a guest is
gone, the machine's neighbour entry for its address runs out of confirmations (REACHABLE, then
STALE, DELAY for 5 s, 3 unicast probes 1 s apart) and fails; from then on the kernel resolves
the address with one broadcast request a second (``retrans_time_ms``) and queues the pings in
between. A silent guest that starts just after one of those requests stays unreachable until
the next: up to a second that is in no ground truth, and only after outages long enough for the
entry to fail (a 5 s outage passed, an 8 s one did not). A real guest is not silent: its OS
announces its address when its link comes up (RFC 5227 section 2.3; Linux's ``arp_notify``),
and QEMU announces a guest after a migration. This guest is a bare namespace, so the hypervisor
announces for it, from the guest's own interface, once the bridge forwards through its port
(an announcement sent before that is dropped, which is why ``arp_notify`` will not do).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Iterable

CLONE_NEWNET = 0x40000000
ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
_libc = ctypes.CDLL(None, use_errno=True)


def frame(mac: bytes, ip: str) -> bytes:
    """An ARP announcement: a broadcast request from ``mac`` whose sender and target address are
    both ``ip`` (and target MAC zero). Hosts that have an entry for ``ip`` (even a failed one)
    update it and send what they had queued for it."""
    addr = ipaddress.IPv4Address(ip).packed
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\0" * 6 + addr
    return BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def packet_socket(pid: int, ifname: str) -> socket.socket:
    """A send-only packet socket on ``ifname`` in the network namespace of process ``pid``.

    A socket lives in the namespace it was made in, and ``setns`` moves only the calling
    thread: so a thread of its own enters the namespace, makes the socket, and ends there."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def enter_and_make() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into pid {pid}'s network namespace: "
                                  f"{os.strerror(err)}")  # fmt: skip
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: sends only
            try:
                sock.bind((ifname, 0))
            except OSError:
                sock.close()
                raise
            made.append(sock)
        except OSError as exc:  # handed to the caller below
            failed.append(exc)

    thread = threading.Thread(target=enter_and_make, name=f"netns-{pid}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def announce(pid: int, ips: Iterable[str], ifname: str = "eth0") -> str:
    """One announcement per address (``10.0.0.5`` or ``10.0.0.5/24``) from ``ifname`` of
    ``pid``'s namespace, with that interface's own MAC; returns the MAC. Raises OSError."""
    with packet_socket(pid, ifname) as sock:
        mac: bytes = sock.getsockname()[4]
        for ip in ips:
            sock.send(frame(mac, str(ipaddress.IPv4Interface(ip).ip)))
    return mac.hex(":")
