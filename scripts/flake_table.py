#!/usr/bin/env python3
"""The flake table of ``scripts/test --lab --repeat N``: per test, how many runs passed and
failed and its slowest time, read from the JUnit files the runs wrote (``run-*.xml``).

Prints a plain-text table (also written to ``table.txt`` in the run directory) and exits 1
when any test failed or errored in any run, 0 when every test passed in every run, 2 when
there is nothing to read.

A test missing from a run (pytest stopped early, or a run wrote no file) counts against it.

Usage: .venv/bin/python scripts/flake_table.py RUN_DIR [--runs N] [--note TEXT]
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(slots=True)
class TestRuns:
    """What one test did over all runs."""

    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    times_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "run N: first line of the message"
    runs: set[str] = field(default_factory=set)  # the runs it took part in


@dataclass(frozen=True, slots=True)
class RunTotals:
    name: str
    tests: int
    failed: int
    time_s: float


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        child = case.find(tag)
        if child is not None:
            text = (child.get("message") or child.text or "").strip().splitlines()
            return outcome, text[0][:160] if text else ""
    return "passed", ""


def read_runs(run_dir: Path, runs: int = 0) -> tuple[dict[str, TestRuns], list[RunTotals]]:
    """``run-1.xml`` .. ``run-N.xml`` in ``run_dir`` (N: ``runs``, else as many as there are)."""
    tests: dict[str, TestRuns] = defaultdict(TestRuns)
    totals = []
    found = sorted(int(p.stem.split("-")[1]) for p in run_dir.glob("run-*.xml"))
    for number in range(1, max([runs, *found]) + 1):
        path = run_dir / f"run-{number}.xml"
        if not path.exists():
            totals.append(
                RunTotals(f"run-{number} (no JUnit file: pytest did not finish)", 0, 1, 0.0)
            )
            continue
        try:
            root = ET.parse(path).getroot()  # noqa: S314 - written by our own pytest run
        except ET.ParseError as exc:
            totals.append(RunTotals(f"{path.name} (unreadable: {exc})", 0, 1, 0.0))
            continue
        failed = 0
        cases = list(root.iter("testcase"))
        for case in cases:
            test = f"{case.get('classname', '')}::{case.get('name', '')}"
            outcome, message = _outcome(case)
            entry = tests[test]
            entry.outcomes[outcome] += 1
            entry.runs.add(path.stem)
            entry.times_s.append(float(case.get("time") or 0.0))
            if outcome in ("failed", "error"):
                failed += 1
                entry.failures.append(f"{path.stem}: {message}")
        suite_time = sum(float(s.get("time") or 0.0) for s in root.iter("testsuite"))
        totals.append(RunTotals(path.stem, len(cases), failed, suite_time))
    return tests, totals


def _short(test: str) -> str:
    """tests.lab.test_lab_nodes::test_x -> test_lab_nodes::test_x"""
    module, _, name = test.partition("::")
    return f"{module.rsplit('.', 1)[-1]}::{name}"


def _missing(entry: TestRuns, totals: list[RunTotals]) -> int:
    """Runs the test was not in (a test with a failure and a teardown error is in a run
    twice, as JUnit reports both)."""
    return max(0, len(totals) - len(entry.runs))


def render(tests: dict[str, TestRuns], totals: list[RunTotals], note: str = "") -> str:
    lines = []
    if note:
        lines.append(note)
    for run in totals:
        lines.append(
            f"{run.name}: {run.tests} tests, {run.failed} failed or errored, {run.time_s:.0f} s"
        )
    width = max((len(_short(t)) for t in tests), default=10)
    lines.append("")
    lines.append(f"{'test':<{width}}  pass  fail  error  skip  missing  slowest_s")
    for test in sorted(tests, key=lambda t: (-max(tests[t].times_s, default=0.0), t)):
        entry = tests[test]
        o = entry.outcomes
        slowest_s = max(entry.times_s, default=0.0)
        lines.append(
            f"{_short(test):<{width}}  {o['passed']:>4}  {o['failed']:>4}  {o['error']:>5}  "
            f"{o['skipped']:>4}  {_missing(entry, totals):>7}  {slowest_s:>9.1f}"
        )
    flaky = {t: e for t, e in tests.items() if e.failures or _missing(e, totals)}
    lines.append("")
    if flaky:
        lines.append(f"{len(flaky)} test(s) failed at least once:")
        for test, entry in sorted(flaky.items()):
            lines.append(f"  {_short(test)}")
            lines.extend(f"    {failure}" for failure in entry.failures)
            if _missing(entry, totals):
                lines.append(f"    missing from {_missing(entry, totals)} run(s)")
    else:
        runs = len(totals)
        lines.append(f"every test passed in every run ({len(tests)} tests x {runs} runs)")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--runs", type=int, default=0, help="how many runs were started")
    parser.add_argument("--note", default="", help="a header line (commit, machine, hog)")
    args = parser.parse_args()
    tests, totals = read_runs(args.run_dir, args.runs)
    if not totals:
        print(f"flake_table: no run-*.xml in {args.run_dir}", file=sys.stderr)
        print("hint: give the directory that scripts/test --repeat printed", file=sys.stderr)
        return 2
    text = render(tests, totals, args.note)
    (args.run_dir / "table.txt").write_text(text)
    print(text, end="")
    bad = any(run.failed for run in totals) or any(
        e.failures or _missing(e, totals) for e in tests.values()
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
