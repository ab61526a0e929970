"""The typed settings of a campaign's own profile sections: ``[campaign]``, ``[[load]]``.

They belong to the profile layer (the campaign reads them; the profile never imports the
campaign), free of heavy imports: validating a profile does not import openstacksdk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from osha.schema import FilePath, Name

__all__ = ["LOAD_PLUGINS", "CampaignSettings", "ServersLoadConfig", "parse_duration_s"]

_UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DEFAULT_NAME = Name("osha-campaign")
_DEFAULT_FLAVOR = Name("m1.tiny")
_DEFAULT_ZONE = Name("nova")
_DEFAULT_IMAGE = Name("cirros")
_DEFAULT_PREFIX = Name("osha")


def parse_duration_s(text: str) -> float:
    """``"72h"``, ``"90m"``, ``"1d12h"``, ``"45s"`` or a bare number of seconds, in seconds."""
    rest = text.strip().lower()
    if not rest:
        raise ValueError("an empty duration; write e.g. 72h, 90m, 1d12h or 600s")
    try:
        return float(rest)
    except ValueError:
        pass
    total_s, number = 0.0, ""
    for ch in rest:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in _UNITS_S and number:
            total_s += float(number) * _UNITS_S[ch]
            number = ""
        else:
            raise ValueError(f"{text!r} is not a duration; write e.g. 72h, 90m, 1d12h or 600s")
    if number:
        raise ValueError(f"{text!r}: {number!r} has no unit (s, m, h or d)")
    return total_s


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

    **Soak** (``mode = "soak"``): the chaos phase repeats in cycles, ``cycles = N`` of them or
    as many as fit in ``until = "72h"``. Each cycle lasts exactly ``cycle_baseline_s +
    chaos_s + cycle_recovery_s``: a quiet slice, the fault window (each disruptor's schedule
    counts from its start, as in a single run) and the time to recover. Cycles follow each
    other on a fixed cadence, so the run is planned ahead (``--dry-run``) and resumable.
    After the last cycle the recovery phase waits as in a single run. A soak stops early
    and cleanly on a fault that could not be reverted, on a breach of an SLO named in
    ``abort_on_breach`` (judged on the ledger at the end of every cycle), on the disk-space
    floor (``[ledger]``), or on ``osha campaign stop``.
    """

    name: Name = _DEFAULT_NAME
    seed: int = 0
    warmup_s: float = 60.0
    baseline_s: float = 60.0
    chaos_s: float = 300.0
    recovery_timeout_s: float = 300.0
    recovery_hold_s: float = 3.0
    preflight_timeout_s: float = 60.0
    ledger_dir: str = "runs"
    mode: Literal["once", "soak"] = "once"
    cycles: int | None = None
    until: str | None = None
    cycle_baseline_s: float = 0.0
    cycle_recovery_s: float = 60.0
    abort_on_breach: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name {self.name!r} must be a non-empty name without '/'")
        for key in (
            "warmup_s",
            "baseline_s",
            "chaos_s",
            "recovery_timeout_s",
            "recovery_hold_s",
            "cycle_baseline_s",
            "cycle_recovery_s",
        ):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0")
        if self.preflight_timeout_s <= 0:
            raise ValueError("preflight_timeout_s must be > 0")
        if self.mode == "once":
            if self.cycles is not None or self.until is not None:
                raise ValueError('cycles and until need mode = "soak"')
            return
        if (self.cycles is None) == (self.until is None):
            raise ValueError('mode = "soak" needs either cycles = N or until = "72h" (not both)')
        if self.cycles is not None and not 1 <= self.cycles <= 1_000_000:
            raise ValueError(f"cycles must be between 1 and 1000000, not {self.cycles}")
        if self.cycle_s <= 0:
            raise ValueError("a soak cycle needs cycle_baseline_s + chaos_s + cycle_recovery_s > 0")
        if self.until is not None and self.planned_cycles < 1:
            raise ValueError(f"until = {self.until!r} is shorter than a cycle: {self.cycle_s:g} s")

    @property
    def soak(self) -> bool:
        return self.mode == "soak"

    @property
    def cycle_s(self) -> float:
        """The length of one soak cycle."""
        return self.cycle_baseline_s + self.chaos_s + self.cycle_recovery_s

    @property
    def planned_cycles(self) -> int:
        """How many cycles run: 1 for a single run, ``cycles``, or as many as fit ``until``."""
        if not self.soak:
            return 1
        if self.cycles is not None:
            return self.cycles
        return int(parse_duration_s(self.until or "0") / self.cycle_s + 1e-9)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServersLoadConfig:
    """``[[load]] plugin = "servers"``: ``count`` servers booted with openstacksdk before the
    baseline, each named ``<name_prefix>-<run-id>-<n>`` and tagged ``osha-run:<run-id>``, and
    deleted at the teardown (found again by that tag and prefix, so exactly what osha created
    is deleted). ``cloud``/``clouds_yaml`` default to ``[cloud]``; ``network`` is a name or id
    (none: the cloud's default); ``volume_gb`` > 0 also creates and attaches one volume per
    server (deleted too). ``hosts`` places the servers round-robin on those compute hosts
    (server n on ``hosts[(n - 1) % len(hosts)]``, booted into ``<zone>:<host>``: an admin
    right in nova), so a fault on one host hits a known share of them; ``spread`` leaves the
    placement to nova's scheduler but keeps the servers apart: they boot one at a time into a
    ``soft-anti-affinity`` server group named ``<name_prefix>-<run-id>`` (deleted with them),
    so each lands on the compute host with the fewest of the group while hosts allow (two
    hosts, four servers: two each); neither: the scheduler places them."""

    cloud: Name
    clouds_yaml: FilePath | None = None
    count: int = 1
    flavor: Name = _DEFAULT_FLAVOR
    image: Name = _DEFAULT_IMAGE
    network: str = ""
    name_prefix: Name = _DEFAULT_PREFIX
    volume_gb: int = 0
    boot_timeout_s: float = 300.0
    delete_timeout_s: float = 120.0
    concurrency: int = 4
    hosts: tuple[Name, ...] = ()
    zone: Name = _DEFAULT_ZONE
    spread: bool = False

    def __post_init__(self) -> None:
        if self.spread and self.hosts:
            raise ValueError(
                "spread and hosts both place the servers: use one (hosts pins each server to a "
                "named host; spread lets nova's scheduler keep them apart)"
            )
        if len(set(self.hosts)) != len(self.hosts):
            raise ValueError(f"hosts names a host twice: {list(self.hosts)}")
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
