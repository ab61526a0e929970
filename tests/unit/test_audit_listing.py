"""The audits' server listings (stop 29, the 500-server bench): one helper at compute
microversion 2.1 with the audit's page size, and the rally audit's server-side name filter."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from actors.audits import _kit
from actors.audits.rally import RALLY_MARK, RallyAudit, RallyAuditConfig
from actors.audits.servers import ServersAudit, ServersAuditConfig
from osha.audit import Budget


class _Compute:
    """A fake ``conn.compute``: the servers it was asked for, and each listing's query."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.queries: list[dict[str, Any]] = []
        self.gets: list[tuple[str, str | None]] = []

    def servers(self, **query: Any) -> Iterator[Any]:
        self.queries.append(query)
        for i, name in enumerate(self.names):
            yield SimpleNamespace(
                id=f"s{i}",
                name=name,
                created_at="2026-12-05T03:00:00Z",
                status="ACTIVE",
                task_state=None,
                updated_at=None,
                compute_host="cmp-1",
                fault=None,
                metadata={},
            )

    def get(self, path: str, microversion: str | None = None) -> Any:
        """The audits' own pager: one page, every server, as nova's JSON."""
        self.gets.append((path, microversion))
        body = {"servers": [{"id": s.id, "name": s.name, "status": s.status}
                            for s in self.servers()]}  # fmt: skip
        return SimpleNamespace(status_code=200, json=lambda: body)

    def services(self) -> Iterator[Any]:
        return iter(())


def _budget() -> Budget:
    return Budget(deadline_s=float("inf"), items_left=1000)


def test_the_server_listing_asks_microversion_2_1_with_the_page_size() -> None:
    conn = SimpleNamespace(compute=_Compute(["a"]))
    audit = ServersAudit(ServersAuditConfig(cloud="lab", page_size=321, all_projects=False))
    assert list(audit.findings(conn, _budget())) == []
    # read as JSON (openstacksdk's Server objects cost more than nova's page, stop 30)
    assert conn.compute.gets == [("/servers/detail?limit=321", "2.1")]
    assert _kit.SERVERS_MV == "2.1"


def test_the_server_listing_pages_on_with_the_last_id_as_marker() -> None:
    pages = [{"servers": [{"id": "a"}, {"id": "b"}], "servers_links": [{"rel": "next"}]},
             {"servers": [{"id": "c"}, {"id": "d"}], "servers_links": [{"rel": "next"}]},
             {"servers": []}]  # fmt: skip
    asked: list[str] = []

    def get(path: str, microversion: str | None = None) -> Any:
        asked.append(path)
        body = pages[len(asked) - 1]
        return SimpleNamespace(status_code=200, json=lambda: body)

    audit = ServersAudit(ServersAuditConfig(cloud="lab", page_size=2))
    conn = SimpleNamespace(compute=SimpleNamespace(get=get))
    got = [s.id for s in audit.server_pages(conn, details=True, all_projects=True)]
    assert got == ["a", "b", "c", "d"]
    assert asked == ["/servers/detail?all_tenants=1&limit=2",
                     "/servers/detail?all_tenants=1&limit=2&marker=b",
                     "/servers/detail?all_tenants=1&limit=2&marker=d"]  # fmt: skip


def _rally(names: list[str], **cfg: Any) -> tuple[list[str], list[dict[str, Any]]]:
    compute = _Compute(names)
    conn = SimpleNamespace(compute=compute)
    audit = RallyAudit(RallyAuditConfig(cloud="lab", projects=False, users=False, **cfg))
    return [d.name for d in audit.findings(conn, _budget())], compute.queries


def test_the_rally_audit_lets_nova_keep_only_names_with_rallys_mark() -> None:
    # the fake ignores the filter: the audit's own pattern still decides
    found, queries = _rally(["s_rally_1f2e3d4c_ab", "x_rally_nothex_cd", "web-1"])
    assert found == ["s_rally_1f2e3d4c_ab"]
    assert [q.get("name") for q in queries] == [RALLY_MARK]


def test_the_rally_audit_with_its_own_pattern_lists_every_server() -> None:
    found, queries = _rally(["bench-7", "web-1"], name_pattern=r"^bench-(\d)")
    assert found == ["bench-7"]
    assert "name" not in queries[0]
