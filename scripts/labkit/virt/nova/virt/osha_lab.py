"""nova virt driver of the osha lab: nova's fake driver, whose servers are real endpoints.

``compute_driver = osha_lab.LabDriver`` (nova imports it as ``nova.virt.osha_lab``). Every
server is also a *guest*: a process in its own network namespace inside the compute node,
holding the server's fixed IP (from the port neutron allocated) on the lab's tenant network.
The node's hypervisor daemon (``scripts/labkit/node/hypervisor.py``, a runit service, as
libvirtd is on a real host) starts and stops guests; this driver asks it over a unix socket
(``[osha_lab] hypervisor_socket``), so it works from the node and from the kolla-style
container alike. The guest answers ICMP (and TCP on the daemon's port, if it has one).

Mapping of nova's calls to the guest (the hypervisor writes each transition to the node's
events file, the lab's ground truth):

- spawn: the fake driver's bookkeeping, a definition in ``instances_path/<uuid>/`` (libvirt's
  domain XML, in short), then the guest starts (reason ``spawn``), unless power_on is false;
- power_off / power_on: the guest stops / starts; reboot: it stops, then starts;
- destroy: the guest stops (reason ``destroy``) and its definition goes;
- after the node's power-off (guests died with it) nova-compute starts again: ``init_host``
  reads the definitions back, ``get_info`` reports them SHUTDOWN, and with
  ``resume_guests_state_on_host_boot`` nova calls ``resume_state_on_host_boot``: the guest
  starts again (reason ``resume``);
- evacuate: nova spawns the server on the other node (same port, same IP); when the dead
  node comes back, nova destroys its copy there (``_destroy_evacuated_instances``).

Power state is the hypervisor's, not a variable: a guest that died is SHUTDOWN.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from nova import exception
from nova.compute import power_state
from nova.virt import fake
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
CONF.register_opts(
    [
        cfg.StrOpt("hypervisor_socket", help="unix socket of the node's hypervisor daemon"),
        cfg.FloatOpt(
            "hypervisor_wait_s",
            default=60.0,
            help="how long to wait for the daemon's socket (it starts with the node, as "
            "nova-compute does)",
        ),
    ],
    group="osha_lab",
)

DEFINITION = "osha-guest.json"
REPLY_MAX_BYTES = 65536


class HypervisorError(exception.NovaException):
    msg_fmt = "lab hypervisor: %(reason)s"


def guest_spec(uuid: str, server: str, network_info: Any) -> dict[str, Any]:
    """What the hypervisor needs to start a guest: IPv4 addresses with their subnets'
    prefix lengths, and the first port's MAC. ``network_info`` is nova's (a list of VIF
    dicts); every IPv4 fixed IP of every port goes on the guest's one interface."""
    ips: list[str] = []
    mac = ""
    for vif in network_info or []:
        mac = mac or str(vif.get("address") or "")
        for subnet in (vif.get("network") or {}).get("subnets") or []:
            cidr = subnet.get("cidr")
            if not cidr:
                continue
            net = ipaddress.ip_network(cidr, strict=False)
            if net.version != 4:
                continue
            ips += [f"{ip['address']}/{net.prefixlen}" for ip in subnet.get("ips") or []]
    return {"uuid": uuid, "server": server, "ips": ips, "mac": mac}


class Hypervisor:
    """Client of the node's hypervisor daemon (one JSON line each way)."""

    def __init__(self, path: str, wait_s: float) -> None:
        self.path = path
        self.wait_s = wait_s

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_s
        while True:  # bounded by the deadline: the daemon may still be starting at boot
            try:
                reply = self._once(req)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() > deadline:
                    raise HypervisorError(
                        reason=f"no daemon at {self.path} after {self.wait_s:.0f} s ({exc}); "
                        "is the node's lab-hypervisor service running (sv status)?"
                    ) from exc
                time.sleep(0.2)
        if not reply.get("ok"):
            raise HypervisorError(reason=f"{req.get('op')}: {reply.get('error')}")
        return reply

    def _once(self, req: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30.0)
            s.connect(self.path)
            s.sendall((json.dumps(req) + "\n").encode())
            with s.makefile("rb") as f:
                line = f.readline(REPLY_MAX_BYTES)
        if not line:
            raise HypervisorError(reason=f"{req.get('op')}: the daemon closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def start(self, spec: dict[str, Any], reason: str) -> None:
        self.call({"op": "start", "reason": reason, **spec})

    def stop(self, uuid: str, reason: str) -> None:
        self.call({"op": "stop", "uuid": uuid, "reason": reason})

    def running(self, uuid: str) -> bool:
        return bool(self.call({"op": "status", "uuid": uuid})["running"])


class LabDriver(fake.FakeDriverWithoutFakeNodes):
    """The fake driver, plus one guest per server (see the module docstring)."""

    def __init__(self, virtapi: Any, read_only: bool = False) -> None:
        super().__init__(virtapi, read_only)
        path = CONF.osha_lab.hypervisor_socket
        if not path:
            raise HypervisorError(reason="set [osha_lab] hypervisor_socket in nova's config")
        self.hv = Hypervisor(path, CONF.osha_lab.hypervisor_wait_s)

    # --- definitions (what survives the node's power-off) -----------------------------------

    def _definition(self, uuid: str) -> Path:
        return Path(CONF.instances_path) / uuid / DEFINITION

    def _define(self, instance: Any, network_info: Any) -> dict[str, Any]:
        spec = guest_spec(instance.uuid, instance.display_name or instance.name, network_info)
        flavor = instance.flavor
        spec["flavor"] = [flavor.vcpus, flavor.memory_mb, flavor.root_gb]
        spec["name"] = instance.name
        path = self._definition(instance.uuid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, path)
        return spec

    def _spec(self, instance: Any, network_info: Any) -> dict[str, Any]:
        """The guest as defined; defined now from ``network_info`` if it never was."""
        try:
            spec: dict[str, Any] = json.loads(self._definition(instance.uuid).read_text())
        except (OSError, ValueError):
            return self._define(instance, network_info)
        return spec

    @staticmethod
    def _start_spec(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: spec[k] for k in ("uuid", "server", "ips", "mac")}

    def init_host(self, host: str) -> None:
        super().init_host(host)
        for path in sorted(Path(CONF.instances_path).glob(f"*/{DEFINITION}")):
            try:
                spec = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                LOG.warning("unreadable guest definition %s: %s", path, exc)
                continue
            vcpus, mem, disk = spec["flavor"]
            self.resources.claim(vcpus=vcpus, mem=mem, disk=disk)
            self.instances[spec["uuid"]] = fake.FakeInstance(
                spec["name"], power_state.SHUTDOWN, spec["uuid"]
            )

    def _track(self, instance: Any) -> None:
        """Known to the fake driver's bookkeeping (a server defined before a restart)."""
        if instance.uuid not in self.instances:
            flavor = instance.flavor
            self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb, disk=flavor.root_gb)
            self.instances[instance.uuid] = fake.FakeInstance(
                instance.name, power_state.SHUTDOWN, instance.uuid
            )

    # --- nova's calls ------------------------------------------------------------------------

    def spawn(  # noqa: PLR0917 - nova's signature
        self, context: Any, instance: Any, image_meta: Any, injected_files: Any,
        admin_password: Any, allocations: Any, network_info: Any = None,
        block_device_info: Any = None, power_on: bool = True, accel_info: Any = None,
    ) -> None:  # fmt: skip
        super().spawn(
            context, instance, image_meta, injected_files, admin_password, allocations,
            network_info, block_device_info, power_on, accel_info,
        )  # fmt: skip
        spec = self._define(instance, network_info)
        if power_on:
            self.hv.start(self._start_spec(spec), "spawn")

    def power_off(self, instance: Any, timeout: int = 0, retry_interval: int = 0) -> None:
        super().power_off(instance, timeout, retry_interval)
        self.hv.stop(instance.uuid, "power-off")

    def power_on(  # noqa: PLR0917 - nova's signature
        self, context: Any, instance: Any, network_info: Any, block_device_info: Any = None,
        accel_info: Any = None, share_info: Any = None,
    ) -> None:  # fmt: skip
        self._track(instance)
        super().power_on(context, instance, network_info, block_device_info, accel_info,
                         share_info)  # fmt: skip
        self.hv.start(self._start_spec(self._spec(instance, network_info)), "power-on")

    def reboot(  # noqa: PLR0917 - nova's signature
        self, context: Any, instance: Any, network_info: Any, reboot_type: str,
        block_device_info: Any = None, bad_volumes_callback: Any = None, accel_info: Any = None,
        share_info: Any = None,
    ) -> None:  # fmt: skip
        spec = self._spec(instance, network_info)
        self.hv.stop(instance.uuid, "reboot")
        self._track(instance)
        self.instances[instance.uuid].state = power_state.RUNNING
        self.hv.start(self._start_spec(spec), "reboot")

    def resume_state_on_host_boot(
        self, context: Any, instance: Any, network_info: Any, share_info: Any,
        block_device_info: Any = None,
    ) -> None:  # fmt: skip
        spec = self._spec(instance, network_info)
        self._track(instance)
        self.instances[instance.uuid].state = power_state.RUNNING
        self.hv.start(self._start_spec(spec), "resume")

    def destroy(  # noqa: PLR0917 - nova's signature
        self, context: Any, instance: Any, network_info: Any, block_device_info: Any = None,
        destroy_disks: bool = True, destroy_secrets: bool = True,
    ) -> None:  # fmt: skip
        self.hv.stop(instance.uuid, "destroy")
        # the definition goes even when the disks stay (libvirt undefines the domain too)
        path = self._definition(instance.uuid)
        path.unlink(missing_ok=True)
        if destroy_disks and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
        super().destroy(context, instance, network_info, block_device_info, destroy_disks,
                        destroy_secrets)  # fmt: skip

    def get_info(self, instance: Any, use_cache: bool = True) -> Any:
        info = super().get_info(instance, use_cache)  # InstanceNotFound when unknown
        state = power_state.RUNNING if self.hv.running(instance.uuid) else power_state.SHUTDOWN
        self.instances[instance.uuid].state = state
        return type(info)(state=state)
