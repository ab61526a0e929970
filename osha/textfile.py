"""Reading a text file a user named (a profile, an inventory, clouds.yaml, a Rally task).

It must be a regular file, readable and not larger than a bound: a FIFO would hang the read,
``/dev/zero`` would fill memory, a folder would raise deep inside a parser. Each of these is a
:class:`InputFileError` (exit 2) that says what the path is and what to give instead.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from osha.errors import EXIT_INVALID, OshaError

__all__ = ["MAX_INPUT_BYTES", "InputFileError", "check_input_file", "read_text"]

MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputFileError(OshaError, ValueError):
    """A named input file cannot be used; ``reason`` says why in a few words."""

    exit_code = EXIT_INVALID

    def __init__(self, path: Path, reason: str, what: str) -> None:
        super().__init__(
            f"{what} {path}: {reason}",
            hint=f"give the path of a readable {what} (a regular file)",
        )
        self.path = path
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a file"
    return "it is not a regular file"


def _open(path: Path, what: str) -> int:
    """A descriptor on ``path`` if it is a readable regular file (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = {
            errno.ENOENT: "no such file",
            errno.EACCES: "permission denied",
            errno.ENOTDIR: "a folder on its path is a file",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise InputFileError(path, reason, what) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputFileError(path, _kind(mode), what)
    return fd


def check_input_file(path: Path, what: str) -> None:
    """Raise :class:`InputFileError` unless ``path`` is a readable regular file."""
    os.close(_open(path, what))


def read_text(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of ``path``, at most ``max_bytes`` long; :class:`InputFileError` if it
    is not a readable regular file, is longer, or is not UTF-8 text."""
    fd = _open(path, what)
    with os.fdopen(fd, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(path, f"it is larger than {max_bytes} bytes", what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not UTF-8 text (byte {exc.start})", what) from None
