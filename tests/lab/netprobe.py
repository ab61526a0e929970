"""Measurement recipes for the ``network`` disruptor's figures, in any network namespace: the
lab's nodes (``tests/lab/test_disruptors_network_figures.py``) and the throwaway ones of
``scripts/bench_netfault.py``. Subprocesses only (``ip netns exec``, ``ping``, ``nft``,
``tc``, this Python); no pytest, no lab.

A figure is read from kernel counters wherever the process taking it could be starved of CPU
on a loaded machine, so a late process never reads as a lost packet or a slower link:

- **loss** (:func:`echo_loss`): the echo requests the sender's kernel sent (``Icmp
  OutEchos``) against those the receiver's kernel took in (``Icmp InEchos``, counted after
  the input hook where a loss rule drops), both from the namespaces' ``/proc/net/snmp``;
  ping's own tally of replies, which a starved ping could read late, is only a cross-check;
- **rate** (:func:`counter_rate_kbit`): an interface's byte counter read at the ends of the
  slices of a window inside a transfer that keeps the capped link busy without the sender's
  help (its socket buffer holds seconds of data: :data:`SOURCE`); the slices' median.
"""

from __future__ import annotations

import itertools
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from osha.testing import holds_for

__all__ = [
    "FOREIGN_TABLES",
    "SINK",
    "SOURCE",
    "EchoLoss",
    "RateFigure",
    "Slice",
    "counter_rate_kbit",
    "echo_loss",
    "foreign_tables_text",
    "icmp_counters",
    "in_ns",
    "ping",
    "ping_loss_pct",
    "plant_foreign_tables",
    "qdiscs_text",
    "remove_foreign_tables",
    "transfer",
]

#: Two tables osha did not create, an ``inet`` and an ``ip`` one, each with a base chain and a
#: rule that matches only documentation addresses (RFC 5737): harmless where they are planted.
FOREIGN_TABLES = """table inet foreign_osha_test {
\tchain c {
\t\ttype filter hook input priority 10; policy accept;
\t\tip saddr 192.0.2.1 drop
\t}
}
table ip foreign_ip_osha_test {
\tchain o {
\t\ttype filter hook output priority 5; policy accept;
\t\tip daddr 198.51.100.7 drop
\t}
}
"""
_FOREIGN_NAMES = ("inet foreign_osha_test", "ip foreign_ip_osha_test")


def in_ns(ns: str, argv: list[str], *, timeout_s: float = 60.0,
          check: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``argv`` in network namespace ``ns`` (``ip netns exec``)."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout_s, check=check)  # fmt: skip


# -- loss -------------------------------------------------------------------------------------


def icmp_counters(ns: str) -> dict[str, int]:
    """The ``Icmp:`` line of ``ns``'s ``/proc/net/snmp`` (``InEchos``, ``OutEchos``, ...)."""
    text = in_ns(ns, ["cat", "/proc/net/snmp"], check=True).stdout
    header, values = [line.split()[1:] for line in text.splitlines()
                      if line.startswith("Icmp:")][:2]  # fmt: skip
    return dict(zip(header, map(int, values), strict=True))


def ping(src_ns: str, dst: str, count: int, *, interval_s: float = 0.01,
         wait_s: float = 2.0) -> tuple[int, int]:  # fmt: skip
    """``count`` echo requests from ``src_ns`` to ``dst``, one every ``interval_s``; ping's
    ``(transmitted, received)``. Bounded: ping stops ``wait_s`` (or two round trips) after
    its last request; the subprocess bound is the whole run's time four times over."""
    timeout_s = 4 * (count * interval_s + wait_s) + 30  # + 30: one process start, loaded
    p = in_ns(src_ns, ["ping", "-q", "-n", "-c", str(count), "-i", f"{interval_s:g}", "-W",
                       f"{wait_s:g}", dst], timeout_s=timeout_s)  # fmt: skip
    sent = re.search(r"(\d+) packets transmitted", p.stdout)
    got = re.search(r"(\d+) received", p.stdout)
    if sent is None:
        raise RuntimeError(f"ping {dst} in {src_ns} printed no tally: {p.stdout}{p.stderr}")
    return int(sent.group(1)), int(got.group(1)) if got else 0


def ping_loss_pct(src_ns: str, dst: str, count: int, interval_s: float = 0.01) -> float:
    """The share of ``count`` pings from ``src_ns`` to ``dst`` that got no reply, in %."""
    _, received = ping(src_ns, dst, count, interval_s=interval_s)
    return 100.0 * (count - received) / count


@dataclass(frozen=True, slots=True)
class EchoLoss:
    """One probe run: echo requests ``sent`` (the sender's kernel), ``arrived`` (past the
    receiver's input hook), and ping's own ``transmitted``/``replies``."""

    sent: int
    arrived: int
    transmitted: int
    replies: int

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.arrived) / self.sent if self.sent else 100.0


def echo_loss(src_ns: str, dst_ns: str, dst: str, count: int,
              interval_s: float = 0.01) -> EchoLoss:  # fmt: skip
    """Ping ``dst`` (an address of ``dst_ns``) from ``src_ns`` ``count`` times; how many
    requests the kernels counted out of one and into the other (see the module docstring)."""
    before_src, before_dst = icmp_counters(src_ns), icmp_counters(dst_ns)
    transmitted, replies = ping(src_ns, dst, count, interval_s=interval_s)
    after_src, after_dst = icmp_counters(src_ns), icmp_counters(dst_ns)
    return EchoLoss(sent=after_src["OutEchos"] - before_src["OutEchos"],
                    arrived=after_dst["InEchos"] - before_dst["InEchos"],
                    transmitted=transmitted, replies=replies)  # fmt: skip


# -- rate -------------------------------------------------------------------------------------

#: A TCP sink: ``python -c SINK ADDRESS PORT``; prints ``ready`` once listening, then reads and
#: discards until EOF and prints the bytes and the seconds from the first byte to the last.
#: Its receive buffer (``SO_RCVBUFFORCE``, it runs as root) holds seconds of a capped link, so
#: a starved sink does not slow the sender down.
SINK = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
n = 0; first = None
while True:
    b = c.recv(65536)
    if not b:
        break
    first = first or time.monotonic(); n += len(b)
print(n, time.monotonic() - (first or time.monotonic()), flush=True)
"""

#: A TCP source: ``python -c SOURCE ADDRESS PORT BYTES``; sends BYTES and closes. Its send
#: buffer (``SO_SNDBUFFORCE``: 4 MiB, 16 s of a 2 Mbit/s cap) keeps the link busy while the
#: process waits for a CPU.
SOURCE = """
import socket, sys
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, 32, 4 << 20)  # SO_SNDBUFFORCE
c.settimeout(120); c.connect((sys.argv[1], int(sys.argv[2])))
c.sendall(b"x" * int(sys.argv[3])); c.close()
"""


@contextmanager
def transfer(src_ns: str, dst_ns: str, dst: str, port: int, size: int
             ) -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str]]]:  # fmt: skip
    """A TCP transfer of ``size`` bytes from ``src_ns`` to ``dst``:``port`` in ``dst_ns``,
    under way inside the block: ``(sink, source)``. Both are killed at the end if still
    running."""
    sink = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, "-c", SINK, dst,
                             str(port)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    procs = [sink]
    try:
        assert sink.stdout is not None
        line = sink.stdout.readline()  # bounded: the sink prints or exits
        if not line.startswith("ready"):
            raise RuntimeError(f"the sink in {dst_ns} did not start: {line!r}")
        source = subprocess.Popen(["ip", "netns", "exec", src_ns, sys.executable, "-c", SOURCE,
                                   dst, str(port), str(size)], text=True)  # fmt: skip
        procs.append(source)
        yield sink, source
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@dataclass(frozen=True, slots=True)
class Slice:
    """The rate over one slice of a window (1000 bit/s, as tc counts): between the middles of
    its two counter reads, and if each read happened at the far or near end of its own time
    (a read delayed by a starved CPU widens ``low``-``high`` instead of moving the figure)."""

    kbit_s: float
    low_kbit_s: float
    high_kbit_s: float


@dataclass(frozen=True, slots=True)
class RateFigure:
    """A counter's rate over a window cut in slices. The figure is the slices' median, so a
    stall of the whole machine (a VM's vCPU held back, softirqs run late: the link idles
    once tbf's burst of tokens is full) costs the slices it falls in, not the figure."""

    slices: tuple[Slice, ...]
    window_s: float
    mean_kbit_s: float

    @property
    def kbit_s(self) -> float:
        return statistics.median(s.kbit_s for s in self.slices)

    @property
    def kbit_s_range(self) -> tuple[float, float]:
        """The medians of the slices' lows and highs (each slice's own reads' time)."""
        return (statistics.median(s.low_kbit_s for s in self.slices),
                statistics.median(s.high_kbit_s for s in self.slices))  # fmt: skip


def counter_rate_kbit(read_bytes: Callable[[], int], window_s: float,
                      busy: Callable[[], bool], slices: int = 8) -> RateFigure:  # fmt: skip
    """The rate a byte counter grows at over ``slices`` slices of a window of ``window_s``,
    through which ``busy`` (the transfer) holds at every poll; each read timed on both sides.
    RuntimeError if the transfer ended inside the window (the link was not kept busy: the
    figure would say nothing about the cap)."""

    def sample() -> tuple[float, int, float]:
        began = time.monotonic()
        value = read_bytes()
        return began, value, time.monotonic()

    reads = [sample()]
    for _ in range(slices):
        if not holds_for(busy, duration_s=window_s / slices, interval_s=0.05):
            raise RuntimeError(f"the transfer ended within the {window_s:g} s window: make it "
                               "longer")  # fmt: skip
        reads.append(sample())
    cut = [_slice(a, b) for a, b in itertools.pairwise(reads)]
    (b0, first, e0), (b1, last, e1) = reads[0], reads[-1]
    whole_s = (b1 + e1) / 2 - (b0 + e0) / 2
    return RateFigure(tuple(cut), whole_s, (last - first) * 8 / 1000 / whole_s)


def _slice(start: tuple[float, int, float], end: tuple[float, int, float]) -> Slice:
    """A slice from its two reads, each ``(began, value, ended)``."""
    (b0, v0, e0), (b1, v1, e1) = start, end
    kbit = (v1 - v0) * 8 / 1000
    middle_s, longest_s, shortest_s = (b1 + e1) / 2 - (b0 + e0) / 2, e1 - b0, b1 - e0
    return Slice(kbit / middle_s, kbit / longest_s, kbit / max(shortest_s, 1e-9))


# -- foreign state ----------------------------------------------------------------------------


def plant_foreign_tables(ns: str) -> str:
    """Add :data:`FOREIGN_TABLES` in ``ns``; their text as ``nft`` lists them."""
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=FOREIGN_TABLES,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cannot plant the foreign tables in {ns}: {done.stderr}")
    return foreign_tables_text(ns)


def foreign_tables_text(ns: str) -> str:
    """``nft list table`` of each foreign table in ``ns``, byte for byte (its error if gone)."""
    out = []
    for table in _FOREIGN_NAMES:
        p = in_ns(ns, ["nft", "list", "table", *table.split()])
        out.append(p.stdout + p.stderr)
    return "".join(out)


def remove_foreign_tables(ns: str) -> None:
    """Delete the foreign tables from ``ns`` (those still there)."""
    for table in _FOREIGN_NAMES:
        in_ns(ns, ["nft", "delete", "table", *table.split()])


def qdiscs_text(ns: str) -> str:
    """``tc qdisc show`` of every interface of ``ns``, byte for byte."""
    return in_ns(ns, ["tc", "qdisc", "show"], check=True).stdout
