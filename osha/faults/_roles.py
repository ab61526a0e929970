"""A disruptor's planned node → the host to strike: itself, or the group's host that has the
role now (:mod:`osha.roles`; ``role:vip-holder`` in the plan). The resolution is recorded in
the lease (``revert[ROLE_KEY]``)."""

from __future__ import annotations

from osha import inventory
from osha.faults._config import FaultConfig
from osha.roles import Resolution, resolve_role, role_of
from osha.schedule import resolve_targets

__all__ = ["ROLE_KEY", "candidates_of", "host_of"]

#: The lease's ``revert`` key that records a role's resolution (``resolved ctl-2: holds VIP
#: 10.0.0.10``), as the dead-man switch's key is recorded there: plain data, in the ledger.
ROLE_KEY = "osha_resolved"


def candidates_of(config: FaultConfig, hosts: dict[str, inventory.Host], node: str) -> list[str]:
    """The nodes a planned fault may strike: the role's group, or the node itself."""
    if role_of(node) is None:
        return [node]
    return resolve_targets(config.target, list(hosts.values()))


def host_of(
    config: FaultConfig, hosts: dict[str, inventory.Host], node: str
) -> tuple[inventory.Host, Resolution | None]:
    """The host a planned fault strikes now, and the role's resolution (None: no role).
    RoleError (a PluginError) when the cloud has no such role now."""
    role = role_of(node)
    if role is None:
        return hosts[node], None
    candidates = [hosts[n] for n in candidates_of(config, hosts, node)]
    found = resolve_role(role, candidates, config.target.role, config.ssh)
    return hosts[found.node], found
