"""The power-driver interface and the ipmi driver's errors (the lab tier drives real BMCs)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from actors.common.power import BmcConfig, PowerConfig, PowerError, power_driver
from osha.schema import FilePath


def test_a_node_without_a_bmc_is_a_clear_error() -> None:
    with pytest.raises(PowerError, match="no BMC configured for ctl-1") as info:
        power_driver(PowerConfig(), "ctl-1")
    assert "power.bmcs.ctl-1" in info.value.hint


def test_the_password_comes_from_a_file(tmp_path: Path) -> None:
    config = PowerConfig(bmcs={"n": BmcConfig("127.0.0.1", 1)})
    with pytest.raises(PowerError, match="no BMC password"):
        power_driver(config, "n")
    missing = PowerConfig(password_file=FilePath(str(tmp_path / "nope")), bmcs=config.bmcs)
    with pytest.raises(PowerError, match="cannot read the BMC password file"):
        power_driver(missing, "n")


@pytest.mark.timeout(30)
def test_an_unreachable_bmc_says_so(tmp_path: Path) -> None:
    # A UDP port on loopback that nobody answers on (bound, never read).
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))
    port = quiet.getsockname()[1]
    secret = tmp_path / "pw"
    secret.write_text("password\n")
    config = PowerConfig(password_file=FilePath(str(secret)),
                         bmcs={"n": BmcConfig("127.0.0.1", port)})  # fmt: skip
    driver = power_driver(config, "n")
    began = time.monotonic()
    try:
        with pytest.raises(PowerError, match="cannot reach the BMC of n") as info:
            driver.state()
    finally:
        driver.close()
        quiet.close()
    assert "address and port" in info.value.hint
    assert time.monotonic() - began < 25
