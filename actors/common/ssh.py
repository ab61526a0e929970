# Over 400 lines (454): one connection pool with its handshake classification and reconnect
# (issue 20); the classification can move to its own module when a second transport comes.
"""Persistent SSH connections for monitors and disruptors (paramiko).

Why not ``paramiko.SSHClient`` as is:

- **TCP_NODELAY.** paramiko does not set it. With delayed ACKs, every exec on a persistent
  connection then costs about 45 ms instead of about 3 ms. We open the socket ourselves and
  set it before the handshake.
- **sshd's side.** OpenSSH turns Nagle off on *its* socket only when the first session of a
  connection asks for a pty. :meth:`SshConnection.prime_interactive` opens that session, so
  later plain execs on the connection get sshd's fast path too; streaming channels ask for a
  pty themselves (measured: 98 ms vs 257 ms median detection).
- **Host keys** are checked against a known_hosts file *before* authenticating. An unknown or
  changed key is an error (:class:`SshHostKeyError`) unless the caller opted out with
  ``host_key_check="off"``.
- **Every step has a timeout**: TCP connect, banner, key exchange, auth, channel open, exec.
- **Closing waits for paramiko's reader thread** (:func:`close_transport`), so that it can
  never read the next connection that reuses the socket's fd number.
- **Errors are classified** so that callers can tell "cannot run" (host key, auth, key file:
  a configuration problem) from "sees an outage" (:class:`SshUnreachableError`).

:class:`SshPool` keeps one connection per host and reconnects with :class:`Backoff`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import paramiko

from actors.common.ssh_transport import close_transport
from osha.errors import PluginError

__all__ = [
    "Backoff",
    "ExecResult",
    "HostKeyCheck",
    "SshAuthError",
    "SshCommandTimeout",
    "SshConnection",
    "SshCredentials",
    "SshError",
    "SshHostKeyError",
    "SshPool",
    "SshTarget",
    "SshUnreachableError",
    "close_quietly",
    "connect",
]

HostKeyCheck = Literal["strict", "off"]
_MAX_OUTPUT_BYTES = 1 << 20


class SshError(PluginError):
    """Base of SSH problems. Subclasses say whether the host is down or the setup is wrong."""


class SshUnreachableError(SshError):
    """The host does not answer: refused, timed out, reset, or the connection dropped."""


class SshHostKeyError(SshError):
    """The host's key is unknown or differs from known_hosts: a configuration/security error."""


class SshAuthError(SshError):
    """The key was refused, or the private key file cannot be used."""


class SshCommandTimeout(SshError, TimeoutError):
    """A command did not finish within its timeout; its channel was closed."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where to connect: ``name`` is for messages, ``address`` for the socket."""

    name: str
    address: str
    port: int = 22
    user: str = "root"


@dataclass(frozen=True, slots=True)
class SshCredentials:
    """How to authenticate and to verify the host. Paths are absolute."""

    private_key: str
    known_hosts: str = ""
    host_key_check: HostKeyCheck = "strict"
    connect_timeout_s: float = 5.0
    keepalive_s: float = 5.0


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_status: int  # -1 when the remote side gave none (killed, connection lost)
    stdout: str
    stderr: str
    elapsed_s: float


class Backoff:
    """Exponential backoff: ``initial_s``, doubling, capped at ``max_s``; ``reset`` on success."""

    def __init__(self, initial_s: float = 0.1, max_s: float = 5.0, factor: float = 2.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.max_s, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


def close_quietly(chan: paramiko.Channel) -> None:
    """Close a channel whose connection may be dead already (paramiko raises then)."""
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        chan.close()


def load_private_key(path: str) -> paramiko.PKey:
    """Load a private key file (any type paramiko knows); SshAuthError if it cannot be used."""
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise SshAuthError(
            f"SSH private key {path} does not exist",
            hint="set ssh.private_key to the absolute path of the key that the nodes accept",
        ) from None
    except paramiko.PasswordRequiredException:
        raise SshAuthError(
            f"SSH private key {path} is encrypted",
            hint="use a key without a passphrase for monitoring, or decrypt a copy of it",
        ) from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise SshAuthError(f"cannot load SSH private key {path}: {exc}") from None


def load_known_hosts(credentials: SshCredentials) -> paramiko.HostKeys | None:
    """The known_hosts entries, or None when host keys are not checked."""
    if credentials.host_key_check == "off":
        return None
    if not credentials.known_hosts:
        raise SshHostKeyError(
            "no known_hosts file given, and host keys are checked",
            hint='set ssh.known_hosts = "/path/known_hosts", or ssh.host_key_check = "off" '
            "to trust any host key (insecure)",
        )
    try:
        return paramiko.HostKeys(credentials.known_hosts)
    except FileNotFoundError:
        raise SshHostKeyError(
            f"known_hosts file {credentials.known_hosts} does not exist",
            hint="write it with ssh-keyscan and check the fingerprints, or point "
            "ssh.known_hosts at the right file",
        ) from None
    except (OSError, paramiko.SSHException) as exc:
        raise SshHostKeyError(f"cannot read known_hosts {credentials.known_hosts}: {exc}") from None


def _host_key_names(target: SshTarget) -> list[str]:
    names = [target.address, target.name]
    if target.port != 22:
        names = [f"[{n}]:{target.port}" for n in names]
    return list(dict.fromkeys(names))


def _known_entries(known: paramiko.HostKeys, target: SshTarget) -> dict[str, paramiko.PKey]:
    for name in _host_key_names(target):
        entry = known.lookup(name)
        if entry is not None:
            return {k: entry[k] for k in entry.keys()}  # noqa: SIM118 - HostKeyEntry is not a dict
    return {}


def _verify_host_key(
    transport: paramiko.Transport,
    target: SshTarget,
    known: paramiko.HostKeys | None,
    credentials: SshCredentials,
) -> None:
    if known is None:
        return
    key = transport.get_remote_server_key()
    entries = _known_entries(known, target)
    where = f"{target.name} ({target.address}:{target.port})"
    if not entries:
        raise SshHostKeyError(
            f"the host key of {where} is not in {credentials.known_hosts}",
            hint=f"check its fingerprint, then add it: ssh-keyscan -p {target.port} "
            f"{target.address} >> {credentials.known_hosts}; or set "
            'ssh.host_key_check = "off" (insecure)',
        )
    expected = entries.get(key.get_name())
    if expected is None or expected != key:
        raise SshHostKeyError(
            f"the host key of {where} does not match {credentials.known_hosts}: the server "
            f"offered {key.get_name()} {key.get_fingerprint().hex()}. It was reinstalled, or "
            "someone is in the middle",
            hint="if the host was legitimately reinstalled, replace its line in known_hosts "
            "(ssh-keygen -R); otherwise stop and investigate",
        )


class SshConnection:
    """One authenticated SSH connection. Thread-safe for opening channels."""

    def __init__(self, target: SshTarget, transport: paramiko.Transport) -> None:
        self.target = target
        self.transport = transport

    @property
    def alive(self) -> bool:
        return bool(self.transport.is_active())

    def close(self) -> None:
        close_transport(self.transport)  # not transport.close(): see ssh_transport

    def open_channel(self, timeout_s: float) -> paramiko.Channel:
        try:
            return self.transport.open_session(timeout=timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise SshUnreachableError(
                f"{self.target.name}: cannot open an SSH channel: {exc or type(exc).__name__}"
            ) from None

    def prime_interactive(self, timeout_s: float = 5.0) -> None:
        """Run a no-op with a pty first, so that sshd disables Nagle for this connection."""
        self.exec("true", timeout_s=timeout_s, pty=True)

    def open_stream(
        self, command: str, *, pty: bool = True, timeout_s: float = 5.0
    ) -> paramiko.Channel:
        """Start a long-running command; read its output from the returned channel.

        With ``pty`` (the default) sshd sends each line at once, the remote process gets
        SIGHUP when the channel closes (no orphans), and stderr is merged into stdout.
        """
        chan = self.open_channel(timeout_s)
        try:
            if pty:
                chan.get_pty(term="dumb", width=1000, height=24)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            chan.close()
            raise SshUnreachableError(
                f"{self.target.name}: cannot start a command: {exc}"
            ) from None
        return chan

    def exec(self, command: str, *, timeout_s: float, pty: bool = False) -> ExecResult:
        """Run a command; return its exit status and output. Raises SshCommandTimeout."""
        start = time.monotonic()
        deadline = start + timeout_s
        chan = self.open_channel(timeout_s)
        try:
            if pty:
                chan.get_pty(term="dumb", width=1000, height=24)
            chan.exec_command(command)
            out = self._read_all(chan, deadline, command)
            err = b""
            while chan.recv_stderr_ready() and len(err) < _MAX_OUTPUT_BYTES:
                err += chan.recv_stderr(65536)
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise SshCommandTimeout(
                    f"{self.target.name}: {command[:60]!r} gave no exit status within {timeout_s} s"
                )
            status = chan.exit_status
        except (paramiko.SSHException, EOFError) as exc:
            self.close()
            raise SshUnreachableError(f"{self.target.name}: connection lost: {exc}") from None
        finally:
            close_quietly(chan)
        return ExecResult(
            status,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.monotonic() - start,
        )

    def _read_all(self, chan: paramiko.Channel, deadline: float, command: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_OUTPUT_BYTES:  # bounded by output size and by the deadline
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SshCommandTimeout(
                    f"{self.target.name}: {command[:60]!r} did not finish in time"
                )
            chan.settimeout(remaining)
            try:
                data = chan.recv(65536)
            except TimeoutError:
                raise SshCommandTimeout(
                    f"{self.target.name}: {command[:60]!r} did not finish in time"
                ) from None
            if not data:
                break
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)


def _socket(target: SshTarget, timeout_s: float) -> socket.socket:
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout_s)
    except TimeoutError:
        raise SshUnreachableError(
            f"{target.name} ({target.address}:{target.port}): no answer within {timeout_s} s",
            hint="is the host up and is the address right?",
        ) from None
    except OSError as exc:
        raise SshUnreachableError(
            f"{target.name} ({target.address}:{target.port}): {exc.strerror or exc}",
            hint="is the host up, sshd running, and the address and port right?",
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def connect(
    target: SshTarget,
    credentials: SshCredentials,
    *,
    pkey: paramiko.PKey | None = None,
    known: paramiko.HostKeys | Literal[False] | None = False,
    prime_interactive: bool = True,
) -> SshConnection:
    """Connect, verify the host key, authenticate. ``pkey``/``known`` may be preloaded."""
    timeout_s = credentials.connect_timeout_s
    key = pkey if pkey is not None else load_private_key(credentials.private_key)
    host_keys = load_known_hosts(credentials) if known is False else known
    sock = _socket(target, timeout_s)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout_s
    transport.handshake_timeout = timeout_s
    transport.auth_timeout = timeout_s
    if host_keys is not None:
        entries = _known_entries(host_keys, target)
        if entries:  # ask for a key type that known_hosts has, as OpenSSH does
            opts = transport.get_security_options()
            first = [t for t in opts.key_types if t in entries]
            opts.key_types = first + [t for t in opts.key_types if t not in entries]
    try:
        try:
            transport.start_client(timeout=timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshUnreachableError(
                f"{target.name} ({target.address}:{target.port}): SSH handshake failed: "
                f"{exc or type(exc).__name__}",
                hint="is it an SSH server, and is it up? A host that is rebooting or being "
                "powered off breaks handshakes; the connection is tried again",
            ) from None
        _verify_host_key(transport, target, host_keys, credentials)
        try:
            transport.auth_publickey(target.user, key)
        except paramiko.AuthenticationException:
            raise SshAuthError(
                f"{target.name}: the server refused the key {credentials.private_key} for user "
                f"{target.user}",
                hint="add the public key to the user's authorized_keys, or fix ssh.user / "
                "ssh.private_key",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            # not a refused key (that is AuthenticationException): the connection broke
            raise SshUnreachableError(
                f"{target.name} ({target.address}:{target.port}): connection lost during "
                f"authentication: {exc or type(exc).__name__}",
                hint="the host went away or the connection broke; it is tried again",
            ) from None
        transport.set_keepalive(max(1, int(credentials.keepalive_s)))
        conn = SshConnection(target, transport)
        if prime_interactive:
            conn.prime_interactive(timeout_s)
        return conn
    except BaseException:
        close_transport(transport)
        raise


class SshPool:
    """One persistent connection per host, reconnected on demand with backoff.

    ``get`` returns a live connection or raises. While a host is backing off, ``get`` raises
    the last error at once instead of hammering the host.
    """

    def __init__(self, credentials: SshCredentials, *, max_backoff_s: float = 5.0) -> None:
        self.credentials = credentials
        self._pkey = load_private_key(credentials.private_key)
        self._known = load_known_hosts(credentials)
        self._lock = threading.Lock()
        self._conns: dict[str, SshConnection] = {}
        self._host_locks: dict[str, threading.Lock] = {}
        self._retry: dict[str, tuple[float, SshError, Backoff]] = {}
        self._max_backoff_s = max_backoff_s

    def _host_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(name, threading.Lock())

    def get(self, target: SshTarget) -> SshConnection:
        with self._host_lock(target.name):
            conn = self._conns.get(target.name)
            if conn is not None and conn.alive:
                return conn
            retry = self._retry.get(target.name)
            if retry is not None and time.monotonic() < retry[0]:
                raise retry[1]
            try:
                conn = connect(target, self.credentials, pkey=self._pkey, known=self._known)
            except SshError as exc:
                backoff = retry[2] if retry else Backoff(0.2, self._max_backoff_s)
                self._retry[target.name] = (time.monotonic() + backoff.next_delay(), exc, backoff)
                raise
            self._retry.pop(target.name, None)
            self._conns[target.name] = conn
            return conn

    def exec(self, target: SshTarget, command: str, *, timeout_s: float) -> ExecResult:
        return self.get(target).exec(command, timeout_s=timeout_s)

    def drop(self, name: str) -> None:
        with self._lock:
            conn = self._conns.pop(name, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()


def describe(exc: BaseException) -> str:
    """A one-line description of an SSH error, for evidence strings."""
    text: Any = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text)
