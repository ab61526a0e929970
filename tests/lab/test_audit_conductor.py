"""Issue 18's acceptance on the conductor's own debris, ON DEMAND (marker ``conductor_debris``:
the lab tier, ``-m lab``, does not select it; one campaign: 12 min at load 20-40 on the two
cores, stop 28; 163-166 s at load 3-6, 7-10 min at load 9-42, stop 29; 7-13 min, stop 30)::

    OSHA_LAB_INSTANCE=N .venv/bin/python -m pytest tests/lab -m conductor_debris -s

It runs ``profiles/lab-conductor-debris.toml`` as shipped (nova-conductor stopped on ctl-1 at
T+5 s for 40 s and on ctl-2 at T+10 s for 30 s, in the middle of Rally's boots; five audits,
``max_new_debris = 0`` each) and checks, against the cloud as the test itself reads it:

- every item the faults left for real (a server, project or user the run made and left, an
  allocation of no server) is found by the audit after the campaign as **new**, and each one
  whose state began inside a fault's window (plus the attribution's grace) is tied to that
  fault; the verdict fails on ``max_new_debris``;
- debris planted before the run (a server reset to ERROR, an allocation of no consumer) is
  reported **pre-existing**, not blamed on the run.

**The placement orphan is planted, not provoked.** The lab's nova (34.0.0) cannot leave one
from a conductor that dies past the claim: such a boot stays a build request, listed as a
server in BUILD, whose allocation has a live consumer (the ``servers`` audit's debris, not
``placement``'s); and every delete of a server that never reached a compute frees its
allocation (``nova/compute/api.py``, ``API._delete``: each path of a build request, a cell0
instance or an instance without a host calls ``_local_delete_cleanup``, which calls
``delete_allocation_for_instance(force=True)``), so Rally's cleanup frees what it claimed.
The test prints every orphan it did not plant, to keep the evidence. So while the
conductors are out it plants the classic leak itself, for a server that nova deletes without
them: one booted before the run with a flavor no compute can hold (``osha-test-nowhere``,
m1.tiny's size requiring a trait, ``CUSTOM_OSHA_TEST_NOWHERE``, that no provider has; both made
by the test and deleted after the run) fails in the scheduler (NoValidHost) and sits in ERROR
in cell0, with no host and no allocation (checked; it is pre-existing debris of the
``servers`` audit, and healed after). While both conductors are stopped the test deletes it:
nova-api does it itself, at once (``API._delete``: no host, so ``_local_delete`` in cell0,
which frees its allocation and records it deleted before the DELETE answers; no conductor,
no compute). Then one allocation is put back for its uuid through the placement API. The
audit dates the orphan by the deletion, which falls inside the conductors' windows whatever
the load, and the test requires it tied to a conductor fault. (Stop 29's design deleted a
server on a compute just after a conductor came back: at load 14 nova-compute's delete met a
``MessagingTimeout`` and nova recorded it 202 s after the last revert, past the attribution's
120 s grace, so the orphan was tied to nothing. This design, three runs at load 9-42: the
delete took 0.9-3.6 s with both conductors still out, the orphan tied each time.)

**The faults fell in the middle of Rally's boots** (:func:`_across_the_faults`): a Rally
iteration began before the last revert and ran past the first inject, finished or cut off
(stop 30: a boot in flight in the conductors' windows stayed in BUILD until Rally's 300 s
boot timeout in 3 of 4 runs; the teardown's abort waits for it, and if Rally is killed first,
240 s after the abort, the runner records it as ``runner.unfinished``: stop 29 lost it);
or the run left a server of Rally's, found new, made before the last revert.

**The orphan sits on a provider no nova-compute manages** (``osha-test-orphan-rp``, made by
the test with 1 GB of MEMORY_MB, deleted after the run). On a compute node's provider nova
healed it (stop 28, run 4): the compute's ``update_available_resource`` (every 60 s) removes
an allocation on its own provider whose consumer nova records as a *deleted* instance
(``ResourceTracker._remove_deleted_instances_allocations``; cmp log: ``Deleted allocation
for instance <gone>``, 30 s after the plant), so the audit rightly found 0 new. A resource
tracker reads only its own compute node's provider, so an allocation elsewhere stays: still
an allocation of a deleted server (a leak on a sharing or nested provider is the same
debris), and the placement audit reads every provider's allocations, not only compute
nodes'. An allocation of a uuid nova never knew (the pre-existing plant, on a compute
provider) is kept anyway (``has allocations ... but is not found in the database``).
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from osha.analysis import Analysis, analyze
from osha.audit import ATTRIBUTION_GRACE_S, Judged, Origin
from osha.messages import Message
from osha.messages.campaign import CampaignVerdict
from osha.messages.runner import RunnerIteration, RunnerUnfinished
from tests.lab.bounds import PREFLIGHT_S, SWEEP_S, WARMUP_S
from tests.lab.client import Lab, wait_for
from tests.lab.scheduler_run import (
    make_provider,
    plant_allocation,
    remove_provider,
    start_campaign,
    tidy_after,
)
from tests.lab.test_campaign import _of, _profile, _records

pytestmark = pytest.mark.conductor_debris

PROFILE = "lab-conductor-debris.toml"
SERVICE = "nova-conductor"
CONTROLLERS = ("ctl-1", "ctl-2")
AUDITS = ("servers", "services", "rally", "ports", "placement")
#: the provider of the orphan planted during the faults, which no resource tracker reads
ORPHAN_RP = "osha-test-orphan-rp"
#: Rally's generated names (its default ``name_format``: ``s_rally_1f2e3d4c_...``)
RALLY_NAME = re.compile(r"^[a-z]+_rally_")
#: the profile's Rally runner's last line, after which the test adds a key
RALLY_ARGS = 'args = { duration = 150, concurrency = 2, image = "tiny" }'
#: a trait no resource provider has, and the flavor that requires it (fits no compute)
NOWHERE_TRAIT = "CUSTOM_OSHA_TEST_NOWHERE"
NOWHERE_FLAVOR = "osha-test-nowhere"
#: the profile's baseline, and the start of ctl-2's stop (ctl-1's is at T+5 s)
BASELINE_S, BOTH_OUT_S = 30.0, 10.0
#: the campaign's phases bound it (preflight, two sweeps, warm-up, baseline, chaos, recovery,
#: teardown); a hang guard above their sum on the loaded machine, as test_campaign._start's
CAMPAIGN_HANG_S = 1800.0


@dataclass(frozen=True)
class Planted:
    old_server: str  # reset to ERROR before the campaign
    doomed_server: str  # in ERROR before the campaign (NoValidHost), deleted during it
    old_consumer: str  # an allocation of no consumer, before the campaign
    new_consumer: str  # the uuid of a server deleted after the faults began, re-allocated


@dataclass(frozen=True)
class ConductorRun:
    code: int
    out: str
    analysis: Analysis
    records: list[Message]
    planted: Planted
    left: dict[str, set[str]]  # what the test itself finds the run left: audit -> ids


def _conductors_out(lab: Lab) -> bool:
    return all(lab.service_pid(node, SERVICE) is None for node in CONTROLLERS)


def _a_conductor_back(lab: Lab) -> bool:
    return any(lab.service_pid(node, SERVICE) is not None for node in CONTROLLERS)


def _consumers(lab: Lab) -> set[str]:
    """Every consumer that holds an allocation on a compute node's provider."""
    p = lab.cloud().placement
    resp = p.get("/resource_providers?required=COMPUTE_NODE", microversion="1.18")
    assert resp.status_code == 200, resp.text
    out: set[str] = set()
    for rp in resp.json()["resource_providers"]:
        held = p.get(f"/resource_providers/{rp['uuid']}/allocations")
        assert held.status_code == 200, held.text
        out |= set(held.json()["allocations"])
    return out


def _rally_named(items: Any) -> set[str]:
    return {i.id for i in items if RALLY_NAME.match(i.name or "")}


def _allocated(lab: Lab, consumer: str) -> bool:
    resp = lab.cloud().placement.get(f"/allocations/{consumer}")
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["allocations"])


def _nowhere_flavor(lab: Lab) -> Any:
    """A flavor no compute can hold: m1.tiny's size, requiring a trait no resource provider
    has (made here, so placement answers no candidates rather than 400 for a trait it does
    not know). A boot of it fails in the scheduler (NoValidHost) and lands in ERROR in
    cell0. One left by an earlier run is reused; :func:`_remove_nowhere` removes both."""
    c = lab.cloud()
    resp = c.placement.put(f"/traits/{NOWHERE_TRAIT}", microversion="1.6")
    assert resp.status_code in (201, 204), resp.text
    flavor = c.compute.find_flavor(NOWHERE_FLAVOR) or c.compute.create_flavor(
        name=NOWHERE_FLAVOR, ram=64, vcpus=1, disk=1
    )
    c.compute.create_flavor_extra_specs(flavor, {f"trait:{NOWHERE_TRAIT}": "required"})
    return flavor


def _remove_nowhere(lab: Lab) -> None:
    """Delete :func:`_nowhere_flavor`'s flavor and trait (after its servers are gone)."""
    c = lab.cloud()
    flavor = c.compute.find_flavor(NOWHERE_FLAVOR)
    if flavor is not None:
        c.compute.delete_flavor(flavor, ignore_missing=True)
    resp = c.placement.delete(f"/traits/{NOWHERE_TRAIT}", microversion="1.6")
    assert resp.status_code in (204, 404), (
        f"trait {NOWHERE_TRAIT} not deleted ({resp.status_code}: {resp.text}); delete it "
        f"again (DELETE /traits/{NOWHERE_TRAIT}) once no provider holds it"
    )


def _unplaced_server(lab: Lab, flavor: Any) -> Any:
    """A server no compute ever got: booted with ``flavor`` while the conductors are up, in
    ERROR in cell0, with no host and no allocation (checked). Nova-api deletes such a server
    itself, at once, with no conductor and no compute (``nova/compute/api.py``,
    ``API._delete``: no host, so a local delete in its cell, ``_local_delete``)."""
    c = lab.cloud()
    server = c.compute.create_server(
        name=f"osha-audit-doomed-{uuid.uuid4().hex[:6]}",
        image_id=c.image.find_image("tiny").id,
        flavor_id=flavor.id,
        networks=[{"uuid": c.network.find_network("shared-net").id}],
    )
    # the scheduler's answer comes through the conductor, no slower than a boot's
    wait_for(lambda: c.compute.get_server(server.id).status != "BUILD", lab.bounds.server_boot_s,
             interval_s=1.0, what=f"nova to fail the boot of server {server.id}")  # fmt: skip
    server = c.compute.get_server(server.id)
    fault = (server.fault or {}).get("message", "")
    assert server.status == "ERROR", (server.status, fault)
    assert "No valid host" in fault, fault
    assert not server.compute_host, server.compute_host  # never scheduled
    assert not _allocated(lab, server.id), f"server {server.id} holds an allocation"
    return server


def _during_the_faults(lab: Lab, proc: subprocess.Popen[str], doomed: Any, provider: str) -> str:
    """Wait until both conductors are out, then delete ``doomed`` (a server no compute ever
    got: nova-api deletes it itself, at once) and put an allocation back for its uuid on
    ``provider``: the orphan, dated by nova inside the faults' windows whatever the load."""
    reach_s = (lab.bounds.preflight_s + SWEEP_S + WARMUP_S + BASELINE_S + BOTH_OUT_S
               + lab.bounds.fault_s())  # fmt: skip
    wait_for(lambda: proc.poll() is not None or _conductors_out(lab), reach_s, interval_s=0.5,
             what="nova-conductor stopped on both controllers")  # fmt: skip
    assert proc.poll() is None, "the campaign ended before its faults"
    began_s = time.monotonic()
    lab.delete_server(doomed)
    still_out = _conductors_out(lab)
    print(f"server {doomed.id} deleted in {time.monotonic() - began_s:.1f} s; "  # noqa: T201
          f"both conductors still out after: {still_out}")  # fmt: skip
    # nova-api's local delete freed the server's allocation (it had none) before its answer
    assert not _allocated(lab, doomed.id), f"deleted server {doomed.id} holds an allocation"
    return plant_allocation(lab, consumer=doomed.id, provider=provider)


def run_campaign(lab: Lab, tmp_path: Path) -> ConductorRun:
    """The campaign with its planted debris; what it left is read, then everything it or the
    test made is removed and the lab reset."""
    c = lab.cloud()
    servers_before = {s.id for s in c.compute.servers(all_projects=True)}
    projects_before = _rally_named(c.identity.projects())
    users_before = _rally_named(c.identity.users())
    consumers_before = _consumers(lab)
    proc: subprocess.Popen[str] | None = None
    planted: list[str] = []
    left: dict[str, set[str]] = {}
    output = tmp_path / "campaign.out"
    provider = ""
    try:
        provider = make_provider(lab, ORPHAN_RP)
        old = lab.boot_server(f"osha-audit-pre-{uuid.uuid4().hex[:6]}")
        doomed = _unplaced_server(lab, _nowhere_flavor(lab))
        c.compute.reset_server_state(old, "error")  # nova's admin reset: ERROR
        planted.append(plant_allocation(lab))
        # Rally's `task validate` within the preflight's bound, not the runner's default
        # 120 s: it took 95-170 s on the loaded machine (tests/lab/bounds.py, PREFLIGHT_S)
        path = _profile(
            tmp_path, PROFILE, {RALLY_ARGS: f"{RALLY_ARGS}\ncommand_timeout_s = {PREFLIGHT_S}"}
        )
        began_s = time.monotonic()
        proc = start_campaign(path, tmp_path, output)
        planted.append(_during_the_faults(lab, proc, doomed, provider))
        proc.wait(timeout=CAMPAIGN_HANG_S)
        print(f"campaign: {time.monotonic() - began_s:.0f} s")  # noqa: T201 - the figure
        # what the run left, as the test reads it (the audit after ran moments ago)
        now = {s.id: s for s in c.compute.servers(all_projects=True)}
        left["servers"] = set(now) - servers_before - {old.id}
        left["rally"] = ((_rally_named(c.identity.projects()) - projects_before)
                         | (_rally_named(c.identity.users()) - users_before))  # fmt: skip
        left["placement"] = _consumers(lab) - consumers_before - set(now) - set(planted)
    finally:
        try:
            tidy_after(lab, proc, planted, servers_before)
        finally:  # also when the tidy raised (it raises last, after the reset): no Rally leftovers
            for project in c.identity.projects():
                if project.id in _rally_named([project]) - projects_before:
                    c.identity.delete_project(project, ignore_missing=True)
            for user in c.identity.users():
                if user.id in _rally_named([user]) - users_before:
                    c.identity.delete_user(user, ignore_missing=True)
            if provider:  # its allocations went with the tidy's
                remove_provider(lab, provider)
            _remove_nowhere(lab)  # its server went with the tidy's
    [run_dir] = (tmp_path / "runs").glob("*.osha")
    return ConductorRun(proc.returncode, output.read_text(), analyze(run_dir), _records(run_dir),
                        Planted(old.id, doomed.id, planted[0], planted[1]), left)  # fmt: skip


@pytest.fixture(scope="module")
def conductor_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> ConductorRun:
    return run_campaign(lab, tmp_path_factory.mktemp("conductor"))


def _after(run: ConductorRun, audit: str) -> dict[str, Judged]:
    (outcome,) = [o for o in run.analysis.audits if o.audit == audit]
    assert outcome.compared is not None, (audit, outcome)
    return {j.finding.item.resource_id: j for j in outcome.compared.after}


def _across_the_faults(run: ConductorRun, first_s: float, last_s: float) -> str:
    """The experiment happened: the faults fell in the middle of Rally's boots. Proved by
    what the run recorded whatever the load: a Rally iteration (any outcome) that began
    before the last revert and was still running at the first inject, finished
    (``runner.iteration``) or cut off by the teardown's kill (``runner.unfinished``: running
    at least until it was recorded, after the kill); or a server of Rally's that the run
    left, found new by the audit, last updated (so made) before the last revert."""
    spans = [(i.started_wall_s, i.started_wall_s + i.duration_s)
             for i in _of(run.records, RunnerIteration)]  # fmt: skip
    cut = [(u.started_wall_s, u.wall_s) for u in _of(run.records, RunnerUnfinished)]
    across = [(a - first_s, b - first_s) for a, b in [*spans, *cut] if a <= last_s and b >= first_s]
    left = [
        f"{j.finding.item.resource_id} ({audit}, {j.finding.item.state}, "
        f"{since - first_s:+.0f} s)"
        for audit in ("servers", "rally")
        for j in _after(run, audit).values()
        if j.origin is Origin.NEW and j.finding.item.kind == "server"
        and RALLY_NAME.match(j.finding.item.name or "")
        and (since := j.finding.item.since_s) is not None and since <= last_s
    ]  # fmt: skip
    assert across or left, (
        f"no Rally iteration ran across the faults ({len(spans)} finished, {len(cut)} cut off) "
        f"and the run left no server of Rally's made before the last revert: not the experiment"
    )
    return (f"across the faults (s from the first inject): {len(across)} Rally iterations "
            f"{[(round(a), round(b)) for a, b in across]} ({len(spans)} finished, {len(cut)} "
            f"cut off in all); Rally's servers left, made before the last revert: {left}")


def test_the_conductors_debris_is_found_new_and_tied_to_the_faults(
    conductor_run: ConductorRun,
) -> None:
    run, planted = conductor_run, conductor_run.planted
    assert run.code == 1, run.out[-3000:]
    faults = [f for f in run.analysis.faults if f.injected_s is not None]
    assert len(faults) == 2, faults
    assert all(SERVICE in f.label for f in faults), faults
    assert all(f.reverted_s is not None for f in faults), faults
    wall0_s = run.analysis.run.started_wall_s
    windows = [
        (wall0_s + f.injected_s, wall0_s + f.reverted_s + ATTRIBUTION_GRACE_S)
        for f in faults
        if f.injected_s is not None and f.reverted_s is not None
    ]
    first_s = min(a for a, _ in windows)
    last_s = max(b for _, b in windows) - ATTRIBUTION_GRACE_S
    print(_across_the_faults(run, first_s, last_s))  # noqa: T201 - the evidence it used
    # the planted orphan: new, dated by its server's deletion, tied to a conductor's fault
    orphan = _after(run, "placement")[planted.new_consumer]
    assert orphan.origin is Origin.NEW, orphan
    assert orphan.finding.item.state == "no-consumer", orphan
    assert SERVICE in orphan.fault, orphan
    # every item the run left, as the test reads the cloud, is found by its audit as new
    judged = {a: _after(run, a) for a in AUDITS}
    missing = {a: ids - set(judged[a]) for a, ids in run.left.items() if ids - set(judged[a])}
    # a server the run left is the servers audit's if broken, else the rally audit's
    missing["servers"] = {i for i in missing.get("servers", set()) if i not in judged["rally"]}
    assert not any(missing.values()), (missing, run.left)
    real = []
    for audit, items in judged.items():
        for rid, j in items.items():
            if j.origin is Origin.PRE_EXISTING:
                continue
            since = j.finding.item.since_s
            if since is not None and any(a <= since <= b for a, b in windows):
                assert SERVICE in j.fault, (audit, j)  # tied to its fault
            if rid != planted.new_consumer:
                real.append(f"{audit}: {j.finding.item.kind} {rid} {j.finding.item.state} "
                            f"fault={j.fault or '-'}")  # fmt: skip
    since_s = orphan.finding.item.since_s
    at = "-" if since_s is None else f"{since_s - first_s:.0f} s after the first fault"
    print(f"planted orphan: its server deleted {at}, tied to {orphan.fault}")  # noqa: T201
    print("new debris per audit:", {a: sum(j.counts_as_new for j in judged[a].values())  # noqa: T201
                                     for a in AUDITS})  # fmt: skip
    print(f"left by the run (the test's own reading): {run.left}")  # noqa: T201 - evidence
    print(f"new debris the faults left for real ({len(real)}):",  # noqa: T201 - evidence
          *real, sep="\n  ")  # fmt: skip
    [verdict] = _of(run.records, CampaignVerdict)
    assert verdict.slos["max_new_debris[placement]"]["passed"] is False, verdict.slos
    assert verdict.slos["require_reverted"]["passed"] is True, verdict.slos
    for audit in AUDITS:  # an audit with new items fails its SLO, one without passes
        new = [j for j in judged[audit].values() if j.origin is not Origin.PRE_EXISTING]
        passed = verdict.slos[f"max_new_debris[{audit}]"]["passed"]
        assert passed is (not new), (audit, new, verdict.slos)


def test_debris_planted_before_the_run_is_pre_existing(conductor_run: ConductorRun) -> None:
    run, planted = conductor_run, conductor_run.planted
    server = _after(run, "servers")[planted.old_server]
    assert server.origin is Origin.PRE_EXISTING, server
    assert server.fault == "", server  # never blamed on a fault
    orphan = _after(run, "placement")[planted.old_consumer]
    assert orphan.origin is Origin.PRE_EXISTING, orphan
    assert orphan.fault == "", orphan
    # the server deleted during the faults: ERROR before, gone after: healed, not debris
    (servers,) = [o for o in run.analysis.audits if o.audit == "servers"]
    assert servers.compared is not None, servers
    assert planted.doomed_server not in _after(run, "servers"), servers.compared
    healed = {f.item.resource_id for f in servers.compared.healed}
    assert planted.doomed_server in healed, servers.compared.healed
