"""A throwaway OpenSSH server on loopback for unit tests, and the SSH transport's tests.

The server is the real /usr/sbin/sshd (as the lab and real nodes run), on 127.0.0.1 and a
free port, with its own host key, authorized key and config in a temporary directory. It
logs in as the current user (root on CI machines). No lab, no network beyond loopback.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from actors.common.ssh import (
    SshAuthError,
    SshCommandTimeout,
    SshCredentials,
    SshHostKeyError,
    SshPool,
    SshTarget,
    SshUnreachableError,
    connect,
)
from osha.testing import wait_for

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class LocalSshd:
    port: int
    target: SshTarget
    credentials: SshCredentials
    dir: Path

    def creds(self, **changes: object) -> SshCredentials:
        fields = {
            "private_key": self.credentials.private_key,
            "known_hosts": self.credentials.known_hosts,
            "host_key_check": self.credentials.host_key_check,
            "connect_timeout_s": self.credentials.connect_timeout_s,
        }
        fields.update(changes)
        return SshCredentials(**fields)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=10
    )


@pytest.fixture(scope="module")
def local_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    if not (os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen")):
        pytest.fail("these tests need OpenSSH (apt-get install openssh-server)", pytrace=False)
    d = tmp_path_factory.mktemp("sshd")
    os.chmod(d, 0o755)  # noqa: S103 - sshd's StrictModes-like checks want a non-writable dir
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{port}\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\n"
        "PermitRootLogin prohibit-password\nMaxSessions 50\nMaxStartups 50:30:100\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(d / "sshd.log").open("w"),
        start_new_session=True,
    )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited: {(d / 'sshd.log').read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout_s=10, what="the test sshd to listen")
        yield LocalSshd(
            port,
            SshTarget("local", "127.0.0.1", port, getpass.getuser()),
            SshCredentials(
                private_key=str(d / "client_key"),
                known_hosts=str(d / "known_hosts"),
                connect_timeout_s=3.0,
            ),
            d,
        )
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)


def test_exec_on_a_persistent_connection_with_tcp_nodelay(local_sshd: LocalSshd) -> None:
    conn = connect(local_sshd.target, local_sshd.credentials)
    try:
        sock = conn.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        result = conn.exec("echo out; echo err >&2; exit 3", timeout_s=10)
        assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
        # a second command reuses the connection
        assert conn.exec("echo again", timeout_s=10).stdout == "again\n"
    finally:
        conn.close()


def test_a_command_that_hangs_times_out(local_sshd: LocalSshd) -> None:
    conn = connect(local_sshd.target, local_sshd.credentials)
    try:
        with pytest.raises(SshCommandTimeout):
            conn.exec("sleep 30", timeout_s=0.5)
        assert conn.exec("true", timeout_s=10).exit_status == 0  # still usable
    finally:
        conn.close()


def test_an_unknown_host_key_is_refused(local_sshd: LocalSshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(SshHostKeyError, match="is not in") as info:
        connect(local_sshd.target, local_sshd.creds(known_hosts=str(empty)))
    assert "ssh-keyscan" in info.value.hint


def test_a_changed_host_key_is_refused(local_sshd: LocalSshd, tmp_path: Path) -> None:
    _keygen(tmp_path / "other")
    other = (tmp_path / "other.pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{local_sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(SshHostKeyError, match="does not match"):
        connect(local_sshd.target, local_sshd.creds(known_hosts=str(wrong)))


def test_opting_out_of_host_key_checks_is_explicit(local_sshd: LocalSshd) -> None:
    conn = connect(local_sshd.target, local_sshd.creds(known_hosts="", host_key_check="off"))
    conn.close()
    with pytest.raises(SshHostKeyError, match="no known_hosts"):
        connect(local_sshd.target, local_sshd.creds(known_hosts=""))


def test_a_refused_key_and_a_missing_key_file_are_auth_errors(
    local_sshd: LocalSshd, tmp_path: Path
) -> None:
    _keygen(tmp_path / "stranger")
    with pytest.raises(SshAuthError, match="refused the key"):
        connect(local_sshd.target, local_sshd.creds(private_key=str(tmp_path / "stranger")))
    with pytest.raises(SshAuthError, match="does not exist"):
        connect(local_sshd.target, local_sshd.creds(private_key=str(tmp_path / "nope")))


def test_a_closed_port_is_unreachable() -> None:
    port = _free_port()
    target = SshTarget("ghost", "127.0.0.1", port)
    creds = SshCredentials(private_key=__file__, host_key_check="off", connect_timeout_s=1.0)
    with pytest.raises(SshUnreachableError, match="refused"):
        connect(target, creds, pkey=object())  # type: ignore[arg-type]


def test_the_pool_reuses_and_reconnects(local_sshd: LocalSshd) -> None:
    pool = SshPool(local_sshd.credentials)
    try:
        first = pool.get(local_sshd.target)
        assert pool.get(local_sshd.target) is first
        first.close()
        second = pool.get(local_sshd.target)
        assert second is not first
        assert second.alive
        assert pool.exec(local_sshd.target, "echo ok", timeout_s=10).stdout == "ok\n"
    finally:
        pool.close()


class _FlakyRelay:
    """A TCP relay in front of the test sshd whose first ``broken`` connections send a valid
    SSH banner and then bytes that are not the SSH stream, as a client sees when its bytes
    come from the wrong place (issue 20: "Invalid packet blocking" during a handshake)."""

    def __init__(self, upstream_port: int, broken: int) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.upstream_port = upstream_port
        self.broken = broken
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():  # bounded by close()
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.broken:
                # a length of 7 cannot be a whole number of 8-byte blocks
                client.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n" + b"\x00\x00\x00\x07" + bytes(12))
                threading.Thread(target=self._drain_then_close, args=(client,), daemon=True).start()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _drain_then_close(sock: socket.socket) -> None:
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            while sock.recv(65536):  # until the client gives up (bounded by its timeouts)
                continue
        sock.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(5)


def test_a_garbled_handshake_is_a_clear_error_and_the_pool_reconnects(
    local_sshd: LocalSshd, tmp_path: Path
) -> None:
    relay = _FlakyRelay(local_sshd.port, broken=1)
    host_key = (local_sshd.dir / "host_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{relay.port} {' '.join(host_key)}\n")
    target = SshTarget("node-x", "127.0.0.1", relay.port, local_sshd.target.user)
    pool = SshPool(local_sshd.creds(known_hosts=str(known)), max_backoff_s=0.5)
    try:
        with pytest.raises(SshUnreachableError) as caught:
            pool.get(target)
        assert "SSH handshake failed: Invalid packet blocking" in caught.value.message
        assert "node-x (127.0.0.1:" in caught.value.message
        assert "tried again" in (caught.value.hint or "")
        # backing off, then a fresh connection: the next handshake is a good one
        conn = wait_for(lambda: pool.get(target), timeout_s=10, what="a reconnect",
                        retry_on=(SshUnreachableError,))  # fmt: skip
        assert conn.exec("echo ok", timeout_s=10).stdout == "ok\n"
        assert relay.accepted == 2  # no hammering while backing off
    finally:
        pool.close()
        relay.close()


def test_a_connection_lost_during_auth_says_so(
    local_sshd: LocalSshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise paramiko.SSHException("Invalid packet blocking")

    monkeypatch.setattr(paramiko.Transport, "auth_publickey", broken)
    with pytest.raises(SshUnreachableError, match="connection lost during authentication"):
        connect(local_sshd.target, local_sshd.credentials)
