"""Repeated experiments: ``osha campaign start PROFILE --repeat N`` runs N campaigns back to
back, each with its own seed and its own ledger.

**Seeds.** Run 1 uses the profile's ``[campaign] seed``; run ``i >= 2`` uses
``child_seed(seed, "repeat:i")`` = ``(seed · 1,000,003 + crc32("repeat:i")) & 0x7FFFFFFF``,
the formula the supervisor uses for its children and a soak for its cycles
(:func:`osha.schedule.child_seed`): the same profile repeats the same N runs. Each ledger
records its run's seed in its header and in its copy of the profile.

**Stopping.** A stop asked of a run (Ctrl-C, SIGTERM, ``osha campaign stop``, an escalation)
ends that run gracefully, as without ``--repeat``, and no further run starts.
"""

from __future__ import annotations

import dataclasses

from rich.console import Console

from osha.campaign.session import Outcome, StartOptions, run_campaign
from osha.profile import Profile
from osha.schedule import child_seed

__all__ = ["repeat_seed", "run_repeated", "with_seed"]


def repeat_seed(seed: int, run: int) -> int:
    """The seed of run ``run`` (1-based) of a ``--repeat``: the profile's for run 1."""
    if run < 1:
        raise ValueError(f"runs count from 1, not {run}")
    return seed if run == 1 else child_seed(seed, f"repeat:{run}")


def with_seed(prof: Profile, seed: int) -> Profile:
    """``prof`` with another ``[campaign] seed``, in its settings and in its raw table (the
    copy the ledger header records)."""
    campaign_table = prof.raw.get("campaign")
    raw_campaign = dict(campaign_table) if isinstance(campaign_table, dict) else {}
    raw_campaign["seed"] = seed
    return dataclasses.replace(
        prof,
        campaign=dataclasses.replace(prof.campaign, seed=seed),
        raw={**prof.raw, "campaign": raw_campaign},
    )


def run_repeated(
    prof: Profile, options: StartOptions, console: Console, count: int
) -> tuple[Outcome, ...]:
    """Run ``count`` campaigns of ``prof`` back to back; stop after a run that was asked to
    stop. The outcomes of the runs that ran, in order."""
    outcomes: list[Outcome] = []
    for run in range(1, count + 1):
        seed = repeat_seed(prof.campaign.seed, run)
        console.print(f"[bold]repeat {run}/{count}[/]: seed {seed}")
        outcome = run_campaign(with_seed(prof, seed), options, console)
        outcomes.append(outcome)
        if outcome.stopped:
            left = count - run
            console.print(
                f"run {run}/{count} was stopped ({outcome.stopped}): "
                f"{left} run(s) not started" if left else f"run {run}/{count} was stopped"
            )
            break
    return tuple(outcomes)
