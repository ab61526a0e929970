"""Cheap authenticated GETs per catalog service type, for ``openstack-api``.

Each probe needs a valid token and touches the service's API (and so its token validation),
without creating anything: a one-item list, or the token itself for keystone. A version
document (``GET /``) is *not* enough: most services serve it without authentication, so it
answers while keystone, the database or the service's auth is broken.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_PROBES", "Endpoint", "probe_url"]

#: service type → (version segment the path lives under, path). ``None``: the catalog URL
#: already is the versioned root.
DEFAULT_PROBES: dict[str, tuple[str | None, str]] = {
    "identity": ("v3", "/auth/tokens"),  # validates our own token (X-Subject-Token)
    "compute": (None, "/flavors?limit=1"),
    "network": ("v2.0", "/networks?limit=1&fields=id"),
    "image": ("v2", "/images?limit=1"),
    "placement": (None, "/resource_providers?name=osha-probe"),
    "volumev3": (None, "/volumes?limit=1"),
    "block-storage": (None, "/volumes?limit=1"),
    "orchestration": (None, "/stacks?limit=1"),
    "load-balancer": ("v2", "/lbaas/loadbalancers?limit=1"),
    "dns": ("v2", "/zones?limit=1"),
    "key-manager": ("v1", "/secrets?limit=1"),
    "object-store": (None, "?limit=1&format=json"),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    service_type: str
    url: str

    @property
    def target(self) -> str:
        return f"endpoint:{self.service_type}"


def probe_url(endpoint: Endpoint, overrides: dict[str, str]) -> str:
    """The URL to GET for an endpoint: a profile override, a default, or the URL itself."""
    base = endpoint.url.rstrip("/")
    if endpoint.service_type in overrides:
        return base + overrides[endpoint.service_type]
    version, path = DEFAULT_PROBES.get(endpoint.service_type, (None, ""))
    if version is not None and not base.endswith("/" + version):
        base = f"{base}/{version}"
    return base + path
