"""The lab's data plane (issue 16) without namespaces: the opt-in switch leaves the lab as it
was when off (scripts/labkit/lib/dataplane.sh in bash, with stubbed commands), lab.json says
which it is (outputs.py), and the hypervisor daemon's protocol (scripts/labkit/node/
hypervisor.py as a real process on a unix socket, no guest started).

What guests do on a network is shown by ``scripts/bench_guests.py`` (throwaway namespaces,
root) and, in the lab, by tests/lab/test_data_plane.py."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from osha.testing import wait_for

LABKIT = Path(__file__).resolve().parents[2] / "scripts" / "labkit"
HYPERVISOR = LABKIT / "node" / "hypervisor.py"

STUBS = r"""
set -euo pipefail
log() { echo "log: $*"; }
die() { echo "die: $*"; exit 1; }
ip() { echo "ip $*" >>"$CALLS"; [[ " $* " != *" show "* ]]; }  # no link exists yet
svc() { echo "svc $1 $2 $4" >>"$CALLS"; }
run_logged() { shift; echo "$*" >>"$CALLS"; }
cloud_py() { :; }
netns_of() { echo "osha$NS_INSTANCE-$1"; }
node_dir() { echo "$LAB_DIR/nodes/$1"; }
node_running() { return 0; }
lab_running() { [ -n "${RUNNING:-}" ]; }
NODE_SERVICES_cmp_1="nova-compute" NODE_SERVICES_cmp_2="docker"
source "$LABKIT/lib/nodes.sh"  # bridge_up; its other functions are not called
node_running() { return 0; }
source "$LABKIT/lib/dataplane.sh"
dp_check_switch
dp_install
dp_net_up
dp_link cmp-1 down
dp_net_reset cmp-2
dp_write_configs
dp_write_services
dp_init_network
echo "services: $NODE_SERVICES_cmp_1 / $NODE_SERVICES_cmp_2"
echo "env: $(dp_outputs_env)"
"""


def _lab(tmp_path: Path, instance: int = 0, **env: str) -> tuple[str, list[str], str]:
    """Run every dp_* step; (its output, the commands it ran, nova-cmp-1.conf)."""
    lab = tmp_path / "lab"
    (lab / "etc" / "nova").mkdir(parents=True, exist_ok=True)
    (lab / "logs").mkdir(exist_ok=True)
    conf = lab / "etc" / "nova" / "nova-cmp-1.conf"
    conf.write_text("[DEFAULT]\nhost = cmp-1\n")
    venv = lab / "venv" / "bin"
    venv.mkdir(parents=True, exist_ok=True)
    pip = venv / "pip"
    pip.write_text("#!/bin/sh\necho \"pip $*\" >>\"$CALLS\"\n")
    pip.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    variables = {
        "CALLS": str(calls), "LABKIT": str(LABKIT), "LAB_DIR": str(lab), "ETC": f"{lab}/etc",
        "DATA": f"{lab}/data", "LOGS": f"{lab}/logs", "KIT": f"{lab}/kit", "VENV": str(venv.parent),
        "LAB_INSTANCE": str(instance), "NS_INSTANCE": str(instance or ""),
        "LAB_PYTHON": sys.executable, "PATH": os.environ["PATH"],
    }  # fmt: skip
    variables.update(env)
    result = subprocess.run(["bash", "-c", STUBS], env=variables, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    return result.stdout + result.stderr, calls.read_text().splitlines(), conf.read_text()


def test_off_by_default_the_lab_is_what_it_was(tmp_path: Path) -> None:
    out, calls, conf = _lab(tmp_path)
    assert calls == []  # no link, bridge, pip, service or network
    assert conf == "[DEFAULT]\nhost = cmp-1\n"
    assert "services: nova-compute / docker" in out
    assert "LAB_DATA_PLANE=0 " in out


def test_on_it_plumbs_the_tenant_network_and_selects_the_driver(tmp_path: Path) -> None:
    out, calls, conf = _lab(tmp_path, OSHA_LAB_DATA_PLANE="1")
    assert "ip link add oshaten0 type bridge" in calls
    assert "ip addr add 10.231.1.1/24 dev oshaten0" in calls
    assert "ip link add vt-cmp-1 type veth peer name eth1 netns osha-cmp-1" in calls
    assert "ip -n osha-cmp-2 link set eth1 master br-tenant" in calls
    assert "ip link set vt-cmp-1 down" in calls  # a power-off takes the tenant link down too
    assert any(c.startswith("pip install") and c.endswith("/virt") for c in calls)
    assert any(c.startswith("svc cmp-2 lab-hypervisor ") and "--bridge br-tenant" in c
               for c in calls)  # fmt: skip
    assert "cloud_py tenant-network tenant-net 10.231.1.0/24 10.231.1.1" in calls
    assert "compute_driver = osha_lab.LabDriver\n" in conf
    assert "resume_guests_state_on_host_boot = true\n" in conf
    assert "hypervisor_socket = " in conf
    assert "services: nova-compute lab-hypervisor / docker lab-hypervisor" in out
    assert "LAB_DATA_PLANE=1 " in out


def test_instances_get_their_own_tenant_bridge_subnet_and_links(tmp_path: Path) -> None:
    _, calls, _ = _lab(tmp_path, instance=3, OSHA_LAB_DATA_PLANE="1")
    assert "ip addr add 10.234.1.1/24 dev oshaten3" in calls
    assert "ip link add vt3-cmp-2 type veth peer name eth1 netns osha3-cmp-2" in calls


def test_the_choice_is_read_back_and_not_switched_under_a_running_lab(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "lab.json").write_text(json.dumps({"data_plane": {"enabled": True}}))
    out, calls, _ = _lab(tmp_path)
    assert "LAB_DATA_PLANE=1 " in out
    assert "ip link add oshaten0 type bridge" in calls
    out, calls, _ = _lab(tmp_path, OSHA_LAB_DATA_PLANE="0", RUNNING="1")
    assert "die: the lab runs with OSHA_LAB_DATA_PLANE=1, not 0" in out
    assert calls == []
    # a running lab from before the data plane (lab.json without the key) is a lab without it
    (tmp_path / "lab" / "lab.json").write_text(json.dumps({"instance": 0}))
    out, calls, _ = _lab(tmp_path, OSHA_LAB_DATA_PLANE="1", RUNNING="1")
    assert "die: the lab runs with OSHA_LAB_DATA_PLANE=0, not 1" in out
    assert calls == []
    out, calls, _ = _lab(tmp_path, RUNNING="1")
    assert "die:" not in out


def test_a_bad_switch_value_is_refused(tmp_path: Path) -> None:
    out, calls, _ = _lab(tmp_path, OSHA_LAB_DATA_PLANE="yes")
    assert "OSHA_LAB_DATA_PLANE='yes' is not 0 or 1" in out
    assert calls == []


# --- lab.json ---------------------------------------------------------------------------


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_lab_json_says_whether_there_is_a_data_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = _load("lab_outputs", LABKIT / "outputs.py")
    monkeypatch.delenv("LAB_DATA_PLANE", raising=False)
    assert outputs.data_plane("/lab", os.environ) == {"enabled": False}
    for key, value in {
        "LAB_DATA_PLANE": "1", "LAB_COMPUTES": "cmp-1,cmp-2", "LAB_TENANT_NETWORK": "tenant-net",
        "LAB_TENANT_BRIDGE": "oshaten0", "LAB_TENANT_SUBNET": "10.231.1.0/24",
        "LAB_TENANT_HOST": "10.231.1.1", "LAB_NODE_TENANT_BRIDGE": "br-tenant",
        "LAB_NODE_TENANT_LINK": "eth1", "LAB_GUEST_TCP_PORT": "80", "LAB_TVETH_PREFIX": "vt-",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    dp = outputs.data_plane("/lab", os.environ)
    assert dp["enabled"] is True
    assert dp["host_address"] == "10.231.1.1"
    assert dp["guest_tcp_port"] == 80
    assert dp["computes"]["cmp-2"] == {
        "veth": "vt-cmp-2", "hypervisor_socket": "/lab/data/cmp-2/hypervisor.sock",
    }  # fmt: skip


# --- the hypervisor daemon -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hv() -> ModuleType:
    if str(HYPERVISOR.parent) not in sys.path:
        sys.path.insert(0, str(HYPERVISOR.parent))  # `import garp`, as the script finds it
    return _load("lab_hypervisor", HYPERVISOR)


# --- the guest's announcement (gratuitous ARP) ------------------------------------------------


def test_the_announcement_is_an_arp_request_for_its_own_address(hv: ModuleType) -> None:
    mac = bytes.fromhex("fa163e000001")
    packet = hv.garp.frame(mac, "10.231.1.76")
    assert packet[:6] == b"\xff" * 6  # broadcast: every host on the tenant network hears it
    assert packet[6:12] == mac
    assert packet[12:14] == b"\x08\x06"  # ARP
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", packet[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)  # an Ethernet IPv4 request
    sha, spa, tha, tpa = packet[22:28], packet[28:32], packet[32:38], packet[38:42]
    assert (sha, tha) == (mac, b"\0" * 6)
    assert spa == tpa == bytes([10, 231, 1, 76])  # RFC 5227: sender and target both the address
    assert len(packet) == 42


def test_a_started_guest_announces_itself_once_its_port_forwards(
    hv: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 16: a silent guest stayed unreachable until the machine's next ARP request (up to
    1 s after it started) when the machine's entry for it had failed during a long outage."""
    calls: list[str] = []
    monkeypatch.setattr(hv, "_ip", lambda args, stdin=None, netns_pid=None: calls.append(
        "ip " + " ".join(args)))  # fmt: skip
    monkeypatch.setattr(hv.Hypervisor, "_wait_forwarding",
                        staticmethod(lambda tap: calls.append(f"forwarding {tap}")))  # fmt: skip
    monkeypatch.setattr(hv.garp, "announce", lambda pid, ips: calls.append(f"announce {list(ips)}"))
    h = hv.Hypervisor(tmp_path / "events.log", "br-tenant", tmp_path / "state")
    h.own_netns = "net:[not this one]"  # the "guest" (this process) is in another namespace
    uuid = "3f2a9c1e-0000-4000-8000-00000000abcd"
    req = hv.StartRequest(uuid, "vm", ("10.231.1.76/24",), "fa:16:3e:00:00:01", "resume")
    h._plumb(os.getpid(), req)
    tap = hv.tap_name(uuid)
    assert calls[-3:] == [
        "ip -batch -", f"forwarding {tap}", "announce ['10.231.1.76/24']",
    ]  # fmt: skip

    # a lost announcement is recorded, and the guest runs on (as a real one would)
    def lost(pid: int, ips: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(hv.garp, "announce", lost)
    h._plumb(os.getpid(), req)
    assert (
        f"{uuid}: no gratuitous ARP: [Errno 1] Operation not permitted" in capsys.readouterr().out
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="packet sockets and setns need root")
def test_the_announcement_leaves_from_the_interface_of_the_guests_namespace(
    hv: ModuleType,
) -> None:
    """The real thing on loopback (no ARP there: nothing on the machine changes): the socket
    is made in the namespace of the pid given (here this process's own) and sends on it."""
    listener = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    with listener:
        listener.bind(("lo", 0))
        listener.settimeout(5.0)
        mac = hv.garp.announce(os.getpid(), ["10.255.255.77/24"], "lo")
        assert mac == "00:00:00:00:00:00"  # loopback's own address, read from the socket
        expected = hv.garp.frame(bytes(6), "10.255.255.77")
        seen: list[bytes] = []
        while expected not in seen and len(seen) < 20:  # bounded: 20 frames, 5 s each
            seen.append(listener.recv(2048)[:42])  # other ARP on lo: none expected, but harmless
    assert expected in seen


def test_guest_taps_are_distinct_for_uuids_that_share_a_prefix(hv: ModuleType) -> None:
    uuids = [f"3f2a9c1e-0000-4000-8000-{n:012x}" for n in range(50)]
    taps = {hv.tap_name(u) for u in uuids}
    assert len(taps) == 50  # one tap per guest: a shared name cut another guest's link
    assert all(len(t) <= 15 for t in taps)  # the kernel's limit for a link name


@pytest.mark.parametrize(
    ("req", "problem"),
    [
        ({"op": "start", "uuid": "nope", "ips": []}, "'uuid' must be an instance uuid"),
        ({"op": "start", "uuid": "U", "ips": "10.0.0.1/24"}, "'ips' must be a list"),
        ({"op": "start", "uuid": "U", "ips": ["10.0.0.300/24"]}, "not an IPv4 address/prefix"),
        ({"op": "start", "uuid": "U", "ips": ["10.0.0.5"]}, "has no prefix length"),
        ({"op": "start", "uuid": "U", "ips": [], "mac": "fa:16"}, "is not a MAC address"),
        ({"op": "start", "uuid": "U", "ips": [], "reason": "Evil; rm"}, "is not a word"),
    ],
)
def test_start_requests_are_checked(hv: ModuleType, req: dict[str, object], problem: str) -> None:
    if req.get("uuid") == "U":
        req = {**req, "uuid": "3f2a9c1e-0000-4000-8000-000000000001"}
    with pytest.raises(hv.GuestError, match=problem.replace("(", r"\(")):
        hv.StartRequest.parse(req)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sock, events = str(tmp_path / "hv.sock"), tmp_path / "events.log"
    proc = subprocess.Popen(
        [sys.executable, str(HYPERVISOR), "serve", sock, "--events", str(events),
         "--bridge", "lo", "--state", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: os.path.exists(sock), timeout_s=30, what="the daemon's socket")
        yield sock, events
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_daemon_answers_every_request_with_one_json_line(
    hv: ModuleType, daemon: tuple[str, Path]
) -> None:
    sock, events = daemon
    uuid = "3f2a9c1e-0000-4000-8000-000000000001"
    call = hv.call
    assert wait_for(lambda: call(sock, {"op": "list"}), timeout_s=30, retry_on=(OSError,)) == {
        "ok": True, "running": {},
    }  # fmt: skip
    assert call(sock, {"op": "status", "uuid": uuid}) == {"ok": True, "running": False, "pid": None}
    # stopping a guest that does not run is not an error, and no transition
    stopped = call(sock, {"op": "stop", "uuid": uuid, "reason": "destroy"})
    assert stopped == {"ok": True, "pid": None}
    assert call(sock, {"op": "reboot", "uuid": uuid})["error"].startswith("unknown op 'reboot'")
    bad = call(sock, {"op": "start", "uuid": uuid, "ips": ["10.0.0.5"]})
    assert bad == {"ok": False, "error": "start: '10.0.0.5' has no prefix length (10.231.1.5/24)"}
    assert not events.exists()  # nothing happened, so no ground truth
