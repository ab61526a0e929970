"""A bare supervised run with the fault broker: the profile's actors, a ledger, Ctrl-C.

``python -m osha.harness PROFILE.toml --run-dir DIR [--duration-s S]`` starts every
actor of the profile in one run tree (:class:`~osha.runtree.RunTree`: recorder, broker,
supervisor), records the ledger in ``DIR``, and stops gracefully on SIGINT/SIGTERM or after
the duration: disruptors revert what they hold, then the broker reverts what is left, then
the ledger is closed. No health gate, no load, no phases: that is ``osha campaign start``.
The disruptor lab tests use this harness, so that they test faults and nothing else.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from osha import profile
from osha.errors import OshaError
from osha.ledger import LedgerWriter, new_header
from osha.redaction import redact_value
from osha.runtree import RunTree, tree_spec

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m osha.harness")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--duration-s", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        prof = profile.load(args.profile)
        header = new_header(
            args.run_dir.name,
            seed=prof.campaign.seed,
            profile=redact_value(prof.raw),
            profile_path=str(prof.path),
        )
        writer = LedgerWriter.create(args.run_dir, header, options=prof.ledger.options())
    except OshaError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"{signal.Signals(signum).name}: stopping", file=sys.stderr, flush=True)  # noqa: T201
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    tree = RunTree(tree_spec(prof, run_dir=args.run_dir, run_id=args.run_dir.name))
    tree.open(writer)
    try:
        outcome, report = tree.run(
            duration_s=args.duration_s,
            stop_event=stop,
            on_started=lambda _sup: print("started", flush=True),  # noqa: T201
        )
    except OshaError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    finally:
        tree.close()
    median = report.lease_sync_median_ms
    print(  # noqa: T201
        f"ended: {outcome.reason.value}; broker reverted {report.reverted_count}, "
        f"failed {len(report.failed)}; lease fsync median "
        + (f"{median:.2f} ms" if median is not None else "n/a"),
        flush=True,
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
