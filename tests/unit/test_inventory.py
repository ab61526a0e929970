"""Ansible inventories, INI and YAML, as kolla-ansible and openstack-ansible write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha import inventory
from osha.inventory import InventoryError

INI = """
# kolla-style
standalone ansible_host=10.0.0.5

[control]
ctl-1 ansible_host=10.0.0.11 ansible_user=stack
ctl-2 ansible_host=10.0.0.12

[compute]
cmp-[01:03] ansible_port=2222

[storage]
st-[a:b]

[openstack:children]
control
compute

[compute:vars]
ansible_user=ops

[openstack:vars]
ansible_user = 'deploy'

[all:vars]
ansible_user=root
ansible_ssh_common_args='-o StrictHostKeyChecking=yes'
"""

YAML = """
all:
  vars:
    ansible_user: root
  children:
    controller:
      hosts:
        ctl-1: {ansible_host: 10.231.0.11}
        ctl-2:
          ansible_host: 10.231.0.12
          ansible_user: admin
    compute:
      hosts:
        cmp-1: {ansible_host: 10.231.0.21, ansible_port: 22}
      children:
        container_hosts:
          hosts:
            cmp-2: {ansible_host: 10.231.0.22}
"""


def test_ini_groups_children_vars_and_ranges(tmp_path: Path) -> None:
    path = tmp_path / "multinode"
    path.write_text(INI)
    inv = inventory.load(path)
    assert list(inv.hosts) == [
        "standalone",
        "ctl-1",
        "ctl-2",
        "cmp-01",
        "cmp-02",
        "cmp-03",
        "st-a",
        "st-b",
    ]
    ctl1, ctl2, cmp2 = inv.hosts["ctl-1"], inv.hosts["ctl-2"], inv.hosts["cmp-02"]
    assert (ctl1.address, ctl1.user, ctl1.port) == ("10.0.0.11", "stack", None)  # host var wins
    assert ctl2.user == "deploy"  # openstack:vars over all:vars
    assert (cmp2.address, cmp2.user, cmp2.port) == ("cmp-02", "ops", 2222)  # nearer group wins
    assert ctl1.groups == ("all", "control", "openstack")
    assert inv.hosts["standalone"].groups == ("all", "ungrouped")
    assert inv.hosts["st-a"].user == "root"
    assert [h.name for h in inv.in_groups(["control", "st-b"])] == ["ctl-1", "ctl-2", "st-b"]


def test_yaml_nested_children(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(YAML)
    inv = inventory.load(path)
    assert list(inv.hosts) == ["ctl-1", "ctl-2", "cmp-1", "cmp-2"]
    assert inv.hosts["ctl-2"].user == "admin"
    assert inv.hosts["ctl-1"].user == "root"
    assert inv.hosts["cmp-2"].groups == ("all", "compute", "container_hosts")
    assert inv.hosts["cmp-1"].port == 22
    assert [h.name for h in inv.in_groups(["compute"])] == ["cmp-1", "cmp-2"]


def test_yaml_is_detected_without_its_extension(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(YAML)
    assert len(inventory.load(path).hosts) == 4


def test_the_lab_style_ini() -> None:
    text = (
        "[controller]\nctl-1 ansible_host=10.231.0.11 ansible_user=root\n\n"
        "[container_hosts]\ncmp-2 ansible_host=10.231.0.22\n[compute]\ncmp-2\n"
    )
    inv = inventory.parse_ini(text)
    assert inv.hosts["cmp-2"].groups == ("all", "compute", "container_hosts")
    assert inv.hosts["cmp-2"].address == "10.231.0.22"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[g]\nhost ansible_host\n", "expected key=value"),
        ("[g:weird]\n", "unknown section kind"),
        ("[g]\nh[3:1]\n", "empty host range"),
        ("[g]\nh ansible_port=abc\n", "not a number"),
    ],
)
def test_bad_ini_says_where(text: str, expected: str) -> None:
    with pytest.raises(InventoryError, match=expected) as info:
        inventory.parse_ini(text, source="inv.ini")
    assert "inv.ini" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all: [1, 2]\n", "expected hosts/children/vars"),
        ("all:\n  hostz: {}\n", "unknown key"),
        ("- a\n", "mapping"),
    ],
)
def test_bad_yaml(text: str, expected: str) -> None:
    with pytest.raises(InventoryError, match=expected):
        inventory.parse_yaml(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory") as info:
        inventory.load(tmp_path / "nope")
    assert info.value.hint
