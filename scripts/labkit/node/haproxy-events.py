"""HAProxy's server state changes as events.log lines (the HA topology's ground truth).

HAProxy logs "Server nova-api/ctl-2 is DOWN, reason: ..." (and "is UP") at notice level or
above to a unix datagram socket (its `log` directive); this daemon receives them and appends

    EPOCH haproxy nova-api/ctl-2 state=DOWN reason=Layer4_connection_problem

(the events file is the node's own, whose HAProxy saw it; "NOSRV": the proxy has no server
left).

The timestamp is the arrival of HAProxy's message. Stdlib only (it runs on the machine's
python inside a node). usage: haproxy-events.py SOCKET EVENTS_FILE
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time

STATE = re.compile(
    r"(?:Server|Backup Server) (?P<server>[\w.-]+/[\w.-]+) is (?P<state>UP|DOWN)"
    r"(?:, reason: (?P<reason>[^,]*))?"
)
NO_SERVER = re.compile(r"(?:backend|proxy) '?(?P<backend>[\w.-]+)'? has no server available")


def line_for(message: str, now_s: float) -> str | None:
    m = STATE.search(message)
    if m:
        reason = "_".join(m["reason"].split()) if m["reason"] else "-"
        return f"{now_s:.9f} haproxy {m['server']} state={m['state']} reason={reason}\n"
    m = NO_SERVER.search(message)
    if m:
        return f"{now_s:.9f} haproxy {m['backend']} state=NOSRV reason=no_server_available\n"
    return None


def main(argv: list[str]) -> int:
    path, events = argv[1], argv[2]
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    while True:
        data = sock.recv(65536)
        text = line_for(data.decode("utf-8", "replace"), time.time())
        if text:
            with open(events, "a") as f:
                f.write(text)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
