"""Issue 15's cluster partitions on the HA lab: osha's ``network`` disruptor cuts one
controller from the other two, and the clusters do what their configuration says, per the
nodes' own ground truth.

1. Galera: ctl-3 (neither the VIP holder nor the database writer, ctl-1) cut from the other
   controllers on Galera's ports: it leaves the Primary component (its ``galera`` line
   ``primary=no``), ctl-1 and ctl-2 carry on as a Primary component of two; after the revert
   ctl-3 is Synced again and the view has three members.
2. RabbitMQ: ctl-3 cut from the other members on the Erlang distribution's ports: with
   ``pause_minority`` it pauses (its log says minority, its AMQP listener closes), ctl-1 and
   ctl-2 keep running and listening; after the revert the cluster is whole (three running
   members, no partitions).

Each partition is one table on ctl-3; after the revert (osha's, at ``down_s``) the table and
the dead-man switch's files are gone from the node. The ports are limited so that each test
disturbs one cluster, and osha's SSH to the node is never in the way.

Ground truth: each controller's events.log (`galera` lines, Galera's wsrep_notify_cmd), each
RabbitMQ member's own log (lab dir ``logs/<node>/rabbitmq/rabbit@<node>.log``) and its AMQP
port, and ``rabbitmqctl cluster_status`` on a majority member (scripts/labkit/README.md).
Run with ``pytest tests/lab -m ha_lab`` against ``OSHA_LAB_TOPOLOGY=ha scripts/lab up``.
"""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from actors.disruptors import _nft
from osha.faults import _switch as switch
from osha.faults.deadman import unit_name
from osha.messages import FaultDeadmanArmed, FaultDeadmanRenewFailed, FaultLease, FaultReverted
from tests.lab.client import Lab, wait_for
from tests.lab.test_disruptors_support import Harness, header, nft_table_present
from tests.lab.test_lab_ha_cluster import MARGIN_S, events_since, ha
from tests.lab.test_monitors_cluster import (
    RABBITMQ_INTERVAL_S,
    TOLERANCE_S,
    changes,
    monitors_profile,
    mono_of,
    wait_state,
)

pytestmark = [pytest.mark.ha_lab, pytest.mark.timeout(600, func_only=True)]

NODE = "ctl-3"  # neither the VIP holder nor Galera's writer (ctl-1), and no API runs there
GALERA_PORTS = [3306, 4444, 4567, 4568]  # SQL, SST (rsync), group communication, IST
RABBIT_PORTS = [4369, 25672]  # epmd and the Erlang distribution (etc/rabbitmq/env-ctl-N.sh)
AMQP_PORT = 5672
MINORITY = "Cluster minority/secondary status detected"  # rabbit_node_monitor, pause_minority
REVERT_S = 10
#: A member partitioned away must be seen in its new state well inside the hold, so that the
#: state is observed while the partition holds (the hold = the detection bound + this).
OBSERVE_S = 15.0
#: How long one member's local view (erl_call) may take: 0.3-1.7 s measured at load 70-118,
#: with the margin. A status lane busy with one call skips the next offer, so a change is
#: seen within status_interval_s + this + the tolerance.
STATUS_CALL_S = 3.0
#: One rabbitmqctl call (an Erlang VM): 10-20 s measured at load 30-118, with the margin.
RABBITMQCTL_S = 30.0
#: The rabbitmq monitor up on every target before the cut: SSH logins to three nodes (a few
#: seconds loaded) and a first local view each (STATUS_CALL_S), with the HA tests' margins.
MONITOR_READY_S = 20.0


def profile(
    lab: Lab, ports: list[int], hold_s: float, *monitors: str, start_s: float = 1.0
) -> str:
    """One partition of NODE on ``ports`` for ``hold_s`` from ``start_s``, with the named
    cluster monitors (each with lab.json's ``ha.monitors`` settings)."""
    return (
        (monitors_profile(lab, *monitors) if monitors else header(lab))
        + f"""
[[disruptors]]
id = "cut"
plugin = "network"
action = "partition"
peers = {{ group = "controller" }}
ports = {ports}
revert_timeout_s = {REVERT_S}
target = {{ group = "controller", pick = "node:{NODE}" }}
schedule = {{ start_s = {start_s:g}, times = 1, down_s = {hold_s:g} }}
"""
    )


def table_present(lab: Lab, table: str) -> bool:
    return nft_table_present(lab, NODE, table)


def started(run: Harness, lab: Lab, start_s: float = 1.0) -> tuple[float, str, str]:
    """Wait for the inject: its wall time (the table is in), the table and the switch's unit."""
    run.wait_started()
    [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s() + start_s)
    [lease] = [m.lease for m in run.messages(FaultLease)]
    [armed] = run.messages(FaultDeadmanArmed)
    assert armed.node == NODE
    table = _nft.table_name(str(lease.revert[switch.KEY]))
    assert table_present(lab, table)
    return float(injected.wall_s), table, unit_name(armed.key)


def reverted(run: Harness, lab: Lab, hold_s: float, table: str, unit: str) -> float:
    """Wait for osha's revert at ``down_s``; the node keeps nothing of the fault."""
    [done] = run.wait_tag("fault.reverted", lab.bounds.fault_s(hold_s))
    assert done.detail.startswith(f"deleted table inet {table}")
    assert not table_present(lab, table)
    # the dead-man switch was disarmed (osha disarms it after the revert, then records it
    # collected: checking before that raced it at load 40): its watchdog and files are gone
    [collected] = run.wait_tag("fault.deadman_collected", lab.bounds.command_s)
    assert (collected.by, collected.state) == ("holder", "absent"), collected
    rc, out = lab.run(NODE, f"test -e /run/osha/deadman/{unit}", timeout_s=lab.bounds.command_s)
    assert rc == 1, f"the dead-man switch's files are left on {NODE}: {out}"
    return float(done.wall_s)


def finish(run: Harness) -> None:
    """After ``run.close()``: osha stopped cleanly, its SSH to the node never failed."""
    assert run.proc.returncode == 0, run.output()[-3000:]
    assert run.messages(FaultDeadmanRenewFailed) == []  # the SSH path was never cut


def test_galera_member_partitioned_leaves_the_primary_component_then_resyncs(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    cfg = ha(lab)
    others = [n for n in cfg["galera"]["members"] if n != NODE]
    assert cfg["galera"]["writer"] != NODE
    assert cfg["vrrp"]["master"] != NODE
    # both sides stop hearing each other at the cut: each suspects the other after
    # evs.suspect_timeout, evicts at the next inactivity check (evs.inactive_check_period
    # 0.5 s) and installs its new view (a round trip), as in test_lab_ha_cluster
    split_bound_s = cfg["galera"]["suspect_timeout_s"] + 0.5 + 1.0 + MARGIN_S
    # after the revert: gcomm reconnects to a lost peer within a suspect period (its retry
    # period is shorter), the three merge in one membership round, then the member catches
    # up by IST on the writes it missed (spike: 5 s) and says Synced; doubled+ for load
    rejoin_bound_s = 2 * cfg["galera"]["suspect_timeout_s"] + 5.0 + 10.0 + MARGIN_S
    hold_s = split_bound_s + OBSERVE_S
    run = Harness(tmp_path, profile(lab, GALERA_PORTS, hold_s))
    try:
        cut_s, table, unit = started(run, lab)

        def alone() -> float | None:
            return next((e.time_s for e in events_since(lab, NODE, "galera", cut_s)
                         if e.fields.get("primary") == "no"), None)  # fmt: skip

        def primary_of_two(node: str) -> float | None:
            return next(
                (e.time_s for e in events_since(lab, node, "galera", cut_s)
                 if e.fields.get("primary") == "yes" and e.fields.get("size") == "2"
                 # in Galera's view order (by member UUID), which varies from view to view
                 and sorted(e.fields.get("members", "").split(",")) == sorted(others)),
                None,
            )  # fmt: skip

        left = wait_for(alone, split_bound_s + 5, 0.2, f"{NODE} out of the Primary component")
        kept = {n: wait_for(partial(primary_of_two, n), split_bound_s + 5, 0.2,
                            f"{n} Primary with {others}") for n in others}  # fmt: skip
        assert run.messages(FaultReverted) == [], "seen only after the revert: hold too short"
        healed_s = reverted(run, lab, hold_s, table, unit)

        def synced() -> float | None:
            return next((e.time_s for e in events_since(lab, NODE, "galera", healed_s)
                         if e.fields.get("status") == "synced"), None)  # fmt: skip

        def whole(node: str) -> float | None:
            return next((e.time_s for e in events_since(lab, node, "galera", healed_s)
                         if e.fields.get("primary") == "yes"
                         and e.fields.get("size") == "3"), None)  # fmt: skip

        back = wait_for(synced, rejoin_bound_s + 10, 0.5, f"{NODE} Synced again")
        views = {n: wait_for(partial(whole, n), rejoin_bound_s + 10, 0.5,
                             f"{n} in a Primary view of 3")
                 for n in cfg["galera"]["members"]}  # fmt: skip
    finally:
        run.close()
    finish(run)
    # the majority never lost the Primary component while the member was away
    for n in others:
        lost = [e for e in events_since(lab, n, "galera", cut_s)
                if e.time_s < healed_s and e.fields.get("primary") == "no"]  # fmt: skip
        assert lost == [], f"{n} left the Primary component too: {lost}"
    print(  # noqa: T201 - the measured figures are part of the report
        f"\nGalera partition of {NODE}: primary=no after {left - cut_s:.2f} s, "
        + ", ".join(f"{n} Primary of 2 after {t - cut_s:.2f} s" for n, t in kept.items())
        + f" (bound {split_bound_s:.1f} s); after the revert {NODE} Synced in "
        f"{back - healed_s:.2f} s, view of 3 everywhere in "
        f"{max(views.values()) - healed_s:.2f} s (bound {rejoin_bound_s:.1f} s)"
    )
    assert left - cut_s <= split_bound_s
    assert all(t - cut_s <= split_bound_s for t in kept.values())
    assert back - healed_s <= rejoin_bound_s
    assert max(views.values()) - healed_s <= rejoin_bound_s


# -- RabbitMQ -----------------------------------------------------------------------------

_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d) \[\w+\] <[\d.]+> (.*)$"
)


def rabbit_log(lab: Lab, node: str, since_s: float) -> list[tuple[float, str]]:
    """(wall time, message) of each line of the member's own log at or after ``since_s``."""
    path = Path(lab.desc["dir"]) / "logs" / node / "rabbitmq" / f"rabbit@{node}.log"
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m and (t := datetime.fromisoformat(m.group(1)).timestamp()) >= since_s:
            lines.append((t, m.group(2)))
    return lines


def first_line(lab: Lab, node: str, since_s: float, pattern: str) -> float | None:
    return next((t for t, msg in rabbit_log(lab, node, since_s) if re.search(pattern, msg)),
                None)  # fmt: skip


def listening(lab: Lab, node: str) -> bool:
    try:
        with socket.create_connection((lab.nodes[node]["address"], AMQP_PORT), timeout=2.0):
            return True
    except OSError:
        return False


def cluster_status(lab: Lab, node: str) -> dict[str, list[str]]:
    """``rabbitmqctl cluster_status`` as ``node``'s own member answers it."""
    ctl = Path(lab.desc["dir"]) / "etc" / "rabbitmq" / "rabbitmqctl"
    out = lab.check(node, f"{ctl} -q cluster_status --formatter json", timeout_s=60.0)
    status = json.loads(out)
    return {"running": sorted(status["running_nodes"]), "partitions": status["partitions"]}


def test_rabbitmq_member_partitioned_pauses_as_a_minority_then_rejoins(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    cfg = ha(lab)
    members = cfg["rabbitmq"]["members"]
    others = [n for n in cfg["controllers"] if n != NODE]
    tick_s = cfg["rabbitmq"]["net_ticktime_s"]
    # Erlang declares a silent peer down 0.75-1.25 x net_ticktime after its last tick; the
    # member then sees it is a minority and stops its applications (listener first). The
    # BEAM on 2 loaded cores runs late: margin 3 x the HA tests' 2 s
    paused_bound_s = 1.25 * tick_s + 3 * MARGIN_S
    # after the revert: the paused member pings the others every second, restarts RabbitMQ
    # (boot steps, ~5-10 s loaded) and resyncs its queues; the others see it up at once
    whole_bound_s = 1.0 + 30.0 + 3 * MARGIN_S
    # the hold also covers one rabbitmqctl cluster_status on the majority (ground truth)
    hold_s = paused_bound_s + OBSERVE_S + RABBITMQCTL_S
    amqp = f"{lab.nodes[NODE]['address']}:{AMQP_PORT}"
    assert all(listening(lab, n) for n in cfg["controllers"])
    monitor = cfg["monitors"]["rabbitmq"]
    assert monitor.get("erl_call_command"), "lab.json predates the local views: scripts/lab up"
    status_bound_s = monitor["status_interval_s"] + STATUS_CALL_S + TOLERANCE_S
    # the monitor has its first views before the cut: SSH logins and one erl_call each
    run = Harness(tmp_path, profile(lab, RABBIT_PORTS, hold_s, "rabbitmq", start_s=MONITOR_READY_S))
    try:
        run.wait_started()
        for target in ("rabbitmq:cluster", "rabbitmq:cluster-size",
                       *(f"rabbitmq@{n}" for n in cfg["controllers"])):  # fmt: skip
            wait_state(run, target, "up", MONITOR_READY_S)
        assert run.messages(FaultLease) == [], "the cut came before the monitor was ready"
        cut_s, table, unit = started(run, lab, MONITOR_READY_S)
        minority = wait_for(partial(first_line, lab, NODE, cut_s, MINORITY), paused_bound_s + 5,
                            0.5, f"{NODE}'s minority line")  # fmt: skip
        stopped = wait_for(partial(first_line, lab, NODE, cut_s, f"stopped TCP listener on {amqp}"),
                           paused_bound_s + 5, 0.5, f"{NODE}'s listener stopped")  # fmt: skip
        assert not listening(lab, NODE), f"{NODE} paused but still accepts AMQP connections"
        down_seen = {n: wait_for(partial(first_line, lab, n, cut_s, f"rabbit@{NODE}' down"),
                                 paused_bound_s + 5, 0.5, f"{n} seeing {NODE} down")
                     for n in others}  # fmt: skip
        # the majority runs on: both listen, and one of them counts two running members
        assert all(listening(lab, n) for n in others), "a majority member stopped listening"
        majority = cluster_status(lab, others[0])
        assert run.messages(FaultReverted) == [], "seen only after the revert: hold too short"
        assert majority["running"] == sorted(f"rabbit@{n}" for n in others), majority
        assert not listening(lab, NODE), f"{NODE} serves again while still partitioned"
        healed_s = reverted(run, lab, hold_s, table, unit)
        restarted = wait_for(partial(first_line, lab, NODE, healed_s,
                                     f"started TCP listener on {amqp}"),
                             whole_bound_s + 10, 0.5, f"{NODE}'s listener started")  # fmt: skip
        up_seen = {n: wait_for(partial(first_line, lab, n, healed_s,
                                       f"rabbit on node 'rabbit@{NODE}' up"),
                               whole_bound_s + 10, 0.5, f"{n} seeing {NODE} up")
                   for n in others}  # fmt: skip
        assert listening(lab, NODE)
        final = wait_for(
            lambda: ((s := cluster_status(lab, others[0]))["running"] == sorted(members)
                     and s) or None, whole_bound_s + 30, 1.0, "three running members",
        )  # fmt: skip
        # whole again. The member goes up (its listener opens), down (rabbit still booting)
        # and up for good within status_bound_s of its boot's end (monitor_matches): wait for
        # that line, then until the monitor's bound past it has passed with the member up
        # (stop 29: waiting for the first "up" closed the run between the two)
        booted = wait_for(partial(first_line, lab, NODE, healed_s, "Server startup complete"),
                          whole_bound_s + 30, 0.5, f"{NODE}'s boot complete")  # fmt: skip
        for target in (f"rabbitmq@{NODE}", "rabbitmq:cluster-size"):
            wait_for(partial(settled_up, run, target, booted + status_bound_s + MARGIN_S),
                     booted + 2 * (status_bound_s + MARGIN_S) - time.time(), 0.2,
                     f"{target} up for good after {NODE}'s boot")  # fmt: skip
    finally:
        run.close()
    finish(run)
    assert not final["partitions"], final
    truth = {"stopped": stopped, "healed": healed_s,
             "booted": first_line(lab, NODE, healed_s, "Server startup complete") or 0.0,
             "link lost": min(down_seen.values()), "link back": max(up_seen.values())}  # fmt: skip
    monitor_matches(run, others, truth, status_bound_s)
    assert cluster_status(lab, NODE)["running"] == sorted(members)
    for n in others:  # the majority never paused
        assert first_line(lab, n, cut_s, MINORITY) is None, f"{n} paused too"
    print(  # noqa: T201 - the measured figures are part of the report
        f"\nRabbitMQ partition of {NODE}: minority line after {minority - cut_s:.2f} s, "
        f"listener stopped after {stopped - cut_s:.2f} s, "
        + ", ".join(f"{n} saw it down after {t - cut_s:.2f} s" for n, t in down_seen.items())
        + f" (bound {paused_bound_s:.1f} s); after the revert its listener started in "
        f"{restarted - healed_s:.2f} s, "
        + ", ".join(f"{n} saw it up in {t - healed_s:.2f} s" for n, t in up_seen.items())
        + f" (bound {whole_bound_s:.1f} s)"
    )
    assert minority - cut_s <= paused_bound_s
    assert all(t - cut_s <= paused_bound_s for t in down_seen.values())
    assert stopped - cut_s <= paused_bound_s
    assert restarted - healed_s <= whole_bound_s
    assert all(t - healed_s <= whole_bound_s for t in up_seen.values())


def settled_up(run: Harness, target: str, after_wall_s: float) -> bool:
    """``target``'s last state is up and the clock is past ``after_wall_s`` (the moment by
    which the monitor must have reported any later change)."""
    seen = changes(run, target)
    return bool(seen) and seen[-1].state == "up" and time.time() >= after_wall_s


def monitor_matches(
    run: Harness, others: list[str], truth: dict[str, float], status_bound_s: float
) -> None:
    """osha's rabbitmq monitor matched the ground truth (wall times in ``truth``): NODE down
    at its pause (its listener stopped), within the interval + the tolerance, and up for good
    at its boot's end (``Server startup complete``), within ``status_bound_s``; the
    partition (``:cluster-size`` down, with the cut link as evidence) from the majority's
    node-down line to its node-up line, within ``status_bound_s``; the majority members and
    ``:cluster`` up all along."""
    member, size = changes(run, f"rabbitmq@{NODE}"), changes(run, "rabbitmq:cluster-size")
    # while it boots after the revert its listener opens (the alive check passes) a second or
    # two before rabbit runs (its view says not running): up, down, then up for good
    assert [c.state for c in member][:2] == ["up", "down"], member
    assert member[-1].state == "up", member
    assert all(c.first_bad_mono_s >= mono_of(truth["healed"]) for c in member[2:]), member
    assert [c.state for c in size] == ["up", "down", "up"], size
    for target in ("rabbitmq:cluster", *(f"rabbitmq@{n}" for n in others)):
        assert [c.state for c in changes(run, target)] == ["up"], changes(run, target)
    assert "partition: " in size[1].evidence, size[1]
    assert f"rabbit@{NODE}" in size[1].evidence.split("partition: ")[1].split(" (")[0]
    assert truth["booted"], f"{NODE} never completed its boot after the revert"
    member_bound_s = RABBITMQ_INTERVAL_S + TOLERANCE_S
    lags = {  # what: (lag, bound)
        f"{NODE} down vs its listener stopped":
            (member[1].first_bad_mono_s - mono_of(truth["stopped"]), member_bound_s),
        f"{NODE} up for good vs its startup-complete line":
            (member[-1].first_bad_mono_s - mono_of(truth["booted"]), status_bound_s),
        "cluster-size down vs the majority's node-down line":
            (size[1].first_bad_mono_s - mono_of(truth["link lost"]), status_bound_s),
        "cluster-size up vs the majority's node-up line":
            (size[2].first_bad_mono_s - mono_of(truth["link back"]), status_bound_s),
    }  # fmt: skip
    print(  # noqa: T201 - the measured figures are part of the report
        "\nrabbitmq monitor vs ground truth: "
        + ", ".join(f"{k} {lag:+.2f} s (bound {b:.1f} s)" for k, (lag, b) in lags.items())
    )
    for what, (lag, bound_s) in lags.items():
        # a change is first seen by a command that started before it, by at most one call
        assert -STATUS_CALL_S <= lag <= bound_s, (what, lag, bound_s)
