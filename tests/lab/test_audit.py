"""The audits against the lab (written at stop 24, NOT YET RUN: no lab that stop): every
audit only reads (its session sent GETs and no write), a server reset to ERROR is found by
``servers`` with its evidence, a project named as Rally names them by ``rally``, and
``cleanup = true`` deletes only the broken server osha made."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from osha.audit import AuditEntry, AuditRun, available_audits, load_audit, sweep
from osha.messages import Message, stamp
from osha.messages.audit import AuditWhen
from osha.schema import build
from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab

# An audit's time bound: one listing of the lab's few dozen servers, services and projects
# takes a few seconds; keystone took up to 10-20 s a request on the loaded machine (see
# test_monitors_openstack_api.PROBE_TIMEOUT_S), so a few of those plus a margin.
AUDIT_TIMEOUT_S = 120.0


def _entries(lab: Lab, **keys: Any) -> list[AuditEntry]:
    out = []
    for name in ("servers", "services", "rally"):
        assert name in available_audits()
        cls = load_audit(name)
        raw = {"cloud": lab.desc["cloud"], "clouds_yaml": lab.desc["clouds_yaml"],
               "timeout_s": AUDIT_TIMEOUT_S, **keys.get(name, {})}  # fmt: skip
        config, problems = build(cls.config_type, raw, file="test", key=name)
        assert not problems, problems
        out.append(AuditEntry(name, name, config))
    return out


def _sweep(entries: list[AuditEntry]) -> dict[str, AuditRun]:
    seq = itertools.count(1)

    def record(cls: type[Message], /, **fields: Any) -> Message:
        return stamp(cls, "test", next(seq), **fields)

    return {r.entry.id: r for r in sweep(entries, AuditWhen.ON_DEMAND, record)}


def test_every_audit_only_reads_the_lab(lab: Lab) -> None:
    runs = _sweep(_entries(lab))
    for name, run in runs.items():
        assert run.ok, f"{name}: {run.error}"
        assert run.calls is not None
        assert run.calls.sent, f"{name} sent nothing"
        assert run.calls.writes == [], f"{name} tried to write: {run.calls.writes}"


@pytest.fixture
def rally_project(lab: Lab) -> Iterator[Any]:
    identity = lab.cloud().identity
    project = identity.create_project(name=f"c_rally_deadbeef_{uuid.uuid4().hex[:8]}")
    yield project
    with contextlib.suppress(Exception):  # best effort: the test may have failed before
        identity.delete_project(project)


def test_a_server_in_error_and_a_rally_project_are_found(
    lab: Lab, server_cleanup: list[Any], rally_project: Any
) -> None:
    server = lab.boot_server(f"osha-audit-{uuid.uuid4().hex[:6]}")
    server_cleanup.append(server)
    lab.cloud().compute.reset_server_state(server, "error")  # nova's admin reset: ERROR
    runs = _sweep(_entries(lab))
    servers = {d.resource_id: d for d in runs["servers"].found}
    assert server.id in servers, runs["servers"]
    assert servers[server.id].state == "ERROR"
    assert servers[server.id].since_s is not None
    rally = {d.resource_id: d for d in runs["rally"].found}
    assert rally_project.id in rally
    assert "deadbeef" in rally[rally_project.id].evidence


def test_cleanup_deletes_only_the_broken_server_osha_made(
    lab: Lab, server_cleanup: list[Any]
) -> None:
    c = lab.cloud()
    mine = lab.boot_server(f"osha-audit-mine-{uuid.uuid4().hex[:6]}")
    other = lab.boot_server(f"osha-audit-other-{uuid.uuid4().hex[:6]}")
    server_cleanup.extend([mine, other])
    c.compute.set_server_metadata(mine, **{"osha-run": "audit-test"})  # as osha's load has
    for server in (mine, other):
        c.compute.reset_server_state(server, "error")
    entries = [e for e in _entries(lab, servers={"cleanup": True}) if e.id == "servers"]
    seq = itertools.count(1)

    def record(cls: type[Message], /, **fields: Any) -> Message:
        return stamp(cls, "test", next(seq), **fields)

    (run,) = sweep(entries, AuditWhen.AFTER, record, clean=True)
    assert run.ok, run.error
    assert [(d.resource_id, ok) for d, ok, _ in run.cleaned] == [(mine.id, True)]
    assert run.calls is not None
    assert [m for m, _ in run.calls.writes] == ["DELETE"]
    c.compute.wait_for_delete(mine, wait=int(lab.bounds.server_boot_s), interval=1)
    assert c.compute.get_server(other.id).status == "ERROR"  # not osha's: left alone
