"""The tc commands of the ``network`` disruptor's ``delay``/``jitter`` (netem) and
``bandwidth`` (tbf): pure functions, no I/O.

netem is a kernel qdisc that many kernels lack (the lab's: ``CONFIG_NET_SCH_NETEM`` is not
set, and it has no modules), so :func:`check_script` asks the node, reading only (the kernel
config, its loaded and installable modules): a node without it is refused at pre-flight
("netem not available on ctl-1"). osha ships no user-space delayer instead.

osha adds its qdisc (netem, or tbf for a rate limit) as the interface's root qdisc with its
own handle (:data:`HANDLE`), and only when the root qdisc is the kernel's default (handle
``0:``) or osha's own: it never replaces a qdisc someone else configured. The revert deletes
the root qdisc only while it is osha's, which brings the kernel's default back; a root qdisc
that is not osha's is left alone.
"""

from __future__ import annotations

import shlex

__all__ = [
    "FOREIGN_QDISC",
    "HANDLE",
    "NO_NETEM",
    "add_command",
    "check_script",
    "del_command",
    "netem",
    "tbf",
]

HANDLE = "a5a1:"  # osha's root qdisc (any handle; this one says it is osha's)
NO_NETEM = 30  # check: exit status when the node's kernel has no netem
FOREIGN_QDISC = 31  # add: the interface's root qdisc is someone else's


def check_script(root: str = "") -> str:
    """Exit 0 if the node's kernel has netem (built in, loaded or loadable), else
    :data:`NO_NETEM`. Reads only: ``/proc/config.gz``, ``/boot/config-*``, ``/sys/module``,
    the module tree (under ``root``: tests give a fake one)."""
    r = shlex.quote(root)
    return (
        "command -v tc >/dev/null 2>&1 || { echo 'tc is missing (install iproute2)'; "
        f"exit {NO_NETEM}; }}\n"
        f"r={r} k=$(uname -r)\n"
        '[ -d "$r/sys/module/sch_netem" ] && exit 0\n'
        'find "$r/lib/modules/$k" -name "sch_netem.ko*" 2>/dev/null | grep -q . && exit 0\n'
        'cfg=$( (zcat "$r/proc/config.gz" || cat "$r/boot/config-$k") 2>/dev/null)\n'
        'printf "%s\\n" "$cfg" | grep -Eq "^CONFIG_NET_SCH_NETEM=(y|m)" && exit 0\n'
        f'echo "netem not available (kernel $k has no sch_netem)"; exit {NO_NETEM}\n'
    )


def netem(delay_ms: float, jitter_ms: float = 0.0) -> str:
    """The qdisc for a delay (and jitter): ``netem delay 100ms 20ms``."""
    return f"netem delay {delay_ms:g}ms" + (f" {jitter_ms:g}ms" if jitter_ms else "")


def tbf(rate_kbit: int) -> str:
    """The qdisc for a rate limit: a token bucket of ``rate_kbit``, a burst of 1/20 s of it
    (at least 4 KiB, above one MTU), and 100 ms of queue before it drops."""
    burst = max(4096, rate_kbit * 1000 // 8 // 20)
    return f"tbf rate {rate_kbit}kbit burst {burst} latency 100ms"


def add_command(interface: str, qdisc: str) -> str:
    """Put ``qdisc`` (:func:`netem`, :func:`tbf`) as osha's root qdisc on ``interface``
    (egress) unless its root qdisc is someone else's (exit :data:`FOREIGN_QDISC`); replaces a
    qdisc of osha's own left behind."""
    dev = shlex.quote(interface)
    return (
        f"root=$(tc qdisc show dev {dev} root) || exit 1\n"
        f'case "$root" in *" 0: root"*|*" {HANDLE} root"*|"") ;; '
        f'*) echo "refused: $root is not osha\'s"; exit {FOREIGN_QDISC};; esac\n'
        f"tc qdisc replace dev {dev} root handle {HANDLE} {qdisc}\n"
    )


def del_command(interface: str) -> str:
    """Remove osha's root qdisc from ``interface`` (the kernel's default comes back);
    success if it is already gone; any other root qdisc is left alone."""
    dev = shlex.quote(interface)
    return (
        f'if tc qdisc show dev {dev} root | grep -q "^qdisc [a-z_]* {HANDLE} root"; then '
        f"tc qdisc del dev {dev} root && echo 'removed the qdisc of osha from {interface}'; "
        f"else echo 'no qdisc of osha on {interface}'; fi"
    )
