"""Roles: a disruptor's target named by what a node does now, resolved at inject time.

``target = { group = "controller", pick = "vip-holder", role = { vip = "10.0.0.10" } }``
strikes the node of ``group`` that holds the VIP when the fault is due, not when the run was
planned. The plan (``osha faults plan``, ``--dry-run``) shows the role as the fault's node
(``role:vip-holder``); ``osha faults check`` resolves it against the live cloud and fails
when the cloud has no such role (no node holds the VIP); the lease records the node and the
evidence (``resolved ctl-2: holds VIP 10.0.0.10``).

Core never imports a plugin: a resolver is a plugin, found through the entry-point group
``osha.roles`` (name = the ``pick`` value). It is a callable
``resolve(candidates, options, ssh) -> Resolution``: ``candidates`` are the group's hosts in
inventory order, ``options`` the target's ``role`` table, ``ssh`` the disruptor's SSH
settings; it raises :class:`RoleError` when no candidate has the role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Protocol

from osha.entrypoints import load_entry
from osha.errors import PluginError
from osha.inventory import Host
from osha.ssh import SshConfig

__all__ = [
    "ROLE_GROUP",
    "ROLE_PREFIX",
    "Resolution",
    "RoleError",
    "RoleResolver",
    "available_roles",
    "resolve_role",
    "role_of",
]

ROLE_GROUP = "osha.roles"
#: A planned fault's node while its role is unresolved: ``role:vip-holder``.
ROLE_PREFIX = "role:"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The node that has the role now, and why (for the lease and the ledger)."""

    node: str
    evidence: str

    def describe(self) -> str:
        return f"resolved {self.node}: {self.evidence}"


class RoleError(PluginError):
    """No candidate has the role (or none could be asked): the fault is not injected."""


class RoleResolver(Protocol):
    def __call__(
        self, candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
    ) -> Resolution: ...


@cache
def available_roles() -> dict[str, str]:
    """Every registered role: ``pick`` value → ``module:function``."""
    return {ep.name: ep.value for ep in entry_points(group=ROLE_GROUP)}


def role_of(node: str) -> str | None:
    """The role of a planned fault's node (``role:vip-holder`` → ``vip-holder``), else None."""
    return node.removeprefix(ROLE_PREFIX) if node.startswith(ROLE_PREFIX) else None


def _load(role: str) -> RoleResolver:
    resolver = load_entry(ROLE_GROUP, role, "role")
    if not callable(resolver):
        raise PluginError(f"role {role!r} is not callable")
    return resolver


def resolve_role(
    role: str, candidates: Sequence[Host], options: Mapping[str, str], ssh: SshConfig
) -> Resolution:
    """The candidate that has ``role`` now. RoleError when none has it; the node it names is
    always one of ``candidates``."""
    if not candidates:
        raise RoleError(f"role {role!r}: no candidates", hint="check target.group")
    found = _load(role)(candidates, options, ssh)
    names = [h.name for h in candidates]
    if found.node not in names:
        raise RoleError(
            f"role {role!r} resolved to {found.node!r}, not a node of the target group",
            hint=f"the group has: {', '.join(names)}",
        )
    return found
