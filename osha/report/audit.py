"""The audits in a report: one row per audit (before, after, new, pre-existing, healed) and
one line per new item with the fault it is tied to, for the terminal; the same as plain data
for JSON. Also the findings of an on-demand sweep (``osha audit``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from osha.audit import AuditOutcome, AuditRun, Judged
from osha.messages.audit import AuditEnd
from osha.report._fmt import table

__all__ = ["audit_lines", "audits_to_dict", "sweep_lines"]

#: new items listed per audit in the terminal (all of them are in the JSON and the ledger)
MAX_ITEMS = 20


def _sweep(end: AuditEnd | None, ran: bool) -> str:
    if not ran:
        return "-"
    if end is None:
        return "unfinished"
    if not end.ok:
        return f"FAILED: {end.error}"
    return f"{end.findings} found" + (" (truncated)" if end.truncated else "")


def _item(j: Judged) -> str:
    f = j.finding.item
    tied = f"; tied to {j.fault}" if j.fault else ""
    name = f" {f.name}" if f.name and f.name != f.resource_id else ""
    return f"    {j.origin}: {f.kind} {f.resource_id}{name}: {f.state}{tied} ({f.evidence})"


def audit_lines(outcomes: Sequence[AuditOutcome]) -> list[str]:
    """The audits section of the terminal report (empty without audits)."""
    if not outcomes:
        return []
    rows = []
    for o in outcomes:
        c = o.compared
        new = "-" if o.new_count is None else str(o.new_count)
        pre = "-" if c is None else str(len(c.after) - len(c.new))
        healed = "-" if c is None else str(len(c.healed))
        rows.append([o.audit, o.plugin, _sweep(o.before, o.ran_before),
                     _sweep(o.after, o.ran_after), new, pre, healed])  # fmt: skip
    out = ["audits (before the campaign, after its teardown):",
           table(["audit", "plugin", "before", "after", "new", "pre-existing", "healed"],
                 rows)]  # fmt: skip
    for o in outcomes:
        if o.cleaned:
            done = sum(1 for c in o.cleaned if c.ok)
            out.append(f"  {o.audit}: cleanup of what osha made: {done} removed, "
                       f"{len(o.cleaned) - done} failed")  # fmt: skip
            out.extend(f"    {'removed' if c.ok else 'FAILED'}: {c.kind} {c.resource_id} "
                       f"({c.detail})" for c in o.cleaned)  # fmt: skip
        fresh = o.compared.new if o.compared is not None else ()
        if fresh:
            out.append(f"  {o.audit}: new debris")
            out.extend(_item(j) for j in fresh[:MAX_ITEMS])
            if len(fresh) > MAX_ITEMS:
                more = len(fresh) - MAX_ITEMS
                out.append(f"    … {more} more (osha report --json lists all)")
    return out


def _end(end: AuditEnd | None) -> dict[str, Any] | None:
    if end is None:
        return None
    return {"ok": end.ok, "findings": end.findings, "elapsed_s": end.elapsed_s,
            "truncated": end.truncated, "error": end.error}  # fmt: skip


def audits_to_dict(outcomes: Sequence[AuditOutcome]) -> list[dict[str, Any]]:
    """The audits as JSON-able data: ``[{audit, plugin, before, after, new_count, items
    [{origin, kind, resource_id, name, state, evidence, since_s, first_seen_s, fault,
    osha_made}], healed [{kind, resource_id, name, state}], cleaned [{kind, resource_id,
    ok, detail}]}]``."""
    out = []
    for o in outcomes:
        c = o.compared
        items = [] if c is None else [
            {"origin": str(j.origin), **asdict(j.finding.item), "first_seen_s": j.first_seen_s,
             "fault": j.fault}
            for j in c.after
        ]  # fmt: skip
        healed = [] if c is None else [
            {"kind": f.item.kind, "resource_id": f.item.resource_id, "name": f.item.name,
             "state": f.item.state}
            for f in c.healed
        ]  # fmt: skip
        cleaned = [{"kind": c.kind, "resource_id": c.resource_id, "ok": c.ok,
                    "detail": c.detail} for c in o.cleaned]  # fmt: skip
        out.append({"audit": o.audit, "plugin": o.plugin, "before": _end(o.before),
                    "after": _end(o.after), "new_count": o.new_count, "items": items,
                    "healed": healed, "cleaned": cleaned})  # fmt: skip
    return out


def sweep_lines(runs: Sequence[AuditRun]) -> list[str]:
    """An on-demand sweep: one row per audit, then every item found."""
    rows = []
    for r in runs:
        how = "ok" if r.ok else f"FAILED: {r.error}"
        how += f" (truncated: {r.truncated})" if r.truncated else ""
        rows.append([r.entry.id, r.entry.plugin, str(len(r.found)), f"{r.elapsed_s:.1f} s", how])
    out = [table(["audit", "plugin", "found", "took", "status"], rows)]
    for r in runs:
        for d in r.found:
            name = f" {d.name}" if d.name and d.name != d.resource_id else ""
            mine = " [osha made it]" if d.osha_made else ""
            out.append(f"  {r.entry.id}: {d.kind} {d.resource_id}{name}: {d.state}{mine} "
                       f"({d.evidence})")  # fmt: skip
    return out
