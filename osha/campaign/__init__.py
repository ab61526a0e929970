"""Campaigns: one profile, run phase by phase to a verdict (``osha campaign start``).

Phases, each a ``campaign.phase`` start/end record in the ledger, in order::

    validate → preflight (health gate) → load → baseline → chaos → recovery → teardown → verdict

Modules, one idea each:

- :mod:`~osha.campaign.preflight`: the health gate's checks and findings;
- :mod:`~osha.campaign.load`: the initial servers, their deletion;
- :mod:`~osha.campaign.census`: the resource census before the load and after the teardown;
- the run tree (:mod:`osha.runtree`) owns the recorder, the fault broker and the
  supervisor; the session opens it, the orchestrator starts and stops its actors;
- :mod:`~osha.campaign.orchestrator`: the phases;
- :mod:`~osha.campaign.state` / :mod:`~osha.campaign.view`: the live picture and its views;
- :mod:`~osha.campaign.status`: that picture at one moment, typed (:class:`Status`), as
  ``status.json`` holds it;
- :mod:`~osha.campaign.control`: ``status.json`` and the ``stop`` file for other terminals;
- :mod:`~osha.campaign.verdict`: the verdict, from the ledger via :mod:`osha.analysis`;
- :mod:`~osha.campaign.session`: all of it wired up for one run (:func:`run_campaign`).
"""

from osha.campaign.session import Outcome, StartOptions, run_campaign
from osha.campaign.verdict import Judgement
from osha.profile import CampaignSettings, ServersLoadConfig

__all__ = [
    "CampaignSettings",
    "Judgement",
    "Outcome",
    "ServersLoadConfig",
    "StartOptions",
    "run_campaign",
]
