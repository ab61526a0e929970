"""``osha faults recover RUN_DIR``: revert the leases a dead run left, from its ledger alone.

A lease is unrevoked while the ledger has its ``fault.lease`` and no ``fault.reverted``. Each
one is reverted with its plugin's ``revert_lease`` (config from the run's profile), in
parallel, each retried with backoff; one failure never stops the others.

Where the records go: a **new ledger** beside the run's, ``RUN_DIR/recover/<stamp>.osha``,
never appended to the run's own segments. The run was killed, so its last segment may end in a
torn record: appending after it would turn a tolerated torn tail into corruption in the middle
of the ledger, and would break the writer's clean-close marker and its per-sender sequences.
The recover ledger is a normal ledger (header, CRCs, clean close; ``osha ledger verify``
works on it), and the reader of a run ignores the subdirectory. Recovering twice reads both,
so what the first recovery reverted is not reverted again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from osha import profile
from osha.errors import LedgerError, OshaError, WireError
from osha.faults._broker import Reverter
from osha.faults._lease import Lease
from osha.faults._plugins import collector_for_profile, reverter_for_profile
from osha.faults._revert import RetryPolicy, revert_with_retry
from osha.faults._switch import Collector
from osha.ledger import LedgerReader, LedgerWriter, new_header
from osha.messages import (
    FaultDeadmanCollected,
    FaultInjected,
    FaultLease,
    FaultReverted,
    FaultRevertFailed,
    LedgerHeader,
    Message,
    stamp,
)
from osha.wire import decode

__all__ = ["RecoverItem", "RecoverReport", "recover", "unrevoked"]

M = TypeVar("M", bound=Message)

SENDER = "recover"
RECOVER_DIR = "recover"


@dataclass(frozen=True, slots=True)
class RecoverItem:
    lease: Lease
    injected: bool
    reverted: bool
    detail: str


@dataclass(slots=True)
class RecoverReport:
    run_dir: Path
    items: list[RecoverItem] = field(default_factory=list)
    ledger: Path | None = None

    @property
    def failed(self) -> list[RecoverItem]:
        return [i for i in self.items if not i.reverted]

    def render(self) -> str:
        if not self.items:
            return f"{self.run_dir}: no unrevoked fault leases; nothing to do"
        lines = [f"{self.run_dir}: {len(self.items)} unrevoked fault lease(s)"]
        for item in self.items:
            state = "REVERTED" if item.reverted else "FAILED  "
            injected = "injected" if item.injected else "not injected"
            lines.append(
                f"  {state} {item.lease.what} (lease {item.lease.lease_id}, {injected}): "
                f"{item.detail}"
            )
        if self.ledger is not None:
            lines.append(f"recorded in {self.ledger}")
        return "\n".join(lines)


def _ledgers(run_dir: Path) -> Iterator[Path]:
    yield run_dir
    sub = run_dir / RECOVER_DIR
    if sub.is_dir():
        yield from sorted(p for p in sub.iterdir() if p.is_dir())


def _messages(directory: Path) -> Iterator[Message]:
    for payload in LedgerReader(directory).payloads():
        try:
            yield decode(payload)
        except WireError:
            continue  # an undecodable record is `osha ledger verify`'s to report, not ours


def unrevoked(run_dir: Path) -> tuple[list[tuple[Lease, bool]], LedgerHeader | None]:
    """The unrevoked leases of a run (with whether they were injected), and its header."""
    leases: dict[str, Lease] = {}
    injected: set[str] = set()
    reverted: set[str] = set()
    header: LedgerHeader | None = None
    for directory in _ledgers(run_dir):
        for msg in _messages(directory):
            if isinstance(msg, FaultLease):
                leases[msg.lease.lease_id] = msg.lease
            elif isinstance(msg, FaultInjected):
                injected.add(msg.lease_id)
            elif isinstance(msg, FaultReverted):
                reverted.add(msg.lease_id)
            elif isinstance(msg, LedgerHeader) and header is None and directory == run_dir:
                header = msg
    open_leases = [(lease, lid in injected) for lid, lease in leases.items() if lid not in reverted]
    return open_leases, header


class _Recorder:
    """Appends and fsyncs each record at once: recovery is rare and every record matters."""

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._seq = 0

    def __call__(self, cls: type[M], /, **fields: Any) -> M:
        with self._lock:
            self._seq += 1
            msg = stamp(cls, SENDER, self._seq, **fields)
            self._writer.append(msg)
            self._writer.sync()
        return msg


def recover(
    run_dir: Path,
    *,
    profile_path: Path | None = None,
    policy: RetryPolicy | None = None,
    revert: Reverter | None = None,
    collect: Collector | None = None,
) -> RecoverReport:
    """Revert every unrevoked lease of ``run_dir``; record it in a recover ledger; report.

    ``revert`` defaults to the plugins' own ``revert_lease`` with the configs of the run's
    profile (``profile_path``, else the path its ledger header recorded), and ``collect``
    (with it) to their ``collect_switch``: once a lease is reverted, its dead-man switch is
    disarmed and what the node did is recorded (it may have reverted the fault by itself).
    """
    run_dir = Path(run_dir)
    leases, header = unrevoked(run_dir)
    report = RecoverReport(run_dir)
    if not leases:
        return report
    path = profile_path or (Path(header.profile_path) if header and header.profile_path else None)
    if revert is None:
        if path is None:
            raise OshaError(
                f"{run_dir}: the ledger does not say which profile the run used",
                hint="pass it: osha faults recover RUN_DIR --profile PROFILE.toml",
            )
        # the profile the run recorded, whatever its age: old spellings are read, not refused
        prof = profile.load(path, old_ssh_keys=True)
        revert = reverter_for_profile(prof)
        collect = collect or collector_for_profile(prof)
    ledger_dir, writer = _recover_ledger(run_dir, header, path)
    results = _revert_all(leases, revert, _Recorder(writer), policy or RetryPolicy(), collect)
    writer.close()
    details = _details(ledger_dir)
    for lease, _ in leases:
        r = results[lease.lease_id]
        report.items.append(
            RecoverItem(r.lease, r.injected, r.reverted, details.get(lease.lease_id, "?"))
        )
    report.ledger = ledger_dir
    return report


def _recover_ledger(
    run_dir: Path, header: LedgerHeader | None, profile_path: Path | None
) -> tuple[Path, LedgerWriter]:
    """A new ledger ``RUN_DIR/recover/<stamp>.osha`` for this recovery's records."""
    now_s = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_s)) + f".{int(now_s * 1e6) % 10**6:06d}Z"
    ledger_dir = run_dir / RECOVER_DIR / f"{stamp}.osha"
    run_id = header.run_id if header else run_dir.name
    recover_header = new_header(
        f"{run_id}-recover-{stamp}",
        seed=header.seed if header else 0,
        profile=header.profile if header else {},
        profile_path=str(profile_path or ""),
    )
    try:
        return ledger_dir, LedgerWriter.create(ledger_dir, recover_header)
    except OSError as exc:
        raise LedgerError(
            f"cannot create the recover ledger {ledger_dir}: {exc}",
            hint="check that the run directory is writable",
        ) from exc


def _revert_all(
    leases: list[tuple[Lease, bool]],
    revert: Reverter,
    record: _Recorder,
    policy: RetryPolicy,
    collect: Collector | None,
) -> dict[str, RecoverItem]:
    """Revert each lease in its own thread (one failure never stops the others); each is
    bounded by its retry window."""
    results: dict[str, RecoverItem] = {}

    def one(lease: Lease, was_injected: bool) -> None:
        ok = revert_with_retry(lease, revert, record, by="recover", policy=policy,
                               collect=collect)  # fmt: skip
        results[lease.lease_id] = RecoverItem(lease, was_injected, ok, "")

    threads = [
        threading.Thread(target=one, args=(lease, inj), name=f"recover-{lease.lease_id}")
        for lease, inj in leases
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each is bounded by its retry window
    return results


def _details(ledger_dir: Path) -> dict[str, str]:
    """The last word on each lease in the recover ledger: the revert's detail or error, and
    what its dead-man switch had done on the node."""
    out: dict[str, str] = {}
    for msg in _messages(ledger_dir):
        if isinstance(msg, FaultReverted):
            out[msg.lease_id] = msg.detail
        elif isinstance(msg, FaultRevertFailed):
            out[msg.lease_id] = msg.error
        elif isinstance(msg, FaultDeadmanCollected):
            out[msg.lease_id] = out.get(msg.lease_id, "") + _switch_note(msg)
    return out


def _switch_note(msg: FaultDeadmanCollected) -> str:
    if msg.state == "reverted":
        return f"; the node had reverted it by itself at its deadline (exit {msg.revert_status})"
    if msg.state == "absent":
        return "; its dead-man switch disarmed"
    return f"; its dead-man switch: {msg.state} {msg.error}".rstrip()
