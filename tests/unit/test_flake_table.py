"""scripts/flake_table.py: the per-test table of `scripts/test --lab --repeat N`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "flake_table.py"

RUN = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" time="{total}">
<testcase classname="tests.lab.test_a" name="test_ok" time="{ok}"/>
<testcase classname="tests.lab.test_a" name="test_flaky" time="2.5">{flaky}</testcase>
<testcase classname="tests.lab.test_b" name="test_skipped" time="0.1">
<skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def _load() -> object:
    spec = importlib.util.spec_from_file_location("flake_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flake_table"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_counts_passes_failures_and_the_slowest_time(tmp_path: Path) -> None:
    (tmp_path / "run-1.xml").write_text(RUN.format(total=10, ok=1.5, flaky=""))
    failure = '<failure message="WaitTimeout: timed out after 30 s">tb</failure>'
    (tmp_path / "run-2.xml").write_text(RUN.format(total=12, ok=4.25, flaky=failure))
    table = _load()
    tests, totals = table.read_runs(tmp_path, 3)  # type: ignore[attr-defined]
    ok = tests["tests.lab.test_a::test_ok"]
    assert (ok.outcomes["passed"], max(ok.times_s)) == (2, 4.25)
    flaky = tests["tests.lab.test_a::test_flaky"]
    assert (flaky.outcomes["passed"], flaky.outcomes["failed"]) == (1, 1)
    assert flaky.failures == ["run-2: WaitTimeout: timed out after 30 s"]
    assert [t.failed for t in totals] == [0, 1, 1]  # run 3 wrote no file: pytest did not finish
    text = table.render(tests, totals, "note")  # type: ignore[attr-defined]
    assert "test_a::test_flaky" in text
    assert "missing from 1 run(s)" in text


def test_a_failure_and_a_teardown_error_of_one_test_are_one_run(tmp_path: Path) -> None:
    twice = (
        '<testcase classname="tests.lab.test_a" name="test_flaky" time="1">'
        '<failure message="boom"/></testcase>\n'
        '<testcase classname="tests.lab.test_a" name="test_flaky" time="2">'
        '<error message="failed on teardown"/></testcase>'
    )
    (tmp_path / "run-1.xml").write_text(
        RUN.format(total=10, ok=1.0, flaky="").replace(
            '<testcase classname="tests.lab.test_a" name="test_flaky" time="2.5"></testcase>', twice
        )
    )
    table = _load()
    tests, totals = table.read_runs(tmp_path, 1)  # type: ignore[attr-defined]
    text = table.render(tests, totals)  # type: ignore[attr-defined]
    assert "missing from" not in text
    assert tests["tests.lab.test_a::test_flaky"].outcomes["error"] == 1


def test_exit_status_and_table_file(tmp_path: Path) -> None:
    (tmp_path / "run-1.xml").write_text(RUN.format(total=10, ok=1.0, flaky=""))
    green = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--runs", "1", "--note", "commit x"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert green.returncode == 0, green.stderr
    assert "every test passed in every run (3 tests x 1 runs)" in green.stdout
    assert (tmp_path / "table.txt").read_text() == green.stdout
    red = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--runs", "2"],
                         capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert red.returncode == 1
    empty = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none")],
                           capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert empty.returncode == 2
    assert "no run-*.xml" in empty.stderr
