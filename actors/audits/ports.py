"""``ports``: neutron ports owned by a server (``device_owner`` ``compute:*``) whose server is
gone: the ports of deleted servers, bound or left DOWN, that nova's delete did not clean up
(a conductor or compute killed in the middle of a boot or a delete leaves them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actors.audits._kit import CloudAudit, bounded, server_gone, wall_s
from osha.audit import AuditConfig, Budget, Debris

__all__ = ["PortRow", "PortsAudit", "PortsAuditConfig", "classify_port"]

#: a port is a server's when neutron says nova owns it (``compute:<availability zone>``)
COMPUTE_OWNER = "compute:"


@dataclass(frozen=True, slots=True, kw_only=True)
class PortsAuditConfig(AuditConfig):
    """``settle_s``: a port changed less than this long ago is not judged (nova deletes a
    server's ports while it deletes the server; a port the listing catches in between is
    not debris yet)."""

    settle_s: float = 30.0

    def __post_init__(self) -> None:
        AuditConfig.__post_init__(self)
        if self.settle_s < 0:
            raise ValueError(f"settle_s = {self.settle_s}: must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PortRow:
    """What the audit reads of one port, as plain data."""

    id: str
    name: str
    status: str  # ACTIVE | DOWN | BUILD
    device_owner: str
    device_id: str
    host: str = ""  # binding:host_id
    network_id: str = ""
    updated_s: float | None = None


def classify_port(
    row: PortRow, *, servers: frozenset[str], now_s: float, settle_s: float
) -> Debris | None:
    """The port as debris when its owner is a server that no longer exists (``servers``: the
    ids of every server there is), or None: not a server's port, its server is there, or it
    changed too recently to judge."""
    if not row.device_owner.startswith(COMPUTE_OWNER) or not row.device_id:
        return None
    if row.device_id in servers:
        return None
    if row.updated_s is not None and now_s - row.updated_s < settle_s:
        return None
    bound = f"bound to host {row.host}" if row.host else "not bound"
    evidence = (
        f"port of server {row.device_id} ({row.device_owner}), which no longer exists; "
        f"status {row.status}, {bound}, network {row.network_id or '-'}"
    )
    return Debris(kind="port", resource_id=row.id, state=f"server-gone:{row.status or '?'}",
                  evidence=evidence, since_s=row.updated_s, name=row.name,
                  osha_made=False)  # fmt: skip


def port_row(port: Any) -> PortRow:
    """An ``openstack.network.v2.port.Port`` as a :class:`PortRow`."""
    return PortRow(
        id=port.id, name=port.name or "", status=port.status or "",
        device_owner=port.device_owner or "", device_id=port.device_id or "",
        host=port.binding_host_id or "", network_id=port.network_id or "",
        updated_s=wall_s(port.updated_at),
    )  # fmt: skip


class PortsAudit(CloudAudit[PortsAuditConfig]):
    """Ports owned by a server (``compute:*``) whose server no longer exists, bound or DOWN.
    Reads every port page by page, then every server page by page; a port whose
    server the listing does not show is asked for once more (``GET`` its server: a server
    made or moved while the listings paged is not debris). If the server listing is
    cut short by a bound, nothing is judged (the audit is recorded as truncated). Needs
    admin (every project's ports and servers).

    Profile:  [[audits]]  plugin = "ports"  settle_s = 30
    """

    config_type = PortsAuditConfig

    def shares(self) -> tuple[str, ...]:
        return (self.servers_key(),)

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        cfg = self.config
        ports = self.listing("ports", conn.network.ports, limit=cfg.page_size)
        owned = [
            row for row in map(port_row, bounded(ports, budget))
            if row.device_owner.startswith(COMPUTE_OWNER) and row.device_id
        ]  # fmt: skip
        # after the ports: a port seen above had its server, if any, before this listing
        there = frozenset(s.id for s in self.every_server(conn, budget, details=False))
        if budget.truncated:
            return  # an incomplete server list would make live servers' ports look orphaned
        now_s = time.time()
        for row in owned:
            found = classify_port(row, servers=there, now_s=now_s, settle_s=cfg.settle_s)
            if found is not None and budget.take() and server_gone(conn, row.device_id):
                yield found
