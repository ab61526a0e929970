"""The run directory is private: created 0700, every file in it 0600, whatever the umask.

A run directory holds what a run saw of a production cloud (host names, addresses, error
texts, Rally's database of the load) and must not be readable by other users of the
machine. Two measures, so that neither can be forgotten:

- osha creates its own files and folders with explicit modes and sets them again after
  creating them (:func:`make_private_dir`, :func:`create_private_file`,
  :func:`write_private_atomic`), so a permissive umask (``000``) cannot widen them and a
  strict one cannot make them unreadable to their owner;
- a campaign runs under :func:`private_umask` (``077``), which its actor processes and their
  children (``rally``, SQLite) inherit, so files that third-party code creates in the run
  directory are private too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PRIVATE_UMASK",
    "create_private_file",
    "make_private_dir",
    "open_private_append",
    "private_umask",
    "write_private_atomic",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; ``path`` itself ends up 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def create_private_file(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)`` with mode 0600 (set again after the open); a file
    descriptor. Symbolic links are not followed."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_private_append(path: Path) -> int:
    """A file descriptor appending to ``path`` (created 0600 if missing)."""
    return create_private_file(path, os.O_WRONLY | os.O_APPEND)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably (write a 0600 temporary file, fsync, rename);
    the caller fsyncs the directory if the rename must survive a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = create_private_file(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block (and every process it starts) with umask 077; restore the old one."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)
