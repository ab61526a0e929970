"""The typed settings of a campaign's own profile sections: ``[campaign]``, ``[[load]]``.

They live here, free of heavy imports, so that :mod:`osha.profile` can validate them without
importing openstacksdk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from osha.schema import FilePath

__all__ = ["LOAD_PLUGINS", "CampaignSettings", "ServersLoadConfig"]


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    """``[campaign]``: the run's name and seed, and how long each timed phase lasts.

    ``warmup_s``: after the initial load, the actors start and the runners get going (Rally
    first creates its users and projects); the baseline starts when every runner has recorded
    an iteration, at the latest ``warmup_s`` after the actors started, and the chaos starts
    ``warmup_s + baseline_s`` after that, so the baseline lasts at least ``baseline_s``.
    ``baseline_s``: monitors and runners only, before any fault. ``chaos_s``: the window in
    which the disruptors strike (their ``start_s`` counts from its start). After it, the
    recovery phase waits until every watched target is up (and no fault lease is held) for
    ``recovery_hold_s``, or gives up after ``recovery_timeout_s``. ``preflight_timeout_s``
    bounds each health-gate check. ``ledger_dir``: where ``<run-id>.osha`` is created
    (relative to the profile's folder).
    """

    name: str = "osha-campaign"
    seed: int = 0
    warmup_s: float = 60.0
    baseline_s: float = 60.0
    chaos_s: float = 300.0
    recovery_timeout_s: float = 300.0
    recovery_hold_s: float = 3.0
    preflight_timeout_s: float = 60.0
    ledger_dir: str = "runs"

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name {self.name!r} must be a non-empty name without '/'")
        for key in ("warmup_s", "baseline_s", "chaos_s", "recovery_timeout_s", "recovery_hold_s"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0")
        if self.preflight_timeout_s <= 0:
            raise ValueError("preflight_timeout_s must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServersLoadConfig:
    """``[[load]] plugin = "servers"``: ``count`` servers booted with openstacksdk before the
    baseline, each named ``<name_prefix>-<run-id>-<n>`` and tagged ``osha-run:<run-id>``, and
    deleted at the teardown (found again by that tag and prefix, so exactly what osha created
    is deleted). ``cloud``/``clouds_yaml`` default to ``[cloud]``; ``network`` is a name or id
    (none: the cloud's default); ``volume_gb`` > 0 also creates and attaches one volume per
    server (deleted too)."""

    cloud: str
    clouds_yaml: FilePath | None = None
    count: int = 1
    flavor: str = "m1.tiny"
    image: str = "cirros"
    network: str = ""
    name_prefix: str = "osha"
    volume_gb: int = 0
    boot_timeout_s: float = 300.0
    delete_timeout_s: float = 120.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.count <= 1000:
            raise ValueError(f"count must be between 0 and 1000, not {self.count}")
        if self.volume_gb < 0 or self.concurrency < 1:
            raise ValueError("need volume_gb >= 0 and concurrency >= 1")
        if self.boot_timeout_s <= 0 or self.delete_timeout_s <= 0:
            raise ValueError("boot_timeout_s and delete_timeout_s must be > 0")


LoadPlugin = Literal["servers"]

#: Load kinds by name → their config type. Load runs in the campaign's own process (it is
#: created before the actors start and deleted after they stop), so it is not an actor plugin.
LOAD_PLUGINS: dict[str, type[ServersLoadConfig]] = {"servers": ServersLoadConfig}
