"""The soak guards of one run: self-monitoring with the disk-space floor, and self-chaos.

    guards = SoakGuards(recorder.write, sup.children, options, ledger_dir=run_dir,
                        on_floor=lambda free: sup.request_stop())
    guards.start()      # after the supervisor started its children
    ...
    guards.stop()       # before the supervisor stops them (no kill during a clean stop)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.messages import Message
from osha.selfmon import SelfMonitor
from osha.soak.selfchaos import SelfChaos
from osha.supervisor import ChildState

__all__ = ["SoakGuards", "SoakOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakOptions:
    """What guards a long run. Defaults: sample every 10 s, floor 256 MiB, no self-chaos."""

    selfmon_interval_s: float = 10.0
    disk_floor_bytes: int | None = 256 * 1024 * 1024
    self_chaos_every_s: float | None = None
    seed: int = 0
    self_chaos_exclude: frozenset[str] = frozenset()


class SoakGuards:
    """Starts and stops the :class:`SelfMonitor` and the optional :class:`SelfChaos`."""

    def __init__(
        self,
        write: Callable[[Message], None],
        children: Callable[[], list[Any]],
        options: SoakOptions,
        *,
        ledger_dir: Path | None,
        on_floor: Callable[[int], None] | None = None,
    ) -> None:
        pairs = _pairs(children)
        self.selfmon = SelfMonitor(
            write,
            children=pairs,
            interval_s=options.selfmon_interval_s,
            ledger_dir=ledger_dir,
            disk_floor_bytes=options.disk_floor_bytes if ledger_dir is not None else None,
            on_floor=on_floor,
        )
        self.chaos: SelfChaos | None = None
        if options.self_chaos_every_s is not None:
            self.chaos = SelfChaos(
                write,
                pairs,
                every_s=options.self_chaos_every_s,
                seed=options.seed,
                exclude=options.self_chaos_exclude,
            )

    def start(self) -> None:
        self.selfmon.start()
        if self.chaos is not None:
            self.chaos.start()

    def stop(self) -> None:
        if self.chaos is not None:
            self.chaos.stop()
        self.selfmon.stop()

    def __enter__(self) -> SoakGuards:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _pairs(children: Callable[[], list[Any]]) -> Callable[[], list[tuple[str, int]]]:
    """``Supervisor.children`` (ChildInfo with ``id``/``pid``) as ``(id, pid)`` pairs, the
    running ones only: a child being restarted still shows its dead pid, and self-chaos must
    not count a kill of it (nor the self-monitor sample it)."""

    def pairs() -> list[tuple[str, int]]:
        return [(c.id, c.pid) for c in children() if c.state is ChildState.RUNNING]

    return pairs
