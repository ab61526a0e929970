"""The health gate: is the cloud healthy and is every actor able to run, before anything is
touched?

Checks, all run in parallel threads, each bounded by ``[campaign] preflight_timeout_s``:

- every monitor's, disruptor's and runner's own ``check()`` (a monitor's targets are up; a
  disruptor's targets resolve and its power driver answers; the Rally runner's environment
  and ``rally task validate``). The plugin is built in this process with its validated config
  and a context that records nothing; ``check()`` must not change the cloud;
- SSH to every inventory host of ``[cloud]``: TCP, the host key against ``known_hosts``
  (an unknown or changed key fails), the login with ``ssh_key``. The check comes with the
  SSH plugins (entry-point group ``osha.preflight``, :data:`CloudCheck`);
- every ``[[load]]`` entry: the cloud answers, and its flavor, image and network exist.

Any failed finding aborts the campaign with exit code 3 and a table of findings, unless
``--force``. Every finding is also a ``campaign.finding`` record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from importlib.metadata import EntryPoint, entry_points

from osha import registry
from osha.campaign.loadcheck import check_load
from osha.errors import OshaError
from osha.plugin import Finding, check_offline
from osha.profile import ActorEntry, CloudSettings, Profile
from osha.schedule import child_seed

__all__ = ["Checked", "run_preflight"]

log = logging.getLogger("osha.campaign")


@dataclass(frozen=True, slots=True)
class Checked:
    """One finding and who made it."""

    source: str
    finding: Finding
    elapsed_s: float


def _check_actor(entry: ActorEntry, seed: int) -> list[Finding]:
    cls = registry.load(entry.kind, entry.plugin)
    findings = check_offline(cls, entry.config, actor_id=entry.id, seed=seed)
    return findings or [Finding(entry.id, True, f"{entry.kind} {entry.plugin}: ready")]


CloudCheck = Callable[[CloudSettings], list[Finding]]
"""A check of ``[cloud]`` itself (not of one actor), registered by a plugin package in the
entry-point group ``osha.preflight`` (``actors`` registers ``ssh``: every inventory host
answers SSH with a verified host key). Core imports no plugin to run it."""

PREFLIGHT_GROUP = "osha.preflight"


def _cloud_check(ep: EntryPoint, cloud: CloudSettings) -> list[Finding]:
    try:
        check: CloudCheck = ep.load()
    except (ImportError, AttributeError) as exc:  # the finding says what to install
        raise OshaError(
            f"the {ep.name} check ({ep.value}) cannot be imported: {exc}",
            hint="install osha with the extras of your plugins, e.g. pip install 'osha[ssh]'",
        ) from exc
    return check(cloud)


def _jobs(prof: Profile) -> list[tuple[str, Callable[[], list[Finding]]]]:
    jobs: list[tuple[str, Callable[[], list[Finding]]]] = []
    for entry in prof.actors:
        seed = child_seed(prof.campaign.seed, entry.id)  # the seed the actor itself gets
        jobs.append((entry.id, partial(_check_actor, entry, seed)))
    if prof.cloud.inventory is not None and prof.cloud.ssh_key is not None:
        for ep in entry_points(group=PREFLIGHT_GROUP):
            jobs.append((ep.name, partial(_cloud_check, ep, prof.cloud)))
    for load in prof.loads:
        jobs.append((load.id, partial(check_load, load)))
    return jobs


def run_preflight(
    prof: Profile, *, on_finding: Callable[[Checked], None] | None = None
) -> list[Checked]:
    """Run every check; return every finding (an exception or a timeout is a failed one)."""
    timeout_s = prof.campaign.preflight_timeout_s
    jobs = _jobs(prof)
    out: list[Checked] = []
    pool = ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="osha-check")
    started_s = time.monotonic()
    futures: list[tuple[str, Future[list[Finding]]]] = [(s, pool.submit(fn)) for s, fn in jobs]
    try:
        for source, future in futures:
            remaining_s = max(0.0, timeout_s - (time.monotonic() - started_s))
            try:
                findings = future.result(timeout=remaining_s)
            except FutureTimeout:
                findings = [
                    Finding(
                        source,
                        False,
                        f"the check did not finish within {timeout_s:g} s",
                        "is the target reachable? raise [campaign] preflight_timeout_s",
                    )
                ]
            except OshaError as exc:
                findings = [Finding(source, False, exc.message, exc.hint)]
            except Exception as exc:
                log.debug("check of %s raised", source, exc_info=True)
                findings = [
                    Finding(
                        source,
                        False,
                        f"the check raised {type(exc).__name__}: {exc}",
                        "run with --debug and see the log for the traceback",
                    )
                ]
            elapsed_s = time.monotonic() - started_s
            for finding in findings:
                checked = Checked(source, finding, elapsed_s)
                out.append(checked)
                if on_finding is not None:
                    on_finding(checked)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung check must not hold us here
    return out
