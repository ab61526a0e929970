"""The soak's machine-readable status file, for outside watchers: JSON, atomically replaced.

A watcher never sees a half-written file: the status is written to ``<path>.tmp``, fsynced,
renamed over ``<path>``, and the directory fsynced. Schema (``"schema": 1``)::

    {"schema": 1, "run_id": "...", "ledger": "runs/x.osha", "state": "running",
     "cycle": 12, "cycles_planned": 30, "until_wall_s": null,
     "last_verdicts": [{"cycle": 11, "ok": true, "detail": "..."}],
     "next_fault": {"what": "kill nova-scheduler@ctl-1", "at_wall_s": 1700000123.0},
     "osha_rss_bytes": 41943040, "updated_wall_s": 1700000100.0}

``state`` is ``starting``, ``running``, ``stopping``, ``finished`` or ``aborted``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osha.ledger.segment import fsync_directory

__all__ = [
    "STATUS_SCHEMA",
    "CycleVerdict",
    "NextFault",
    "SoakStatus",
    "read_status",
    "write_status",
]

STATUS_SCHEMA = 1
MAX_VERDICTS = 10  # the last verdicts kept in the file: it stays small


@dataclass(frozen=True, slots=True)
class CycleVerdict:
    cycle: int
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NextFault:
    what: str
    at_wall_s: float


@dataclass(slots=True, kw_only=True)
class SoakStatus:
    """What ``osha campaign status`` shows and the status file holds."""

    run_id: str
    ledger: str
    state: str = "starting"
    cycle: int = 0
    cycles_planned: int | None = None
    until_wall_s: float | None = None
    last_verdicts: list[CycleVerdict] = field(default_factory=list)
    next_fault: NextFault | None = None
    osha_rss_bytes: int | None = None
    updated_wall_s: float = 0.0

    def add_verdict(self, verdict: CycleVerdict) -> None:
        self.last_verdicts.append(verdict)
        del self.last_verdicts[:-MAX_VERDICTS]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = STATUS_SCHEMA
        return data


def write_status(path: Path, status: SoakStatus) -> None:
    """Replace ``path`` atomically with ``status`` as JSON (stamps ``updated_wall_s``)."""
    status.updated_wall_s = time.time()
    data = json.dumps(status.to_dict(), sort_keys=True, indent=1).encode() + b"\n"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    fsync_directory(path.parent)


def read_status(path: Path) -> SoakStatus:
    """Read a status file back (for ``osha campaign status`` and tests)."""
    data = json.loads(path.read_text())
    if data.pop("schema", None) != STATUS_SCHEMA:
        raise ValueError(f"{path}: not an osha soak status file of schema {STATUS_SCHEMA}")
    verdicts = [CycleVerdict(**v) for v in data.pop("last_verdicts", [])]
    nxt = data.pop("next_fault", None)
    return SoakStatus(
        **data, last_verdicts=verdicts, next_fault=NextFault(**nxt) if nxt else None
    )
