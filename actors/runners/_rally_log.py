"""Rally's log: the iterations a task started and never finished.

Rally stores an iteration only when it ends (its result goes to the database then), so an
iteration in flight when Rally is killed (it did not stop within ``abort_timeout_s`` after
``rally task abort``, which lets the iterations in flight run on) leaves nothing in the
database. Its start is in Rally's log: ``rally.task.runner`` logs ``Task <uuid> | ITER: <n>
START`` as an iteration begins and ``... | ITER: <n> END: <status>`` when it ends.

The runner's own Rally config (the last ``--config-file``) puts the record's Unix time
first on every line (:data:`FORMAT_OPTIONS`), so a start time is read exactly, with no
guess about the local time zone. Iteration numbers restart with each workload of a task,
so a number's starts and ends are paired in order: a start with no end after it is an
iteration that never finished.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMAT_OPTIONS", "Started", "unfinished"]

#: oslo.log options for the runner's Rally config: the Unix time of the record first, then
#: Rally's default format (the context format likewise)
FORMAT_OPTIONS = """\
logging_default_format_string = %(created).6f %(asctime)s.%(msecs)03d %(process)d \
%(levelname)s %(name)s [-] %(instance)s%(message)s
logging_context_format_string = %(created).6f %(asctime)s.%(msecs)03d %(process)d \
%(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] \
%(instance)s%(message)s
"""

_LINE = re.compile(
    r"^(?P<unix>\d+\.\d+) .*? Task (?P<task>[0-9a-f-]{36}) \| ITER: (?P<n>\d+) (?P<what>START|END)"
)


@dataclass(frozen=True, slots=True)
class Started:
    """An iteration Rally started and never ended: its number and its start."""

    iteration: int
    started_wall_s: float


def unfinished(log_path: Path, task_uuid: str) -> list[Started]:
    """The iterations of ``task_uuid`` that Rally's log shows started and never ended, by
    start. An absent log (or one in another format: a ``log_config_append`` of the
    operator's replaces the runner's format) shows none."""
    if not log_path.is_file():
        return []
    starts: defaultdict[int, deque[float]] = defaultdict(deque)
    with log_path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if task_uuid not in line:
                continue
            match = _LINE.match(line)
            if match is None or match["task"] != task_uuid:
                continue
            n = int(match["n"])
            if match["what"] == "START":
                starts[n].append(float(match["unix"]))
            elif starts[n]:  # an end closes the earliest open start of its number
                starts[n].popleft()
    return sorted((Started(n, t) for n, times in starts.items() for t in times),
                  key=lambda s: (s.started_wall_s, s.iteration))  # fmt: skip
