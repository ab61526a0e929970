"""Profiles: one TOML file describes what to run. Validated completely before anything runs.

Every problem is collected (file, key, problem, hint) and raised together as a
:class:`~osha.errors.ProfileError` (exit code 2): an unknown plugin, an unknown key, a wrong
type, a duplicate id, a TOML syntax error with its line.

Layout (the README's "Profile reference" documents every key)::

    [campaign]           name, seed, baseline_s, chaos_s, recovery_timeout_s, recovery_hold_s,
                         preflight_timeout_s, ledger_dir; soak: mode, cycles, until,
                         cycle_baseline_s, cycle_recovery_s, abort_on_breach
                         (osha.profile._campaign)
    [cloud]              cloud, clouds_yaml, inventory, known_hosts, ssh_user, ssh_key:
                         defaults for every plugin that declares a key of the same name,
                         and of its ssh = { ... } table (osha.ssh)
    [guard]              max_down: how many nodes or service instances per group may be
                         disrupted at once, across all disruptors; quorum: how many
                         members each cluster keeps up (osha.faults._quorum)
    [supervisor]         the supervisor's flags: strategy, intensity, period_s, backoff,
                         heartbeats (osha.supervisor.SupervisorFlags)
    [ledger]             flush_interval_s, flush_records, segment_size_bytes, raw_retention,
                         disk_floor_mib, resources_interval_s
    [[load]]             id, plugin ("servers"), then its keys: the initial load
    [slo]                the service-level objectives the verdict judges (osha.analysis.slo)
    [[monitors]]         id, plugin, restart, shutdown_s, then the plugin's own keys
    [[disruptors]]       (same; restart defaults to "transient": a finished schedule is done)
    [[runners]]          (same; restart defaults to "transient": a finished workload is done)
"""

from __future__ import annotations

from osha.profile._campaign import CampaignSettings, ServersLoadConfig, parse_duration_s
from osha.profile._loader import MAX_PROFILE_BYTES, load, parse
from osha.profile._settings import (
    ActorEntry,
    CloudSettings,
    GuardSettings,
    LedgerSettings,
    LoadEntry,
    Profile,
    QuorumRule,
    Restart,
)

__all__ = [
    "MAX_PROFILE_BYTES",
    "ActorEntry",
    "CampaignSettings",
    "CloudSettings",
    "GuardSettings",
    "LedgerSettings",
    "LoadEntry",
    "Profile",
    "QuorumRule",
    "Restart",
    "ServersLoadConfig",
    "load",
    "parse",
    "parse_duration_s",
]
