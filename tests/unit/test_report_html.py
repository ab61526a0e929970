"""The HTML report: one self-contained file that headless Chromium renders, with the timeline
lanes, the fault bands and the runner plot.

Chromium (Debian ``chromium``) is required: if it is missing and this process runs as root
with apt-get (as CI does), the session fixture installs it with
``apt-get install -y chromium`` (after ``apt-get update`` if needed); otherwise the test FAILS
with that line, because a skipped render check would pass CI without checking anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.image import imread

from osha.analysis import analyze
from osha.report.html import render_html
from osha.testing import SyntheticLedger

INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _find() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = _find()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (INSTALL, ["apt-get", "update"], INSTALL):
            done = subprocess.run(step, capture_output=True, env=env, timeout=600, check=False)
            if step is INSTALL and done.returncode == 0:
                break
        found = _find()
    if found is None:
        pytest.fail(f"chromium is needed to check the HTML report: {' '.join(INSTALL)}")
    return found


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-api@ctl-1", end_s=300.0, down=[(100.0, 112.5)])
    led.target("api", "endpoint:compute", end_s=300.0, down=[(101.0, 104.0)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    led.runner("boot", end_s=300.0, errors=[(100.0, 113.0)], degraded=[(120.0, 150.0, 3.0)])
    html = render_html(analyze(led.write(stop_s=301.0)))
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_html_is_self_contained(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "<script" not in html
    assert html.count("<svg") == 2  # the timeline and the runner plot


@pytest.mark.timeout(900)  # a first install of chromium may take minutes
def test_chromium_renders_timeline_and_fault_bands(
    chromium: str, report_file: Path, tmp_path: Path
) -> None:
    url = report_file.as_uri()
    dom = _chromium(chromium, tmp_path / "p1", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    timeline = page[page.index('<figure id="timeline">') : page.index("</figure>")]
    assert "<svg" in timeline
    assert "<path" in timeline
    for label in ("nova-api@ctl-1", "endpoint:compute", "kill nova-api@ctl-1"):
        assert label in timeline, label
    assert 'id="fault-band-f1"' in timeline
    assert 'id="lane-0-down"' in timeline or 'id="lane-1-down"' in timeline
    shot = tmp_path / "shot.png"
    done = _chromium(chromium, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,1400",
                     url)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    pixels = (imread(shot)[:, :, :3] * 255).round()

    def count(rgb: tuple[int, int, int], tol: int = 6) -> int:
        return int((abs(pixels - rgb).max(axis=2) <= tol).sum())

    assert count((0x2E, 0x9D, 0x4F)) > 1000  # "up" lanes are drawn
    assert count((0xD6, 0x27, 0x28)) > 100  # "down" stretches are drawn
    assert count((255, 232, 212), tol=8) > 500  # the shaded fault band over white
