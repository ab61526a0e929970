"""The lab as the lab tests see it: which lab this session uses (``OSHA_LAB_INSTANCE``,
``OSHA_LAB_DIR``), ``scripts/lab`` as a function, the bounded waits, a node's ground-truth
``Event`` and the ``Lab`` client (SSH, OpenStack, containers, power, events).

Setting ``OSHA_LAB_DIR`` and ``OSHA_LAB_INSTANCE`` here, at import, is deliberate: profiles
expand ``${OSHA_LAB_DIR}``, and every child of the session (osha, ``scripts/lab``) must see
the same lab as the tests. The fixtures are in conftest.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from osha import testing
from tests.lab.bounds import Bounds
from tests.lab.diagnostics import LabSshError, LogTrace, diagnose_node, ssh_attempts

REPO = Path(__file__).resolve().parents[2]
LAB_SCRIPT = REPO / "scripts" / "lab"


def _lab_instance_and_dir() -> tuple[int, Path]:
    """Which lab this session uses: ``OSHA_LAB_INSTANCE`` (else what ``$OSHA_LAB_DIR/lab.json``
    records, else 0) and ``OSHA_LAB_DIR`` (else the instance's default directory), as
    ``scripts/lab`` resolves them."""
    given_dir = os.environ.get("OSHA_LAB_DIR")
    instance = os.environ.get("OSHA_LAB_INSTANCE")
    if instance is None and given_dir:
        with contextlib.suppress(OSError, ValueError, KeyError):
            instance = str(json.loads((Path(given_dir) / "lab.json").read_text())["instance"])
    number = int(instance or 0)
    default_dir = "/var/lib/osha-lab" if number == 0 else f"/var/lib/osha-lab-{number}"
    return number, Path(given_dir or default_dir)


LAB_INSTANCE, LAB_DIR = _lab_instance_and_dir()
# Profiles expand ${OSHA_LAB_DIR}, and scripts/lab reads both: every child of this session
# (osha, scripts/lab) must see the same lab as the tests.
os.environ["OSHA_LAB_DIR"] = str(LAB_DIR)
os.environ["OSHA_LAB_INSTANCE"] = str(LAB_INSTANCE)
UP_TIMEOUT_S = 1500  # a fresh machine installs packages and venvs first
RESET_TIMEOUT_S = 360
API_TIMEOUT_S = 20
SESSION_WAIT_S = 1800  # another session (a colleague's, on a shared machine) may hold the lab

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None], timeout_s: float, interval_s: float = 0.5, what: str = ""
) -> T:
    """:func:`osha.testing.wait_for` as the lab polls: positional arguments, and an exception
    from the predicate counts as "not yet" (the thing polled may be rebooting)."""
    return testing.wait_for(
        predicate, timeout_s=timeout_s, interval_s=interval_s, what=what or repr(predicate),
        retry_on=(Exception,),
    )  # fmt: skip


def holds_for(predicate: Callable[[], bool], duration_s: float, interval_s: float = 1.0) -> bool:
    """True if ``predicate`` stays true at every poll for ``duration_s``."""
    return testing.holds_for(predicate, duration_s=duration_s, interval_s=interval_s)


def run_lab(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LAB_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Event:
    """One line of a node's ground-truth events file."""

    time_s: float
    kind: str  # boot, halt, power-on, power-off, start, exit
    name: str  # service or node
    fields: dict[str, str]


class Lab:
    """The lab as lab.json describes it, with small clients for tests."""

    def __init__(self, desc: dict[str, Any]) -> None:
        self.desc = desc
        self.nodes: dict[str, dict[str, Any]] = desc["nodes"]
        self.settings: dict[str, int] = desc["settings"]
        self.bounds = Bounds.of(self.settings)
        self._cloud: Any = None

    # -- SSH -------------------------------------------------------------------------
    def ssh(self, node: str, timeout_s: float = 5.0) -> Any:
        """A paramiko client to ``node``, verifying its host key, with TCP_NODELAY.

        paramiko leaves Nagle on, and delayed ACKs then add ~40 ms to every command. When
        the connection fails, the error carries the lab's ground truth about the node (see
        :meth:`diagnose`) and paramiko's own log of the attempt.
        """
        import paramiko

        from actors.common.ssh_transport import ClosingSSHClient

        address = self.nodes[node]["address"]
        client = ClosingSSHClient()  # its close() ends the reader first (issue 20)
        channel = f"osha.lab.ssh.{node}.{next(ssh_attempts)}"
        client.set_log_channel(channel)
        trace = LogTrace(channel)
        try:
            sock = socket.create_connection((address, 22), timeout=timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.load_host_keys(self.desc["ssh"]["known_hosts"])
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(
                address,
                username=self.desc["ssh"]["user"],
                key_filename=self.desc["ssh"]["private_key"],
                sock=sock,
                timeout=timeout_s,
                allow_agent=False,
                look_for_keys=False,
            )
        except (EOFError, paramiko.SSHException) as exc:
            # TCP was accepted, then the SSH protocol broke: keep the evidence. (Refused or
            # timed out is what a rebooting node does; callers that poll expect it.)
            client.close()
            what = f"SSH to {node} ({address}) failed: {type(exc).__name__}: {exc}"
            path = diagnose_node(self.desc, LAB_DIR, node, what, trace.lines)
            raise LabSshError(f"{what}; the lab's ground truth: {path}") from exc
        except OSError:
            client.close()
            raise
        finally:
            trace.close()
        return client

    def diagnose(self, node: str, why: str) -> Path:
        """Save the machine's view of ``node`` (see tests/lab/diagnostics.py); its path."""
        return diagnose_node(self.desc, LAB_DIR, node, why)

    def run(self, node: str, command: str, timeout_s: float = 30.0) -> tuple[int, str]:
        """Run ``command`` on ``node`` over SSH; return (exit status, stdout + stderr)."""
        client = self.ssh(node)
        try:
            _, stdout, stderr = client.exec_command(command, timeout=timeout_s)
            out = stdout.read().decode() + stderr.read().decode()
            return stdout.channel.recv_exit_status(), out
        finally:
            client.close()

    def check(self, node: str, command: str, timeout_s: float = 30.0) -> str:
        rc, out = self.run(node, command, timeout_s)
        assert rc == 0, f"{command!r} on {node} exited {rc}: {out}"
        return out

    def boot_id(self, node: str) -> str:
        return self.check(node, "cat /proc/sys/kernel/random/boot_id").strip()

    def nodes_running(self, *services: str) -> list[str]:
        """The nodes whose runit runs every one of ``services`` (lab.json), in lab order. The
        topologies differ here: keystone runs on ctl-1 (default) or on ctl-1 and ctl-2 (HA,
        ``OSHA_LAB_TOPOLOGY=ha``), and the HA lab's ctl-3 is a controller that runs only the
        cluster (Galera, RabbitMQ, HAProxy, keepalived), none of nova's services."""
        nodes = [n for n, d in self.nodes.items() if set(services) <= set(d["services"])]
        assert nodes, f"no node of the lab runs {services}: lab.json nodes {self.nodes}"
        return nodes

    def service_pid(self, node: str, service: str) -> int | None:
        """The pid (in the node) of a runit service, None when it is not running."""
        out = self.check(node, f"sv status {self.nodes[node]['service_dir']}/{service}")
        if not out.startswith("run:"):
            return None
        return int(out.split("(pid ")[1].split(")")[0])

    def events(self, node: str) -> list[Event]:
        """The node's ground-truth lifecycle events, read from outside the node."""
        events = []
        for line in Path(self.nodes[node]["events"]).read_text().splitlines():
            parts = line.split()
            fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            events.append(Event(float(parts[0]), parts[1], parts[2], fields))
        return events

    # -- OpenStack -------------------------------------------------------------------
    def unused_address(self) -> str:
        """An address of this lab's own subnet that no node, gateway or VIP holds: probes to
        it stay on the lab's bridge and get no answer. (A fixed address such as 10.231.0.99
        is instance 0's subnet; from another instance it would leave the machine.)"""
        network = self.desc["network"]
        taken = {n["address"] for n in self.nodes.values()} | {network["gateway"]}
        taken |= {self.desc.get("ha", {}).get("vip", "")}
        subnet = ipaddress.ip_network(network["subnet"])
        for host in (subnet.network_address + 99, *reversed(list(subnet.hosts()))):
            if str(host) not in taken:  # bounded: the subnet's hosts
                return str(host)
        raise AssertionError(f"no unused address in {subnet}")

    def cloud(self) -> Any:
        """One OpenStack connection per test session, reused: a new one logs in to keystone
        first, and a poll that logs in every time measures keystone, not the service."""
        import openstack

        if self._cloud is None:
            os.environ["OS_CLIENT_CONFIG_FILE"] = self.desc["clouds_yaml"]
            # a bounded API timeout: a hung service (SIGSTOP, a partition) must fail the
            # test, not hang it
            self._cloud = openstack.connect(cloud=self.desc["cloud"], api_timeout=API_TIMEOUT_S)
        return self._cloud

    def service_state(self, binary: str, host: str) -> str | None:
        """'up' or 'down' as nova's service list says, None when it lists no such service."""
        for service in self.cloud().compute.services():
            if service.binary == binary and service.host == host:
                return str(service.state)
        return None

    def boot_server(self, name: str) -> Any:
        """Boot a server to ACTIVE and return it (the caller deletes it)."""
        timeout_s = self.bounds.server_boot_s
        c = self.cloud()
        server = c.compute.create_server(
            name=name,
            image_id=c.image.find_image("tiny").id,
            flavor_id=c.compute.find_flavor("m1.tiny").id,
            networks=[{"uuid": c.network.find_network("shared-net").id}],
        )
        return c.compute.wait_for_server(server, wait=int(timeout_s), interval=1)

    def delete_server(self, server: Any) -> None:
        """Delete ``server`` and wait until nova answers 404 for it. openstacksdk's
        ``wait_for_delete`` returns as soon as the status reads ``DELETED``, and nova goes on
        showing the server as ``DELETED`` for a moment (seen: one GET 1 s after the DELETE),
        so a test that looks right after would still find it. Bounded by the boot bound:
        deleting is no slower than booting on the lab."""
        c = self.cloud()
        current = c.compute.find_server(server.id, ignore_missing=True)
        if current is None:
            return
        if current.task_state == "deleting":
            # A delete that nova-compute never received stays `deleting` for good, and nova
            # ignores another ("already in deleting state"): seen after the rabbit-partition
            # campaign, whose partition lost the cast of a Rally delete (stop 32). Past a
            # delete's time (the boot bound, counted from the delete), an admin reset lets a
            # new delete go out, as an operator would.
            since_s = datetime.fromisoformat(current.updated_at or current.created_at).timestamp()
            left_s = self.bounds.server_boot_s - (time.time() - since_s)
            if left_s > 0 and not holds_for(
                lambda: c.compute.find_server(server.id) is not None, left_s
            ):
                return  # its delete went through after all
            c.compute.reset_server_state(current, "error")
        c.compute.delete_server(server)
        c.compute.wait_for_delete(server, wait=int(self.bounds.server_boot_s), interval=1)
        wait_for(lambda: c.compute.find_server(server.id) is None, self.bounds.server_boot_s,
                 what=f"nova to answer 404 for server {server.id}")  # fmt: skip

    # -- containers and out-of-band power ----------------------------------------------
    def docker(self, node: str) -> Any:
        """A docker SDK client for ``node`` over ``ssh://``, as an operator's tool connects.

        The SDK reads ~/.ssh/config and ~/.ssh/known_hosts, so HOME points at the lab's
        client home while it connects.
        """
        import docker

        home = os.environ.get("HOME")
        os.environ["HOME"] = str(LAB_DIR / "client-home")
        try:
            return docker.DockerClient(base_url=self.nodes[node]["docker_url"], timeout=30)
        finally:
            if home is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = home

    def bmc(self, node: str) -> Any:
        """A pyghmi IPMI client for the node's emulated BMC (one session per call)."""
        from pyghmi.ipmi import command

        bmc = self.nodes[node]["bmc"]
        return command.Command(
            bmc=bmc["host"], port=bmc["port"], userid=bmc["user"], password=bmc["password"]
        )
