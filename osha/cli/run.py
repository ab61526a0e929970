"""Mounts the run commands on the root app: ``osha campaign start|validate|status|stop``.

(``osha run-actors`` and ``osha validate``, the temporary commands of the core issue, are
gone: ``osha campaign start`` and ``osha campaign validate`` replace them.)
"""

from __future__ import annotations

import typer

from osha.cli.campaign import app as campaign_app

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``osha campaign`` to the root app."""
    app.add_typer(campaign_app, name="campaign")
