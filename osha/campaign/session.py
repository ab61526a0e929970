"""One campaign run, wired up: run directory, ledger, recorder, live state, control files,
live view, signals, and the orchestrator. The CLI calls :func:`run_campaign`; tests may too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.logging import RichHandler

from osha.campaign.console import ConsoleSink
from osha.campaign.control import ControlWatcher, write_info
from osha.campaign.orchestrator import Campaign, Hooks
from osha.campaign.phases import Recorder
from osha.campaign.resume import LeftOff, left_off
from osha.campaign.state import LiveState, TapSink
from osha.campaign.verdict import Judgement
from osha.campaign.view import findings_table, make_view, verdict_table
from osha.errors import LedgerError, OshaError, Problem, ProfileError
from osha.ledger import LedgerWriter, new_header
from osha.profile import Profile
from osha.recorder import RecorderFailed
from osha.redaction import redact_value
from osha.rundir import private_umask
from osha.runtree import RunTree, tree_spec
from osha.soak import SoakOptions

__all__ = ["Outcome", "ResumeRequest", "StartOptions", "new_run_id", "run_campaign"]

log = logging.getLogger("osha.campaign")


@dataclass(frozen=True, slots=True)
class StartOptions:
    """``osha campaign start`` options. ``live``: None picks the rich view on a terminal."""

    force: bool = False
    live: bool | None = None
    ledger_dir: Path | None = None
    baseline_s: float | None = None
    chaos_s: float | None = None
    recovery_timeout_s: float | None = None
    cycles: int | None = None
    self_chaos_every_s: float | None = None


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """``osha campaign resume``: the dead run's directory; ``end``: end it cleanly (teardown
    and verdict) instead of going on with the soak."""

    run_dir: Path
    end: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    judgement: Judgement
    run_dir: Path
    run_id: str
    stopped: str = ""  # why a stop was asked for (Ctrl-C, osha campaign stop, ...); "" if none


def new_run_id(name: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


def _apply(prof: Profile, options: StartOptions) -> Profile:
    c = prof.campaign
    campaign = dataclasses.replace(
        c,
        baseline_s=c.baseline_s if options.baseline_s is None else options.baseline_s,
        chaos_s=c.chaos_s if options.chaos_s is None else options.chaos_s,
        recovery_timeout_s=(
            c.recovery_timeout_s
            if options.recovery_timeout_s is None
            else options.recovery_timeout_s
        ),
    )
    if options.cycles is not None:
        if not c.soak:
            raise ProfileError(
                [
                    Problem(
                        str(prof.path),
                        "campaign.mode",
                        "--cycles needs a soak",
                        'set mode = "soak"',
                    )
                ]
            )
        campaign = dataclasses.replace(campaign, cycles=options.cycles, until=None)
    return dataclasses.replace(prof, campaign=campaign)


def _soak_options(prof: Profile, options: StartOptions) -> SoakOptions:
    floor_mib = prof.ledger.disk_floor_mib
    return SoakOptions(
        selfmon_interval_s=prof.ledger.resources_interval_s,
        disk_floor_bytes=floor_mib * 1024 * 1024 if floor_mib else None,
        self_chaos_every_s=options.self_chaos_every_s,
        seed=prof.campaign.seed,
    )


def _open_ledger(prof: Profile, run_dir: Path, run_id: str) -> LedgerWriter:
    header = new_header(
        run_id, seed=prof.campaign.seed, profile=redact_value(prof.raw), profile_path=str(prof.path)
    )
    try:
        return LedgerWriter.create(run_dir, header, options=prof.ledger.options())
    except OSError as exc:
        raise LedgerError(
            f"cannot create the ledger {run_dir}: {exc}",
            hint="check that [campaign] ledger_dir is writable, or pass --ledger-dir",
        ) from exc


@contextmanager
def _logging(run_dir: Path, console: Console, live: bool) -> Iterator[None]:
    """DEBUG and up to ``campaign.log`` in the run directory; warnings to the terminal."""
    root = logging.getLogger("osha")
    to_file = logging.FileHandler(run_dir / "campaign.log", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_file.setLevel(logging.DEBUG)
    to_term: logging.Handler = (
        RichHandler(console=console, show_path=False)
        if live
        else logging.StreamHandler(console.file)
    )
    if not live:
        to_term.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    to_term.setLevel(logging.WARNING)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(to_file)
    root.addHandler(to_term)
    try:
        yield
    finally:
        root.removeHandler(to_term)
        root.removeHandler(to_file)
        root.setLevel(old_level)
        to_file.close()


@contextmanager
def _run_dir_env(run_dir: Path) -> Iterator[None]:
    """``OSHA_RUN_DIR`` for the actors (they inherit the environment): where a plugin keeps
    files that belong with the run, e.g. the Rally runner's database."""
    old = os.environ.get("OSHA_RUN_DIR")
    os.environ["OSHA_RUN_DIR"] = str(run_dir)
    try:
        yield
    finally:
        if old is None:
            del os.environ["OSHA_RUN_DIR"]
        else:
            os.environ["OSHA_RUN_DIR"] = old


@contextmanager
def _signals(campaign: Campaign, console: Console) -> Iterator[None]:
    """SIGINT and SIGTERM ask for a graceful stop (from a thread: the handler must not take
    the locks the interrupted code may hold). A second signal only says "still stopping".
    SIGHUP (the terminal closed, the SSH session to the jump host dropped) does not stop an
    unattended campaign: its console goes quiet and it runs on to its verdict."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread (tests)
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            threading.Thread(
                target=_console_hung_up, args=(console, campaign.run_dir), daemon=True
            ).start()
            return
        if campaign.stop_requested:
            console.file.write(f"\n{name} again: still stopping gracefully, please wait\n")
            return
        threading.Thread(target=campaign.request_stop, args=(name,), daemon=True).start()

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _console_hung_up(console: Console, run_dir: Path) -> None:
    if isinstance(console.file, ConsoleSink):
        console.file.console_gone("SIGHUP")
    log.warning(
        "SIGHUP: the terminal is gone; the campaign goes on to its verdict. "
        "Watch it with `osha campaign status %s`, stop it with `osha campaign stop %s`",
        run_dir,
        run_dir,
    )


def _reopen(prof: Profile, resume: ResumeRequest, console: Console) -> tuple[LedgerWriter, LeftOff]:
    """Revert what the dead run left, then reopen its ledger for appending."""
    from osha.faults import recover  # noqa: PLC0415 - the fault plugins come with it

    where = left_off(resume.run_dir)
    report = recover(resume.run_dir, profile_path=prof.path)
    console.print(report.render(), soft_wrap=True)
    if report.failed:
        raise OshaError(
            f"{len(report.failed)} fault(s) of {resume.run_dir} could not be reverted; "
            "nothing else was done",
            hint="fix the cause shown above, then run osha campaign resume again",
        )
    where.reverted = [(i.lease, i.detail) for i in report.items]
    writer = LedgerWriter.resume(
        resume.run_dir, options=prof.ledger.options(), reason="osha campaign resume"
    )
    return writer, where


def _ends(prof: Profile, resume: ResumeRequest | None, where: LeftOff | None) -> bool:
    """Whether a resumed run only ends: asked for, or no cycle is left to run."""
    if resume is None or where is None:
        return False
    return resume.end or not prof.campaign.soak or where.next_cycle >= prof.campaign.planned_cycles


def run_campaign(
    prof: Profile,
    options: StartOptions,
    console: Console,
    resume: ResumeRequest | None = None,
) -> Outcome:
    """Run one campaign of ``prof`` to its verdict, or resume a dead one (``resume``).
    Raises LedgerError if the ledger cannot be created or written. Everything the run and its
    actors create is private to the operator (umask 077, see :mod:`osha.rundir`)."""
    with private_umask():
        return _run_campaign(prof, options, console, resume)


def _run_campaign(
    prof: Profile,
    options: StartOptions,
    console: Console,
    resume: ResumeRequest | None,
) -> Outcome:
    prof = _apply(prof, options)
    writer, run_dir, run_id, where = _ledger(prof, options, resume, console)
    state = LiveState(run_id, str(run_dir))
    failures = _RecorderFailures()
    # one owner starts the recorder now, the actors at the load phase, and stops them in reverse
    tree = RunTree(tree_spec(prof, run_dir=run_dir, run_id=run_id, defer_clock=True))
    tap = TapSink(tree.open(writer, on_error=failures.on_error), state.observe)
    try:
        campaign = Campaign(
            prof,
            tree=tree,
            recorder=Recorder(tap, state),
            sink=tap,
            state=state,
            run_dir=run_dir,
            run_id=run_id,
            force=options.force,
            hooks=Hooks(findings=lambda checked: console.print(findings_table(checked))),
            soak=_soak_options(prof, options),
            first_cycle=where.next_cycle if where is not None else 0,
        )
        failures.campaign = campaign
        console.print(f"campaign [bold]{prof.campaign.name}[/]: run {run_id}")
        console.print(f"ledger {run_dir}", soft_wrap=True)
        console.print(f"status: osha campaign status {run_dir}", soft_wrap=True)
        console.print(f"stop:   osha campaign stop {run_dir}", soft_wrap=True)
        live = console.is_terminal if options.live is None else options.live
        with _logging(run_dir, console, live), _run_dir_env(run_dir):
            write_info(run_dir, run_id, str(prof.path))
            end_only = _ends(prof, resume, where)
            judgement = _drive(campaign, tree, console, live=live, end_only=end_only, where=where)
        if failures.first is not None:
            raise failures.first.error
        # crop=False: the SLO table is printed whole, as `osha report` prints it, never cut
        console.print(verdict_table(judgement, campaign.rec.timeline), crop=False)
        # never wrapped: scripts and tests read the path from this line
        console.print(f"exit code {judgement.exit_code}; ledger {run_dir}", soft_wrap=True)
        return Outcome(judgement, run_dir, run_id, stopped=state.stopping)
    finally:
        tree.close()  # whatever raised: the recorder's thread must not outlive the run


def _ledger(
    prof: Profile, options: StartOptions, resume: ResumeRequest | None, console: Console
) -> tuple[LedgerWriter, Path, str, LeftOff | None]:
    """A new ledger (and its run id), or the dead run's reopened where it left off."""
    if resume is None:
        run_id = new_run_id(prof.campaign.name)
        base = (options.ledger_dir or prof.resolve(prof.campaign.ledger_dir)).resolve()
        run_dir = base / f"{run_id}.osha"
        return _open_ledger(prof, run_dir, run_id), run_dir, run_id, None
    writer, where = _reopen(prof, resume, console)
    return writer, resume.run_dir.resolve(), where.run_id, where


class _RecorderFailures:
    """The recorder's failures: each asks the campaign to stop (once it exists)."""

    def __init__(self) -> None:
        self.failures: list[RecorderFailed] = []
        self.campaign: Campaign | None = None

    @property
    def first(self) -> RecorderFailed | None:
        return self.failures[0] if self.failures else None

    def on_error(self, failure: RecorderFailed) -> None:
        self.failures.append(failure)
        if self.campaign is not None:  # not from the recorder's own thread: request_stop records
            threading.Thread(
                target=self.campaign.request_stop,
                args=("recorder", failure.error.message),
                daemon=True,
            ).start()


def _drive(
    campaign: Campaign,
    tree: RunTree,
    console: Console,
    *,
    live: bool,
    end_only: bool,
    where: LeftOff | None,
) -> Judgement:
    """Run the campaign with its live view and ``status.json``; close them, and the run tree,
    whatever happens."""
    state, run_dir = campaign.state, campaign.run_dir
    view = make_view(state.snapshot, console, live=live)
    control = ControlWatcher(
        run_dir, state.snapshot, lambda reason: campaign.request_stop("control", reason)
    )
    control.start()
    view.start()
    try:
        with _signals(campaign, console):
            if where is not None:
                campaign.close_interrupted(where)
            return campaign.run(end_only=end_only)
    finally:
        state.finished = True
        view.stop()
        control.close()
        tree.close()  # the actors if they still run, then the recorder, last
