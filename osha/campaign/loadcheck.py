"""The initial load's preflight: the cloud answers; the flavor, image, network and hosts a
``[[load]]`` names exist (``osha.campaign.load`` boots and deletes the servers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osha.campaign.load import connect
from osha.plugin import Finding
from osha.profile import LoadEntry, ServersLoadConfig

__all__ = ["check_load"]


def check_load(entry: LoadEntry) -> list[Finding]:
    """Preflight for one ``[[load]]``: the cloud answers; flavor, image and network exist."""
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    cfg = entry.config
    conn = connect(cfg)
    findings: list[Finding] = []
    try:
        lookups: list[tuple[str, str, Callable[[str], Any]]] = [
            ("flavor", cfg.flavor, conn.compute.find_flavor),
            ("image", cfg.image, conn.image.find_image),
        ]
        if cfg.network:
            lookups.append(("network", cfg.network, conn.network.find_network))
        for what, name, find in lookups:
            try:
                found = find(name)
            except os_exc.SDKException as exc:
                findings.append(Finding(f"cloud:{cfg.cloud}", False, f"{what} lookup: {exc}"))
                continue
            if found is None:
                findings.append(
                    Finding(
                        f"{what}:{name}",
                        False,
                        f"no {what} {name!r} in cloud {cfg.cloud!r}",
                        f"fix [[load]] {what} = ..., or create it",
                    )
                )
            else:
                findings.append(Finding(f"{what}:{name}", True, f"{what} found ({found.id})"))
        if cfg.hosts:
            findings.extend(_check_hosts(conn, cfg))
    finally:
        conn.close()
    return findings


def _check_hosts(conn: Any, cfg: ServersLoadConfig) -> list[Finding]:
    """Each of ``hosts`` runs a nova-compute the cloud knows (enabled and up)."""
    from openstack import exceptions as os_exc  # noqa: PLC0415 - optional dependency

    try:
        computes = {s.host: s for s in conn.compute.services(binary="nova-compute")}
    except os_exc.SDKException as exc:
        return [Finding(f"cloud:{cfg.cloud}", False, f"compute services lookup: {exc}")]
    findings = []
    for host in cfg.hosts:
        service = computes.get(host)
        if service is None:
            known = ", ".join(sorted(computes)) or "none"
            hint = f"fix [[load]] hosts = [...]; the cloud's: {known}"
            findings.append(Finding(f"host:{host}", False, f"no nova-compute on {host!r}", hint))
        elif service.status != "enabled" or service.state != "up":
            state = f"nova-compute@{host} is {service.status}/{service.state}"
            hint = "the load would fail to boot there: bring it up first"
            findings.append(Finding(f"host:{host}", False, state, hint))
        else:
            findings.append(Finding(f"host:{host}", True, "nova-compute enabled and up"))
    return findings
