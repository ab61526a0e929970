"""Which fault caused what: attribution of outages and stretches, per-fault metrics.

**Window of a fault**: from its actual inject time to its revert (or the end of the run, if it
was never reverted) plus ``attribution_s``.

**Attribution**: an outage or a runner stretch belongs to the fault whose window contains its
start and that was injected last before it (within ``clock_slack_s``). Among several, the fault
that names the target most exactly wins: a target ``service@node`` (or ``node:NAME``) is
split into its resource and node, and a fault on the same node *and* resource beats one on
the same node only (a reboot), which beats one on the same resource on another node (the
other scheduler frozen), which beats any other. Only then does the last inject decide. Faults
whose *held* intervals intersect (from the inject, or the grant of an unconfirmed inject, to
the revert or the end of the run) are listed as ``overlaps`` of each other: read their figures
together.

**Detection time** (per monitor): from the fault's actual inject time to the first bad
observation of the first outage attributed to it, on any target of that monitor.

**Time to recover** (per target): the outages attributed to the fault are followed, through
any outage that starts less than ``steady_s`` after the previous one ends (a relapse; not one
attributed to another fault, as a soak's next fault on the same target), to the first up
observation that lasts; the time is measured from the start of the fault's revert (a
``systemctl start`` returns only once the service is up, so its end would hide the
recovery) or, if the target was healthy again before the revert began (a self-healing fault,
e.g. a killed service that its init system restarts), from the inject. Its bound is that
of the outage's end.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence

from osha.analysis._faults import FaultRecord
from osha.analysis._kinds import RecoveryFrom
from osha.analysis.model import (
    Detection,
    Episode,
    FaultReport,
    RunnerImpact,
    Stretch,
    TargetImpact,
    TargetReport,
)
from osha.analysis.options import AnalysisOptions

__all__ = ["FaultWindows", "fault_reports"]


class FaultWindows:
    """The injected faults with their windows, for attribution (bisect on inject times, so a
    soak with thousands of faults and outages stays near-linear)."""

    def __init__(self, faults: Sequence[FaultRecord], end_s: float, opts: AnalysisOptions):
        self.opts = opts
        self.faults = sorted(
            (f for f in faults if f.injected_s is not None),
            key=lambda f: (f.injected_s or 0.0, f.lease_id),
        )
        self.starts = [f.injected_s or 0.0 for f in self.faults]
        self.windows = {
            f.lease_id: (
                f.injected_s or 0.0,
                (f.reverted_s if f.reverted_s is not None else end_s) + opts.attribution_s,
            )
            for f in self.faults
        }
        self.longest = max((hi - lo for lo, hi in self.windows.values()), default=0.0)
        # the held intervals, for overlaps: an unconfirmed inject may have held from its grant
        self.held = sorted(
            (start, f.reverted_s if f.reverted_s is not None else end_s, f.lease_id)
            for f in faults
            if (start := f.injected_s if f.injected_s is not None else _unconfirmed(f))
            is not None
        )

    def _around(self, lo: float, hi: float) -> list[FaultRecord]:
        """Faults whose window intersects ``[lo, hi]``, in inject order."""
        last = bisect_right(self.starts, hi)
        first = bisect_left(self.starts, lo - self.longest)
        return [f for f in self.faults[first:last] if self.windows[f.lease_id][1] >= lo]

    def owner(self, t: float, subject: str = "") -> FaultRecord | None:
        """The fault that owns something starting at ``t`` (for ``subject``, a target)."""
        cands = self._around(t, t + self.opts.clock_slack_s)
        if not cands:
            return None
        if not subject:
            return cands[-1]
        node, resource = _subject_parts(subject)
        # max() keeps the first of equals: walk newest first so the last inject wins a tie
        return max(reversed(cands), key=lambda f: _naming_rank(f, node, resource))

    def overlaps(self, fault: FaultRecord) -> tuple[str, ...]:
        """The other faults held at some instant while ``fault`` was held."""
        mine = next((h for h in self.held if h[2] == fault.lease_id), None)
        if mine is None:
            return ()
        lo, hi, _ = mine
        return tuple(
            lease for start, end, lease in self.held
            if lease != fault.lease_id and start < hi and end > lo
        )  # fmt: skip


def _unconfirmed(f: FaultRecord) -> float | None:
    """An unconfirmed inject's grant: it may have been in place from then on."""
    lost = f.holder_lost_s is not None and f.injected_s is None and not f.inject_error
    return f.granted_s if lost else None


def _subject_parts(subject: str) -> tuple[str, str]:
    """(node, resource) of a target name: ``svc@node``, ``node:NAME`` or ``kind:NAME``."""
    if "@" in subject:
        resource, _, node = subject.rpartition("@")
        return node, resource
    kind, sep, name = subject.partition(":")
    if sep and kind == "node":
        return name, ""
    return "", name if sep else subject


def _naming_rank(fault: FaultRecord, node: str, resource: str) -> int:
    """How exactly ``fault`` names a target on ``node`` / ``resource``: 3 both, 2 the node
    only, 1 the resource only, 0 neither."""
    same_node = bool(fault.node) and fault.node == node
    same_resource = bool(fault.resource) and fault.resource == resource
    return 2 * same_node + same_resource


def _recovery(
    fault: FaultRecord,
    episodes: Sequence[Episode],
    last: int,
    steady_s: float,
    *,
    owned: frozenset[int] = frozenset(),
    mine: frozenset[int] = frozenset(),
) -> tuple[bool, float | None, float, RecoveryFrom]:
    """(recovered, time to recover, bound, measured from) after the outage at ``last``.
    The outages in ``owned`` (attributed to any fault) but not in ``mine`` (to this one) are
    never followed (a soak's next fault on the same target starts its own outage, not a
    relapse of this one)."""
    k = last
    while k + 1 < len(episodes) and episodes[k].first_good_s is not None:
        gap = episodes[k + 1].start_s - episodes[k].end_s
        if gap >= steady_s or (k + 1 in owned and k + 1 not in mine):
            break
        k += 1
    end = episodes[k]
    if end.first_good_s is None:
        return False, None, 0.0, RecoveryFrom.NEVER
    bound = (end.first_good_s - end.last_bad_s) / 2
    injected = fault.injected_s or 0.0
    began = fault.revert_began_s if fault.revert_began_s is not None else fault.reverted_s
    if began is not None and began < end.end_s:
        return True, end.end_s - began, bound, RecoveryFrom.REVERT
    return True, end.end_s - injected, bound, RecoveryFrom.INJECT


#: (monitor, target) of a target report
_Key = tuple[str, str]
#: a runner's (error clusters, degraded stretches)
_Stretches = tuple[list[Stretch], list[Stretch]]


def fault_reports(
    faults: Sequence[FaultRecord],
    targets: Sequence[TargetReport],
    runners: dict[str, _Stretches],
    end_s: float,
    opts: AnalysisOptions,
    *,
    overlaps: bool = True,
) -> tuple[FaultReport, ...]:
    """Every lease, with detections and impacts for those that were injected.

    ``runners`` maps a runner id to its (error clusters, degraded stretches). Without
    ``overlaps`` (a live judgement: no objective reads them) each report's are left empty:
    listing them costs a scan of every fault per fault."""
    windows = FaultWindows(faults, end_s, opts)
    owned, owner_of = _attribute_episodes(windows, targets)
    runner_owned = _attribute_stretches(windows, runners)
    by_key = {(t.monitor, t.target): t for t in targets}
    # built once per target, not once per fault (that was O(faults x outages) in a long soak)
    owned_by_any = {key: frozenset(idx) for key, idx in owner_of.items()}
    out = []
    for f in faults:
        detections, impacts = _target_figures(
            f, owned.get(f.lease_id, {}), by_key, owned_by_any, opts.steady_s
        )
        runner_impacts = [
            _runner_impact(name, errs, degs)
            for name, (errs, degs) in sorted(runner_owned.get(f.lease_id, {}).items())
        ]
        out.append(
            _report(
                f,
                opts,
                overlaps=windows.overlaps(f) if overlaps else (),
                detections=tuple(detections),
                targets=tuple(impacts),
                runners=tuple(runner_impacts),
            )
        )
    return tuple(out)


def _attribute_episodes(
    windows: FaultWindows, targets: Sequence[TargetReport]
) -> tuple[dict[str, dict[_Key, list[int]]], dict[_Key, list[int]]]:
    """Each target's outages attributed to their faults: (lease -> (monitor, target) ->
    indexes of the target's episodes attributed to the lease, (monitor, target) -> indexes of
    its episodes attributed to any fault)."""
    owned: dict[str, dict[_Key, list[int]]] = defaultdict(dict)
    owner_of: dict[_Key, list[int]] = defaultdict(list)
    for rep in targets:
        for i, ep in enumerate(rep.episodes):
            owner = windows.owner(ep.first_bad_s, rep.target)
            if owner is not None:
                owned[owner.lease_id].setdefault((rep.monitor, rep.target), []).append(i)
                owner_of[(rep.monitor, rep.target)].append(i)
    return owned, owner_of


def _attribute_stretches(
    windows: FaultWindows, runners: dict[str, _Stretches]
) -> dict[str, dict[str, _Stretches]]:
    """Each runner's error clusters and degraded stretches, attributed to their faults:
    lease -> runner -> (errors, degraded)."""
    runner_owned: dict[str, dict[str, _Stretches]] = defaultdict(dict)
    for runner, (errors, degraded) in sorted(runners.items()):
        for kind, stretches in ((0, errors), (1, degraded)):
            for st in stretches:
                owner = windows.owner(st.first_s)
                if owner is not None:
                    slot = runner_owned[owner.lease_id].setdefault(runner, ([], []))
                    slot[kind].append(st)
    return runner_owned


def _target_figures(
    f: FaultRecord,
    owned: dict[_Key, list[int]],
    by_key: dict[_Key, TargetReport],
    owned_by_any: dict[_Key, frozenset[int]],
    steady_s: float,
) -> tuple[list[Detection], list[TargetImpact]]:
    """The fault's first detection per monitor (in monitor order) and its impact on each
    target (in (monitor, target) order), from the outages ``owned`` by it."""
    impacts: list[TargetImpact] = []
    first_by_monitor: dict[str, Detection] = {}
    for (monitor, target), idx in sorted(owned.items()):
        eps = by_key[(monitor, target)].episodes
        mine = [eps[i] for i in idx]
        first = mine[0]
        det = Detection(
            monitor,
            target,
            first.first_bad_s - (f.injected_s or 0.0),
            first.reported_s - (f.injected_s or 0.0),
            first.worst,
        )
        best = first_by_monitor.get(monitor)
        if best is None or det.detection_s < best.detection_s:
            first_by_monitor[monitor] = det
        recovered, ttr, ttr_bound, ref = _recovery(
            f, eps, idx[-1], steady_s, owned=owned_by_any[(monitor, target)],
            mine=frozenset(idx),
        )  # fmt: skip
        impacts.append(
            TargetImpact(
                monitor=monitor,
                target=target,
                episodes=len(mine),
                downtime_s=sum(e.downtime_s for e in mine),
                downtime_bound_s=sum(e.bound_s for e in mine),
                recovered=recovered,
                recovery_s=ttr,
                recovery_bound_s=ttr_bound,
                recovery_from=ref,
            )
        )
    return [first_by_monitor[m] for m in sorted(first_by_monitor)], impacts


def _report(
    f: FaultRecord,
    opts: AnalysisOptions,
    *,
    overlaps: tuple[str, ...],
    detections: tuple[Detection, ...],
    targets: tuple[TargetImpact, ...],
    runners: tuple[RunnerImpact, ...],
) -> FaultReport:
    """The report of one lease: its record's facts and the figures attributed to it."""
    return FaultReport(
        lease_id=f.lease_id,
        holder=f.holder,
        plugin=f.plugin,
        action=f.action,
        node=f.node,
        resource=f.resource,
        planned_s=f.planned_s,
        injected_s=f.injected_s,
        inject_error=f.inject_error,
        refused=f.refused,
        reverted_s=f.reverted_s,
        reverted_by=f.reverted_by,
        revert_attempts=f.revert_attempts,
        revert_error=f.revert_error,
        released=f.released,
        status=f.status_at(opts.live_at_wall_s),
        overlaps=overlaps,
        detections=detections,
        targets=targets,
        runners=runners,
        granted_s=f.granted_s,
        holder_lost_s=f.holder_lost_s,
        takeover_s=f.takeover_s,
        guard_note=f.guard_note,
    )


def _runner_impact(name: str, errors: list[Stretch], degraded: list[Stretch]) -> RunnerImpact:
    worst = max(degraded, key=lambda s: s.degradation_ratio or 0.0, default=None)
    return RunnerImpact(
        runner=name,
        errors=sum(s.iterations for s in errors),
        downtime_s=sum(s.length_s for s in errors),
        downtime_bound_s=sum(s.bound_s for s in errors),
        mttr_s=sum(s.length_s for s in degraded) if degraded else None,
        mttr_bound_s=sum(s.bound_s for s in degraded),
        degradation_s=worst.degradation_s if worst else None,
        degradation_ratio=worst.degradation_ratio if worst else None,
        degradation_bound_s=worst.degradation_bound_s if worst else None,
        degradation_ratio_bound=worst.degradation_ratio_bound if worst else None,
        atomics=worst.atomics if worst else (),
    )
