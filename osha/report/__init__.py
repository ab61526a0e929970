"""Reports of an analysis: terminal text, JSON (``osha.report/1``), JUnit XML and one
self-contained HTML file with a matplotlib timeline.

Only :mod:`osha.report.html` needs matplotlib; the others import nothing heavy, so the
campaign can print :func:`render_verdict` without it.
"""

from __future__ import annotations

from osha.report._fmt import terminal_safe
from osha.report.json import SCHEMA, comparison_to_dict, dumps, to_dict
from osha.report.junit import to_junit
from osha.report.terminal import (
    damage_lines,
    render_comparison,
    render_summary,
    render_verdict,
)

__all__ = [
    "SCHEMA",
    "comparison_to_dict",
    "damage_lines",
    "dumps",
    "render_comparison",
    "render_summary",
    "render_verdict",
    "terminal_safe",
    "to_dict",
    "to_junit",
]
