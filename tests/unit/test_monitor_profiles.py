"""The profile example in each monitor's docstring builds a valid config. (The registry-wide
test in test_plugins.py checks the same through entry points once they are registered.)"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import tomllib

import pytest

from actors.monitors.galera import GaleraMonitor
from actors.monitors.host_services import HostServicesMonitor
from actors.monitors.nagios import NagiosMonitor
from actors.monitors.openstack_api import OpenStackApiMonitor
from actors.monitors.rabbitmq import RabbitMqMonitor
from actors.monitors.vip import VipMonitor
from actors.monitors.vm_ping import VmPingMonitor
from osha import schema
from osha.plugin import Monitor

MONITORS: dict[str, type[Monitor[object]]] = {
    "openstack-api": OpenStackApiMonitor,  # type: ignore[dict-item]
    "host-services": HostServicesMonitor,  # type: ignore[dict-item]
    "nagios": NagiosMonitor,  # type: ignore[dict-item]
    "vm-ping": VmPingMonitor,  # type: ignore[dict-item]
    "galera": GaleraMonitor,  # type: ignore[dict-item]
    "rabbitmq": RabbitMqMonitor,  # type: ignore[dict-item]
    "vip": VipMonitor,  # type: ignore[dict-item]
}
COMMON = {"id", "plugin", "restart", "shutdown_s"}


@pytest.mark.parametrize("name", sorted(MONITORS))
def test_docstring_example_builds_the_config(name: str) -> None:
    cls = MONITORS[name]
    assert cls.__doc__
    assert cls.__name__.endswith("Monitor")
    match = re.search(r"Profile::\n\n((?:[ \t]+.*\n?|\n)+)", cls.__doc__)
    assert match, f"{name}: no Profile:: block"
    (entry,) = tomllib.loads(textwrap.dedent(match.group(1)))["monitors"]
    assert entry["plugin"] == name
    config_type = cls.config_type
    assert dataclasses.is_dataclass(config_type)
    assert config_type.__dataclass_params__.frozen  # type: ignore[attr-defined]
    data = {k: v for k, v in entry.items() if k not in COMMON}
    config, problems = schema.build(config_type, data, file=f"{name} docstring")
    assert not problems, problems
    assert config is not None
