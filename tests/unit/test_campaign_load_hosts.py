"""The initial load's ``hosts``: servers placed round-robin on named computes, and the
preflight that refuses a host the cloud has no nova-compute on. The cloud is a recording
stand-in (these are the calls openstacksdk makes; the lab test of the data plane places
servers for real)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from osha import schema
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

    def find_flavor(self, name: str, ignore_missing: bool = True) -> Any:
        return SimpleNamespace(id=f"flavor-{name}")

    def create_server(self, **kwargs: Any) -> Any:
        with self._lock:
            self.created.append(kwargs)
        return SimpleNamespace(id=f"id-{kwargs['name']}")

    def wait_for_server(self, server: Any, wait: int, interval: int) -> Any:
        return server

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
