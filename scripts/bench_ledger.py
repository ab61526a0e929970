#!/usr/bin/env python3
"""Ledger figures: write, recorder and replay throughput. Prints its figures; asserts nothing.

Usage: .venv/bin/python scripts/bench_ledger.py [RECORDS]   (default 1,000,000)
Each figure is the median of 3 runs; machines are noisy, so compare ratios.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from osha.ledger.reader import LedgerReader
from osha.ledger.testing import header, sample_batch
from osha.ledger.writer import LedgerOptions, LedgerWriter
from osha.recorder import RecorderHandle

BATCH = 500


def _median_rate(records: int, run: Callable[[], object], repeats: int = 3) -> float:
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return records / statistics.median(times)


def measure(records: int = 1_000_000) -> dict[str, float]:
    """Records per second: writer, recorder (tell), raw read, read + decode."""
    blobs = [
        sample_batch(f"m{i % 4}", 1 + (i // 4) * BATCH, BATCH) for i in range(records // BATCH)
    ]
    root = Path(tempfile.mkdtemp(prefix="osha-bench-"))
    counter = iter(range(1_000_000))
    try:

        def write() -> None:
            writer = LedgerWriter.create(root / f"w{next(counter)}.osha", header())
            for blob in blobs:
                writer.append_framed(blob, BATCH)
            writer.close()

        def record() -> None:
            writer = LedgerWriter.create(root / f"r{next(counter)}.osha", header())
            recorder = RecorderHandle.start(writer)
            for blob in blobs:
                recorder.write_framed(blob, BATCH)
            recorder.close(timeout_s=120)

        figures = {
            "write_records_per_s": _median_rate(records, write),
            "recorder_records_per_s": _median_rate(records, record),
        }
        run_dir = next(root.glob("w*.osha"))
        reader = LedgerReader(run_dir)
        figures["read_raw_records_per_s"] = _median_rate(
            records, lambda: sum(len(b) for b in reader.batches()) and None
        )
        figures["read_decode_records_per_s"] = _median_rate(
            records, lambda: sum(1 for _ in reader.messages()) and None
        )
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    options = LedgerOptions()
    sys.stdout.write(
        f"ledger: {count} records, batches of {BATCH}, group commit every "
        f"{options.flush_interval_s * 1000:.0f} ms or {options.flush_records} records\n"
    )
    for name, value in measure(count).items():
        sys.stdout.write(f"  {name:28s} {value:>12,.0f}\n")


if __name__ == "__main__":
    main()
