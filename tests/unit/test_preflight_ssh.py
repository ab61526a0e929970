"""The campaign's preflight SSH check of ``[cloud]``'s nodes, against a real sshd on loopback.

Core runs it without importing a plugin: the check is the entry point ``osha.preflight: ssh``
(``actors.common.hosts.check_cloud_ssh``), found by the campaign's preflight.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from osha import profile
from osha.campaign.preflight import run_preflight
from tests.unit.test_ssh_server import LocalSshd, local_sshd  # noqa: F401 - the fixture


def _profile(tmp_path: Path, sshd: LocalSshd, known_hosts: Path) -> profile.Profile:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"ctl-1 ansible_host=127.0.0.1 ansible_port={sshd.port} "
        f"ansible_user={getpass.getuser()}\n"
    )
    path = tmp_path / "profile.toml"
    path.write_text(
        f'[cloud]\ninventory = "{inventory}"\nssh_key = "{sshd.credentials.private_key}"\n'
        f'known_hosts = "{known_hosts}"\n'
        '[[monitors]]\nid = "tick"\nplugin = "ticker"\n'
    )
    return profile.load(path)


def test_every_inventory_host_answers_ssh_with_a_verified_host_key(
    tmp_path: Path, local_sshd: LocalSshd  # noqa: F811 - the fixture
) -> None:
    prof = _profile(tmp_path, local_sshd, Path(local_sshd.credentials.known_hosts))
    found = [(c.source, c.finding.target, c.finding.ok, c.finding.message)
             for c in run_preflight(prof) if c.source == "ssh"]  # fmt: skip
    assert found == [("ssh", "node:ctl-1", True, "SSH ok, host key verified")]


def test_an_unknown_host_key_fails_the_check(
    tmp_path: Path, local_sshd: LocalSshd  # noqa: F811 - the fixture
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    prof = _profile(tmp_path, local_sshd, empty)
    [ssh] = [c.finding for c in run_preflight(prof) if c.source == "ssh"]
    assert (ssh.target, ssh.ok) == ("node:ctl-1", False)
    assert "known_hosts" in ssh.message + ssh.hint
