"""``pick = "rabbitmq-leader-heavy"`` (issue 14): the member hosting the most queue leaders.

The listing is real: ``rabbitmqctl -q list_queues --no-table-headers name type pid leader``
on the HA lab (RabbitMQ 3.10.8, three members, the cloud's 49 classic queues: 28 led from
rabbit@ctl-2, 21 from rabbit@ctl-1, none from rabbit@ctl-3). The resolver runs over a real
SSH connection to a loopback sshd, as on a cloud, with a ``rabbitmqctl_command`` that prints
the listing (or is missing, as where no RabbitMQ runs).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from actors.roles import leaders_by_node
from osha.inventory import Host
from osha.roles import RoleError, available_roles, resolve_role
from osha.schema import FilePath
from osha.ssh import SshConfig
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the fixture

LISTING = (
    Path(__file__).parent / "data" / "rabbitmq-3.10-list_queues-name-type-pid-leader.txt"
).read_text()
QUORUM = "orders\tquorum\t<rabbit@ctl-3.1796488528.2001.0>\trabbit@ctl-3\n"


def test_the_role_is_registered() -> None:
    assert "rabbitmq-leader-heavy" in available_roles()


def test_leaders_from_the_lab_listing() -> None:
    leaders = leaders_by_node(LISTING)
    assert {n: len(q) for n, q in leaders.items()} == {"rabbit@ctl-1": 21, "rabbit@ctl-2": 28}
    assert "conductor.ctl-1" in leaders["rabbit@ctl-1"]
    # a quorum queue counts for its leader, not its process; a dotted long name stays whole
    assert leaders_by_node(QUORUM) == {"rabbit@ctl-3": ["orders"]}
    long_name = "q\tclassic\t<rabbit@ctl-1.example.org.1796488528.5.0>\t\n"
    assert leaders_by_node(long_name) == {"rabbit@ctl-1.example.org": ["q"]}
    with pytest.raises(ValueError, match="line 1 is not name, type, pid, leader"):
        leaders_by_node("Error: unable to perform an operation on node\n")


def _resolve(sshd: LocalSshd, tmp_path: Path, ctl: str) -> object:
    hosts = [Host(n, "127.0.0.1", sshd.port, sshd.target.user, ("controller",))
             for n in ("ctl-1", "ctl-2", "ctl-3")]  # fmt: skip
    ssh = SshConfig(private_key=FilePath(str(sshd.credentials.private_key)),
                    known_hosts=FilePath(str(sshd.credentials.known_hosts)))  # fmt: skip
    return resolve_role("rabbitmq-leader-heavy", hosts, {"rabbitmqctl_command": ctl}, ssh)


def test_the_member_with_most_leaders_is_struck(
    tmp_path: Path,
    local_sshd: LocalSshd,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    listing = tmp_path / "list_queues.txt"
    listing.write_text(LISTING + QUORUM * 1)
    found = _resolve(local_sshd, tmp_path, f"cat {shlex.quote(str(listing))}; true")
    assert found.node == "ctl-2"  # type: ignore[attr-defined]
    assert found.evidence == (  # type: ignore[attr-defined]
        "leads 28 of 50 RabbitMQ queues (ctl-1 21, ctl-2 28, ctl-3 1; list_queues on ctl-1)"
    )


def test_no_rabbitmq_or_no_queue_is_a_clear_role_error(
    tmp_path: Path,
    local_sshd: LocalSshd,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    with pytest.raises(RoleError, match="no node of the group lists RabbitMQ's queues") as err:
        _resolve(local_sshd, tmp_path, str(tmp_path / "no-such-rabbitmqctl"))
    assert "exit 127" in err.value.message
    assert "role.rabbitmqctl_command" in (err.value.hint or "")
    with pytest.raises(RoleError, match="no member of the group leads a queue"):
        _resolve(local_sshd, tmp_path, "true")
