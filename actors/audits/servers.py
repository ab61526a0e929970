"""``servers``: servers left broken: in ERROR, stuck in BUILD or in a task, or on a compute
host whose nova-compute service is down."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from actors.audits._kit import CloudAudit, bounded, wall_s
from osha.audit import AuditConfig, Budget, Debris
from osha.errors import PluginError

__all__ = ["ServerRow", "ServersAudit", "ServersAuditConfig", "classify_server"]

#: osha's load servers carry this metadata key (osha.campaign.load.META_KEY)
OSHA_META_KEY = "osha-run"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServersAuditConfig(AuditConfig):
    """``stuck_after_s``: a server in BUILD, or with a task (``deleting``, ``spawning``...),
    whose last update is older than this is stuck; ``all_projects``: every project's
    servers (needs admin), else the user's own."""

    stuck_after_s: float = 600.0
    all_projects: bool = True

    def __post_init__(self) -> None:
        AuditConfig.__post_init__(self)
        if self.stuck_after_s < 0:
            raise ValueError(f"stuck_after_s = {self.stuck_after_s}: must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRow:
    """What the audit reads of one server, as plain data."""

    id: str
    name: str
    status: str
    task_state: str = ""
    updated_s: float | None = None
    host: str = ""
    fault: str = ""
    osha_made: bool = False


def classify_server(
    row: ServerRow, *, now_s: float, stuck_after_s: float, down_hosts: frozenset[str]
) -> Debris | None:
    """The server as debris (its worst state), or None if it looks healthy."""
    age_s = None if row.updated_s is None else now_s - row.updated_s
    stale = age_s is None or age_s >= stuck_after_s
    status = row.status.upper()
    if status == "ERROR":
        state = "ERROR"
    elif status == "BUILD" and stale:
        state = "stuck:BUILD"
    elif row.task_state and stale:
        state = f"stuck:task:{row.task_state}"
    elif row.host and row.host in down_hosts and status not in ("DELETED", "SOFT_DELETED"):
        state = "host-down"
    else:
        return None
    age = "unknown" if age_s is None else f"{age_s:.0f} s ago"
    evidence = (
        f"status {row.status}, task_state {row.task_state or '-'}, updated {age}, "
        f"host {row.host or '-'}" + (" (nova-compute down)" if row.host in down_hosts else "")
        + (f"; fault: {row.fault}" if row.fault else "")
    )  # fmt: skip
    return Debris(kind="server", resource_id=row.id, state=state, evidence=evidence,
                  since_s=row.updated_s, name=row.name, osha_made=row.osha_made)  # fmt: skip


def server_row(server: Any) -> ServerRow:
    """A ``openstack.compute.v2.server.Server`` as a :class:`ServerRow`."""
    fault = server.fault or {}
    meta = server.metadata or {}
    return ServerRow(
        id=server.id, name=server.name or "", status=server.status or "",
        task_state=server.task_state or "", updated_s=wall_s(server.updated_at),
        host=server.compute_host or "", fault=str(fault.get("message", ""))[:200],
        osha_made=OSHA_META_KEY in meta,
    )  # fmt: skip


def down_compute_hosts(services: Iterable[Any]) -> frozenset[str]:
    """The hosts whose nova-compute service is down."""
    return frozenset(
        s.host for s in services if s.binary == "nova-compute" and s.state == "down"
    )  # fmt: skip


class ServersAudit(CloudAudit[ServersAuditConfig]):
    """Servers in ERROR, stuck in BUILD or in a task for longer than ``stuck_after_s``, or on
    a host whose nova-compute is down. Reads the compute service list once, then every
    server page by page (``page_size``), within ``timeout_s`` and ``max_items``.

    With ``cleanup = true`` it deletes, after the campaign, the broken servers osha made (the
    metadata ``osha-run``, osha's load), never another.

    Profile:  [[audits]]  plugin = "servers"  stuck_after_s = 600
    """

    config_type = ServersAuditConfig

    def clean(self, conn: Any, item: Debris) -> str:
        if not item.osha_made:  # the sweep never asks; a second lock on the door
            raise PluginError(f"server {item.resource_id} was not made by osha: left alone")
        conn.compute.delete_server(item.resource_id, ignore_missing=True)
        return "delete requested (osha made it)"

    def shares(self) -> tuple[str, ...]:
        return (self.servers_key(all_projects=self.config.all_projects),)

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        cfg = self.config
        down = down_compute_hosts(
            bounded(self.listing("compute services", conn.compute.services), budget)
        )
        for server in self.every_server(conn, budget, all_projects=cfg.all_projects):
            found = classify_server(server_row(server), now_s=time.time(),
                                    stuck_after_s=cfg.stuck_after_s, down_hosts=down)  # fmt: skip
            if found is not None:
                yield found
