"""Process-wide CLI settings (set by the root callback)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["state"]


@dataclass(slots=True)
class _State:
    debug: bool = False


state = _State()
