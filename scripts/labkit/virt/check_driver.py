"""nova's side of the data plane without a cloud: the lab driver against a hypervisor daemon.

usage: PY check_driver.py DRIVER_FILE SOCKET INSTANCES_DIR NET   (PY: a python with nova)

Run by scripts/bench_guests.py against its stand-in compute node. Loads the driver module
from its file (the lab installs it as nova.virt.osha_lab), gives it nova's real network model
objects, and calls what nova-compute calls: spawn, get_info, power_off, power_on, reboot;
then a second driver (nova-compute started again after its node's power-off, guests gone)
finds the definition back, reports SHUTDOWN, and resume_state_on_host_boot brings the guest
back; destroy removes guest and definition. Prints one line per step; exits 1 on a failure.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nova import conf as nova_conf
from nova.compute import power_state
from nova.network import model
from nova.virt import driver as virt_driver

CONF = nova_conf.CONF


def load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("nova.virt.osha_lab", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(sock: str, req: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        s.sendall((json.dumps(req) + "\n").encode())
        with s.makefile("rb") as f:
            reply: dict[str, Any] = json.loads(f.readline())
    return reply


def main(argv: list[str]) -> int:
    driver_file, sock, instances, net = argv[1:5]
    # the settings as scripts/lab writes them (lib/dataplane.sh), read as nova-compute reads
    # them: parsed first, the driver's options registered when nova loads the driver
    conf = Path(instances).parent / "nova-check.conf"
    conf.write_text(
        f"[DEFAULT]\nhost = cmp-2\ninstances_path = {instances}\n"
        "compute_driver = osha_lab.LabDriver\nresume_guests_state_on_host_boot = true\n"
        f"[osha_lab]\nhypervisor_socket = {sock}\nhypervisor_wait_s = 5\n"
    )  # fmt: skip
    CONF(["--config-file", str(conf)], project="nova", default_config_files=[])
    # installed, the module is nova.virt.osha_lab; here it is loaded from its file under that
    # name, and nova's own loader resolves compute_driver to it
    lab = load(driver_file)
    sys.modules["nova.virt.osha_lab"] = lab
    assert CONF.osha_lab.hypervisor_socket == sock
    assert CONF.resume_guests_state_on_host_boot
    uuid = "00000000-0000-4000-8000-0000000000aa"
    instance = SimpleNamespace(
        uuid=uuid, name="instance-000000aa", display_name="vm aa",
        flavor=SimpleNamespace(vcpus=1, memory_mb=64, root_gb=1),
    )  # fmt: skip
    address = f"{net}.170"
    network_info = model.NetworkInfo([
        model.VIF(id="port-aa", address="fa:16:3e:00:00:aa", network=model.Network(
            id="net",
            subnets=[model.Subnet(cidr=f"{net}.0/24", ips=[model.FixedIP(address=address)])],
        )),
    ])  # fmt: skip

    def running() -> bool:
        return bool(call(sock, {"op": "status", "uuid": uuid})["running"])

    driver = virt_driver.load_compute_driver(None)
    assert isinstance(driver, lab.LabDriver), type(driver)
    print(f"nova loads compute_driver = {CONF.compute_driver}: {type(driver).__name__}")
    driver.init_host("cmp-2")
    t0 = time.monotonic()
    driver.spawn(None, instance, None, [], None, {}, network_info)
    print(f"spawn: guest {address} running={running()} in {(time.monotonic() - t0) * 1000:.1f} ms")
    assert running()
    assert driver.get_info(instance).state == power_state.RUNNING
    definition = Path(instances) / uuid / "osha-guest.json"
    assert json.loads(definition.read_text())["ips"] == [f"{address}/24"]
    driver.power_off(instance)
    assert not running()
    assert driver.get_info(instance).state == power_state.SHUTDOWN
    driver.power_on(None, instance, network_info)
    assert running()
    pid = call(sock, {"op": "status", "uuid": uuid})["pid"]
    driver.reboot(None, instance, network_info, "HARD")
    assert running()
    assert call(sock, {"op": "status", "uuid": uuid})["pid"] != pid
    print("power_off / power_on / reboot: the guest stopped, started, and is a new process")
    # the node's power-off: the guest dies with it; nova-compute starts again
    call(sock, {"op": "stop", "uuid": uuid, "reason": "test-power-loss"})
    again = lab.LabDriver(virtapi=None)
    again.init_host("cmp-2")
    assert again.list_instance_uuids() == [uuid], again.list_instance_uuids()
    assert again.get_info(instance).state == power_state.SHUTDOWN
    again.resume_state_on_host_boot(None, instance, network_info, None)
    assert running()
    assert again.get_info(instance).state == power_state.RUNNING
    print("restart: the definition found again, SHUTDOWN; resume_state_on_host_boot: RUNNING")
    again.destroy(None, instance, network_info)
    assert not running()
    assert not definition.exists()
    assert again.list_instance_uuids() == []
    print("destroy: guest stopped, definition removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
