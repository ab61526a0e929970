"""The ``ports`` and ``placement`` audits: their classification on plain records, and their
walk over a fake cloud (no network): candidates asked for once more, nothing judged when a
bound cut a listing short."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from openstack.exceptions import NotFoundException

from actors.audits.placement import (
    ConsumerRow,
    PlacementAudit,
    PlacementAuditConfig,
    ProviderRow,
    classify_consumer,
    classify_provider,
    classify_unallocated,
)
from actors.audits.ports import PortRow, PortsAudit, PortsAuditConfig, classify_port
from actors.audits.servers import ServerRow
from osha.audit import Budget, Debris

NOW_S = 1_800_000_000.0
SERVERS = frozenset({"s-live"})


def _port(**fields: Any) -> PortRow:
    base: dict[str, Any] = {"id": "p1", "name": "", "status": "DOWN",
                            "device_owner": "compute:nova", "device_id": "s-gone",
                            "updated_s": NOW_S - 600}  # fmt: skip
    return PortRow(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "server-gone:DOWN"),  # a DOWN port of a deleted server
        ({"status": "ACTIVE", "host": "cmp-1"}, "server-gone:ACTIVE"),  # still bound
        ({"device_id": "s-live"}, None),  # its server is there
        ({"device_owner": "network:dhcp"}, None),  # not a server's port
        ({"device_owner": "", "device_id": ""}, None),  # a free port
        ({"device_id": ""}, None),
        ({"updated_s": NOW_S - 5}, None),  # changed just now: nova may be deleting it
        ({"updated_s": None}, "server-gone:DOWN"),  # no time: not provably fresh
    ],
)
def test_ports_classification(fields: dict[str, Any], state: str | None) -> None:
    found = classify_port(_port(**fields), servers=SERVERS, now_s=NOW_S, settle_s=30.0)
    assert (None if found is None else found.state) == state
    if found is not None:
        assert found.kind == "port"
        assert found.resource_id == "p1"
        assert "s-gone" in found.evidence
        assert found.since_s == fields.get("updated_s", NOW_S - 600)


def test_placement_consumer_classification() -> None:
    row = ConsumerRow(id="c1", providers=("cmp-1",), resources="VCPU=1 (cmp-1)")
    found = classify_consumer(row, servers=SERVERS, migrations=frozenset())
    assert found is not None
    assert (found.kind, found.resource_id, found.state) == ("allocation", "c1", "no-consumer")
    assert "VCPU=1" in found.evidence
    assert classify_consumer(row, servers=frozenset({"c1"}), migrations=frozenset()) is None
    assert classify_consumer(row, servers=SERVERS, migrations=frozenset({"c1"})) is None


def test_an_orphan_allocation_is_dated_by_its_deleted_server() -> None:
    row = ConsumerRow(id="c1", providers=("cmp-1",), resources="VCPU=1 (cmp-1)")
    gone = ServerRow(id="c1", name="vm-7", status="DELETED", updated_s=NOW_S - 30,
                     osha_made=True)  # fmt: skip
    found = classify_consumer(row, servers=SERVERS, migrations=frozenset(), deleted=gone)
    assert found is not None
    assert (found.since_s, found.name, found.osha_made) == (NOW_S - 30, "vm-7", True)
    assert "server vm-7, deleted" in found.evidence


def test_placement_provider_classification() -> None:
    computes = frozenset({"cmp-1", "11111111-2222"})
    assert classify_provider(ProviderRow(id="r1", name="cmp-1", compute=True),
                             computes=computes) is None  # fmt: skip
    assert classify_provider(ProviderRow(id="11111111-2222", name="renamed", compute=True),
                             computes=computes) is None  # fmt: skip
    # a provider that is not a compute node's (no COMPUTE_NODE trait) is not judged
    assert classify_provider(ProviderRow(id="r3", name="cmp-9", compute=False),
                             computes=computes) is None  # fmt: skip
    gone = classify_provider(ProviderRow(id="r4", name="cmp-9", compute=True), computes=computes)
    assert gone is not None
    assert (gone.kind, gone.resource_id, gone.state, gone.name) == (
        "resource-provider", "r4", "compute-gone", "cmp-9")  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "debris"),
    [
        ({}, True),
        ({"id": "c1"}, False),  # holds an allocation
        ({"host": ""}, False),  # not placed
        ({"status": "ERROR"}, False),  # the servers audit's business
        ({"status": "SHUTOFF"}, True),  # stopped, still placed on its host
        ({"status": "SHELVED_OFFLOADED"}, False),  # no host, no allocation: right
    ],
)
def test_placement_unallocated_classification(fields: dict[str, Any], debris: bool) -> None:
    base: dict[str, Any] = {"id": "s1", "name": "vm", "status": "ACTIVE", "host": "cmp-1",
                            "updated_s": NOW_S}  # fmt: skip
    found = classify_unallocated(ServerRow(**{**base, **fields}), consumers=frozenset({"c1"}))
    assert (found is not None) == debris
    if found is not None:
        assert (found.kind, found.state) == ("server-allocation", "unallocated")


# -- the walk over a fake cloud ---------------------------------------------------------------


@dataclass
class _Resp:
    body: Any
    status_code: int = 200

    def json(self) -> Any:
        return self.body


@dataclass
class _Cloud:
    """A fake openstacksdk connection: servers, ports, placement; records what was asked."""

    servers: list[str]
    ports: list[PortRow] = field(default_factory=list)
    allocations: dict[str, dict[str, Any]] = field(default_factory=dict)  # rp -> consumers
    hypervisors: tuple[str, ...] = ("cmp-1",)
    deleted_meanwhile: frozenset[str] = frozenset()  # listed, then 404 on a GET
    #: servers nova still records as deleted (``deleted=True``): id -> its JSON
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.compute = SimpleNamespace(
            servers=self._servers, get_server=self._get_server,
            hypervisors=lambda **q: iter([SimpleNamespace(id=f"id-{h}", name=h)
                                          for h in self.hypervisors]),
            migrations=lambda **q: iter(()), get=self._compute_get,
        )  # fmt: skip
        self.network = SimpleNamespace(ports=self._ports)
        self.placement = SimpleNamespace(get=self._placement)

    def _servers(self, **query: Any) -> Iterator[Any]:
        for sid in self.servers:
            yield SimpleNamespace(id=sid, name=sid, status="ACTIVE", task_state=None,
                                  updated_at=None, compute_host="cmp-1", fault=None,
                                  metadata={})  # fmt: skip

    def _get_server(self, server_id: str) -> Any:
        self.asked.append(server_id)
        if server_id not in self.servers or server_id in self.deleted_meanwhile:
            raise NotFoundException(f"server {server_id} not found")
        return SimpleNamespace(id=server_id)

    def _compute_get(self, path: str, microversion: str | None = None) -> _Resp:
        if "deleted=True" not in path:  # the server listing, one page: as compute.servers
            details = path.startswith("/servers/detail?")
            return _Resp({"servers": [_server_json(s, details)
                                      for s in self.compute.servers(details=details)]})  # fmt: skip
        self.asked.append(path)
        server_id = path.rsplit("uuid=", 1)[1]
        return _Resp({"servers": [self.deleted[server_id]] if server_id in self.deleted else []})

    def _ports(self, **query: Any) -> Iterator[Any]:
        for p in self.ports:
            yield SimpleNamespace(id=p.id, name=p.name, status=p.status,
                                  device_owner=p.device_owner, device_id=p.device_id,
                                  binding_host_id=p.host, network_id=p.network_id,
                                  updated_at="2026-12-05T03:00:00Z")  # fmt: skip

    def _placement(self, path: str, microversion: str | None = None) -> _Resp:
        self.asked.append(path)
        rps = [{"uuid": rp, "name": rp} for rp in self.allocations]
        if path.startswith("/resource_providers?required="):  # compute nodes: named cmp-*
            return _Resp({"resource_providers": [r for r in rps if r["name"].startswith("cmp-")]})
        if path == "/resource_providers":
            return _Resp({"resource_providers": rps})
        if path.startswith("/resource_providers/"):
            rp = path.split("/")[2]
            return _Resp({"allocations": self.allocations[rp]})
        consumer = path.rsplit("/", 1)[1]  # /allocations/{consumer}
        held = {rp: c[consumer] for rp, c in self.allocations.items() if consumer in c}
        return _Resp({"allocations": held})


def _server_json(server: Any, details: bool) -> dict[str, Any]:
    """A fake server (openstacksdk's attribute names) as nova's listing has it."""
    if not details:
        return {"id": server.id, "name": server.name}
    return {"id": server.id, "name": server.name, "status": server.status,
            "OS-EXT-STS:task_state": server.task_state, "updated": server.updated_at,
            "OS-EXT-SRV-ATTR:host": server.compute_host, "fault": server.fault,
            "metadata": server.metadata}  # fmt: skip


def _run(audit: Any, cloud: _Cloud, items: int = 1000) -> tuple[list[Debris], Budget]:
    budget = Budget(deadline_s=float("inf"), items_left=items)
    return list(audit.findings(cloud, budget)), budget


def test_ports_audit_reports_the_port_of_a_deleted_server_only() -> None:
    cloud = _Cloud(["s-live"], ports=[
        _port(id="p-orphan"), _port(id="p-ok", device_id="s-live"),
        _port(id="p-dhcp", device_owner="network:dhcp", device_id="dhcp1"),
    ])  # fmt: skip
    found, budget = _run(PortsAudit(PortsAuditConfig(cloud="lab")), cloud)
    assert [d.resource_id for d in found] == ["p-orphan"]
    assert cloud.asked == ["s-gone"]  # only the candidate was asked for once more
    assert not budget.truncated


def test_ports_audit_judges_nothing_when_the_server_listing_was_cut_short() -> None:
    cloud = _Cloud(["s-live", "s-2", "s-3"], ports=[_port(id="p-1", device_id="s-3")])
    found, budget = _run(PortsAudit(PortsAuditConfig(cloud="lab")), cloud, items=3)
    assert found == []  # s-3 was on a page not read: its port must not look orphaned
    assert cloud.asked == []  # nothing judged: not even asked for once more
    assert budget.truncated == "reached max_items"


def _placement_cloud(**kw: Any) -> _Cloud:
    allocations = {"cmp-1": {"s-live": {"resources": {"VCPU": 1}},
                             "c-orphan": {"resources": {"VCPU": 1, "MEMORY_MB": 512}}},
                   "cmp-gone": {}}  # fmt: skip
    return _Cloud(["s-live", "s-bare"], allocations=allocations, **kw)


def test_placement_audit_finds_orphans_unallocated_servers_and_gone_computes() -> None:
    cloud = _placement_cloud()
    found, budget = _run(PlacementAudit(PlacementAuditConfig(cloud="lab")), cloud)
    by = {(d.kind, d.resource_id): d.state for d in found}
    assert by == {
        ("allocation", "c-orphan"): "no-consumer",
        ("server-allocation", "s-bare"): "unallocated",
        ("resource-provider", "cmp-gone"): "compute-gone",
    }
    assert not budget.truncated
    # each candidate asked for once more: its allocation, and (a consumer) its server
    assert "/allocations/c-orphan" in cloud.asked
    assert "c-orphan" in cloud.asked
    assert "/allocations/s-bare" in cloud.asked


def test_placement_audit_dates_an_orphan_by_the_server_nova_records_deleted() -> None:
    cloud = _placement_cloud(deleted={"c-orphan": {
        "id": "c-orphan", "name": "s_rally_1f2e3d4c_x", "status": "DELETED",
        "updated": "2027-01-15T08:00:00Z", "metadata": {}}})  # fmt: skip
    audit = PlacementAudit(PlacementAuditConfig(cloud="lab", unallocated=False, providers=False))
    (found,), _ = _run(audit, cloud)
    assert (found.resource_id, found.since_s) == ("c-orphan", 1_800_000_000.0)
    assert found.name == "s_rally_1f2e3d4c_x"
    assert any("deleted=True" in p and p.endswith("uuid=c-orphan") for p in cloud.asked)


def test_placement_audit_skips_a_consumer_whose_server_answers_after_all() -> None:
    cloud = _placement_cloud()
    cloud.servers.append("c-orphan")  # listed nowhere it was looked for, but nova has it
    audit = PlacementAudit(PlacementAuditConfig(cloud="lab", unallocated=False))
    cloud.compute.servers = lambda **q: iter([SimpleNamespace(
        id="s-live", name="", status="ACTIVE", task_state=None, updated_at=None,
        compute_host="cmp-1", fault=None, metadata={})])  # fmt: skip
    found, _ = _run(audit, cloud)
    assert [d.resource_id for d in found] == ["cmp-gone"]


def test_placement_audit_judges_nothing_when_a_listing_was_cut_short() -> None:
    cloud = _placement_cloud()
    found, budget = _run(PlacementAudit(PlacementAuditConfig(cloud="lab")), cloud, items=3)
    assert found == []
    assert not [p for p in cloud.asked if p.startswith("/allocations/")]  # nothing judged
    assert budget.truncated == "reached max_items"


def test_placement_audit_finds_an_orphan_on_a_provider_no_compute_manages() -> None:
    """A sharing or nested provider (or the lab test's own): its allocations are read too,
    and the provider itself, not a compute node's, is no debris."""
    cloud = _placement_cloud()
    cloud.allocations["shared-disk"] = {"s-live": {"resources": {"DISK_GB": 1}},
                                        "c-elsewhere": {"resources": {"DISK_GB": 5}}}  # fmt: skip
    found, _ = _run(PlacementAudit(PlacementAuditConfig(cloud="lab")), cloud)
    by = {(d.kind, d.resource_id): d for d in found}
    orphan = by[("allocation", "c-elsewhere")]
    assert "DISK_GB=5 (shared-disk)" in orphan.evidence
    assert ("resource-provider", "shared-disk") not in by
    assert ("allocation", "s-live") not in by
