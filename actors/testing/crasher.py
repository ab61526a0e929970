"""``crasher``: a runner that dies or hangs on command or on a timer, for supervision tests."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from actors.testing.commands import TestCrash, TestHang
from osha.errors import PluginError
from osha.messages import Message
from osha.plugin import Runner

__all__ = ["CrasherConfig", "CrasherRunner"]


@dataclass(frozen=True, slots=True)
class CrasherConfig:
    """``crash_after_s``: crash this long after start (None: only on command);
    ``exit_code``: the code of a timed crash; ``raise_error``: crash by raising instead
    (the child reports ``actor.failed``); ``fail_setup``: raise in ``setup``;
    ``finish_after_s``: return from ``run`` (a normal exit) this long after start;
    ``error_text``: added to the text of a raised crash (tests of what reaches the logs)."""

    crash_after_s: float | None = None
    exit_code: int = 1
    raise_error: bool = False
    fail_setup: bool = False
    finish_after_s: float | None = None
    error_text: str = ""


class CrasherRunner(Runner[CrasherConfig]):
    """Runs until stopped; crashes on a timer or on ``test.crash``; hangs its whole process on
    ``test.hang`` (it holds the GIL in a busy loop, so even heartbeats stop).

    Profile::

        [[runners]]
        id = "crash-1"
        plugin = "crasher"
        crash_after_s = 2.0
        exit_code = 3
    """

    config_type = CrasherConfig

    def setup(self) -> None:
        if self.config.fail_setup:
            raise PluginError("crasher: setup fails as configured (fail_setup = true)")

    def run(self) -> None:
        cfg = self.config
        if cfg.finish_after_s is not None:
            self.ctx.wait(cfg.finish_after_s)
            return
        if cfg.crash_after_s is None:
            self.ctx.stopping.wait()
            return
        if not self.ctx.wait(cfg.crash_after_s):
            self._crash(cfg.exit_code, raise_error=cfg.raise_error)

    def on_command(self, command: Message) -> None:
        if isinstance(command, TestCrash):
            self._crash(command.exit_code, raise_error=command.raise_error)
        elif isinstance(command, TestHang):
            _hold_gil(command.hold_s)
        else:
            super().on_command(command)

    def _crash(self, exit_code: int, *, raise_error: bool) -> None:
        if raise_error:
            extra = f": {self.config.error_text}" if self.config.error_text else ""
            raise PluginError(f"crasher: crash requested (exit code {exit_code}){extra}")
        os._exit(exit_code)


def _hold_gil(hold_s: float) -> None:
    """Busy-loop for ``hold_s`` without letting any other thread of this process run."""
    previous_s = sys.getswitchinterval()
    sys.setswitchinterval(max(hold_s, previous_s))
    try:
        deadline_s = time.monotonic() + hold_s
        while time.monotonic() < deadline_s:
            pass
    finally:
        sys.setswitchinterval(previous_s)
