"""ICMP echo (ping) over one socket for many targets, without forking ``ping``.

Why sockets and not ``/bin/ping``: one socket and one receiver thread serve every target at
any interval (ping needs root below 0.2 s), replies are timed with this process's monotonic
clock, and nothing is forked per probe, so hundreds of targets cost almost nothing. Nor does
it depend on a ping binary being installed (it is not, on minimal images).

The socket is an unprivileged ICMP datagram socket when ``net.ipv4.ping_group_range``
allows this user, else a raw socket (root or CAP_NET_RAW). IPv4 only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from osha.errors import PluginError

__all__ = ["IcmpSocket", "checksum", "echo_request", "parse_echo_reply"]

_ECHO_REQUEST, _ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"osha-ping") -> bytes:
    header = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", _ECHO_REQUEST, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


def parse_echo_reply(packet: bytes, *, raw: bool) -> tuple[int, int] | None:
    """(ident, seq) of an echo reply, or None for anything else. Raw packets carry the IP
    header first; datagram-socket packets start at the ICMP header."""
    if raw:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, _code, _csum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    if kind != _ECHO_REPLY:
        return None
    return ident, seq


class IcmpSocket:
    """Send echo requests; a receiver thread calls ``on_reply(address, seq, recv_mono_s)``."""

    def __init__(self, on_reply: Callable[[str, int, float], None]) -> None:
        self.on_reply = on_reply
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            self.raw = False
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
                raise
            try:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                self.raw = True
            except PermissionError:
                raise PluginError(
                    "cannot open an ICMP socket: not allowed for this user",
                    hint="allow ping sockets (sysctl net.ipv4.ping_group_range='0 2147483647'), "
                    "or run osha with CAP_NET_RAW",
                ) from None
        # Datagram sockets: the kernel sets the identifier; raw: ours, kept in 16 bits.
        self.ident = (os.getpid() ^ id(self)) & 0xFFFF
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="icmp-receiver", daemon=True)
        self._thread.start()

    def send(self, address: str, seq: int) -> None:
        # No route or unreachable network: the probe times out and counts as lost.
        with contextlib.suppress(OSError):
            self.sock.sendto(echo_request(self.ident, seq), (address, 0))

    def _receive(self) -> None:
        while not self._stop.is_set():  # bounded by the stop flag; each pass waits ≤ 0.2 s
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.2)
            except (OSError, ValueError):
                return  # closed
            if not ready:
                continue
            try:
                packet, (address, _port) = self.sock.recvfrom(65536)
            except OSError:
                continue
            now = time.monotonic()
            parsed = parse_echo_reply(packet, raw=self.raw)
            if parsed is None:
                continue
            ident, seq = parsed
            if self.raw and ident != self.ident:
                continue  # another process's ping
            self.on_reply(address, seq, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()
