"""One sweep of audits: every configured audit run at once, each bounded in time, each
recorded as ``audit.start``, its ``audit.finding`` records, its ``audit.cleanup`` records
and ``audit.end``.

**Cleanup.** Only in a sweep with ``clean=True`` (the campaign's sweep after its teardown,
never ``osha audit``), only for an audit with ``cleanup = true``, and only of the items the
plugin marked ``osha_made``: writes are let through for each :meth:`~osha.audit.Audit.clean`
call alone, within the audit's ``timeout_s``; each attempt is recorded.

An audit that raises, or tries a write, ends ``ok=False`` with the reason; one that does not
return within its ``timeout_s`` plus :data:`HARD_MARGIN_S` (an API call hung past the
budget's checks) is recorded as not finished with what it found so far, and left behind (a
daemon thread). No audit stops the others.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from osha.audit._plugin import Audit, Budget
from osha.audit._plugins import AuditEntry
from osha.audit._readonly import Calls, guard
from osha.audit._share import Share
from osha.errors import OshaError, PluginError
from osha.messages import Message
from osha.messages.audit import (
    AuditCleanup,
    AuditEnd,
    AuditFinding,
    AuditStart,
    AuditWhen,
    Debris,
)

__all__ = ["HARD_MARGIN_S", "AuditRun", "Record", "sweep"]

log = logging.getLogger("osha.audit")

#: how long past its own ``timeout_s`` an audit is waited for: one API call's timeout (the
#: budget is checked between calls, so the last call may start just before the deadline)
HARD_MARGIN_S = 30.0
#: how often a sweep that may be stopped looks at its ``stopped()``
STOP_POLL_S = 0.2

Record = Callable[..., Message]
"""``record(cls, **fields)``: stamp and write a message (the campaign's recorder)."""


@dataclass(slots=True)
class AuditRun:
    """One audit's run: what it found and how it ended."""

    entry: AuditEntry
    found: list[Debris] = field(default_factory=list)
    error: str = ""
    truncated: str = ""
    items_read: int = 0
    #: the osha-made items a cleanup tried to remove: (item, ok, what was done or why not)
    cleaned: list[tuple[Debris, bool, str]] = field(default_factory=list)
    calls: Calls | None = None
    done: threading.Event = field(default_factory=threading.Event)
    #: the sweep stopped waiting for it (recorded as not finished): it must not clean now,
    #: as what it would remove could no longer be recorded
    abandoned: threading.Event = field(default_factory=threading.Event)
    started_s: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.done.is_set() and not self.error


def _clean(run: AuditRun, plugin: Audit[Any], conn: Any, calls: Calls, budget: Budget) -> None:
    """Remove the items osha made, one at a time, each with writes let through for it alone;
    stop at the audit's deadline."""
    for item in [d for d in run.found if d.osha_made]:
        if run.abandoned.is_set():
            return
        if budget.clock() >= budget.deadline_s:
            run.cleaned.append((item, False, "not tried: the audit reached its timeout_s"))
            continue
        try:
            with calls.writes_allowed():
                detail = plugin.clean(conn, item)
        except OshaError as exc:
            run.cleaned.append((item, False, exc.message))
            continue
        except Exception as exc:  # recorded: one item that cannot be removed stops no other
            log.debug("cleanup of %s by %s raised", item.resource_id, run.entry.id,
                      exc_info=True)  # fmt: skip
            run.cleaned.append((item, False, f"{type(exc).__name__}: {exc}"))
            continue
        run.cleaned.append((item, True, detail))


def _fits(name: str, value: object) -> bool:
    """Whether a :class:`Debris` field holds what the ledger can hold."""
    if name == "osha_made":
        return type(value) is bool
    if name == "since_s":
        return value is None or (isinstance(value, float | int) and type(value) is not bool
                                 and math.isfinite(value))  # fmt: skip
    return type(value) is str


def _checked(item: object, plugin: str) -> Debris:
    """``item`` if it is a :class:`Debris` the ledger can hold (each field of its type, the
    time finite); else a :class:`PluginError` naming the fields. Checked here, in the
    audit's thread, so that a plugin's bad item fails its audit (recorded) and never reaches
    the ledger, where it would not encode, or not decode on replay."""
    if not isinstance(item, Debris):
        raise PluginError(f"audit plugin {plugin!r} yielded a {type(item).__name__}, not a Debris")
    values: dict[str, object] = {f: getattr(item, f) for f in Debris.__dataclass_fields__}
    wrong = [f"{name} = {value!r}" for name, value in values.items() if not _fits(name, value)]
    if wrong:
        raise PluginError(
            f"audit plugin {plugin!r} yielded a bad Debris: {', '.join(wrong)}",
            hint="kind, resource_id, state, evidence, name: str; osha_made: bool; since_s: a "
            "finite float (wall seconds) or None",
        )
    since = values["since_s"]
    return replace(item, since_s=float(since)) if type(since) is int else item


def _build(entry: AuditEntry) -> tuple[Audit[Any] | None, tuple[str, ...], str]:
    """The plugin and the keys it shares, or None and why it cannot be built."""
    try:
        plugin = entry.build()
        return plugin, tuple(plugin.shares()), ""
    except OshaError as exc:
        return None, (), exc.message
    except Exception as exc:  # recorded: an audit that breaks must not stop the campaign
        log.debug("audit %s cannot be built", entry.id, exc_info=True)
        return None, (), f"{type(exc).__name__}: {exc}"


def _run(run: AuditRun, plugin: Audit[Any], share: Share, clean: bool) -> None:
    budget = Budget.of(run.entry.config)
    try:
        plugin.share = share.seat(run.entry.id)
        conn = plugin.connect()
        calls = run.calls = guard(conn.session)
        for item in plugin.findings(conn, budget):
            run.found.append(_checked(item, run.entry.plugin))
        run.truncated = budget.truncated
        run.items_read = run.entry.config.max_items - budget.items_left
        if clean and run.entry.config.cleanup:
            _clean(run, plugin, conn, calls, budget)
    except OshaError as exc:
        run.error = exc.message
    except Exception as exc:  # recorded: an audit that breaks must not stop the campaign
        log.debug("audit %s raised", run.entry.id, exc_info=True)
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        share.gone(run.entry.id)  # the audits that share a reading with it wait no more
        run.elapsed_s = time.monotonic() - run.started_s
        run.done.set()


def _wait(run: AuditRun, stopped: Callable[[], bool] | None) -> str:
    """Wait for the audit, at most its ``timeout_s`` plus :data:`HARD_MARGIN_S` from its
    start, and no longer once ``stopped()`` says so; empty if it finished, else why not."""
    wait_s = run.entry.config.timeout_s + HARD_MARGIN_S
    while True:
        left_s = run.started_s + wait_s - time.monotonic()
        if run.done.wait(max(0.0, min(left_s, STOP_POLL_S if stopped else left_s))):
            return ""
        if stopped is not None and stopped():
            return "not waited for: the campaign was stopped"
        if left_s <= 0:
            return f"did not finish within {wait_s:g} s (timeout_s + {HARD_MARGIN_S:g} s)"


def sweep(
    entries: Sequence[AuditEntry],
    when: AuditWhen,
    record: Record,
    *,
    clean: bool = False,
    stopped: Callable[[], bool] | None = None,
) -> list[AuditRun]:
    """Run every audit in ``entries`` in parallel and record each; return the runs.
    ``clean``: let the audits with ``cleanup = true`` remove what osha made. ``stopped``:
    once it says True, the audits not yet finished are recorded as such and left behind
    (a campaign stopped during its sweep before the load does not wait for it)."""
    built = [(entry, *_build(entry)) for entry in entries]
    # every key each audit shares, before any starts: a reading waits for all who share it
    share = Share((entry.id, key) for entry, _, keys, _ in built for key in keys)
    runs: list[AuditRun] = []
    for entry, plugin, _, error in built:
        record(AuditStart, audit=entry.id, plugin=entry.plugin, when=when,
               timeout_s=float(entry.config.timeout_s))  # fmt: skip
        run = AuditRun(entry)
        runs.append(run)
        if plugin is None:
            run.error = error
            run.done.set()
            continue
        threading.Thread(target=_run, args=(run, plugin, share, clean),
                         name=f"osha-audit-{entry.id}", daemon=True).start()  # fmt: skip
    for run in runs:
        why = _wait(run, stopped)
        if why:
            run.abandoned.set()
            run.error = why
            run.elapsed_s = time.monotonic() - run.started_s
        _record(run, when, record)
    return runs


def _record(run: AuditRun, when: AuditWhen, record: Record) -> None:
    found = list(run.found)  # a copy: a thread left behind may still append
    for item in found:
        short = replace(item, evidence=item.evidence[:500])
        record(AuditFinding, audit=run.entry.id, when=when, item=short)
    for item, ok, detail in list(run.cleaned):
        record(AuditCleanup, audit=run.entry.id, kind=item.kind, resource_id=item.resource_id,
               ok=ok, detail=detail[:500])  # fmt: skip
    record(AuditEnd, audit=run.entry.id, when=when, ok=run.ok, findings=len(found),
           elapsed_s=round(run.elapsed_s, 3), truncated=bool(run.truncated),
           error=run.error or run.truncated, items_read=run.items_read)  # fmt: skip
