"""Blind time under faults: how long a monitor could not see a target while faults were on.

A target's downtime counts only what its monitor saw. A monitor that is blind (``unknown``:
its probe could not run, it crashed, it had not started) while a fault is on sees no outage,
so a ``max_downtime_s`` objective judged on the seen downtime alone would pass a target that
nobody watched. The verdict therefore judges the worst case the ledger allows: the downtime
seen plus the blind time under faults. A pass is proven; an unwatched target is not a pass.

**Blind time under faults**, per target: every blind stretch that overlaps a fault window
(a fault's ``[injected, reverted]``, or up to the end of the run for a fault not reverted),
counted from the later of its own start and the earliest overlapping fault's inject, to its
end (the next observation: the fault's effect may last that long, unseen). A blind stretch
inside an outage is not counted again: the outage already runs through it until the next
``up`` (see :mod:`osha.analysis._targets`). Time before the monitor's first observation is a
blind stretch too.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from osha.messages import is_bad

__all__ = ["blind_under_faults", "fault_windows"]


def fault_windows(
    spans: Iterable[tuple[float | None, float | None]], end_s: float
) -> tuple[tuple[float, float], ...]:
    """The union of the faults' ``(injected_s, reverted_s)`` windows, sorted and merged; a
    fault never injected has none, one never reverted lasts until ``end_s``."""
    raw = sorted(
        (inj, end_s if rev is None else max(inj, rev)) for inj, rev in spans if inj is not None
    )
    merged: list[tuple[float, float]] = []
    for lo, hi in raw:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _blind_stretches(
    segments: Sequence[tuple[float, str]], end_s: float
) -> list[tuple[float, float]]:
    """The target's blind stretches outside outages: ``(start, end)``; the first starts at
    -inf when the target was not observed from the start."""
    out: list[tuple[float, float]] = []
    blind_from: float | None = float("-inf")  # not observed yet: blind
    known = ""  # the last state that was not unknown
    for at, state in segments:
        if state == "unknown":
            if blind_from is None and not is_bad(known):
                blind_from = at
            continue
        if blind_from is not None:
            out.append((blind_from, at))
            blind_from = None
        known = state
    if blind_from is not None:
        out.append((blind_from, end_s))
    return out


def blind_under_faults(
    segments: Sequence[tuple[float, str]],
    windows: Sequence[tuple[float, float]],
    end_s: float,
) -> float:
    """Seconds the target was blind under faults (see the module's docstring). ``windows``:
    :func:`fault_windows`; ``segments``: the target's ``(start, state)`` changes in order."""
    if not windows:
        return 0.0
    starts = [lo for lo, _ in windows]
    ends = [hi for _, hi in windows]  # disjoint and sorted windows: their ends are sorted too
    total = 0.0
    for lo, hi in _blind_stretches(segments, end_s):
        i = bisect.bisect_left(ends, lo)  # the first window that ends at or after its start
        if i == len(windows) or starts[i] > hi:
            continue  # no fault window overlaps this stretch
        total += max(0.0, hi - max(lo, starts[i]))
    return total
