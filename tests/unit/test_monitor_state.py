"""The state tracker and the per-interval aggregators."""

from __future__ import annotations

import pytest

from actors.monitors import (
    UNSENT,
    Aggregator,
    MetricAggregator,
    ReportCadence,
    StateTracker,
    SummaryConfig,
)
from osha.messages.monitor import Metric, Sample, StateChange
from osha.testing import FakeContext


def test_first_observation_is_a_change_from_unknown_without_lower_bound() -> None:
    t = StateTracker()
    assert t.observe("a", "up", 1.0) == StateChange(*UNSENT, "a", "up", "unknown", None, 1.0)
    assert t.observe("a", "up", 2.0) is None
    assert t.state("a") == "up"
    assert t.state("other") == "unknown"


def test_change_carries_last_good_and_first_bad() -> None:
    t = StateTracker()
    t.observe("a", "up", 1.0)
    t.observe("a", "up", 2.0)
    change = t.observe("a", "down", 3.0, "gone")
    assert change == StateChange(*UNSENT, "a", "down", "up", 2.0, 3.0, "gone")
    back = t.observe("a", "up", 5.0)
    assert back is not None
    assert (back.last_good_mono_s, back.first_bad_mono_s) == (3.0, 5.0)


def test_since_tightens_first_bad_but_never_below_last_good() -> None:
    t = StateTracker()
    t.observe("a", "down", 1.0)
    t.observe("a", "down", 2.0)
    change = t.observe("a", "up", 3.0, since_mono_s=2.4)  # the process started at 2.4
    assert change is not None
    assert change.first_bad_mono_s == 2.4
    t.observe("a", "down", 4.0)
    early = t.observe("a", "up", 5.0, since_mono_s=1.0)  # clock noise: clamp to last good
    assert early is not None
    assert early.first_bad_mono_s == 4.0


def test_touch_moves_last_good_forward_only() -> None:
    t = StateTracker()
    t.touch("new", 1.0)  # unknown targets are not created
    assert t.last_seen("new") is None
    t.observe("a", "up", 1.0)
    t.touch("a", 3.0)
    t.touch("a", 2.0)
    assert t.last_seen("a") == 3.0
    change = t.observe("a", "down", 4.0)
    assert change is not None
    assert change.last_good_mono_s == 3.0


def test_emit_sends_a_state_change_message() -> None:
    ctx = FakeContext()
    t = StateTracker(ctx)
    t.emit("a", "up", 1.0)
    t.emit("a", "up", 2.0)
    t.emit("a", "unreachable", 3.0, "no route")
    msgs = ctx.of(StateChange)
    assert [(m.state, m.previous, m.last_good_mono_s, m.evidence) for m in msgs] == [
        ("up", "unknown", None, ""),
        ("unreachable", "up", 2.0, "no route"),
    ]
    with pytest.raises(RuntimeError):
        StateTracker().emit("a", "up", 1.0)


def test_aggregator_summarises_per_target_and_resets() -> None:
    agg = Aggregator()
    for lat in (0.3, 0.1, 0.2):
        agg.add("b", ok=True, latency_s=lat)
    agg.add("b", ok=False)
    agg.add("a", ok=False)
    out = agg.drain()
    assert [(s.target, s.count, s.failures) for s in out] == [("a", 1, 1), ("b", 4, 1)]
    assert (out[1].latency_min_s, out[1].latency_median_s, out[1].latency_max_s) == (0.1, 0.2, 0.3)
    assert out[0].latency_median_s is None
    assert agg.drain() == []


def test_aggregator_memory_is_bounded() -> None:
    agg = Aggregator(max_latencies=100)
    for i in range(10_000):
        agg.add("a", ok=True, latency_s=float(i))
    (s,) = agg.drain()
    assert s.count == 10_000
    assert s.latency_max_s == 9999.0


def test_flush_emits_samples_and_metrics() -> None:
    ctx = FakeContext()
    agg = Aggregator()
    agg.add("a", ok=True, latency_s=0.5)
    assert agg.flush(ctx) == 1
    assert ctx.of(Sample)[0].target == "a"
    metrics = MetricAggregator()
    metrics.add("chk", "time", 0.2, "s")
    metrics.add("chk", "time", 0.1, "s")
    assert metrics.flush(ctx) == 1
    m = ctx.of(Metric)[0]
    assert (m.name, m.unit, m.count, m.last, m.min, m.max) == ("time", "s", 2, 0.1, 0.1, 0.2)
    assert m.median == pytest.approx(0.15)


def test_report_cadence_reports_at_the_first_poll_then_once_a_period() -> None:
    cadence = ReportCadence.of(SummaryConfig(interval_s=0.2, report_interval_s=1.0))
    assert [cadence.due(t) for t in (5.0, 5.2, 5.8, 6.0, 6.2, 7.1)] == [
        True, False, False, True, False, True,
    ]  # fmt: skip


def test_report_cadence_is_never_faster_than_the_poll() -> None:
    cadence = ReportCadence(report_interval_s=0.0, interval_s=0.5)
    assert [cadence.due(t) for t in (1.0, 1.2, 1.5, 1.6, 2.0)] == [True, False, True, False, True]
