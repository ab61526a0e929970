"""``rally``: what Rally's contexts and scenarios created and its cleanup did not delete:
projects, users and servers whose names Rally generated (``c_rally_<task>_<random>`` for a
context, ``s_rally_<task>_<random>`` for a scenario)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actors.audits._kit import CloudAudit, bounded, wall_s
from osha.audit import AuditConfig, Budget, Debris

__all__ = ["RallyAudit", "RallyAuditConfig", "rally_debris", "rally_task_mark"]

#: Rally's generated names: a prefix letter, "rally", the task id's first 8 hex digits
RALLY_NAME = re.compile(r"^[a-z]+_rally_([0-9a-f]{8})_")
#: what every name RALLY_NAME matches contains: nova's server filter (a regex nova's database
#: and its build requests both read alike); empty: no filter (scripts/bench_audit.py --ab)
RALLY_MARK = "_rally_"


@dataclass(frozen=True, slots=True, kw_only=True)
class RallyAuditConfig(AuditConfig):
    """``projects``/``users``/``servers``: which listings to read. ``name_pattern``: the
    regular expression of Rally's generated names (its group 1 is the task mark)."""

    projects: bool = True
    users: bool = True
    servers: bool = True
    name_pattern: str = RALLY_NAME.pattern

    def __post_init__(self) -> None:
        AuditConfig.__post_init__(self)
        try:
            re.compile(self.name_pattern)
        except re.error as exc:
            raise ValueError(f"name_pattern {self.name_pattern!r} is not a regex: {exc}") from exc


def rally_task_mark(name: str, pattern: str = RALLY_NAME.pattern) -> str | None:
    """The Rally task mark in a generated name (``c_rally_1f2e3d4c_ab12`` → ``1f2e3d4c``),
    or None if the name is not Rally's."""
    m = re.match(pattern, name or "")
    if m is None:
        return None
    return m.group(1) if m.groups() else ""


def rally_debris(
    kind: str,
    resource_id: str,
    name: str,
    *,
    since_s: float | None = None,
    pattern: str = RALLY_NAME.pattern,
) -> Debris | None:
    """A resource named by Rally as debris, or None if Rally did not name it."""
    mark = rally_task_mark(name, pattern)
    if mark is None:
        return None
    evidence = f"{kind} {name!r} was named by Rally (task {mark or '?'}) and is still there"
    return Debris(kind=kind, resource_id=resource_id, state="left-by-rally",
                  evidence=evidence, since_s=since_s, name=name, osha_made=False)  # fmt: skip


class RallyAudit(CloudAudit[RallyAuditConfig]):
    """Projects, users and servers that Rally created and did not delete (a task killed
    before its cleanup). Needs admin (it lists every project, user and server).

    Profile:  [[audits]]  plugin = "rally"  servers = true
    """

    config_type = RallyAuditConfig

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        cfg = self.config
        pat = cfg.name_pattern
        if cfg.projects:
            for p in bounded(self.listing("projects", conn.identity.projects), budget):
                found = rally_debris("project", p.id, p.name or "", pattern=pat)
                if found is not None:
                    yield found
        if cfg.users:
            for u in bounded(self.listing("users", conn.identity.users), budget):
                found = rally_debris("user", u.id, u.name or "", pattern=pat)
                if found is not None:
                    yield found
        if cfg.servers:
            # nova keeps only the names with Rally's mark (its `name` filter is a regex; with
            # the default pattern every name it matches contains it): a page per few
            # hundred Rally servers, not per few hundred servers of the cloud
            mark: dict[str, Any] = {}
            if RALLY_MARK and pat == RALLY_NAME.pattern:
                mark["name"] = RALLY_MARK
            for s in bounded(self.servers(conn, **mark), budget):
                found = rally_debris("server", s.id, s.name or "", pattern=pat,
                                     since_s=wall_s(s.created_at))  # fmt: skip
                if found is not None:
                    yield found
