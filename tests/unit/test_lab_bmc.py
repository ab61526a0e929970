"""The lab's emulated BMC (scripts/labkit/bmc.py) reports a node's real power state."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from osha.testing import wait_for

BMC = Path(__file__).resolve().parents[2] / "scripts" / "labkit" / "bmc.py"


@pytest.fixture(scope="module")
def bmc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_bmc", BMC)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_power_state_is_the_power_supply_not_the_last_request(
    bmc: ModuleType, tmp_path: Path
) -> None:
    """Issue 20: the BMC said "off" as soon as it was asked, while the node still ran (and
    answered SSH); osha then recorded the power-off as done. The state is now the node's
    power supply's: on while it runs, whatever was asked, and off once it has stopped."""
    node_dir = tmp_path / "nodes" / "n1"
    node_dir.mkdir(parents=True)
    fake = SimpleNamespace(node="n1", lab_dir=str(tmp_path))
    state = bmc.NodeBmc.get_power_state
    assert state(fake) == "off"  # no power supply ever ran
    # a power supply's command line names the lab directory and the node, as powerctl.sh's
    supply = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", str(tmp_path), "n1"],
        stdin=subprocess.PIPE,
    )
    cmdline = Path(f"/proc/{supply.pid}/cmdline")
    wait_for(lambda: b"n1" in cmdline.read_bytes(), timeout_s=10, what="the supply to exec")
    try:
        (node_dir / "power.pid").write_text(f"{supply.pid}\n")
        (node_dir / "off").touch()  # powering off has begun: the supply still runs
        bmc.NodeBmc.power_off(SimpleNamespace(_request=lambda action: 0))
        assert state(fake) == "on"
        assert state(SimpleNamespace(node="n2", lab_dir=str(tmp_path))) == "off"  # not n2's
    finally:
        supply.communicate(timeout=10)  # the supply stops: the node is off
    assert state(fake) == "off"
