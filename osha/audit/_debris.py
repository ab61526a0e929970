"""What an audit plugin returns: one item left broken, as plain data."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Debris"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Debris:
    """One item an audit found: ``kind`` (``server``, ``project``, ...), the cloud's
    ``resource_id``, what is wrong (``state``), a line of ``evidence`` a human can check,
    ``since_s`` (the wall time the cloud says the item entered that state; None if it does
    not say), its ``name``, and ``osha_made`` (osha created it: a load server)."""

    kind: str
    resource_id: str
    state: str
    evidence: str
    since_s: float | None = None
    name: str = ""
    osha_made: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """The item's identity within one audit: the same item in two audits."""
        return self.kind, self.resource_id
