"""The audit plugins' classification, on plain records (what they read of the cloud): the
servers, services and rally audits; and every audit plugin's docstring example validates."""

from __future__ import annotations

import re
import tomllib

import pytest

from actors.audits._kit import bounded, wall_s
from actors.audits.rally import rally_debris, rally_task_mark
from actors.audits.servers import ServerRow, classify_server, down_compute_hosts
from actors.audits.services import AgentRow, ServiceRow, classify_agent, classify_service
from osha.audit import Budget, audit_entries, available_audits, load_audit

NOW_S = 1_800_000_000.0
STUCK_S = 600.0


def _server(**fields: object) -> ServerRow:
    base: dict[str, object] = {"id": "s1", "name": "vm", "status": "ACTIVE",
                               "updated_s": NOW_S - 10}  # fmt: skip
    return ServerRow(**{**base, **fields})  # type: ignore[arg-type]


def _classify(row: ServerRow, down: frozenset[str] = frozenset()) -> str | None:
    found = classify_server(row, now_s=NOW_S, stuck_after_s=STUCK_S, down_hosts=down)
    return None if found is None else found.state


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, None),
        ({"status": "ERROR"}, "ERROR"),  # ERROR at once, however recent
        ({"status": "BUILD"}, None),  # still booting: not yet stuck
        ({"status": "BUILD", "updated_s": NOW_S - STUCK_S}, "stuck:BUILD"),
        ({"task_state": "deleting"}, None),
        ({"task_state": "deleting", "updated_s": NOW_S - 3600}, "stuck:task:deleting"),
        ({"status": "BUILD", "updated_s": None}, "stuck:BUILD"),  # no time: not provably fresh
        ({"host": "cmp-1"}, "host-down"),
        ({"host": "cmp-2"}, None),
        ({"status": "ERROR", "host": "cmp-1"}, "ERROR"),  # the worst state wins
    ],
)
def test_servers_classification(fields: dict[str, object], state: str | None) -> None:
    assert _classify(_server(**fields), frozenset({"cmp-1"})) == state


def test_server_debris_carries_its_evidence_and_time() -> None:
    row = _server(status="ERROR", host="cmp-1", fault="NoValidHost", osha_made=True)
    found = classify_server(row, now_s=NOW_S, stuck_after_s=STUCK_S,
                            down_hosts=frozenset({"cmp-1"}))  # fmt: skip
    assert found is not None
    assert found.since_s == NOW_S - 10
    assert found.osha_made
    assert "nova-compute down" in found.evidence
    assert "fault: NoValidHost" in found.evidence


def test_down_compute_hosts_only_counts_nova_compute() -> None:
    class S:
        def __init__(self, binary: str, host: str, state: str) -> None:
            self.binary, self.host, self.state = binary, host, state

    hosts = down_compute_hosts([S("nova-compute", "c1", "down"), S("nova-compute", "c2", "up"),
                                S("nova-scheduler", "ctl1", "down")])  # fmt: skip
    assert hosts == frozenset({"c1"})


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, None),
        ({"forced_down": True, "status": "disabled"}, "forced-down"),
        ({"status": "disabled", "disabled_reason": "maintenance"}, "disabled"),
        ({"state": "down"}, "down"),
    ],
)
def test_services_classification(fields: dict[str, object], state: str | None) -> None:
    base: dict[str, object] = {"id": "7", "binary": "nova-compute", "host": "c1",
                               "state": "up", "status": "enabled"}  # fmt: skip
    row = ServiceRow(**{**base, **fields})  # type: ignore[arg-type]
    found = classify_service(row, down_is_debris=True)
    assert (None if found is None else found.state) == state
    if found is not None:
        assert found.resource_id == "nova-compute@c1"  # the same service before and after


def test_a_down_service_can_be_left_to_the_monitors() -> None:
    row = ServiceRow(id="1", binary="nova-compute", host="c1", state="down", status="enabled")
    assert classify_service(row, down_is_debris=False) is None


def test_agents_classification() -> None:
    ok = AgentRow(id="a", binary="neutron-l3-agent", host="n1", alive=True)
    assert classify_agent(ok) is None
    dead = classify_agent(AgentRow(id="a", binary="neutron-l3-agent", host="n1", alive=False))
    assert dead is not None
    assert dead.state == "not-alive"
    down = classify_agent(AgentRow(id="a", binary="b", host="n1", alive=True, admin_up=False))
    assert down is not None
    assert down.state == "admin-down"


@pytest.mark.parametrize(
    ("name", "mark"),
    [
        ("c_rally_1f2e3d4c_Ab12Cd", "1f2e3d4c"),  # a context's project
        ("s_rally_deadbeef_x", "deadbeef"),  # a scenario's server
        ("rally_1f2e3d4c_x", None),
        ("my_rally_server", None),
        ("", None),
    ],
)
def test_rally_names(name: str, mark: str | None) -> None:
    assert rally_task_mark(name) == mark
    found = rally_debris("project", "p1", name)
    assert (found is None) == (mark is None)
    if found is not None:
        assert mark in found.evidence
        assert found.state == "left-by-rally"


def test_openstack_timestamps_are_wall_seconds() -> None:
    assert wall_s("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert wall_s("2027-01-15T08:00:00.000000") == 1_800_000_000.0  # no zone: UTC
    assert wall_s("2027-01-15T09:00:00+01:00") == 1_800_000_000.0
    assert wall_s(None) is None
    assert wall_s("yesterday") is None


def test_bounded_stops_a_listing_at_the_budget() -> None:
    budget = Budget(deadline_s=float("inf"), items_left=3)
    assert list(bounded(iter(range(100)), budget)) == [0, 1, 2]
    assert budget.truncated == "reached max_items"


def test_every_audit_plugin_has_a_docstring_config_and_valid_example() -> None:
    names = available_audits()
    assert {"servers", "services", "rally", "ports", "placement"} <= set(names)
    for name in names:
        cls = load_audit(name)
        doc = cls.__doc__ or ""
        assert doc.strip(), f"{name} has no docstring"
        m = re.search(r"Profile:\s+\[\[audits\]\]\s+(.*)", doc)
        assert m is not None, f"{name}: no 'Profile:  [[audits]] ...' line"
        # the docstring's keys are separated by two spaces: one TOML line each
        typed = tomllib.loads("\n".join(re.split(r"\s{2,}", m.group(1).strip())))
        entries, problems = audit_entries([{**typed, "cloud": "lab"}], file="example")
        assert not problems, f"{name}: {problems}"
        assert entries[0].plugin == name
