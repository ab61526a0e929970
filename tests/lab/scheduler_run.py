"""The lab tier's one faulted Rally campaign, run once and shared (issue 20: a whole CI run
under 45 minutes; one campaign serves several assertions).

``profiles/lab-nova-scheduler.toml`` (ctl-1's scheduler stopped, ctl-2's frozen, during
Rally's boots; it audits too), with a short chaos window and a certain downtime violation.
Three modules look at its ledger instead of running a campaign each (measured before: this
campaign 236 s, the report's own run of the same profile 333 s, the audits' debris campaign
510 s):

- ``tests/lab/test_campaign.py``: the campaign end to end (phases, faults, monitors, Rally,
  recovery, census);
- ``tests/lab/test_report_campaign.py``: ``osha report`` on its ledger (verdict, downtime
  against the node's ground truth, HTML);
- ``tests/lab/test_audit.py``: issue 18's acceptance. Before the campaign a server is reset to
  ERROR and an allocation of no consumer planted (pre-existing debris); while both schedulers
  are out a second server is reset to ERROR (new debris dated inside the faults' windows) and
  one more orphan allocation planted through the placement API: the lab's nova left none by
  itself in the first runs (a stopped service finishes what it holds, and Rally's cleanup
  deletes its servers, which frees their allocations).

The conftest's ``scheduler_run`` fixture (session scope) runs it the first time a test asks;
before it returns, the planted debris and every server the run left are deleted and the lab
is reset, so no later test meets them.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.analysis import Analysis, analyze
from osha.messages import Message
from tests.lab.bounds import SWEEP_S, WARMUP_S
from tests.lab.client import RESET_TIMEOUT_S, Lab, run_lab, wait_for
from tests.lab.test_campaign import _profile, _records

PROFILE = "lab-nova-scheduler.toml"
#: the campaign's own phases bound it (preflight, sweep, load, warm-up, baseline, chaos,
#: recovery, teardown, sweep); this is a hang guard above their sum, as in test_campaign._start
CAMPAIGN_HANG_S = 1800.0
#: the profile's [[load]] (2 servers) within the load plugin's boot_timeout_s (default 300 s)
LOAD_BOOT_S = 300.0
#: the profile's baseline, and ctl-2's freeze (start_s = 8; ctl-1's stop is at start_s = 5)
BASELINE_S, FREEZE_START_S = 90.0, 8.0
SERVICE = "nova-scheduler"


@dataclass(frozen=True)
class Planted:
    """The debris the test plants: before the campaign (pre-existing) and during its faults."""

    old_server: str  # reset to ERROR before the campaign
    old_consumer: str  # an allocation of no consumer, before the campaign
    new_server: str  # reset to ERROR while both schedulers were out
    new_consumer: str  # an allocation of no consumer, planted during the faults


@dataclass(frozen=True)
class SchedulerRun:
    code: int
    run_dir: Path
    out: str  # stdout and stderr of `osha campaign start --plain`
    analysis: Analysis
    records: list[Message]
    planted: Planted


def plant_allocation(lab: Lab, consumer: str = "", provider: str = "") -> str:
    """An allocation of 1 MB for a consumer that is nothing (a fresh uuid, or ``consumer``: a
    server that is gone): what a boot or a delete whose conductor died past the claim leaves.
    On a compute node's provider, or on ``provider`` (a uuid, e.g. :func:`make_provider`'s)."""
    c = lab.cloud()
    if not provider:
        resp = c.placement.get("/resource_providers?required=COMPUTE_NODE", microversion="1.18")
        assert resp.status_code == 200, resp.text
        provider = resp.json()["resource_providers"][0]["uuid"]
    consumer = consumer or str(uuid.uuid4())
    body = {"allocations": {provider: {"resources": {"MEMORY_MB": 1}}},
            "project_id": c.current_project_id, "user_id": c.current_user_id,
            "consumer_generation": None}  # fmt: skip
    resp = c.placement.put(f"/allocations/{consumer}", json=body, microversion="1.28")
    assert resp.status_code == 204, resp.text
    return consumer


def remove_allocation(lab: Lab, consumer: str) -> None:
    resp = lab.cloud().placement.delete(f"/allocations/{consumer}")
    assert resp.status_code in (204, 404), resp.text


def make_provider(lab: Lab, name: str) -> str:
    """A resource provider ``name`` with 1 GB of MEMORY_MB that no nova-compute manages (so
    no resource tracker ever heals an allocation on it); its uuid. One left by an earlier run
    is reused. Remove it with :func:`remove_provider`."""
    p = lab.cloud().placement
    resp = p.get(f"/resource_providers?name={name}", microversion="1.20")
    assert resp.status_code == 200, resp.text
    found = resp.json()["resource_providers"]
    if found:
        rp = found[0]
    else:
        resp = p.post("/resource_providers", json={"name": name}, microversion="1.20")
        assert resp.status_code == 200, resp.text
        rp = resp.json()
    body = {"resource_provider_generation": rp["generation"],
            "inventories": {"MEMORY_MB": {"total": 1024}}}  # fmt: skip
    resp = p.put(f"/resource_providers/{rp['uuid']}/inventories", json=body, microversion="1.20")
    assert resp.status_code == 200, resp.text
    return str(rp["uuid"])


def remove_provider(lab: Lab, provider: str) -> None:
    """Delete :func:`make_provider`'s provider (its allocations removed first: placement
    refuses to delete a provider that still holds any, 409)."""
    resp = lab.cloud().placement.delete(f"/resource_providers/{provider}")
    assert resp.status_code in (204, 404), (
        f"resource provider {provider} not deleted ({resp.status_code}: {resp.text}); remove its "
        f"allocations (GET /resource_providers/{provider}/allocations) and delete it again"
    )


def _both_schedulers_out(lab: Lab) -> bool:
    """ctl-1's scheduler stopped and ctl-2's frozen (T+8..16, 20..28 and 32..40 s of the
    chaos)."""
    if lab.service_pid("ctl-1", SERVICE) is not None:
        return False
    pid = lab.service_pid("ctl-2", SERVICE)
    return pid is not None and lab.check("ctl-2", f"ps -o stat= -p {pid}").strip()[:1] == "T"


def _during_the_faults(lab: Lab, proc: subprocess.Popen[str], new_server: Any) -> str:
    """Wait until both schedulers are out, then plant the new debris; the new orphan's id."""
    # ctl-2's freeze starts at T+8 s: after the preflight, the sweep before, the load, the
    # warm-up and the baseline, each within its bound, and the freeze command's
    reach_s = (lab.bounds.preflight_s + SWEEP_S + LOAD_BOOT_S + WARMUP_S + BASELINE_S
               + FREEZE_START_S + lab.bounds.fault_s())  # fmt: skip
    wait_for(lambda: proc.poll() is not None or _both_schedulers_out(lab), reach_s,
             interval_s=0.5, what="ctl-1's nova-scheduler stopped and ctl-2's frozen")  # fmt: skip
    assert proc.poll() is None, "the campaign ended before its faults"
    # Both faults are in place: ctl-1's stop began about 3 s before ctl-2's freeze (T+5 s,
    # T+8 s), so nova's updated_at (whole seconds) falls inside ctl-1's window at least, and
    # the audit can tie the server to a scheduler's fault.
    lab.cloud().compute.reset_server_state(new_server, "error")
    return plant_allocation(lab)  # the leak of a boot cut short past its claim


def start_campaign(path: Path, tmp_path: Path, output: Path) -> subprocess.Popen[str]:
    """``osha campaign start PATH --plain`` in the background, its ledger in
    ``tmp_path/runs``, its output in ``output`` (a file, not a pipe: nothing blocks osha)."""
    with output.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "osha", "campaign", "start", str(path), "--plain",
             "--ledger-dir", str(tmp_path / "runs")],
            stdout=sink, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def tidy_after(lab: Lab, proc: subprocess.Popen[str] | None, consumers: list[str],
               servers_before: set[str]) -> None:  # fmt: skip
    """After a faulted campaign, whatever happened: the campaign killed if it still runs (only
    on a failure: the nodes' dead-man switches and the reset revert what it held), the planted
    allocations removed, the lab reset, and every server made since ``servers_before``
    (planted, or left by the faults) deleted, so that no later test meets them."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=60)
    failed: list[str] = []  # each step is tried; what failed is raised at the end
    for consumer in consumers:
        try:
            remove_allocation(lab, consumer)
        except Exception as exc:  # noqa: BLE001 - collected and raised below
            failed.append(f"remove allocation {consumer}: {exc!r}")
    result = run_lab("reset", timeout_s=RESET_TIMEOUT_S)
    assert result.returncode == 0, f"scripts/lab reset failed:\n{result.stdout}"
    for server in lab.cloud().compute.servers(all_projects=True):
        if server.id not in servers_before:
            lab.delete_server(server)
    for consumer in consumers if failed else ():  # the API answers again after the reset
        remove_allocation(lab, consumer)
    assert not failed, failed


def run_once(lab: Lab, tmp_path: Path) -> SchedulerRun:
    """The campaign with its planted debris, to its end; everything planted or left removed
    and the lab reset before it returns."""
    c = lab.cloud()
    servers_before = {s.id for s in c.compute.servers(all_projects=True)}
    proc: subprocess.Popen[str] | None = None
    consumers: list[str] = []
    output = tmp_path / "campaign.out"
    try:
        old = lab.boot_server(f"osha-audit-pre-{uuid.uuid4().hex[:6]}")
        new = lab.boot_server(f"osha-audit-new-{uuid.uuid4().hex[:6]}")
        c.compute.reset_server_state(old, "error")  # nova's admin reset: ERROR
        consumers.append(plant_allocation(lab))
        path = _profile(tmp_path, PROFILE, {
            "chaos_s = 60": "chaos_s = 45",  # the faults end at T+41 s
            # a certain violation: ctl-1's scheduler is down far longer than 1 s
            'max_downtime_s = { "endpoint:compute" = 5 }':
                'max_downtime_s = { "nova-scheduler@ctl-1" = 1 }',
        })  # fmt: skip
        proc = start_campaign(path, tmp_path, output)
        consumers.append(_during_the_faults(lab, proc, new))
        proc.wait(timeout=CAMPAIGN_HANG_S)
    finally:
        tidy_after(lab, proc, consumers, servers_before)
    [run_dir] = (tmp_path / "runs").glob("*.osha")
    planted = Planted(old.id, consumers[0], new.id, consumers[1])
    return SchedulerRun(proc.returncode, run_dir, output.read_text(), analyze(run_dir),
                        _records(run_dir), planted)  # fmt: skip
