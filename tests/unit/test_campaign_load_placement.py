"""The initial load's placement: ``hosts`` (servers placed round-robin on named computes, and
the preflight that refuses a host the cloud has no nova-compute on) and ``spread`` (a
soft-anti-affinity server group, servers booted into it one at a time, deleted with them).
The cloud is a recording stand-in (these are the calls openstacksdk makes; the lab tests
place servers for real)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from openstack.exceptions import NotFoundException

from osha import schema
from osha.campaign import load as load_module
from osha.campaign import loadcheck
from osha.campaign.load import ServersLoad
from osha.profile import LoadEntry, ServersLoadConfig


def _config(**data: Any) -> ServersLoadConfig:
    cfg, problems = schema.build(ServersLoadConfig, {"cloud": "lab", **data}, file="t")
    assert not problems, problems
    assert cfg is not None
    return cfg


class _Compute:
    def __init__(self, services: list[SimpleNamespace]) -> None:
        self.created: list[dict[str, Any]] = []
        self._services = services
        self._lock = threading.Lock()
        self.groups: list[SimpleNamespace] = []
        self.deleted_groups: list[str] = []
        self.refuse_groups = False
        self.booting = self.most_booting = 0
        self.shown_deleted: dict[str, int] = {}
        self.reads_as_deleted = 0
        self.gets_while_deleted = 0

    def find_flavor(self, name: str, ignore_missing: bool = True) -> Any:
        return SimpleNamespace(id=f"flavor-{name}")

    def create_server(self, **kwargs: Any) -> Any:
        with self._lock:
            self.created.append(kwargs)
            self.booting += 1
            self.most_booting = max(self.most_booting, self.booting)
        return SimpleNamespace(id=f"id-{kwargs['name']}")

    def wait_for_server(self, server: Any, wait: int, interval: int) -> Any:
        with self._lock:
            self.booting -= 1
        return server

    def create_server_group(self, name: str, policy: str) -> Any:
        if self.refuse_groups:
            raise RuntimeError("Policy doesn't allow os_compute_api:os-server-groups:create")
        group = SimpleNamespace(id=f"g{len(self.groups) + 1}", name=name, policy=policy)
        self.groups.append(group)
        return group

    def server_groups(self) -> list[SimpleNamespace]:
        return list(self.groups)

    def delete_server_group(self, group: Any, ignore_missing: bool = True) -> None:
        self.deleted_groups.append(group.id)
        self.groups.remove(group)

    def servers(self, **query: Any) -> list[Any]:
        return []

    def get_server(self, server_id: str) -> Any:
        # nova shows a deleted server as DELETED for a few reads, then answers 404
        with self._lock:
            left = self.shown_deleted.get(server_id)
            if left is None:
                return SimpleNamespace(id=server_id, status="ACTIVE")
            if left == 0:
                raise NotFoundException(f"server {server_id} not found")
            self.shown_deleted[server_id] = left - 1
            self.gets_while_deleted += 1
        return SimpleNamespace(id=server_id, status="DELETED")

    def delete_server(self, server: Any, ignore_missing: bool = True) -> None:
        with self._lock:
            self.shown_deleted[server.id] = self.reads_as_deleted

    def services(self, binary: str) -> list[SimpleNamespace]:
        assert binary == "nova-compute"
        return self._services


def _conn(services: list[SimpleNamespace] | None = None) -> Any:
    return SimpleNamespace(
        compute=_Compute(services or []),
        image=SimpleNamespace(find_image=lambda name, ignore_missing=True: SimpleNamespace(id="i")),
        network=SimpleNamespace(find_network=lambda *a, **k: SimpleNamespace(id="n")),
        close=lambda: None,
    )


def test_hosts_place_server_n_on_host_n_mod_len_in_the_zone() -> None:
    conn = _conn()
    load = ServersLoad(
        LoadEntry("vms", "servers", _config(count=5, hosts=["cmp-1", "cmp-2"], zone="az1")),
        "run1",
        lambda *a, **k: None,
    )
    assert load.create(conn) == 0
    placed = {c["name"]: c["availability_zone"] for c in conn.compute.created}
    assert placed == {
        "osha-run1-1": "az1:cmp-1",
        "osha-run1-2": "az1:cmp-2",
        "osha-run1-3": "az1:cmp-1",
        "osha-run1-4": "az1:cmp-2",
        "osha-run1-5": "az1:cmp-1",
    }


def test_without_hosts_the_scheduler_places_them() -> None:
    conn = _conn()
    load = ServersLoad(LoadEntry("vms", "servers", _config(count=2)), "run1", lambda *a, **k: None)
    assert load.create(conn) == 0
    assert all("availability_zone" not in c for c in conn.compute.created)


def test_a_host_named_twice_is_refused_at_load() -> None:
    cfg, problems = schema.build(ServersLoadConfig, {"cloud": "lab", "hosts": ["a", "a"]}, file="t")
    assert cfg is None
    assert "hosts names a host twice" in str(problems[0])


def test_preflight_names_a_missing_or_down_compute_and_what_the_cloud_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = [
        SimpleNamespace(host="cmp-1", status="enabled", state="up"),
        SimpleNamespace(host="cmp-2", status="enabled", state="down"),
    ]
    monkeypatch.setattr(loadcheck, "connect", lambda cfg: _conn(services))
    entry = LoadEntry("vms", "servers", _config(hosts=["cmp-1", "cmp-2", "cmp-9"]))
    by_target = {f.target: f for f in loadcheck.check_load(entry)}
    assert by_target["host:cmp-1"].ok
    assert not by_target["host:cmp-2"].ok
    assert by_target["host:cmp-2"].message == "nova-compute@cmp-2 is enabled/down"
    assert not by_target["host:cmp-9"].ok
    assert "cmp-1, cmp-2" in by_target["host:cmp-9"].hint


def _spread_load(conn: Any, events: list[dict[str, Any]], **data: Any) -> ServersLoad:
    cfg = _config(count=4, spread=True, concurrency=4, **data)
    return ServersLoad(LoadEntry("vms", "servers", cfg), "run1",
                       lambda **event: events.append(event))  # fmt: skip


def test_spread_boots_one_at_a_time_into_a_soft_anti_affinity_group() -> None:
    conn, events = _conn(), []
    load = _spread_load(conn, events)
    assert load.create(conn) == 0
    [group] = conn.compute.groups
    assert (group.name, group.policy) == ("osha-run1", "soft-anti-affinity")
    assert [c["scheduler_hints"] for c in conn.compute.created] == [{"group": group.id}] * 4
    assert all("availability_zone" not in c for c in conn.compute.created)
    # concurrency = 4 in the profile, but nova must see each placed before it weighs the next
    assert conn.compute.most_booting == 1
    assert (events[0]["kind"], events[0]["action"]) == ("server_group", "created")


def test_spread_deletes_its_group_by_name_with_the_servers() -> None:
    conn, events = _conn(), []
    load = _spread_load(conn, events)
    load.create(conn)
    conn.compute.create_server_group("osha-run1", "soft-anti-affinity")  # a dead run's twin
    conn.compute.create_server_group("osha-other", "soft-anti-affinity")  # not ours
    assert load.delete(conn) == 0
    assert [g.name for g in conn.compute.groups] == ["osha-other"]
    assert len(conn.compute.deleted_groups) == 2
    deleted = [e for e in events if e["kind"] == "server_group" and e["action"] == "deleted"]
    assert len(deleted) == 2


def test_spread_without_a_group_boots_nothing_and_says_why() -> None:
    conn, events = _conn(), []
    conn.compute.refuse_groups = True
    load = _spread_load(conn, events)
    assert load.create(conn) == 4  # every server counted failed: none booted unspread
    assert conn.compute.created == []
    [failed] = events
    assert failed["action"] == "failed"
    assert "server groups" in failed["detail"]


def test_spread_and_hosts_together_are_refused_at_load() -> None:
    data = {"cloud": "lab", "spread": True, "hosts": ["cmp-1", "cmp-2"]}
    cfg, problems = schema.build(ServersLoadConfig, data, file="t")
    assert cfg is None
    assert "spread and hosts both place the servers" in str(problems[0])


def test_the_teardown_waits_until_nova_answers_404_not_only_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openstacksdk's wait_for_delete returns on status DELETED, while nova still lists the
    server: the census right after would count it left behind (stop 30)."""
    monkeypatch.setattr(load_module, "GONE_POLL_S", 0.0)
    conn, events = _conn(), []
    conn.compute.reads_as_deleted = 2
    load = _spread_load(conn, events)
    load.create(conn)
    assert load.delete(conn) == 0
    assert conn.compute.gets_while_deleted == 2 * 4  # every server read DELETED twice, then 404
    deleted = [e for e in events if e["kind"] == "server" and e["action"] == "deleted"]
    assert len(deleted) == 4
    assert all(e["detail"] == "" for e in deleted)


def test_a_server_nova_never_stops_showing_fails_at_delete_timeout_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(load_module, "GONE_POLL_S", 0.0)
    conn, events = _conn(), []
    conn.compute.reads_as_deleted = 10**9
    load = ServersLoad(LoadEntry("vms", "servers", _config(count=1, delete_timeout_s=0.05)),
                       "run1", lambda **e: events.append(e))  # fmt: skip
    load.create(conn)
    assert load.delete(conn) == 1
    [failed] = [e for e in events if e["action"] == "delete_failed"]
    assert "still shows server" in failed["detail"]
    assert "delete_timeout_s" in failed["detail"]
