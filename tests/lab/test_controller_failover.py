"""The shipped controller-failover campaign (``profiles/lab-controller-failover.toml``, issue
14) run once on the HA lab as an operator runs it, and its ledger and report held against the
controllers' ground truth (events.log):

- the node powered off (``pick = "vip-holder"``) held the VIP when the fault was injected (its
  last ``vrrp`` line before the inject says MASTER, and no other node's does);
- each VIP move in the report matches its new holder's ``vrrp ... state=MASTER`` line within
  the vip monitor's interval + 0.3 s;
- Galera never left the Primary component on the controllers no fault touched (their
  ``galera`` lines), and the ``galera:cluster`` target was never down.

The profile names instance 0's VIP, BMC ports and directory; they are replaced by this lab's
(lab.json). Needs an HA lab; run with ``-m ha_lab``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from osha.analysis import analyze
from osha.faults._roles import ROLE_KEY
from osha.messages import FaultInjected, FaultLease, RunnerIteration, StateChange
from osha.messages.campaign import CampaignVerdict, PhaseChange
from osha.messages.monitor import VipMoved
from tests.lab.client import LAB_DIR, Event, Lab
from tests.lab.test_campaign import PHASES, _of, _profile, _records, _start
from tests.lab.test_lab_ha_cluster import events_since, ha
from tests.lab.test_monitors_cluster import TOLERANCE_S, mono_of

pytestmark = pytest.mark.ha_lab

PROFILE = "lab-controller-failover.toml"
VIP_INTERVAL_S = 0.2  # the profile's vip monitor
#: The profile's instance-0 BMC ports, replaced by this lab's.
DEFAULT_BMC_PORTS = {"ctl-1": 6230, "ctl-2": 6231, "ctl-3": 6234}


def failover_profile(lab: Lab, tmp_path: Path) -> Path:
    """The shipped profile with this lab's VIP, BMC ports and directory (also in the
    monitors' commands, which run on the nodes where nothing expands ``${OSHA_LAB_DIR}``)."""
    cfg = ha(lab)
    replace = {'"10.231.0.10"': f'"{cfg["vip"]}"',
               "${OSHA_LAB_DIR:-/var/lib/osha-lab}": str(LAB_DIR)}  # fmt: skip
    for node, port in DEFAULT_BMC_PORTS.items():
        bmc = lab.nodes[node]["bmc"]
        replace[f'{node} = {{ address = "127.0.0.1", port = {port} }}'] = (
            f'{node} = {{ address = "{bmc["host"]}", port = {bmc["port"]} }}'
        )
    return _profile(tmp_path, PROFILE, replace)


def unanswered(evidence: str) -> bool:
    """Whether a ``galera:cluster`` evidence says no member answered at all ("no member is
    in a Primary component (ctl-1: no answer, ctl-2: no answer, ...)")."""
    found = re.fullmatch(r"no member is in a Primary component \((.*)\)", evidence)
    said = found.group(1).split(", ") if found else []
    return bool(said) and all(s.endswith(": no answer") for s in said)


def vrrp_state_at(lab: Lab, node: str, wall_s: float) -> str:
    """``node``'s keepalived state at ``wall_s``: its last ``vrrp`` line before then."""
    lines = [e for e in lab.events(node) if e.kind == "vrrp" and e.time_s <= wall_s]
    return lines[-1].fields.get("state", "?") if lines else "none"


def master_line(lab: Lab, node: str, near_wall_s: float) -> Event:
    """``node``'s ``vrrp ... state=MASTER`` line nearest ``near_wall_s``."""
    lines = [e for e in lab.events(node) if e.kind == "vrrp" and e.fields.get("state") == "MASTER"]
    assert lines, f"no vrrp MASTER line on {node}"
    return min(lines, key=lambda e: abs(e.time_s - near_wall_s))


@pytest.mark.timeout(1800)  # hang guard: the campaign's own bound (_start: 1500 s) + reset
def test_controller_failover_campaign_against_ground_truth(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    cfg = ha(lab)
    started_wall = time.time()
    code, run_dir, out = _start(failover_profile(lab, tmp_path), tmp_path)
    records = _records(run_dir)
    phases = [(m.phase, m.event) for m in _of(records, PhaseChange)]
    assert phases == [(p, e) for p in PHASES for e in ("start", "end")], out
    [verdict] = _of(records, CampaignVerdict)
    assert code == verdict.exit_code, out
    assert code in (0, 1), out  # judged, not aborted
    analysis = analyze(run_dir)

    # the VIP holder at inject time was the node powered off
    leases: dict[str, Any] = {m.lease.holder: m.lease for m in _of(records, FaultLease)}
    injected = {m.lease_id: m for m in _of(records, FaultInjected)}
    power = leases["power-vip-holder"]
    at = injected[power.lease_id].actual_wall_s
    states = {n: vrrp_state_at(lab, n, at) for n in cfg["controllers"]}
    assert [n for n, s in states.items() if s == "MASTER"] == [power.node], states
    assert power.revert[ROLE_KEY].startswith(f"resolved {power.node}: holds VIP {cfg['vip']}")
    assert events_since(lab, power.node, "power-off", at - 1), "no power-off line"

    # each VIP move in the report matches its new holder's MASTER line
    moves = analysis.vip_moves
    assert moves, "no VIP move in the report"
    assert (moves[0].from_node, moves[0].address) == (power.node, cfg["vip"]), moves[0]
    assert len(moves) == len(_of(records, VipMoved))
    lags = []
    for m in moves:
        first_seen_wall = analysis.run.started_wall_s + m.first_seen_s
        master = master_line(lab, m.to_node, first_seen_wall)
        lag = first_seen_wall - master.time_s
        lags.append(lag)
        assert -TOLERANCE_S <= lag <= VIP_INTERVAL_S + TOLERANCE_S, (m, master)
    # the ledger's record and the report agree on the move (the monotonic clock)
    first = _of(records, VipMoved)[0]
    master = master_line(lab, first.to_node, at)
    assert abs(first.first_seen_mono_s - mono_of(master.time_s)) <= VIP_INTERVAL_S + TOLERANCE_S

    # Galera stayed Primary on the controllers no fault touched
    touched = {lease.node for lease in leases.values()}
    survivors = [n for n in cfg["controllers"] if n not in touched]
    lines = [e for n in survivors for e in events_since(lab, n, "galera", started_wall)]
    assert lines, f"no galera line on {survivors}: no view change seen"
    assert all(e.fields.get("primary") == "yes" for e in lines), lines
    # ... and the galera monitor never said otherwise on a member's word: a galera:cluster
    # down in which no member answered within its command_timeout_s is the monitor's bound
    # (seen when two other labs booted on this 2-core host: every monitor's command timed
    # out at once), held against the ground truth above; a member answering non-Primary
    # would contradict it
    cluster = [c for c in _of(records, StateChange) if c.target == "galera:cluster"]
    assert cluster[0].state == "up", cluster[0]
    assert cluster[-1].state == "up", cluster[-1]
    blind = [c for c in cluster if c.state != "up" and unanswered(c.evidence)]
    said = [c for c in cluster if c.state != "up" and not unanswered(c.evidence)]
    assert not said, said

    iterations = _of(records, RunnerIteration)
    ok = sum(1 for i in iterations if i.ok)
    api = {t.target: t.downtime_s for t in analysis.targets if t.target.startswith("endpoint:")}
    print(  # noqa: T201 - the measured figures are part of the report
        f"\ncontroller failover: {verdict.summary}; faults "
        f"{', '.join(f'{k} on {v.node}' for k, v in leases.items())}; VIP moves "
        + "; ".join(f"{m.from_node}->{m.to_node} within {m.within_s:.3f} s, first seen "
                    f"{lag:+.3f} s after MASTER" for m, lag in zip(moves, lags, strict=True))
        + f"; galera:cluster down unanswered {len(blind)}x"
        + f"; API downtime max {max(api.values(), default=0.0):.2f} s "
        f"({max(api, key=lambda k: api[k], default='-')}); Rally {ok}/{len(iterations)} ok"
    )  # fmt: skip
