"""Checks of command-line values that typer's types let through (NaN and infinity parse as
floats): each is refused with a usage error (exit 2), like any other bad option."""

from __future__ import annotations

import math

import typer

__all__ = ["finite"]


def finite(value: float | None) -> float | None:
    """A typer callback: ``value`` if it is a finite number (or not given)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value!r} is not a finite number")
    return value
