"""Out-of-band power control of nodes: a small driver interface, and an ``ipmi`` driver.

A driver powers one node's chassis on, off, or cycles it, and reads its state, the way an
operator uses IPMI or Redfish::

    driver = power_driver(config, "ctl-1")
    driver.state()          # PowerState.ON
    driver.power_off()
    driver.close()

``ipmi`` (pyghmi, IPMI 2.0 over LAN, RMCP+) works around what was found against pyghmi-based
BMCs (see the project's reference notes):

- **Cipher suite.** pyghmi's client offers SHA-256 first and falls back to SHA-1 (suite 3)
  when the BMC refuses. A BMC that wrongly *accepts* SHA-256 but only speaks SHA-1 makes the
  client crash inside pyghmi (``struct.error``): reported as a :class:`PowerError` that says so.
- **Session cache.** After a session dies, a new ``Command`` to the same BMC can get the dead
  session back from pyghmi's class-level cache. The driver keeps **one long-lived Command per
  BMC** and, before (re)creating one, drops the cached entry.
- **One Command per BMC**, used under a lock: pyghmi sessions are not thread-safe.
- **No BMC listening**: pyghmi raises ``IpmiException('None')`` after about 5 s: reported as
  unreachable, with the address.
"""

from __future__ import annotations

import enum
import logging
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from osha.errors import PluginError
from osha.schema import FilePath

__all__ = [
    "BmcConfig",
    "IpmiDriver",
    "PowerConfig",
    "PowerDriver",
    "PowerError",
    "PowerState",
    "power_driver",
]

log = logging.getLogger(__name__)

_CHASSIS_NETFN = 0x00
_CHASSIS_CONTROL = 0x02
_CONTROL_CYCLE = 0x02


class PowerError(PluginError):
    """The BMC cannot be reached, refused the login, or failed the command."""


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class BmcConfig:
    """One node's BMC: ``{ address = "10.0.0.111", port = 623 }``; ``user`` and the password
    default to the ``power`` table's."""

    address: str
    port: int = 623
    user: str = ""
    password_file: FilePath | None = None


@dataclass(frozen=True, slots=True)
class PowerConfig:
    """``power = { driver = "ipmi", user = "admin", password_file = "...", bmcs = { ... } }``.

    The password is read from ``password_file`` (first line), so that it never sits in a
    profile or a ledger.
    """

    driver: Literal["ipmi"] = "ipmi"
    user: str = "admin"
    password_file: FilePath | None = None
    bmcs: dict[str, BmcConfig] = field(default_factory=dict)
    timeout_s: float = 10.0


class PowerDriver(Protocol):
    """Power control of one node."""

    node: str

    def state(self) -> PowerState: ...

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def power_cycle(self) -> None: ...

    def close(self) -> None: ...


def _password(path: str | None, node: str) -> str:
    if path is None:
        raise PowerError(
            f"no BMC password for {node}",
            hint='set power.password_file = "/path/bmc-password" (its first line is used)',
        )
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise PowerError(
            f"cannot read the BMC password file {path}: {exc}",
            hint="check power.password_file",
        ) from None


class IpmiDriver:
    """IPMI 2.0 (RMCP+) power control through pyghmi; one long-lived session per BMC."""

    def __init__(self, node: str, host: str, port: int, user: str, password: str) -> None:
        self.node = node
        self._host = host
        self._port = port
        self._user = user
        self._password = password
        self._lock = threading.Lock()
        self._command: Any = None

    def _where(self) -> str:
        return f"the BMC of {self.node} ({self._host}:{self._port})"

    def _drop_cached_session(self) -> None:
        from pyghmi.ipmi.private import session  # noqa: PLC0415 - optional dependency

        key = (self._host, self._user, self._password, self._port, None)
        session.Session.initting_sessions.pop(key, None)

    def _connect(self) -> Any:
        if self._command is not None:
            return self._command
        from pyghmi import exceptions  # noqa: PLC0415 - optional dependency
        from pyghmi.ipmi import command  # noqa: PLC0415 - optional dependency

        self._drop_cached_session()
        try:
            self._command = command.Command(
                bmc=self._host, port=self._port, userid=self._user, password=self._password
            )
        except exceptions.IpmiException as exc:
            raise self._error("cannot log in to", exc) from None
        except struct.error:
            raise PowerError(
                f"{self._where()} accepted SHA-256 but answered in SHA-1",
                hint="a known bug of pyghmi-based BMCs: make the BMC refuse non-SHA1 cipher "
                "suites (RMCP+ status 0x11), or use a BMC that negotiates properly",
            ) from None
        return self._command

    def _error(self, doing: str, exc: BaseException) -> PowerError:
        text = str(exc)
        if text in ("None", ""):
            return PowerError(
                f"cannot reach {self._where()}: no answer",
                hint="is the BMC address and port right, and the BMC up? (IPMI is UDP: a "
                "missing BMC shows as a timeout)",
            )
        if "password" in text.lower():
            return PowerError(
                f"{self._where()} refused the login: {text}",
                hint="check power.user and power.password_file",
            )
        return PowerError(f"IPMI: {doing} {self._where()}: {text}")

    def _call(self, doing: str, fn: Any) -> Any:
        from pyghmi import exceptions  # noqa: PLC0415 - optional dependency

        with self._lock:
            for attempt in (1, 2):  # a dead cached session gets one fresh login
                cmd = self._connect()
                try:
                    return fn(cmd)
                except (exceptions.IpmiException, TypeError, OSError) as exc:
                    self._reset()
                    if attempt == 2 or isinstance(exc, exceptions.IpmiException):
                        raise self._error(doing, exc) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        command, self._command = self._command, None
        if command is not None:
            try:
                command.ipmi_session.logout()
            except Exception as exc:  # noqa: BLE001 - a dead session has nothing to log out of
                log.debug("IPMI logout from %s failed: %s", self._where(), exc)
        self._drop_cached_session()

    def state(self) -> PowerState:
        result = self._call("read the power state of", lambda c: c.get_power())
        return PowerState.ON if result.get("powerstate") == "on" else PowerState.OFF

    def power_on(self) -> None:
        self._call("power on", lambda c: c.set_power("on", wait=False))

    def power_off(self) -> None:
        self._call("power off", lambda c: c.set_power("off", wait=False))

    def power_cycle(self) -> None:
        def cycle(c: Any) -> None:
            response = c.raw_command(
                netfn=_CHASSIS_NETFN, command=_CHASSIS_CONTROL, data=[_CONTROL_CYCLE]
            )
            if "error" in response:
                from pyghmi import exceptions  # noqa: PLC0415 - optional dependency

                raise exceptions.IpmiException(response["error"])

        self._call("power cycle", cycle)

    def close(self) -> None:
        with self._lock:
            self._reset()


def power_driver(config: PowerConfig, node: str) -> PowerDriver:
    """The driver for ``node``. PowerError if the node has no BMC configured."""
    bmc = config.bmcs.get(node)
    if bmc is None:
        raise PowerError(
            f"no BMC configured for {node}",
            hint=f'add power.bmcs.{node} = {{ address = "...", port = 623 }}',
        )
    password = _password(bmc.password_file or config.password_file, node)
    return IpmiDriver(node, bmc.address, bmc.port, bmc.user or config.user, password)
