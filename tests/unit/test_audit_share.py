"""One server listing for the audits of a sweep (``osha.audit.Share``,
``actors/audits/_shared.py``): the ``servers``, ``ports`` and ``placement`` audits of a sweep
list the servers once, after placement has read its allocations and ports its ports; each
keeps its own bounds; an API error fails every audit that shares the listing; the next sweep
lists afresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from openstack.exceptions import HttpException

from actors.audits import _kit
from actors.audits._shared import SharedListing
from actors.audits.placement import PlacementAuditConfig
from actors.audits.ports import PortsAuditConfig
from actors.audits.servers import ServersAudit, ServersAuditConfig
from osha.audit import AuditConfig, AuditEntry, AuditRun, Budget, Share, sweep
from osha.errors import PluginError
from osha.messages import Message
from osha.messages.audit import AuditWhen
from tests.unit.test_audit import _record_into
from tests.unit.test_audit_ports_placement import _Cloud, _placement_cloud, _port

#: how long the fake cloud's allocation read waits for a server listing to start (none may
#: start before it returns; without the sweep's wait, one starts at once)
ORDER_PROBE_S = 0.5


class _Sweepable(_Cloud):
    """The fake cloud as every audit's connection: a session to guard, compute services, and
    a log of the server listings and allocation reads in the order they happened."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.session = SimpleNamespace(request=lambda *a, **k: None)
        self.compute.services = lambda **q: iter(())
        self.events: list[str] = []
        self.listed = threading.Event()
        self.fail_after: int | None = None  # the listing raises an API error after N servers
        listing = self._servers

        def servers(**query: Any) -> Iterator[Any]:
            self.events.append("list servers" + ("" if query.get("details", True) else " ids"))
            self.listed.set()
            for n, server in enumerate(listing(**query)):
                if n == self.fail_after:
                    raise HttpException(message="nova-api answered 503")
                yield server

        self.compute.servers = servers

    def _placement(self, path: str, microversion: str | None = None) -> Any:
        if path.startswith("/resource_providers/"):  # allocations: no listing may start yet
            self.listed.wait(ORDER_PROBE_S)
            self.events.append("allocations")
        return super()._placement(path, microversion)


def _cloud() -> _Sweepable:
    base = _placement_cloud()
    return _Sweepable(base.servers, ports=[_port(id="p-orphan")], allocations=base.allocations)


def _sweep(cloud: _Sweepable, monkeypatch: pytest.MonkeyPatch, *configs: AuditConfig,
           ) -> dict[str, AuditRun]:  # fmt: skip
    monkeypatch.setattr(_kit, "connect", lambda *a, **k: cloud)
    names = {ServersAuditConfig: "servers", PortsAuditConfig: "ports",
             PlacementAuditConfig: "placement"}  # fmt: skip
    entries = [AuditEntry(names[type(c)], names[type(c)], c) for c in configs]
    out: list[Message] = []
    return {r.entry.id: r for r in sweep(entries, AuditWhen.ON_DEMAND, _record_into(out))}


ALL = (ServersAuditConfig(cloud="lab"), PortsAuditConfig(cloud="lab"),
       PlacementAuditConfig(cloud="lab"))  # fmt: skip


def test_one_listing_for_three_audits_after_placement_read_its_allocations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = _cloud()
    runs = _sweep(cloud, monkeypatch, *ALL)
    assert cloud.events.count("list servers") == 1, cloud.events  # not one per audit
    assert [e for e in cloud.events if e.startswith("list")] == ["list servers"]
    assert cloud.events.index("list servers") > cloud.events.index("allocations")
    assert all(r.ok and not r.truncated for r in runs.values()), runs
    # each finds what it finds alone
    assert [d.resource_id for d in runs["ports"].found] == ["p-orphan"]
    assert {d.resource_id for d in runs["placement"].found} == {"c-orphan", "s-bare",
                                                                "cmp-gone"}  # fmt: skip
    assert runs["servers"].found == []
    assert runs["servers"].items_read == len(cloud.servers)  # it read every server


def test_each_sweep_lists_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = _cloud()
    _sweep(cloud, monkeypatch, *ALL)
    _sweep(cloud, monkeypatch, *ALL)
    assert cloud.events.count("list servers") == 2


def test_an_audit_alone_lists_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = _cloud()
    runs = _sweep(cloud, monkeypatch, PortsAuditConfig(cloud="lab"))
    assert runs["ports"].ok
    assert cloud.events == ["list servers ids"]  # alone: the cheaper listing of ids


@pytest.mark.parametrize(("servers_max", "placement_max"), [(1, 100), (1, 4)])
def test_each_audit_keeps_its_own_bounds(
    monkeypatch: pytest.MonkeyPatch, servers_max: int, placement_max: int
) -> None:
    """``max_items`` per audit: a listing cut short for one marks that one truncated; one
    cut short for both (placement reads 2 providers, a hypervisor, then the 2 servers) marks
    both."""
    cloud = _cloud()
    runs = _sweep(cloud, monkeypatch, ServersAuditConfig(cloud="lab", max_items=servers_max),
                  PlacementAuditConfig(cloud="lab", max_items=placement_max))  # fmt: skip
    assert cloud.events.count("list servers") == 1
    assert runs["servers"].truncated == "reached max_items"
    assert runs["servers"].items_read == servers_max
    cut = placement_max < 5
    assert runs["placement"].truncated == ("reached max_items" if cut else "")
    assert (runs["placement"].found == []) is cut  # nothing judged on a listing cut short


def test_an_api_error_in_the_shared_listing_fails_every_audit_that_shares_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cloud = _cloud()
    cloud.fail_after = 1
    runs = _sweep(cloud, monkeypatch, *ALL)
    assert cloud.events.count("list servers") == 1  # not listed again after the error
    for name in ("servers", "ports", "placement"):
        run = runs[name]
        assert not run.ok, name
        assert "cannot list servers" in run.error, run.error
        assert "503" in run.error, run.error
        assert "shared by the audits placement, ports, servers" in run.error, run.error


def test_an_audit_that_fails_before_it_is_ready_holds_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """placement cannot read its providers: the servers audit lists at once, not at its
    timeout_s (60 s)."""
    cloud = _cloud()
    cloud.placement.get = lambda path, microversion=None: SimpleNamespace(status_code=500)
    runs = _sweep(cloud, monkeypatch, ServersAuditConfig(cloud="lab", timeout_s=60.0),
                  PlacementAuditConfig(cloud="lab"))  # fmt: skip
    assert not runs["placement"].ok
    assert runs["servers"].ok
    assert not runs["servers"].truncated
    assert runs["servers"].elapsed_s < 30.0  # far from its timeout_s: nobody waited for it


def test_an_audit_whose_timeout_passes_while_it_waits_is_truncated() -> None:
    audit = ServersAudit(ServersAuditConfig(cloud="lab"))
    key = audit.servers_key()
    audit.share = Share([("servers", key), ("placement", key)]).seat("servers")
    budget = Budget(deadline_s=0.0, items_left=100)
    cloud = _cloud()
    assert list(audit.every_server(cloud, budget)) == []
    assert cloud.events == []  # placement never joined: no listing
    assert budget.truncated == ("reached timeout_s waiting for the audits that share the "
                                "server listing (placement, servers)")  # fmt: skip


def test_an_audit_that_does_not_say_it_shares_lists_on_its_own() -> None:
    audit = ServersAudit(ServersAuditConfig(cloud="lab"))
    key = audit.servers_key()
    audit.share = Share([("ports", key), ("placement", key)]).seat("servers")
    cloud = _cloud()
    assert len(list(audit.every_server(cloud, Budget(deadline_s=float("inf"), items_left=9)))) == 2
    assert cloud.events == ["list servers"]  # its own, at once: it waited for nobody


def test_a_join_past_its_deadline_makes_nothing() -> None:
    share = Share([("servers", "k"), ("placement", "k")])
    made: list[int] = []
    got = share.seat("servers").join("k", lambda: made.append(1), deadline_s=0.0)
    assert got is None
    assert made == []  # not made: placement never joined
    share.gone("servers")
    share.seat("placement").join("k", lambda: made.append(2), deadline_s=float("inf"))
    assert made == [2]


def test_a_shared_listing_reads_only_as_far_as_its_furthest_reader() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for n in range(10):
            pulled.append(n)
            yield n

    shared = SharedListing(items(), what="servers", sharers=("a", "b"))
    a, b = shared.walk(), shared.walk()
    assert [next(a) for _ in range(3)] == [0, 1, 2]
    assert [next(b) for _ in range(2)] == [0, 1]
    assert pulled == [0, 1, 2]
    assert list(b) == list(range(2, 10))
    assert list(a) == list(range(3, 10))
    assert pulled == list(range(10))  # each item read once


def test_a_shared_listing_that_failed_fails_its_later_readers_too() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise PluginError("cannot list servers: nova-api answered 503")

    shared = SharedListing(items(), what="servers", sharers=("b", "a"))
    with pytest.raises(PluginError, match=r"503 \(the servers listing shared by the audits "
                       r"a, b, failed after 1 items\)"):  # fmt: skip
        list(shared.walk())
    late = shared.walk()
    assert next(late) == 1  # what was read before the error
    with pytest.raises(PluginError, match="503"):
        next(late)
