"""Closing a paramiko transport so that its reader thread cannot outlive its socket's fd number.

paramiko 5.1's ``Transport.close()`` closes the socket and then returns *without joining* the
transport's reader thread (``stop_thread`` stops waiting as soon as the socket is closed). That
thread may be inside ``socket.recv()``: CPython loads the socket's fd number and then, with the
GIL released, enters ``recvfrom(fd)``. A thread descheduled between the two (a busy machine)
reads from *whatever the number means by then*: the process's next connection usually gets
the same, lowest free number, and the old thread takes its first bytes. The new handshake then
fails with "Error reading SSH protocol banner" or "Invalid packet blocking" (measured on
loopback with that window widened: /work/coord/evidence/i20s/README.md, issue 20).

:func:`close_transport` shuts the socket down first: the reader wakes with EOF while the fd
number is still this socket's, ends, and closes the socket itself; it is joined (bounded) before
``Transport.close()``. :class:`ClosingSSHClient` is ``paramiko.SSHClient`` closing that way.
"""

from __future__ import annotations

import errno
import socket
import threading

import paramiko

__all__ = ["ClosingSSHClient", "close_transport"]

# A reader wakes from its 0.1 s poll at once on shutdown; 5 s is for a starved machine.
_JOIN_S = 5.0


def close_transport(transport: paramiko.Transport, timeout_s: float = _JOIN_S) -> bool:
    """Close ``transport`` after its reader thread ended; True when it did within ``timeout_s``.

    False means the reader is still running (stuck for ``timeout_s``): the transport is closed
    anyway, as paramiko does, and the caller may say so.
    """
    sock = transport.sock
    if (
        transport.is_alive()
        and transport is not threading.current_thread()
        and isinstance(sock, socket.socket)
    ):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            # ENOTCONN: the peer is gone and the reader sees EOF by itself; EBADF: the reader
            # already closed the socket (it ended). Anything else is not a closing socket.
            if exc.errno not in (errno.ENOTCONN, errno.EBADF):
                raise
        transport.join(timeout_s)
    transport.close()
    return not transport.is_alive()


class ClosingSSHClient(paramiko.SSHClient):  # type: ignore[misc]  # paramiko is untyped
    """``paramiko.SSHClient`` whose ``close`` waits for its transport's reader (see above)."""

    def close(self) -> None:
        transport = self.get_transport()
        if transport is not None:
            close_transport(transport)
        super().close()
