"""Profile validation: every problem is collected, named by file and key, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.common.hosts import HostConfig, credentials, disruptor_target, resolve_nodes
from actors.common.ssh import SshTarget
from osha import profile
from osha.errors import EXIT_INVALID, ProfileError
from osha.schema import FilePath
from osha.ssh import SshConfig

ROOT = Path(__file__).resolve().parents[2]


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        profile.load(path)
    assert info.value.exit_code == EXIT_INVALID
    for p in info.value.problems:
        assert p.file == str(path)
    return [(p.key, p.problem, p.hint) for p in info.value.problems]


def test_valid_profile_builds_typed_entries(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        "[campaign]\nseed = 7\nchaos_s = 2\n"
        '[[monitors]]\nid = "t"\nplugin = "ticker"\ninterval_s = 0.5\n'
        '[[runners]]\nid = "c"\nplugin = "crasher"\nrestart = "temporary"\n'
    )
    prof = profile.load(path)
    assert prof.campaign.seed == 7
    assert prof.campaign.chaos_s == 2.0
    assert [(a.kind, a.id, a.plugin) for a in prof.actors] == [
        ("monitor", "t", "ticker"),
        ("runner", "c", "crasher"),
    ]
    assert prof.actors[0].config.interval_s == 0.5
    assert prof.actors[0].raw_config == {"interval_s": 0.5}
    assert prof.actors[1].restart == "temporary"
    assert prof.actors[0].restart == "permanent"  # a monitor's default
    assert prof.resolve("x/y") == tmp_path / "x/y"


def test_unknown_plugin_lists_known_ones(tmp_path: Path) -> None:
    [(key, problem, hint)] = _problems(tmp_path, '[[monitors]]\nid = "m"\nplugin = "tikcer"\n')
    assert key == "monitors[0].plugin"
    assert "unknown monitor plugin 'tikcer'" in problem
    assert "ticker" in problem  # the known ones are listed
    assert hint


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    [(key, problem, hint)] = _problems(
        tmp_path, '[[monitors]]\nid = "m"\nplugin = "ticker"\ninterval = 1.0\n'
    )
    assert (key, problem) == ("monitors[0].interval", "unknown key")
    assert "interval_s" in hint


def test_wrong_type_shows_how_to_write_it(tmp_path: Path) -> None:
    [(key, problem, hint)] = _problems(
        tmp_path, '[[monitors]]\nid = "m"\nplugin = "ticker"\ninterval_s = "fast"\n'
    )
    assert key == "monitors[0].interval_s"
    assert "expected number, got string" in problem
    assert "interval_s = 1.0" in hint


def test_duplicate_id_across_kinds(tmp_path: Path) -> None:
    [(key, problem, _hint)] = _problems(
        tmp_path,
        '[[monitors]]\nid = "x"\nplugin = "ticker"\n[[runners]]\nid = "x"\nplugin = "crasher"\n',
    )
    assert key == "runners[0].id"
    assert "duplicate id 'x'" in problem
    assert "monitors[0]" in problem


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    [(key, problem, _hint)] = _problems(tmp_path, '[campaign]\nname = "a"\nseed = = 3\n')
    assert key == "line 3"
    assert "not valid TOML" in problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = _problems(
        tmp_path,
        '[campaign]\nseed = "x"\n[bogus]\n'
        '[supervisor]\nstrategy = "one_for_none"\n'
        '[[monitors]]\nplugin = "ticker"\n'
        '[[runners]]\nid = "BAD ID"\nplugin = "crasher"\n',
    )
    keys = {k for k, _, _ in found}
    assert keys >= {
        "campaign.seed",
        "bogus",
        "supervisor.strategy",
        "monitors[0].id",
        "runners[0].id",
    }


def test_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    [(key, problem, _)] = _problems_missing(tmp_path / "nope.toml")
    assert (key, problem) == ("(file)", "no such file")


def _problems_missing(path: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(ProfileError) as info:
        profile.load(path)
    return [(p.key, p.problem, p.hint) for p in info.value.problems]


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_profile_validates(path: Path) -> None:
    prof = profile.load(path)
    assert prof.actors, f"{path.name} declares no actors"


def test_restart_defaults_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text(
        '[[monitors]]\nid = "m"\nplugin = "ticker"\n[[disruptors]]\nid = "d"\nplugin = "noop"\n'
        '[[runners]]\nid = "r"\nplugin = "crasher"\n'
    )
    assert {a.id: a.restart for a in profile.load(path).actors} == {
        "m": "permanent",  # watches until stopped
        "d": "transient",  # a finished schedule is done
        "r": "transient",  # a finished workload is done
    }


def test_paths_expand_environment_variables_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSHA_TEST_LAB", "/srv/lab")
    monkeypatch.delenv("OSHA_TEST_UNSET", raising=False)
    path = tmp_path / "e.toml"
    path.write_text(
        '[cloud]\ninventory = "${OSHA_TEST_LAB}/inventory.ini"\n'
        'known_hosts = "${OSHA_TEST_UNSET:-/opt/lab}/known_hosts"\nssh_key = "keys/id"\n'
        '[[monitors]]\nid = "m"\nplugin = "ticker"\n'
    )
    cloud = profile.load(path).cloud
    assert cloud.inventory == "/srv/lab/inventory.ini"
    assert cloud.known_hosts == "/opt/lab/known_hosts"
    assert cloud.ssh_key == str(tmp_path / "keys/id")


def test_command_keys_expand_only_osha_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command runs on a node: ``${OSHA_*}`` expand from osha's environment (the lab's own
    directory on any instance), every other ``$`` is the node shell's."""
    monkeypatch.setenv("OSHA_LAB_DIR", "/var/lib/osha-lab-2")
    monkeypatch.setenv("HOME", "/root-of-osha")
    monkeypatch.delenv("OSHA_TEST_UNSET", raising=False)
    path = tmp_path / "c.toml"
    path.write_text(
        '[[monitors]]\nid = "rabbit"\nplugin = "rabbitmq"\ntransport = "local"\n'
        'hosts = { ctl-1 = { address = "10.0.0.1", groups = ["controller"] } }\n'
        'rabbitmqctl_command = "${OSHA_LAB_DIR:-/var/lib/osha-lab}/etc/rabbitmqctl"\n'
        'erl_call_command = ". ${OSHA_TEST_UNSET:-/lab}/env-{node}.sh; erl_call -sname r@{node}"\n'
        'alive_command = "test -d ${HOME} && test -n $PATH"\n'
    )
    [entry] = profile.load(path).actors
    assert entry.config.rabbitmqctl_command == "/var/lib/osha-lab-2/etc/rabbitmqctl"
    assert entry.config.erl_call_command == ". /lab/env-{node}.sh; erl_call -sname r@{node}"
    assert entry.config.alive_command == "test -d ${HOME} && test -n $PATH"
    path.write_text(path.read_text().replace("${OSHA_TEST_UNSET:-/lab}", "${OSHA_TEST_UNSET}"))
    with pytest.raises(ProfileError, match="OSHA_TEST_UNSET is not set"):
        profile.load(path)


def test_an_unset_variable_without_default_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OSHA_TEST_UNSET", raising=False)
    [(key, problem, hint)] = _problems(
        tmp_path, '[cloud]\ninventory = "${OSHA_TEST_UNSET}/inv"\n[[monitors]]\nid = "m"\n'
        'plugin = "ticker"\n'
    )
    assert key == "cloud.inventory"
    assert "OSHA_TEST_UNSET is not set" in problem
    assert ":-" in hint


def test_load_entries_take_cloud_defaults_and_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    path.write_text(
        '[cloud]\ncloud = "lab"\n[[load]]\nplugin = "servers"\ncount = 3\n'
        '[[monitors]]\nid = "m"\nplugin = "ticker"\n'
    )
    [entry] = profile.load(path).loads
    assert (entry.id, entry.plugin, entry.config.cloud, entry.config.count) == (
        "load-1", "servers", "lab", 3,
    )  # fmt: skip
    found = _problems(
        tmp_path, '[[load]]\nplugin = "volumes"\n[[load]]\nplugin = "servers"\ncloud = "x"\n'
        'count = -1\n[[monitors]]\nid = "m"\nplugin = "ticker"\n'
    )
    assert [k for k, _, _ in found] == ["load[0].plugin", "load[1]"]


def test_slo_table_is_validated(tmp_path: Path) -> None:
    [(key, problem, _)] = _problems(
        tmp_path, '[slo]\nmin_runner_succes = 0.9\n[[monitors]]\nid = "m"\nplugin = "ticker"\n'
    )
    assert (key, problem) == ("slo.min_runner_succes", "unknown key")


def test_nested_paths_reach_the_child_resolved(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        '[cloud]\ninventory = "inv.ini"\n[[disruptors]]\nid = "d"\nplugin = "node"\n'
        'action = "power-off"\n'
        'power = { password_file = "bmc-pw", bmcs = { n1 = { address = "127.0.0.1" } } }\n'
    )
    [entry] = profile.load(path).actors
    assert entry.raw_config["power"]["password_file"] == str(tmp_path / "bmc-pw")
    assert entry.raw_config["inventory"] == str(tmp_path / "inv.ini")
    assert entry.raw_config["action"] == "power-off"  # an enum goes down as its value


def test_cloud_ssh_keys_default_a_monitors_ssh_table(tmp_path: Path) -> None:
    """[cloud]'s ssh_key and known_hosts are the defaults of a monitor's ssh.private_key and
    ssh.known_hosts, as they are of a disruptor's; what the monitor
    sets itself wins, and the child process gets the filled-in table."""
    path = tmp_path / "s.toml"
    path.write_text(
        '[cloud]\ninventory = "/lab/inventory.ini"\nssh_key = "keys/id"\n'
        'known_hosts = "/lab/known_hosts"\n'
        '[[monitors]]\nid = "hosts"\nplugin = "host-services"\n'
        '[[monitors]]\nid = "own"\nplugin = "host-services"\n'
        'ssh = { private_key = "/own/key", connect_timeout_s = 2.0 }\n'
        '[[disruptors]]\nid = "kill"\nplugin = "process"\nservice = "x"\n'
    )
    hosts, own, kill = profile.load(path).actors
    key = str(tmp_path / "keys/id")
    assert (hosts.config.ssh.private_key, hosts.config.ssh.known_hosts) == (key, "/lab/known_hosts")
    assert hosts.raw_config["ssh"]["private_key"] == key
    assert own.config.ssh.private_key == "/own/key"
    assert own.config.ssh.known_hosts == "/lab/known_hosts"
    assert own.config.ssh.connect_timeout_s == 2.0
    assert (kill.config.ssh.private_key, kill.config.ssh.known_hosts) == (key, "/lab/known_hosts")


def test_a_disruptors_ssh_table_takes_cloud_defaults_and_keeps_its_logins(tmp_path: Path) -> None:
    """A disruptor's ``ssh`` table gets ``[cloud]``'s ssh_user, ssh_key and known_hosts as
    defaults (a monitor's gets the key paths only); it logs in as ``ssh.user`` before the
    inventory's user and on ``ssh.port``, a monitor as the inventory's user before
    ``ssh.user``, on the host's port."""
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[ctl]\nn1 ansible_host=10.0.0.1 ansible_user=inv ansible_port=2200\n")
    path = tmp_path / "s.toml"
    path.write_text(
        f'[cloud]\ninventory = "{inventory}"\nssh_user = "cloudy"\nssh_key = "/k/id"\n'
        '[[disruptors]]\nid = "kill"\nplugin = "process"\nservice = "x"\n'
        '[[disruptors]]\nid = "own"\nplugin = "process"\nservice = "x"\n'
        'ssh = { user = "me", port = 2022, host_key_check = "off" }\n'
        '[[monitors]]\nid = "hosts"\nplugin = "host-services"\nssh = { user = "me" }\n'
    )
    hosts, kill, own = profile.load(path).actors
    assert kill.config.ssh == SshConfig(user="cloudy", private_key=FilePath("/k/id"))
    assert kill.raw_config["ssh"]["user"] == "cloudy"
    assert own.config.ssh.private_key == "/k/id"
    assert hosts.config.ssh.user == "me"
    assert disruptor_target(kill.config, "n1", "10.0.0.1", "inv") == SshTarget(
        "n1", "10.0.0.1", 22, "cloudy"
    )
    assert disruptor_target(own.config, "n1", "10.0.0.1", "inv").user == "me"
    assert disruptor_target(own.config, "n1", "10.0.0.1", "inv").port == 2022
    assert credentials(own.config.ssh).host_key_check == "off"
    [node] = resolve_nodes(str(inventory), {}, hosts.config.ssh)
    assert (node.target.user, node.target.port) == ("inv", 2200)
    [node] = resolve_nodes("", {"n1": HostConfig(address="10.0.0.1")}, hosts.config.ssh)
    assert (node.target.user, node.target.port) == ("me", 22)
    [node] = resolve_nodes("", {"n1": HostConfig(address="10.0.0.1")}, SshConfig())
    assert node.target.user == "root"
