"""The Galera member's HAProxy agent (the lab's clustercheck): one line per connection,
``up`` when the member is Synced, ``down`` otherwise, so HAProxy sends MariaDB traffic only
to a member that can take it. A member that restarted accepts connections on 3306 while it
still joins (IST/SST), and queries there fail ("WSREP has not yet prepared node"): the TCP
check alone would send the writer's traffic to it.

The state is the file wsrep_notify_cmd (node/ha-notify.sh) writes on every status change,
and node/galera-start.sh resets to ``starting`` before mysqld starts, so no query per check.
Stdlib only. usage: galera-agent.py ADDRESS PORT STATE_FILE
"""

from __future__ import annotations

import socketserver
import sys
from pathlib import Path


def answer(state_file: Path) -> bytes:
    try:
        state = state_file.read_text().strip()
    except OSError:
        state = "unknown"
    return b"up\n" if state == "synced" else b"down\n"


def main(argv: list[str]) -> int:
    address, port, state_file = argv[1], int(argv[2]), Path(argv[3])

    class Agent(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(answer(state_file))

    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.TCPServer((address, port), Agent) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
