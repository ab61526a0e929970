"""Fixtures for the unit tier: supervised runs with real child processes, and a leak check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, settings

from osha.supervisor import ChildSpec, Supervisor, SupervisorFlags, SupervisorSpec
from osha.testing import MemorySink, wait_for

# Hypothesis fails an example that runs over 200 ms (``deadline``) or a strategy that draws
# slowly (``too_slow``), as if slowness were a bug. The unit tier checks behaviour, not speed,
# and runs on a loaded 2-core machine (CI, or beside a lab) where one descheduled example takes
# any time: a 0.2 s deadline is a scheduling lottery. Loaded here, before any test module, so
# that every ``@settings(...)`` that does not set these inherits them.
settings.register_profile("unit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("unit")

#: Fast heartbeats so that hang tests take about a second.
FAST = {"heartbeat_interval_s": 0.1, "heartbeat_timeout_s": 1.0, "backoff_initial_s": 0.02}


def _descendants() -> list[psutil.Process]:
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture
def no_children_left() -> Iterator[Callable[[], None]]:
    """Asserts, after the test, that no descendant process of the test process remains."""

    def check() -> None:
        wait_for(lambda: not _descendants(), timeout_s=5.0, what="no child process left")

    yield check
    leftovers = _descendants()
    for proc in leftovers:  # do not leak them into the next test, then fail this one
        proc.kill()
    assert not leftovers, f"child processes left behind: {leftovers}"


SuperviseFactory = Callable[..., tuple[Supervisor, MemorySink]]


@pytest.fixture
def supervise(tmp_path: Path, no_children_left: Callable[[], None]) -> Iterator[SuperviseFactory]:
    """Start a supervisor over the given children with fast heartbeats; stopped after the test."""
    started: list[Supervisor] = []

    def factory(*children: ChildSpec, **flags: object) -> tuple[Supervisor, MemorySink]:
        sink = MemorySink()
        spec = SupervisorSpec(children=children, flags=SupervisorFlags(**{**FAST, **flags}))  # type: ignore[arg-type]
        sup = Supervisor(spec, sink, run_dir=tmp_path)
        started.append(sup)
        sup.start()
        return sup, sink

    yield factory
    for sup in started:
        sup.stop()  # idempotent; a no-op after escalation or a failed start
