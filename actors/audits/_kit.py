"""What the OpenStack audits share: a read-only connection, the cloud's timestamps as wall
seconds, a bounded walk over a paginated listing, and one JSON ``GET`` (placement has no
openstacksdk resource for every call an audit makes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from openstack.exceptions import NotFoundException

from actors.audits._shared import SharedListing
from actors.common.cloud import API_ERRORS, connect, describe_api_error
from osha.audit import Audit, AuditConfig, Budget
from osha.errors import PluginError

__all__ = ["CloudAudit", "ListedServer", "bounded", "get_json", "server_gone", "wall_s"]

#: one API call's timeout: a listing page of a few hundred servers on a loaded cloud
API_TIMEOUT_S = 30.0
#: the compute microversion of the audits' server listings: 2.1 already has every field they
#: read (status, task_state, host, fault, metadata, created, updated); None: openstacksdk's
#: newest (scripts/bench_audit.py --ab compares the two)
SERVERS_MV: str | None = "2.1"

C = TypeVar("C", bound=AuditConfig)
T = TypeVar("T")


def wall_s(stamp: str | None) -> float | None:
    """An OpenStack timestamp (``2026-12-05T03:12:44Z``, ``2026-12-05T03:12:44.000000``,
    no zone meaning UTC) as wall seconds; None if absent or unreadable."""
    if not stamp:
        return None
    text = stamp.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def bounded(items: Iterable[T], budget: Budget) -> Iterator[T]:
    """The items of a (lazily paginated) listing, until the budget says stop."""
    for item in items:
        if not budget.take():
            return
        yield item


def get_json(api: Any, path: str, *, what: str, microversion: str | None = None,
             cannot: str = "read") -> Any:  # fmt: skip
    """``GET path`` on an openstacksdk service proxy (``conn.placement``), its JSON body; 404
    is None (the item is gone). Any other failure says which call failed (``cannot read
    WHAT: ...``; ``cannot``: the verb)."""
    try:
        resp = api.get(path, microversion=microversion)
    except API_ERRORS as exc:
        raise PluginError(f"cannot {cannot} {what}: {describe_api_error(exc)}",
                          hint=f"does the cloud answer, and may this user {cannot} it (admin)?",
                          ) from exc  # fmt: skip
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise PluginError(f"cannot {cannot} {what}: GET {path} answered {resp.status_code}",
                          hint=f"may this user {cannot} it (admin)?")  # fmt: skip
    try:
        return resp.json()
    except ValueError as exc:
        raise PluginError(f"cannot {cannot} {what}: GET {path} is not JSON: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedServer:
    """One server of nova's listing, read from its JSON, with openstacksdk's ``Server``
    attribute names (what the audits read). Not a ``Server``: building one costs about 6 ms
    on the loaded lab (1.2 s for a page of 200 that nova answered in 1.7 s, stop 30), more
    than a third of the listing's time; this costs microseconds."""

    id: str
    name: str = ""
    status: str = ""
    task_state: str | None = None
    updated_at: str | None = None
    compute_host: str | None = None
    fault: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> ListedServer:
        """From one item of ``GET /servers[/detail]`` (a listing of ids has id and name)."""
        return cls(id=str(raw["id"]), name=raw.get("name") or "", status=raw.get("status") or "",
                   task_state=raw.get("OS-EXT-STS:task_state"), updated_at=raw.get("updated"),
                   compute_host=raw.get("OS-EXT-SRV-ATTR:host"), fault=raw.get("fault"),
                   metadata=raw.get("metadata"))  # fmt: skip


def server_gone(conn: Any, server_id: str) -> bool:
    """Whether nova answers 404 for the server. A listing paged while servers come and go
    may miss one, so an audit asks for each of its few candidates once more."""
    try:
        conn.compute.get_server(server_id)
    except NotFoundException:
        return True
    except API_ERRORS as exc:
        raise PluginError(f"cannot read server {server_id}: {describe_api_error(exc)}",
                          hint="does the cloud answer?") from exc  # fmt: skip
    return False


class CloudAudit(Audit[C]):
    """An audit of an OpenStack cloud through openstacksdk (``cloud`` from clouds.yaml)."""

    def connect(self) -> Any:
        cfg = self.config
        return connect(cfg.cloud, clouds_yaml=cfg.clouds_yaml, region=cfg.region,
                       timeout_s=min(API_TIMEOUT_S, cfg.timeout_s))  # fmt: skip

    def servers(self, conn: Any, *, details: bool = True, all_projects: bool = True,
                **filters: Any) -> Iterator[Any]:  # fmt: skip
        """Every server (that nova's ``filters`` keep, e.g. ``name``: a regex), page by page
        (``page_size``), at :data:`SERVERS_MV`."""
        query: dict[str, Any] = {"details": details, "all_projects": all_projects,
                                 "limit": self.config.page_size, **filters}  # fmt: skip
        if SERVERS_MV is not None:
            query["microversion"] = SERVERS_MV
        return self.listing("servers", conn.compute.servers, **query)

    def servers_key(self, *, all_projects: bool = True) -> str:
        """The key of its listing of every server in the sweep's share: audits of the same
        cloud, scope and page size list the same servers."""
        cfg = self.config
        return (f"servers cloud={cfg.cloud} clouds_yaml={cfg.clouds_yaml} region={cfg.region} "
                f"all_projects={all_projects} page_size={cfg.page_size}")  # fmt: skip

    def every_server(self, conn: Any, budget: Budget, *, details: bool = True,
                     all_projects: bool = True) -> Iterator[ListedServer]:  # fmt: skip
        """Every server, within ``budget``: from the sweep's one listing (in detail) when
        other audits of the sweep share it (:meth:`servers_key` in their ``shares()``), else
        its own (``details``: False lists ids and names only, cheaper for nova)."""
        key = self.servers_key(all_projects=all_projects)
        sharers = self.share.sharers(key)
        if len(sharers) < 2 or self.share.audit not in sharers:  # nobody to share with
            return bounded(self.server_pages(conn, details=details, all_projects=all_projects),
                           budget)  # fmt: skip

        def make() -> SharedListing:
            mine = self.server_pages(conn, details=True, all_projects=all_projects)
            return SharedListing(mine, what="servers", sharers=sharers)

        shared = self.share.join(key, make, deadline_s=budget.deadline_s)
        if shared is None:
            budget.truncated = budget.truncated or (
                "reached timeout_s waiting for the audits that share the server listing ("
                + ", ".join(sorted(sharers)) + ")"
            )  # fmt: skip
            return iter(())
        return bounded(shared.walk(), budget)

    def server_pages(self, conn: Any, *, details: bool, all_projects: bool,
                     ) -> Iterator[ListedServer]:  # fmt: skip
        """Every server, a page (``page_size``) at a time as its reader gets to it, read as
        JSON (:class:`ListedServer`) at :data:`SERVERS_MV`; ``details``: False lists ids and
        names only. A page shorter than ``page_size``, or without a next link, is the last."""
        limit = self.config.page_size
        query: dict[str, Any] = {"all_tenants": 1} if all_projects else {}
        marker = ""
        while True:  # bounded by the reader's Budget: each page yields at least one item
            page_query = {**query, "limit": limit, **({"marker": marker} if marker else {})}
            path = f"/servers{'/detail' if details else ''}?{urlencode(page_query)}"
            body = get_json(conn.compute, path, what="servers", microversion=SERVERS_MV,
                            cannot="list")  # fmt: skip
            if body is None:
                raise PluginError(f"cannot list servers: GET {path} answered 404",
                                  hint="is this cloud's compute endpoint nova's?")  # fmt: skip
            page = body.get("servers") or []
            yield from map(ListedServer.of, page)
            if len(page) < limit or not body.get("servers_links"):
                return
            marker = str(page[-1]["id"])

    @staticmethod
    def listing(what: str, call: Any, **query: Any) -> Iterator[Any]:
        """``call(**query)`` as an iterator whose API errors say which listing failed."""
        try:
            yield from call(**query)
        except API_ERRORS as exc:
            raise PluginError(
                f"cannot list {what}: {describe_api_error(exc)}",
                hint="does the cloud answer, and may this user list it (admin)?",
            ) from exc
