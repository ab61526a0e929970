"""The suite collects from the repository root as well as by tier: test modules of the same
name in two tiers (tests/unit/test_campaign.py, tests/lab/test_campaign.py) must not collide
("import file mismatch")."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_same_named_test_modules_collect_from_the_repository_root() -> None:
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        by_name[path.name].append(path.relative_to(ROOT))
    twins = [str(p) for paths in by_name.values() if len(paths) > 1 for p in paths]
    # the case this guards: if no two tiers share a module name any more, name a pair here
    assert "tests/unit/test_campaign.py" in twins
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *twins],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert collected == set(twins)
