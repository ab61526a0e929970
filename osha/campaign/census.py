"""The census of a campaign's cloud: resource counts before the initial load and after the
teardown, and what the run created that still exists (its servers and volumes by name prefix
and ``osha-run`` tag, its ``spread`` server group by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha.errors import PluginError

__all__ = ["META_KEY", "Census", "census", "ours"]

#: the metadata key of everything the initial load creates; its value is the run id
META_KEY = "osha-run"


@dataclass(frozen=True, slots=True)
class Census:
    """Resource counts (None: the cloud has no such service) and osha's leftovers."""

    counts: dict[str, int | None]
    leftovers: tuple[str, ...] = ()


def census(conn: Any, run_id: str, prefix: str) -> Census:
    """Count servers, networks, volumes and ports (all projects, as far as the credentials
    allow), and list what osha's run ``run_id`` created that still exists."""
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    try:
        return _census(conn, run_id, prefix)
    except os_exc.SDKException as exc:
        raise PluginError(f"census: {exc}", hint="is the cloud's API answering?") from exc


def _census(conn: Any, run_id: str, prefix: str) -> Census:
    counts: dict[str, int | None] = {}
    servers = list(conn.compute.servers(all_projects=True))
    counts["servers"] = len(servers)
    counts["networks"] = sum(1 for _ in conn.network.networks())
    counts["ports"] = sum(1 for _ in conn.network.ports())
    if conn.has_service("block-storage") or conn.has_service("volumev3"):
        volumes = list(conn.block_storage.volumes(all_projects=True))
        counts["volumes"] = len(volumes)
    else:
        volumes = []
        counts["volumes"] = None
    leftovers = [f"server:{s.name}:{s.id}" for s in servers if ours(s, run_id, prefix)]
    leftovers += [f"volume:{v.name}:{v.id}" for v in volumes if ours(v, run_id, prefix)]
    group = f"{prefix}-{run_id}"  # a `spread` load's server group (no metadata to tag it)
    # the caller's own project (where the load made it): all_projects needs an admin policy
    leftovers += [f"server_group:{g.name}:{g.id}" for g in conn.compute.server_groups()
                  if g.name == group]  # fmt: skip
    return Census(counts, tuple(leftovers))


def ours(resource: Any, run_id: str, prefix: str) -> bool:
    """``resource`` (a server or volume) was created by run ``run_id``: its name and tag."""
    name = resource.name or ""
    meta = resource.metadata or {}
    return name.startswith(f"{prefix}-{run_id}-") and meta.get(META_KEY) == run_id
