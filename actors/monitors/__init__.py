"""Monitors: ``openstack-api``, ``host-services``, ``nagios`` and ``vm-ping``; and the kit
they share (:mod:`actors.monitors._kit`), which a monitor plugin may use too::

    from actors.monitors import Aggregator, ReportCadence, StateTracker, SummaryConfig
"""

from actors.monitors._kit import (
    UNSENT,
    Aggregator,
    MetricAggregator,
    ReportCadence,
    SampleSummary,
    StateTracker,
    SummaryConfig,
)

__all__ = [
    "UNSENT",
    "Aggregator",
    "MetricAggregator",
    "ReportCadence",
    "SampleSummary",
    "StateTracker",
    "SummaryConfig",
]
