"""The errors osha raises, and what the command line does with them.

Hierarchy (each error also subclasses the built-in it narrows)::

    OshaError                       exit_code, hint; the CLI prints one screen and exits
    ├── ProfileError(ValueError)    a profile is invalid; carries every Problem found (exit 2)
    ├── PluginError(RuntimeError)   a plugin cannot run (bad config, unreachable host)
    │   └── UnknownPluginError(LookupError)   no plugin of that kind and name (exit 2)
    ├── WireError(ValueError)       a frame or message does not decode (unknown tag, bad field)
    ├── LedgerError(OSError)        a ledger cannot be opened, read or written
    └── EscalationError(RuntimeError)  the supervisor gave up: restarts exceeded intensity (exit 3)

The CLI catches ``OshaError`` only. Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "EXIT_ABORTED",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EscalationError",
    "LedgerError",
    "OshaError",
    "PluginError",
    "Problem",
    "ProfileError",
    "UnknownPluginError",
    "WireError",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the run completed and a check (SLO, verify) failed
EXIT_INVALID = 2  # invalid input: profile, plugin name, ledger path
EXIT_ABORTED = 3  # the run was aborted: preflight failed, supervisor escalated, Ctrl-C


class OshaError(Exception):
    """Base of every error osha expects. ``hint`` says what to do about it."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a profile: where it is, what is wrong, and what to do."""

    file: str
    key: str
    problem: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.key}: {self.problem}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class ProfileError(OshaError, ValueError):
    """A profile has problems. All of them are collected before this is raised."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the profile"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{head}:\n{body}",
            hint="fix every problem listed, then run again; `osha --help` shows the commands",
        )


class PluginError(OshaError, RuntimeError):
    """A plugin cannot run: its configuration or its target is not usable."""


class UnknownPluginError(PluginError, LookupError):
    """No plugin of this kind has this name."""

    exit_code = EXIT_INVALID


class WireError(OshaError, ValueError):
    """A frame or a message does not decode: unknown tag, missing field or wrong type."""

    exit_code = EXIT_INVALID


class LedgerError(OshaError, OSError):
    """A ledger cannot be opened, read or written."""

    exit_code = EXIT_INVALID


class EscalationError(OshaError, RuntimeError):
    """The supervisor gave up: restarts exceeded the intensity within the period."""

    exit_code = EXIT_ABORTED
