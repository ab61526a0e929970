"""The ledger header: the first record of a ledger, and its second copy.

``ledger.header`` says what the run was: schema and osha versions, run id, host, start time,
seed and the resolved (redacted) profile, whose ``[slo]`` table the report judges by. It is the
first record of segment 1, and the writer also keeps a **copy** of it in ``header.rec`` (one
record, framed and CRC-checked like a segment's), so that a damaged first record does not cost
the run its facts: the reader falls back to the copy and reports the damage.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from osha import __version__
from osha.messages import LedgerHeader
from osha.record import HEADER_BYTES, frame_record, scan_records
from osha.rundir import write_private_atomic
from osha.wire import SCHEMA_VERSION

__all__ = ["HEADER_COPY", "new_header", "read_header_copy", "write_header_copy"]

HEADER_COPY = "header.rec"
_MAX_COPY_BYTES = 16 * 1024 * 1024


def new_header(
    run_id: str,
    *,
    seed: int = 0,
    profile: dict[str, Any] | None = None,
    profile_path: str = "",
    sender: str = "osha",
) -> LedgerHeader:
    """The ``ledger.header`` record of a new ledger, written now on this host: the schema and
    osha versions, ``run_id``, the ``seed`` and the (already redacted) ``profile``."""
    now_s = time.time()
    return LedgerHeader(
        sender=sender,
        seq=1,
        mono_s=time.monotonic(),
        wall_s=now_s,
        schema_version=SCHEMA_VERSION,
        osha_version=__version__,
        run_id=run_id,
        host=socket.gethostname(),
        started_wall_s=now_s,
        seed=seed,
        profile=dict(profile or {}),
        profile_path=profile_path,
    )


def write_header_copy(directory: Path, payload: bytes) -> None:
    """Write ``header.rec``: the encoded header ``payload``, framed (0600, fsynced)."""
    write_private_atomic(directory / HEADER_COPY, frame_record(payload))


def read_header_copy(directory: Path) -> bytes | None:
    """The header payload kept in ``header.rec``, or None if it is missing or damaged."""
    try:
        fd = os.open(directory / HEADER_COPY, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        data = file.read(_MAX_COPY_BYTES + HEADER_BYTES + 1)
    payloads, end, _problem = scan_records(data, count=1)
    if len(payloads) != 1 or end != len(data):  # damaged, cut short, or more than one record
        return None
    return payloads[0]
