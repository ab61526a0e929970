"""``planted``: an audit that finds what its config plants, for tests and dry runs (no
cloud): sweep n of a run finds the items of ``sweeps[n]`` (the last entry from then on)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.audit import Audit, AuditConfig, Budget, Debris
from osha.errors import PluginError

__all__ = ["PlantedAudit", "PlantedAuditConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlantedAuditConfig(AuditConfig):
    """``sweeps``: per sweep, the server ids it finds in ERROR; ``state_file``: where the
    sweep count is kept between sweeps (one per run); ``osha_made``: the ids it marks as made
    by osha (a ``cleanup = true`` sweep "deletes" them through its session, which sends
    nothing)."""

    sweeps: tuple[tuple[str, ...], ...] = ()
    state_file: str = ""
    osha_made: tuple[str, ...] = ()


class _Offline:
    """A session that sends nothing: the planted audit has no cloud. What reaches it went
    through the audit's guard (which records it)."""

    def request(self, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return None


@dataclass(frozen=True, slots=True)
class _Connection:
    session: _Offline


class PlantedAudit(Audit[PlantedAuditConfig]):
    """Finds the server ids its config plants for this sweep, in ERROR; nothing else.

    Profile:  [[audits]]  plugin = "planted"  sweeps = [["s-old"], ["s-old", "s-new"]]
    """

    config_type = PlantedAuditConfig
    reads_cloud = False  # not part of `osha audit CLOUD`

    def connect(self) -> Any:
        return _Connection(_Offline())

    def _sweep_number(self) -> int:
        if not self.config.state_file:
            return 0
        state = Path(self.config.state_file)
        n = int(state.read_text()) if state.exists() else 0
        state.write_text(str(n + 1))
        return n

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        sweeps = self.config.sweeps
        if not sweeps:
            return
        planted = sweeps[min(self._sweep_number(), len(sweeps) - 1)]
        for server_id in planted:
            if not budget.take():
                return
            yield Debris(kind="server", resource_id=server_id, state="ERROR",
                         evidence="planted by the test", since_s=None, name="",
                         osha_made=server_id in self.config.osha_made)  # fmt: skip

    def clean(self, conn: Any, item: Debris) -> str:
        if not item.osha_made:
            raise PluginError(f"{item.resource_id} was not made by osha")
        conn.session.request(f"planted://servers/{item.resource_id}", "DELETE")
        return "deleted (planted)"
