"""The dead-man switch: a watchdog on the node that reverts a fault by itself at the lease's
deadline unless osha keeps renewing it.

It is for the faults that never heal by themselves (a network partition, ``process stop``,
``process freeze``): if osha dies, is ``kill -9``-ed, or the fault cuts it off from the node,
the node runs the fault's revert command at the deadline with nobody's help.

Core never imports a transport, so every call takes a :data:`Runner`: a callable that runs a
POSIX sh script on the node and returns ``(exit status, output)`` (SSH provides it in the
disruptors; the unit tests use ``sh -c`` on this machine)::

    watchdog = deadman.arm(run, lease_id, "systemctl start nova-scheduler", ttl_s=45.0)
    watchdog.renew(45.0)         # every ttl_s / 3 while osha holds the lease
    watchdog.disarm()            # after osha's own revert: the watchdog exits, no revert

Decisions (the README's "Dead-man switch" says what they guarantee):

- **Clock.** The deadline is ``now + ttl_s`` on the node's monotonic clock (``/proc/uptime``,
  10 ms resolution), computed *on the node* at arm and at every renew. osha sends a relative
  ``ttl_s`` only, so a wall-clock skew between osha and the node cannot fire it early or late.
- **Detachment.** ``setsid`` with stdio on ``/dev/null`` and the lease's log: the watchdog is
  in its own session with no controlling terminal, so the end of the SSH session, a
  ``kill -9`` of osha or a cut network cannot reach it. Where systemd is PID 1
  (``/run/systemd/system`` exists) ``detach=auto`` starts it as a transient service instead
  (``systemd-run --unit=osha-deadman-<lease> --collect``), outside the SSH session's scope,
  which logind may kill (``KillUserProcesses``). A service running the same watchdog rather
  than a ``--on-active`` timer: one lock, one deadline file and one renew path for both, and a
  renew is one atomic rename (re-creating a timer is a stop then a start, with a window where
  a dying osha leaves no timer at all).
- **State** under ``state_dir/<name>/`` (default ``/run/osha/deadman``, a tmpfs: gone at
  reboot, like the faults it guards): ``deadline`` (centiseconds of uptime, renewed by write
  + rename), ``revert``, ``pid``, ``watch.sh``, ``log``, ``lock``. After the revert, ``fired``,
  ``result`` (its exit status) and ``log`` stay until osha collects them with :meth:`disarm`;
  the log also goes to syslog (``logger -t osha-deadman``) where ``logger`` exists.
- **Once.** ``flock`` on ``lock`` orders renew, disarm and the watchdog's final check: the
  revert runs at most once, never after a disarm, and a renew either lands before the
  deadline check or answers that the lease already fired.
- **Idempotent arm.** Arming a lease whose watchdog runs replaces its deadline and revert
  command and keeps the one watchdog; arming a lease that already fired is an error.

Expiry runs the revert within ``ttl_s + poll_s`` plus scheduling delays (see
:func:`expiry_bound_s`). A powered-off node cannot revert itself: ``osha faults recover``
stays the answer there.
"""

from __future__ import annotations

import enum
import hashlib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from osha.errors import PluginError
from osha.faults._deadman_sh import OPS_SH

__all__ = [
    "DEFAULT_POLL_S",
    "DEFAULT_STATE_DIR",
    "DeadmanError",
    "Detach",
    "Runner",
    "State",
    "Status",
    "Watchdog",
    "arm",
    "expiry_bound_s",
    "script",
    "unit_name",
]

Runner = Callable[[str], tuple[int, str]]
"""Runs a POSIX sh script on the node; returns its exit status and its output (stdout, and
stderr if the transport merges it)."""

DEFAULT_STATE_DIR = "/run/osha/deadman"
DEFAULT_POLL_S = 0.5
_SCHEDULING_MARGIN_S = 2.0  # a fork of sleep/flock and a wake-up on a loaded 2-core machine
_SYNONYMS = {"rearmed": "armed", "renewed": "armed", "disarmed": "absent"}  # the node's words
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class DeadmanError(PluginError):
    """The dead-man switch cannot be armed, renewed or read on a node."""


class Detach(enum.Enum):
    """How the watchdog is detached from the session that arms it."""

    AUTO = "auto"  # systemd where it is PID 1, else setsid
    SETSID = "setsid"
    SYSTEMD = "systemd"


class State(enum.Enum):
    """What a lease's watchdog is doing, as the node says."""

    ARMED = "armed"  # waiting for its deadline
    REVERTING = "reverting"  # the deadline passed; the revert runs now
    REVERTED = "reverted"  # the deadline passed; the revert ran (see ``revert_status``)
    DEAD = "dead"  # no watchdog (killed by someone, maybe mid-revert): nothing will revert
    ABSENT = "absent"  # nothing armed (never, or disarmed)


@dataclass(frozen=True, slots=True)
class Status:
    """One answer from the node. Times are the node's uptime, in seconds."""

    state: State
    pid: int | None = None
    deadline_s: float | None = None
    now_s: float | None = None
    revert_status: int | None = None
    detach: str = ""
    log: str = ""

    @property
    def remaining_s(self) -> float | None:
        """Seconds left before the revert, on the node's clock."""
        if self.deadline_s is None or self.now_s is None:
            return None
        return self.deadline_s - self.now_s


def unit_name(lease_id: str) -> str:
    """The lease's name on the node: its state directory and systemd unit
    (``osha-deadman-<slug>-<hash>``); a lease id like ``disruptor/process/3`` is not a path."""
    slug = _SAFE.sub("-", lease_id).strip("-.")[:48]
    digest = hashlib.sha256(lease_id.encode()).hexdigest()[:8]
    return f"osha-deadman-{slug}-{digest}" if slug else f"osha-deadman-{digest}"


def expiry_bound_s(ttl_s: float, poll_s: float = DEFAULT_POLL_S) -> float:
    """The latest, after arm or the last renew, that the revert starts: the ttl, one poll step
    (the watchdog sleeps ``poll_s`` between checks), and a scheduling margin."""
    return ttl_s + poll_s + _SCHEDULING_MARGIN_S


def script(op: str, lease_id: str, *args: str, state_dir: str = DEFAULT_STATE_DIR) -> str:
    """The sh script that runs ``op`` (``arm``, ``renew``, ``disarm``, ``status``) for a lease."""
    directory = f"{state_dir.rstrip('/')}/{unit_name(lease_id)}"
    argv = " ".join(shlex.quote(a) for a in (op, directory, *args))
    return f"set -- {argv}\n{OPS_SH}"


def _cs(seconds: float, what: str) -> str:
    if not 0 < seconds <= 86_400:
        raise DeadmanError(f"{what} must be between 0 and 86400 s, not {seconds!r}",
                           hint="use a lease's down_s plus a margin")  # fmt: skip
    return str(max(1, round(seconds * 100)))


def _parse(rc: int, out: str, doing: str) -> Status:
    """Turn the node's answer into a :class:`Status`, or raise with what to do."""
    head, _, rest = out.partition("\n")
    words = head.split()
    log = rest.partition("--- log\n")[2] if "--- log" in out else ""
    if rc != 0 or not words or words[0] not in {s.value for s in State} | set(_SYNONYMS):
        reason = next((ln[7:] for ln in out.splitlines() if ln.startswith("error: ")), "")
        raise DeadmanError(
            f"dead-man switch: {doing} failed (exit {rc}): {reason or out.strip()[:400]!r}",
            hint="fix the node as the message says, or run `osha faults recover` if the "
            "fault may still be in place",
        )
    word = _SYNONYMS.get(words[0], words[0])
    nums = [_int(w) for w in words[1:4]]
    if word == State.REVERTED.value:
        return Status(State.REVERTED, revert_status=nums[0], log=log)
    pid, deadline, now = ([*nums, None, None, None])[:3]
    return Status(State(word), pid=pid, deadline_s=_secs(deadline), now_s=_secs(now),
                  detach=words[4] if len(words) > 4 else "", log=log)  # fmt: skip


def _int(word: str) -> int | None:
    return int(word) if word.lstrip("-").isdigit() else None


def _secs(cs: int | None) -> float | None:
    return None if cs is None else cs / 100


class Watchdog:
    """osha's handle on one lease's watchdog on one node (from :func:`arm`, or
    :meth:`attach` to read or disarm one left by an osha that died)."""

    def __init__(self, run: Runner, lease_id: str, *, state_dir: str = DEFAULT_STATE_DIR,
                 armed: Status | None = None) -> None:  # fmt: skip
        self._run = run
        self.lease_id = lease_id
        self.state_dir = state_dir
        self.armed = armed

    @classmethod
    def attach(cls, run: Runner, lease_id: str, *, state_dir: str = DEFAULT_STATE_DIR) -> Watchdog:
        """A handle on a lease armed earlier (no call to the node)."""
        return cls(run, lease_id, state_dir=state_dir)

    @property
    def pid(self) -> int | None:
        """The watchdog's pid on the node, as arm answered."""
        return self.armed.pid if self.armed else None

    @property
    def deadline_s(self) -> float | None:
        """The deadline on the node's uptime clock, as the last arm or renew answered."""
        return self.armed.deadline_s if self.armed else None

    def _call(self, op: str, *args: str) -> Status:
        text = script(op, self.lease_id, *args, state_dir=self.state_dir)
        rc, out = self._run(text)
        return _parse(rc, out, f"{op} of lease {self.lease_id!r}")

    def renew(self, ttl_s: float) -> Status:
        """Push the deadline to ``ttl_s`` from now (node clock). Raises if the lease already
        fired or its watchdog is gone: then the fault is (being) reverted, or unguarded."""
        status = self._call("renew", _cs(ttl_s, "ttl_s"))
        if status.state is not State.ARMED:
            raise DeadmanError(
                f"dead-man switch: cannot renew lease {self.lease_id!r}: it is "
                f"{status.state.value} on the node",
                hint="the node reverted (or is reverting) the fault by itself: record it and "
                "do not re-inject; if 'dead' or 'absent', revert the fault now",
            )
        self.armed = status
        return status

    def disarm(self) -> Status:
        """After osha's own revert: stop the watchdog without running the revert and remove
        the lease's files. Returns ``ABSENT`` (disarmed, or nothing armed), or ``REVERTED``
        (the deadline had passed; the node ran the revert, its status and log are here),
        ``REVERTING`` (the revert runs now; call again) or ``DEAD`` (its watchdog was killed
        mid-revert: revert the fault yourself; the lease's files stay as evidence)."""
        return self._call("disarm")

    def status(self) -> Status:
        """What the watchdog is doing, with the tail of its log."""
        return self._call("status")


def arm(run: Runner, lease_id: str, revert_command: str, ttl_s: float, *,
        state_dir: str = DEFAULT_STATE_DIR, poll_s: float = DEFAULT_POLL_S,
        detach: Detach = Detach.AUTO) -> Watchdog:  # fmt: skip
    """Start (or re-arm) the watchdog of ``lease_id`` on the node: ``revert_command`` (sh)
    runs there at ``ttl_s`` from now on the node's clock unless renewed or disarmed.

    Idempotent per lease: a second arm replaces the deadline and command, never starts a second
    watchdog. Raises :class:`DeadmanError` with what to do when the node cannot host it.
    """
    if not revert_command.strip():
        raise DeadmanError("dead-man switch: the revert command is empty",
                           hint="pass the sh command that undoes the fault")  # fmt: skip
    if not 0.05 <= poll_s <= 10:
        raise DeadmanError(f"dead-man switch: poll_s must be within 0.05..10 s, not {poll_s!r}",
                           hint="the default, 0.5 s, suits every lease")  # fmt: skip
    ttl = _cs(ttl_s, "ttl_s")
    name = unit_name(lease_id)
    watchdog = Watchdog(run, lease_id, state_dir=state_dir)
    status = watchdog._call("arm", lease_id, ttl, f"{poll_s:g}", detach.value, name, revert_command)
    if status.state is not State.ARMED or status.pid is None:
        raise DeadmanError(
            f"dead-man switch: arming lease {lease_id!r} answered {status.state.value}",
            hint="see the lease's log under the state directory on the node",
        )
    watchdog.armed = status
    return watchdog
