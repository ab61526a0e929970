"""``placement``: allocations whose consumer is no server (nor a migration in progress), the
classic nova leak after a boot or a move whose conductor died past the claim; servers that
run without an allocation (the reverse); and the resource providers of compute nodes that no
longer exist."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from actors.audits._kit import CloudAudit, bounded, get_json, server_gone, wall_s
from actors.audits.servers import OSHA_META_KEY, ServerRow, server_row
from osha.audit import AuditConfig, Budget, Debris

__all__ = [
    "ConsumerRow",
    "PlacementAudit",
    "PlacementAuditConfig",
    "ProviderRow",
    "classify_consumer",
    "classify_provider",
    "classify_unallocated",
]

#: placement microversions: 1.14 gives a provider's parent, 1.18 filters by trait
PROVIDERS_MV = "1.14"
COMPUTE_PROVIDERS_MV = "1.18"
#: the trait nova's resource tracker gives every compute node's provider
COMPUTE_TRAIT = "COMPUTE_NODE"
#: a migration in one of these states holds no allocation of its own any more
MIGRATION_DONE = frozenset({"completed", "confirmed", "reverted", "error", "failed", "done",
                            "cancelled", "finished"})  # fmt: skip
#: a server in one of these states runs on its host and must hold an allocation there
PLACED_STATUSES = frozenset({"ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "RESCUE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementAuditConfig(AuditConfig):
    """What to look for: ``consumers`` (allocations of no server), ``unallocated`` (servers
    placed on a host without an allocation), ``providers`` (compute providers of no compute
    node)."""

    consumers: bool = True
    unallocated: bool = True
    providers: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderRow:
    """A resource provider, as plain data; ``compute``: it has the ``COMPUTE_NODE`` trait."""

    id: str
    name: str
    compute: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerRow:
    """One consumer's allocations, as plain data: the providers (names) it holds resources
    on and what it holds (``VCPU=1, MEMORY_MB=512``)."""

    id: str
    providers: tuple[str, ...]
    resources: str


def classify_consumer(
    row: ConsumerRow,
    *,
    servers: frozenset[str],
    migrations: frozenset[str],
    deleted: ServerRow | None = None,
) -> Debris | None:
    """The consumer as debris if it is neither a server nor a migration in progress.
    ``deleted``: the consumer's server as nova still records it deleted, if it does: the
    allocation outlived it, so its deletion time is when the item became debris (it ties
    the item to a fault), and its name and osha's mark come with it."""
    if row.id in servers or row.id in migrations:
        return None
    was = "" if deleted is None else f" (server {deleted.name or deleted.id}, deleted)"
    evidence = (f"allocations of consumer {row.id}{was}, which is no server and no migration "
                f"in progress: {row.resources}")  # fmt: skip
    return Debris(kind="allocation", resource_id=row.id, state="no-consumer",
                  evidence=evidence, since_s=None if deleted is None else deleted.updated_s,
                  name="" if deleted is None else deleted.name,
                  osha_made=deleted is not None and deleted.osha_made)  # fmt: skip


def classify_provider(row: ProviderRow, *, computes: frozenset[str]) -> Debris | None:
    """A compute node's provider as debris if no hypervisor has its name or id
    (``computes``: every hypervisor's hostname and id)."""
    if not row.compute or row.name in computes or row.id in computes:
        return None
    evidence = f"resource provider {row.name} ({COMPUTE_TRAIT}) is no hypervisor nova lists"
    return Debris(kind="resource-provider", resource_id=row.id, state="compute-gone",
                  evidence=evidence, since_s=None, name=row.name, osha_made=False)  # fmt: skip


def classify_unallocated(server: ServerRow, *, consumers: frozenset[str]) -> Debris | None:
    """A server placed on a host (running, stopped, paused...) that holds no allocation."""
    if server.status.upper() not in PLACED_STATUSES or not server.host:
        return None
    if server.id in consumers:
        return None
    evidence = f"server status {server.status} on host {server.host} holds no allocation"
    return Debris(kind="server-allocation", resource_id=server.id, state="unallocated",
                  evidence=evidence, since_s=server.updated_s, name=server.name,
                  osha_made=server.osha_made)  # fmt: skip


def _resources(held: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((held.get("resources") or {}).items()))


@dataclass(slots=True)
class _Snapshot:
    """What one sweep read, in the order it read it (allocations first: a consumer seen
    there existed before the servers were listed)."""

    providers: list[ProviderRow]
    consumers: dict[str, ConsumerRow]
    computes: frozenset[str] = frozenset()
    migrations: frozenset[str] = frozenset()
    servers: tuple[ServerRow, ...] = ()


class PlacementAudit(CloudAudit[PlacementAuditConfig]):
    """Allocations whose consumer is no server (nor a migration in progress), servers placed
    on a host without an allocation, and compute providers no hypervisor matches. Reads every
    provider and its allocations, then the hypervisors, the migrations and the servers (page
    by page; in a sweep, the listing the other audits share, which starts once this audit has
    read the allocations); each candidate is asked for once more before it is reported (its
    allocation still there and its server 404, or its allocation still missing). Nothing is
    judged if a bound cut a listing short (recorded as truncated). Needs admin.

    Profile:  [[audits]]  plugin = "placement"  unallocated = true
    """

    config_type = PlacementAuditConfig

    def shares(self) -> tuple[str, ...]:
        cfg = self.config
        return (self.servers_key(),) if cfg.consumers or cfg.unallocated else ()

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        cfg = self.config
        snap = self._read(conn, budget)
        if budget.truncated:
            return  # an incomplete listing would make healthy items look orphaned
        if cfg.consumers:
            yield from self._orphans(conn, snap, budget)
        if cfg.unallocated:
            held = frozenset(snap.consumers)
            for server in snap.servers:
                found = classify_unallocated(server, consumers=held)
                if found and budget.take() and not self._held(conn, server.id):
                    yield found
        if cfg.providers:
            for p in snap.providers:
                found = classify_provider(p, computes=snap.computes)
                if found is not None:
                    yield found

    def _orphans(self, conn: Any, snap: _Snapshot, budget: Budget) -> Iterator[Debris]:
        """The allocations of no server, each confirmed (still held, its server 404) and
        dated by its deleted server when nova still records it."""
        ids = frozenset(s.id for s in snap.servers)
        for row in snap.consumers.values():
            if classify_consumer(row, servers=ids, migrations=snap.migrations) is None:
                continue
            if budget.take() and self._held(conn, row.id) and server_gone(conn, row.id):
                deleted = self._deleted(conn, row.id)
                found = classify_consumer(row, servers=ids, migrations=snap.migrations,
                                          deleted=deleted)  # fmt: skip
                if found is not None:
                    yield found

    def _read(self, conn: Any, budget: Budget) -> _Snapshot:
        cfg = self.config
        api = conn.placement
        rps = get_json(api, "/resource_providers", what="resource providers",
                       microversion=PROVIDERS_MV) or {}  # fmt: skip
        computes = (
            get_json(
                api,
                f"/resource_providers?required={COMPUTE_TRAIT}",
                what="compute providers",
                microversion=COMPUTE_PROVIDERS_MV,
            )
            or {}
        )
        compute_ids = {p["uuid"] for p in computes.get("resource_providers", [])}
        snap = _Snapshot([], {})
        for p in bounded(rps.get("resource_providers", []), budget):
            uuid = p["uuid"]
            row = ProviderRow(id=uuid, name=p.get("name", ""), compute=uuid in compute_ids)
            snap.providers.append(row)
            path = f"/resource_providers/{row.id}/allocations"
            body = get_json(api, path, what=f"allocations on {row.name}") or {}
            self._add(snap.consumers, row.name, (body.get("allocations") or {}).items())
        # after the allocations: a consumer seen there existed before the servers are listed
        # (in a sweep, the one listing it shares starts only once this audit joins it, here:
        # the hypervisors and migrations are read while the others page through it)
        listed = self.every_server(conn, budget) if cfg.consumers or cfg.unallocated else None
        hypervisors = self.listing("hypervisors", conn.compute.hypervisors, details=False)
        snap.computes = frozenset(
            x for h in bounded(hypervisors, budget) for x in (str(h.id), h.name or "") if x
        )  # fmt: skip
        if cfg.consumers:
            migrations = self.listing("migrations", conn.compute.migrations, limit=cfg.page_size)
            snap.migrations = frozenset(
                m.uuid for m in bounded(migrations, budget)
                if m.uuid and (m.status or "").lower() not in MIGRATION_DONE
            )  # fmt: skip
        if listed is not None:
            snap.servers = tuple(map(server_row, listed))
        return snap

    @staticmethod
    def _add(into: dict[str, ConsumerRow], provider: str, held: Iterable[Any]) -> None:
        for consumer, what in held:
            prior = into.get(consumer)
            text = f"{_resources(what)} ({provider})"
            into[consumer] = ConsumerRow(
                id=consumer,
                providers=(*(prior.providers if prior else ()), provider),
                resources=f"{prior.resources}; {text}" if prior else text,
            )

    @staticmethod
    def _deleted(conn: Any, server_id: str) -> ServerRow | None:
        """The server as nova still records it deleted (admin: ``deleted=True``), if it does
        (until its rows are archived)."""
        path = f"/servers/detail?all_tenants=1&deleted=True&uuid={server_id}"
        body = get_json(conn.compute, path, what=f"deleted server {server_id}") or {}
        for s in body.get("servers", []):
            if s.get("id") == server_id:
                return ServerRow(id=server_id, name=s.get("name") or "",
                                 status=s.get("status") or "", updated_s=wall_s(s.get("updated")),
                                 osha_made=OSHA_META_KEY in (s.get("metadata") or {}))  # fmt: skip
        return None

    @staticmethod
    def _held(conn: Any, consumer: str) -> bool:
        """Whether the consumer holds an allocation now (``GET /allocations/{consumer}``)."""
        body = get_json(conn.placement, f"/allocations/{consumer}",
                        what=f"allocations of {consumer}") or {}  # fmt: skip
        return bool(body.get("allocations"))
