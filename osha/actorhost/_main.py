"""The child's main: ``python -m osha.actorhost --fd N`` (see :mod:`osha.actorhost`)."""

from __future__ import annotations

import argparse
import signal
import socket
import sys

from osha.actorhost._host import EXIT_PROTOCOL, RECV_BYTES, Host, exit_now
from osha.errors import WireError
from osha.messages.actor import ActorBoot
from osha.redaction import RedactingStream
from osha.wire import FrameDecoder, FrameKind, decode

__all__ = ["main"]


def _read_boot(
    sock: socket.socket, decoder: FrameDecoder
) -> tuple[ActorBoot, list[tuple[FrameKind, bytes]]]:
    """The boot message, and any frames that arrived with it (commands, handled after)."""
    while True:
        data = sock.recv(RECV_BYTES)
        if not data:
            raise WireError("the parent closed the socket before sending actor.boot")
        frames = decoder.feed(data)
        if not frames:
            continue
        kind, body = frames[0]
        msg = decode(body) if kind is FrameKind.CONTROL else None
        if not isinstance(msg, ActorBoot):
            raise WireError(f"expected actor.boot first, got {type(msg).__name__}")
        return msg, frames[1:]


def main(argv: list[str] | None = None) -> int:
    # standard error is this actor's log file (logs/ID.log): tracebacks and warnings written
    # there are redacted line by line, as everything the actor records is
    sys.stderr = RedactingStream(sys.stderr)
    parser = argparse.ArgumentParser(prog="python -m osha.actorhost")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the parent")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    decoder = FrameDecoder()
    try:
        boot, early = _read_boot(sock, decoder)
    except (WireError, OSError) as exc:
        print(f"osha.actorhost: cannot boot: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_PROTOCOL
    code = Host(sock, boot).run(decoder, early)
    exit_now(code)
    return code
