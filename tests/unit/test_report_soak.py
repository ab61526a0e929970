"""Soak cycles in the analysis and the reports: a synthetic soak whose truth is known (outage
edges on the monitor's sample grid, revert times, osha's RSS), checked row by row and trend by
trend, and rendered to the terminal, JSON and HTML.

Each cycle of the soak injects, as a real soak does, three faults one after the other: a kill
of ``nova-api@ctl-1`` that heals itself (init restarts it) long before its revert, a stop of
``nova-scheduler@ctl-2`` that lasts until its revert, and a pause of an unmonitored container
reverted last. A cycle's MTTR is the longest of its faults' times to recover: the kill's from
its inject, the stop's from its revert's start, the pause's none (it takes no target down).
Measured from the cycle's last revert instead, every cycle would read 0."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from osha.analysis import Analysis, AnalysisOptions, SloSpec, analyze
from osha.messages import (
    FaultInjectFailed,
    FaultLease,
    FaultReleased,
    FaultRevertAttempted,
    FaultReverted,
    Lease,
)
from osha.report import dumps, render_summary, to_dict
from osha.report.html import render_html
from osha.soak.judge import judge_main
from osha.testing import SyntheticLedger

CYCLES = 8
PERIOD_S = 100.0
INTERVAL_S = 0.5  # the monitor's sample interval: an outage's end is known to ± half of it
BOUND_S = INTERVAL_S / 2 + 1e-9  # (+ float rounding: the estimate sits on the bound)
REVERT_ELAPSED_S = 0.1  # SyntheticLedger.fault: the revert began 0.1 s before fault.reverted
KILL_AT, KILL_REVERT = 10.0, 60.0 + REVERT_ELAPSED_S  # cycle offsets of the self-healing kill
STOP_AT, STOP_REVERT = 30.0, 40.0 + REVERT_ELAPSED_S  # ... of the stop (down until its revert)
PAUSE_AT, PAUSE_REVERT = 70.0, 90.0 + REVERT_ELAPSED_S  # ... of the pause (nothing monitored)
MIB = 2**20
RSS0 = 40 * MIB
RSS_STEP = 100 * 1024  # osha's RSS grows 100 KiB per cycle
FAILED_CYCLE = 3
KILL_CYCLE = 2


def _start(c: int) -> float:
    return PERIOD_S * (c - 1)


def _mttr(c: int) -> float:
    """The truth: cycle ``c``'s MTTR, 2 s growing 0.5 s per cycle."""
    return 2.0 + 0.5 * (c - 1)


def _kill_ttr(c: int) -> float:
    """The kill's time to recover (from its inject): the cycle's MTTR in odd cycles, 1 s less
    in even ones."""
    return _mttr(c) - (1.0 if c % 2 == 0 else 0.0)


def _stop_ttr(c: int) -> float:
    """The stop's time to recover (from its revert's start): the cycle's MTTR in even cycles."""
    return _mttr(c) - (1.0 if c % 2 == 1 else 0.0)


def _kill_down(c: int) -> tuple[float, float]:
    """Down 0.5 s after the kill until it is back by itself (edges on the sample grid, so the
    downtime estimate is exact and an end estimate is its truth - INTERVAL_S / 2)."""
    t0 = _start(c)
    return t0 + KILL_AT + 0.5, t0 + KILL_AT + _kill_ttr(c)


def _stop_down(c: int) -> tuple[float, float]:
    """Down 0.5 s after the stop until a while after its revert began."""
    t0 = _start(c)
    return t0 + STOP_AT + 0.5, t0 + STOP_REVERT - REVERT_ELAPSED_S + _stop_ttr(c)


def _downtime(c: int) -> float:
    return sum(hi - lo for lo, hi in (_kill_down(c), _stop_down(c)))


def _soak(path: Path, *, cycles: int = CYCLES) -> Path:
    led = SyntheticLedger(path)
    end = PERIOD_S * cycles
    led.target("hs", "nova-api@ctl-1", end_s=end, interval_s=INTERVAL_S,
               down=[_kill_down(c) for c in range(1, cycles + 1)])  # fmt: skip
    led.target("hs", "nova-scheduler@ctl-2", end_s=end, interval_s=INTERVAL_S,
               down=[_stop_down(c) for c in range(1, cycles + 1)])  # fmt: skip
    for c in range(1, cycles + 1):
        t0 = _start(c)
        ok = c != FAILED_CYCLE
        led.soak_cycle(c, t0 + 1.0, t0 + 99.0, ok=ok, detail="" if ok else "1 faults still held",
                       planned_faults=3)  # fmt: skip
        led.fault(f"k{c}", inject_s=t0 + KILL_AT, revert_s=t0 + KILL_REVERT, action="kill",
                  node="ctl-1", resource="nova-api")  # fmt: skip
        led.fault(f"s{c}", inject_s=t0 + STOP_AT, revert_s=t0 + STOP_REVERT, action="stop",
                  node="ctl-2", resource="nova-scheduler")  # fmt: skip
        led.fault(f"p{c}", inject_s=t0 + PAUSE_AT, revert_s=t0 + PAUSE_REVERT, action="pause",
                  node="ctl-3", resource="rabbitmq")  # fmt: skip
        led.resources(t0 + 95.0, RSS0 + RSS_STEP * c)
        led.resources(t0 + 95.0, 7 * MIB, process="tick")  # an actor: not osha's main process
        if c == KILL_CYCLE:
            led.self_chaos(t0 + 50.0, "tick")
    return led.write(stop_s=end)


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze(_soak(tmp_path_factory.mktemp("soak") / "soak.osha"))


def test_each_fault_recovers_as_its_kind_says(soak: Analysis) -> None:
    """The per-fault impacts that the cycles' MTTR is taken from: the kill measured from its
    inject (healed before its revert), the stop from its revert's start, the pause none."""
    by_id = {f.lease_id: f for f in soak.faults}
    for c in range(1, CYCLES + 1):
        [kill] = by_id[f"k{c}"].targets
        [stop] = by_id[f"s{c}"].targets
        assert by_id[f"p{c}"].targets == ()
        assert (kill.target, kill.recovery_from) == ("nova-api@ctl-1", "inject")
        assert (stop.target, stop.recovery_from) == ("nova-scheduler@ctl-2", "revert")
        assert kill.recovery_s is not None
        assert stop.recovery_s is not None
        # the end of the outage - the inject / - the revert's start (the truth, ± the samples)
        assert abs(kill.recovery_s - (_kill_down(c)[1] - _start(c) - KILL_AT)) <= BOUND_S
        stop_began = _start(c) + STOP_REVERT - REVERT_ELAPSED_S
        assert abs(stop.recovery_s - (_stop_down(c)[1] - stop_began)) <= BOUND_S


def test_rows_equal_the_truth(soak: Analysis) -> None:
    assert soak.soak is not None
    rows = soak.soak.cycles
    assert [r.cycle for r in rows] == list(range(1, CYCLES + 1))
    for r in rows:
        c = r.cycle
        assert r.start_s == pytest.approx(_start(c) + 1.0)
        assert r.end_s == pytest.approx(_start(c) + 99.0)
        assert r.ok is (c != FAILED_CYCLE)
        assert (r.planned_faults, r.injected, r.reverted, r.revert_failed) == (3, 3, 3, 0)
        assert (r.crashes, r.self_chaos_kills) == ((1, 1) if c == KILL_CYCLE else (0, 0))
        assert r.targets_down == 2
        assert r.downtime_s == pytest.approx(_downtime(c))  # edges on the grid: exact
        # the longest of the kill's and the stop's, though both were up before the last revert
        assert r.recovery_s is not None
        assert abs(r.recovery_s - _mttr(c)) <= BOUND_S
        assert r.availability == pytest.approx(1.0 - _downtime(c) / (2 * 98.0))
        assert r.osha_rss_bytes == RSS0 + RSS_STEP * c
    assert rows[FAILED_CYCLE - 1].detail == "1 faults still held"


def test_trends_equal_the_truth(soak: Analysis) -> None:
    s = soak.soak
    assert s is not None
    assert (s.cycles_ok, s.cycles_failed, s.cycles_unfinished, s.cycles_unrecovered) == (7, 1, 0, 0)
    # MTTR grows 0.5 s per cycle, the two outages together 1 s (each has its MTTR in it, one
    # of them 1 s less); every cycle lasts 98 s with two targets. Every end estimate is its
    # truth - INTERVAL_S / 2 (edges on the grid), so the slopes are exact
    assert s.mttr_trend_s == pytest.approx(0.5)
    assert s.downtime_trend_s == pytest.approx(1.0)
    assert s.availability_trend == pytest.approx(-1.0 / (2 * 98.0))
    truth = [_mttr(c) for c in range(1, CYCLES + 1)]
    assert s.mttr_mean_s == pytest.approx(sum(truth) / CYCLES, abs=BOUND_S)
    assert s.mttr_max_s == pytest.approx(truth[-1], abs=BOUND_S)
    assert (s.rss_from_cycle, s.rss_to_cycle) == (5, CYCLES)
    assert s.rss_growth_bytes == RSS_STEP * (CYCLES - 5)


def test_a_ledger_without_cycles_is_not_a_soak(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-api@ctl-1", end_s=100.0, down=[(40.0, 50.0)])
    led.fault("f1", inject_s=39.0, revert_s=45.0, resource="nova-api")
    led.resources(60.0, RSS0)
    a = analyze(led.write(stop_s=100.0))
    assert a.soak is None
    assert "soak cycles" not in render_summary(a)
    assert json.loads(dumps(to_dict(a)))["soak"] is None
    assert "soak-plot" not in render_html(a)


def test_unfinished_and_unrecovered_cycles(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "soak.osha")
    # cycle 1's outage of t runs past its end and ends in cycle 2; cycle 2's outage of u never
    # ends; cycle 3's fault takes nothing down; cycle 4 never ends (the ledger stops)
    led.target("hs", "t", end_s=390.0, down=[(50.0, 130.0)])
    led.target("hs", "u", end_s=390.0, down=[(150.0, 400.0)])
    led.soak_cycle(1, 0.0, 99.0, ok=False, detail="still down: t")
    led.soak_cycle(2, 100.0, 199.0, ok=False, detail="still down: u")
    led.soak_cycle(3, 200.0, 299.0)
    led.soak_cycle(4, 300.0, None)
    led.fault("f1", inject_s=49.0, revert_s=60.0, resource="t")
    led.fault("f2", inject_s=149.0, revert_s=160.0, resource="u")
    led.fault("f3", inject_s=210.0, revert_s=220.0, action="pause", resource="unmonitored")
    s = analyze(led.write(stop_s=390.0)).soak
    assert s is not None
    one, two, three, four = s.cycles
    # up at 130 (± 0.25 s by the samples), from the revert's start (60 - 0.1): though it
    # outlived its cycle, its fault's target recovered
    assert one.recovery_s is not None
    assert abs(one.recovery_s - (130.0 - 59.9)) <= 0.25 + 1e-9
    assert one.downtime_s == pytest.approx(80.0)  # its outage, whole, though it ended later
    edge = 0.5 / 2 / (2 * 99.0)  # an outage edge is known to ± half the sample interval
    assert one.availability == pytest.approx(1.0 - 49.0 / (2 * 99.0), abs=edge)
    assert two.recovery_s is None  # u, which its fault took down, never recovered
    assert two.targets_down == 1
    assert two.downtime_s == pytest.approx(390.0 - 150.0, abs=0.25)  # until the end of the run
    assert two.availability == pytest.approx(1.0 - (30.0 + 49.0) / (2 * 99.0), abs=2 * edge)
    # nothing of its own went down (u, still down since cycle 2, is not its fault's)
    assert (three.targets_down, three.downtime_s, three.recovery_s) == (0, 0.0, 0.0)
    assert three.availability == pytest.approx(0.5)
    assert (four.end_s, four.ok, four.recovery_s, four.availability) == (None, None, None, None)
    assert (s.cycles_ok, s.cycles_failed, s.cycles_unfinished, s.cycles_unrecovered) == (1, 2, 1, 1)
    assert (s.mttr_mean_s, s.mttr_max_s) == (pytest.approx(one.recovery_s / 2), one.recovery_s)
    assert s.mttr_trend_s == pytest.approx(-one.recovery_s / 2)  # cycles 1 and 3 only
    assert s.downtime_trend_s == pytest.approx(-40.0)  # finished cycles only: 80, 240, 0
    assert s.rss_growth_bytes is None  # no osha.resources


def test_terminal_section(soak: Analysis) -> None:
    text = render_summary(soak)
    section = text[text.index("soak cycles:") : text.index("SLOs:")]
    assert section.startswith("soak cycles: 8 (7 ok, 1 failed); MTTR mean ")
    lines = section.splitlines()
    assert lines[1].split() == ["cycle", "ok", "faults", "inj/rev/failed", "crashes/self-chaos",
                                "targets", "down", "downtime", "MTTR", "availability", "osha",
                                "RSS", "overruns/late"]  # fmt: skip
    row3 = lines[3 + FAILED_CYCLE - 1].split()
    # its MTTR: the kill's 3 s, ended on the sample grid and so estimated 0.25 s early
    assert row3[:9] == ["3", "NO", "3/3/0", "0/0", "2", "14.000", "s", "2.750", "s"]
    assert lines[3 + KILL_CYCLE - 1].split()[3] == "1/1"
    assert lines[3 + CYCLES - 1].split()[-3:] == ["40.8", "MiB", "-"]
    trends = lines[3 + CYCLES]
    assert trends == (
        "  trends: MTTR trend +0.500 s/cycle; downtime trend +1.000 s/cycle; "
        "availability trend -0.5102 pp/cycle; osha RSS cycle 5→8: +0.3 MiB, +3.5 MiB/h"
    )
    # 100 KiB a cycle, one cycle every 100 s: 3,600 KiB an hour
    assert soak.soak is not None
    assert soak.soak.rss_slope_bytes_per_h == pytest.approx(RSS_STEP * 36)


def test_terminal_elides_a_long_soak(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "long.osha")
    for c in range(1, 46):
        led.soak_cycle(c, 10.0 * c, 10.0 * c + 9.0)
        led.resources(10.0 * c + 5.0, RSS0)
    text = render_summary(analyze(led.write(stop_s=500.0)))
    lines = text[text.index("soak cycles:") : text.index("SLOs:")].splitlines()
    shown = [ln.split()[0] for ln in lines[3:] if ln.split() and ln.split()[0].isdigit()]
    assert shown == [str(c) for c in [*range(1, 11), *range(36, 46)]]
    assert "  … 25 more cycles" in lines
    trends = next(ln for ln in lines if ln.startswith("  trends:"))
    assert trends.endswith("MTTR trend +0.000 s/cycle; downtime trend +0.000 s/cycle; "
                           "availability trend -; osha RSS cycle 5→45: +0.0 MiB, "
                           "+0.0 MiB/h")  # fmt: skip


def test_json_soak_key(soak: Analysis) -> None:
    data = json.loads(dumps(to_dict(soak)))
    assert list(data)[-1] == "soak"
    s = data["soak"]
    assert list(s) == ["cycles", "cycles_ok", "cycles_failed", "cycles_unfinished",
                       "cycles_unrecovered", "mttr_mean_s", "mttr_max_s", "trends", "overruns",
                       "skipped"]  # fmt: skip
    assert len(s["cycles"]) == CYCLES
    first = s["cycles"][0]
    assert first["cycle"] == 1
    assert first["duration_s"] == pytest.approx(98.0)
    assert first["downtime_s"] == pytest.approx(_downtime(1))
    assert first["recovery_s"] == pytest.approx(_mttr(1), abs=BOUND_S)
    assert first["osha_rss_bytes"] == RSS0 + RSS_STEP
    assert s["cycles"][FAILED_CYCLE - 1]["ok"] is False
    assert s["trends"]["mttr_s_per_cycle"] == pytest.approx(0.5)
    assert s["trends"]["downtime_s_per_cycle"] == pytest.approx(1.0)
    assert s["trends"]["availability_per_cycle"] == pytest.approx(-1.0 / (2 * 98.0))
    assert s["trends"]["rss_growth_bytes"] == RSS_STEP * (CYCLES - 5)
    assert (s["trends"]["rss_from_cycle"], s["trends"]["rss_to_cycle"]) == (5, CYCLES)
    assert s["trends"]["rss_slope_bytes_per_h"] == pytest.approx(RSS_STEP * 36)
    assert (s["overruns"], s["skipped"], first["overruns"], first["late_s"]) == (0, 0, 0, 0.0)


def test_html_plots_mttr_and_rss(soak: Analysis) -> None:
    html = render_html(soak)
    section = html[html.index('<h2 id="soak">') : html.index("<h2>Definitions</h2>")]
    assert 'id="soak-plot"' in section
    for gid in ("soak-mttr", "soak-mttr-trend", "soak-rss", "soak-failed"):
        assert f'id="{gid}"' in section, gid
    assert "trend +0.500 s/cycle" in section  # the trend line's legend, as text in the SVG
    assert section.count("<tr>") == 1 + CYCLES  # header + one row per cycle


def test_overlaps_are_the_faults_held_at_the_same_time(soak: Analysis) -> None:
    """A fault overlaps another when both were held at one instant (inject to revert), not
    when one came within the attribution window (60 s) of the other: the kill is held from 10
    to 60 s into its cycle and the stop from 30 to 40 s; the pause (70 to 90 s) and the next
    cycle's faults were held alone."""
    by_id = {f.lease_id: f for f in soak.faults}
    for c in range(1, CYCLES + 1):
        assert by_id[f"k{c}"].overlaps == (f"s{c}",)
        assert by_id[f"s{c}"].overlaps == (f"k{c}",)
        assert by_id[f"p{c}"].overlaps == ()


def _killed_mid_inject(path: Path) -> Path:
    """A holder killed after its grant (20 s) and before it recorded the inject; the broker
    takes over (20.6 s) and reverts the fault (21 s). Another fault is held 20.8 - 30 s."""
    led = SyntheticLedger(path)
    led.target("hs", "nova-scheduler@ctl-1", end_s=60, interval_s=INTERVAL_S)
    led.add(20.0, "faults", FaultLease, lease=Lease(
            lease_id="kill-scheduler/0", holder="kill-scheduler",
            plugin="process", index=0, action="kill", node="ctl-1", address="192.0.2.1",
            resource="nova-scheduler", groups=(), down_s=1.0, planned_wall_s=led.wall(20.0),
            revert_by_wall_s=led.wall(141.0), revert={}))  # fmt: skip
    led.self_chaos(20.5, "kill-scheduler")
    led.add(20.6, "faults", FaultRevertAttempted, lease_id="kill-scheduler/0", attempt=1,
            by="broker")  # fmt: skip
    led.add(21.0, "faults", FaultReverted, lease_id="kill-scheduler/0", attempt=1, by="broker",
            detail="started", elapsed_s=0.4)  # fmt: skip
    led.add(21.0, "faults", FaultReleased, lease_id="kill-scheduler/0", holder="kill-scheduler",
            reverted=True, by="broker")  # fmt: skip
    led.fault("stop-conductor/0", inject_s=20.8, revert_s=30.0, action="stop", node="ctl-2",
              resource="nova-conductor")  # fmt: skip
    return led.write(stop_s=60)


def test_an_inject_its_holder_was_killed_in_is_unconfirmed_and_says_what_is_known(
    tmp_path: Path,
) -> None:
    a = analyze(_killed_mid_inject(tmp_path / "killed.osha"))
    f = {f.lease_id: f for f in a.faults}["kill-scheduler/0"]
    assert f.unconfirmed
    assert (f.injected_s, f.status, f.reverted_by) == (None, "reverted", "broker")
    assert f.held_s is None  # not "reverted - 0": the inject time is unknown
    assert f.held_at_most_s == pytest.approx(1.0)  # from the grant to the revert
    assert f.granted_s == pytest.approx(20.0)
    assert f.holder_lost_s == pytest.approx(20.5)
    assert f.takeover_s == pytest.approx(20.6)
    assert f.note == (
        "inject unconfirmed: kill-scheduler was killed at +20.500 s, after its grant at "
        "+20.000 s and before it recorded the inject; the broker took over at +20.600 s and "
        "reverted it at +21.000 s"
    )
    assert f.overlaps == ("stop-conductor/0",)  # it may have been held from its grant on
    text = render_summary(a)
    [row] = [line for line in text.splitlines() if line.startswith("  kill-scheduler/0 ")]
    assert "unconfirmed" in row
    assert "<= 1.000 s" in row
    assert "21.000 s" not in row
    assert f"kill-scheduler/0: {f.note}" in text
    assert to_dict(a)["faults"][0]["takeover_s"] == pytest.approx(20.6)


def _in_flight(path: Path) -> tuple[Path, SyntheticLedger]:
    """A fault injected at 10 s (revert deadline 610 s) and not reverted when the ledger
    ends at 20 s: osha still runs (a live judgement), or died."""
    led = SyntheticLedger(path)
    led.target("hs", "nova-conductor@ctl-2", end_s=20, interval_s=INTERVAL_S, down=[(10.5, 20)])
    led.fault("stop-conductor/0", inject_s=10.0, revert_s=None, action="stop", node="ctl-2",
              resource="nova-conductor")  # fmt: skip
    return led.write(torn=True), led


def test_a_fault_held_within_its_deadline_is_in_flight_for_a_live_judgement_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``require_reverted`` judges only reverts that failed or whose deadline passed while the
    run goes on (the soak's abort_on_breach); once the run is over, it is unreverted."""
    run_dir, led = _in_flight(tmp_path / "live.osha")
    spec = SloSpec(require_reverted=True)

    def reverted(a: Analysis) -> bool:
        [result] = [r for r in a.verdict.results if r.slo == "require_reverted"]
        return result.passed

    live = analyze(run_dir, slo=spec, options=AnalysisOptions(live_at_wall_s=led.wall(21.0)))
    assert [f.status for f in live.faults] == ["held"]
    assert reverted(live)
    late = analyze(run_dir, slo=spec, options=AnalysisOptions(live_at_wall_s=led.wall(611.0)))
    assert [f.status for f in late.faults] == ["unreverted"]  # its deadline passed
    assert not reverted(late)
    final = analyze(run_dir, slo=spec)  # the run is over (here: osha died)
    assert [f.status for f in final.faults] == ["unreverted"]
    assert not reverted(final)
    # the soak's judge in its child process: only the names of the breached objectives
    # (one judge, asked twice: one line in, one line out each)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{led.wall(21.0)!r}\n{led.wall(611.0)!r}\n"))
    assert judge_main([str(run_dir), "require_reverted"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["breached"] for a in answers] == [[], ["require_reverted"]]
    assert [a["read"] for a in answers] == [answers[0]["records"], 0]  # each record read once


def test_a_fault_that_never_got_its_lease_was_not_injected_and_needs_no_revert(
    tmp_path: Path,
) -> None:
    """A disruptor that stopped waiting for its grant (the chaos clock was held longer than
    its lease_timeout_s) records ``fault.inject_failed`` "no lease": nothing was injected, so
    ``require_reverted`` has nothing to judge (it ended a lab soak at cycle 4)."""
    led = SyntheticLedger(tmp_path / "no-lease.osha")
    led.add(20.0, "kill-scheduler", FaultInjectFailed, lease_id="kill-scheduler/4000",
            index=4000, action="kill", node="ctl-2", resource="nova-scheduler",
            error="no lease: fault.request kill-scheduler#1:10: no reply within 15 s")  # fmt: skip
    a = analyze(led.write(stop_s=30), slo=SloSpec(require_reverted=True))
    assert [f.status for f in a.faults] == ["failed"]
    [result] = [r for r in a.verdict.results if r.slo == "require_reverted"]
    assert result.passed, result.detail
