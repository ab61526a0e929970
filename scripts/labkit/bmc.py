"""Emulated IPMI BMCs for the lab nodes, one UDP endpoint per node on loopback.

Each BMC is a pyghmi ``Bmc`` (the same server virtualbmc wraps), so clients speak real
IPMI 2.0 / RMCP+ to it: ``ipmitool -I lanplus`` and ``pyghmi.ipmi.command.Command``.
Power actions run ``scripts/lab _power NODE on|off`` in a worker thread per node, so a
slow action never blocks the shared event loop (a blocked loop makes ipmitool
retransmit, and the action would run twice).

usage: python bmc.py LAB_SCRIPT USER PASSWORD NODE=HOST:PORT [NODE=HOST:PORT ...]
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

from pyghmi.ipmi import bmc
from pyghmi.ipmi.private import serversession

# pyghmi's server implements only cipher suite 3 (SHA-1) yet accepts any proposal;
# pyghmi's own client proposes SHA-256 first and then crashes on the SHA-1 reply
# ("struct.error: pack expected 32 items"). Refuse non-SHA-1 proposals with RMCP+
# status 0x11 (invalid authentication algorithm) so that clients fall back to suite 3.
_original_open = serversession.ServerSession.create_open_session_response


def _open_session_sha1_only(self: object, request: bytes) -> bytearray:
    request = bytearray(request)
    if len(request) >= 32 and (request[12] & 0x3F) != 1:
        return bytearray([request[0], 0x11, 0, 0]) + request[4:8]
    return _original_open(self, request)


serversession.ServerSession.create_open_session_response = _open_session_sha1_only

class NodeBmc(bmc.Bmc):
    """The BMC of one lab node; the node's power supply is scripts/lab's powerctl."""

    def __init__(self, authdata: dict[str, str], node: str, lab_script: str, **kw: object) -> None:
        super().__init__(authdata, **kw)
        self.node = node
        self.lab_script = lab_script
        self.lab_dir = os.environ["OSHA_LAB_DIR"]
        self.actions: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._worker, name=f"bmc-{node}", daemon=True).start()

    def _worker(self) -> None:
        while True:
            action = self.actions.get()
            steps = ["off", "on"] if action == "cycle" else [action]
            for step in steps:
                rc = subprocess.call([self.lab_script, "_power", self.node, step])
                print(f"{time.time():.3f} bmc {self.node}: power {step} rc={rc}", flush=True)

    def _request(self, action: str) -> int:
        self.actions.put(action)
        return 0

    def get_power_state(self) -> str:
        """The node's real state: on while its power supply (powerctl.sh) runs.

        Never the state last asked for: a client that reads "off" may rely on the node being
        off (issue 20: osha recorded a power-off, and the node still answered SSH, while this
        reported the requested state for 10 s). Right after a request the state is the old
        one for a moment, as on hardware.
        """
        node_dir = os.path.join(self.lab_dir, "nodes", self.node)
        try:
            with open(os.path.join(node_dir, "power.pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError):
            return "off"
        # a live powerctl.sh of this node (a stale pid file may name a reused pid)
        ours = os.fsencode(self.node) in argv and os.fsencode(self.lab_dir) in argv
        return "on" if ours else "off"

    def power_off(self) -> int:
        return self._request("off")

    def power_on(self) -> int:
        return self._request("on")

    def power_cycle(self) -> int:
        return self._request("cycle")

    def power_reset(self) -> int:
        return self._request("cycle")

    def power_shutdown(self) -> int:  # ACPI soft-off: the lab has no ACPI, so it is a hard off
        return self._request("off")

    def is_active(self) -> bool:
        return self.get_power_state() == "on"


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    lab_script, user, password = argv[1:4]
    for spec in argv[4:]:
        node, _, address = spec.partition("=")
        host, _, port = address.rpartition(":")
        NodeBmc({user: password}, node, lab_script, address=host, port=int(port))
        print(f"bmc {node} listening on {host}:{port}/udp", flush=True)
    bmc.Bmc.listen(timeout=30)  # every Bmc instance shares pyghmi's one event loop
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
