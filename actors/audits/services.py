"""``services``: nova services disabled or forced down, and neutron agents not alive or
administratively down. Compared with the audit before the campaign, so that a service an
operator disabled on purpose is pre-existing, not blamed on the run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actors.audits._kit import CloudAudit, bounded, wall_s
from osha.audit import AuditConfig, Budget, Debris

__all__ = [
    "AgentRow",
    "ServiceRow",
    "ServicesAudit",
    "ServicesAuditConfig",
    "classify_agent",
    "classify_service",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicesAuditConfig(AuditConfig):
    """``compute_services``/``network_agents``: which lists to read. ``down_is_debris``: a
    nova service whose state is ``down`` (not only disabled or forced down) is debris too:
    after the recovery, every service should be up."""

    compute_services: bool = True
    network_agents: bool = True
    down_is_debris: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRow:
    """A nova service, as plain data."""

    id: str
    binary: str
    host: str
    state: str  # up | down
    status: str  # enabled | disabled
    forced_down: bool = False
    disabled_reason: str = ""
    updated_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRow:
    """A neutron agent, as plain data."""

    id: str
    binary: str
    host: str
    alive: bool
    admin_up: bool = True
    heartbeat_s: float | None = None


def classify_service(row: ServiceRow, *, down_is_debris: bool) -> Debris | None:
    """The service as debris (forced down, disabled, or down), or None."""
    if row.forced_down:
        state = "forced-down"
    elif row.status == "disabled":
        state = "disabled"
    elif down_is_debris and row.state == "down":
        state = "down"
    else:
        return None
    why = f", reason {row.disabled_reason!r}" if row.disabled_reason else ""
    evidence = f"{row.binary}@{row.host}: state {row.state}, status {row.status}{why}"
    return Debris(kind="nova-service", resource_id=f"{row.binary}@{row.host}", state=state,
                  evidence=evidence, since_s=row.updated_s, name=row.id,
                  osha_made=False)  # fmt: skip


def classify_agent(row: AgentRow) -> Debris | None:
    """The agent as debris (not alive, or administratively down), or None."""
    if not row.alive:
        state = "not-alive"
    elif not row.admin_up:
        state = "admin-down"
    else:
        return None
    evidence = f"{row.binary}@{row.host}: alive {row.alive}, admin_state_up {row.admin_up}"
    return Debris(kind="network-agent", resource_id=f"{row.binary}@{row.host}", state=state,
                  evidence=evidence, since_s=row.heartbeat_s, name=row.id,
                  osha_made=False)  # fmt: skip


class ServicesAudit(CloudAudit[ServicesAuditConfig]):
    """Nova services forced down, disabled (or down), and neutron agents not alive or
    administratively down. Needs admin.

    Profile:  [[audits]]  plugin = "services"  network_agents = true
    """

    config_type = ServicesAuditConfig

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        cfg = self.config
        if cfg.compute_services:
            for s in bounded(self.listing("compute services", conn.compute.services), budget):
                row = ServiceRow(
                    id=str(s.id), binary=s.binary or "", host=s.host or "", state=s.state or "",
                    status=s.status or "", forced_down=bool(s.is_forced_down),
                    disabled_reason=s.disabled_reason or "", updated_s=wall_s(s.updated_at),
                )  # fmt: skip
                found = classify_service(row, down_is_debris=cfg.down_is_debris)
                if found is not None:
                    yield found
        if cfg.network_agents:
            for a in bounded(self.listing("network agents", conn.network.agents), budget):
                agent = AgentRow(
                    id=str(a.id), binary=a.binary or "", host=a.host or "",
                    alive=bool(a.is_alive), admin_up=bool(a.is_admin_state_up),
                    heartbeat_s=wall_s(a.last_heartbeat_at),
                )  # fmt: skip
                found = classify_agent(agent)
                if found is not None:
                    yield found
