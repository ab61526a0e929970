"""Segment files: their names, their 16-byte file header, and the clean-close marker.

A ledger is a directory, ``runs/<run-id>.osha/``, holding numbered segment files::

    000001.seg  000002.seg  ...  closed.json

Every segment starts with a fixed 16-byte file header (little endian)::

    magic:8s "OSHASEG\\0" | format_version:u16 | flags:u16 | segment_number:u32

followed by records framed as in :mod:`osha.record`. ``flags`` holds segment-level metadata,
readable without reading the records:

- :data:`FLAG_RAW`: a *raw-lane* segment, ``raw-000001.seg``: raw samples only, which the
  retention policy may delete whole (see :mod:`osha.ledger.retention`);
- :data:`FLAG_RESUMED`: the first main segment written after the ledger was reopened by
  :meth:`~osha.ledger.LedgerWriter.resume`; the segment before it may end in a torn record.

``closed.json`` is written, and the directory fsynced, only after the last segment is fsynced on
a clean close. Its absence means the run crashed or was killed.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from osha.errors import LedgerError

__all__ = [
    "CLOSED_MARKER",
    "FLAG_RAW",
    "FLAG_RESUMED",
    "FORMAT_VERSION",
    "SEGMENT_HEADER",
    "SEGMENT_HEADER_BYTES",
    "SEGMENT_MAGIC",
    "ClosedMarker",
    "SegmentHeader",
    "SegmentInfo",
    "fsync_directory",
    "list_raw_segments",
    "list_segments",
    "raw_segment_name",
    "read_closed_marker",
    "read_segment_flags",
    "require_ledger_directory",
    "segment_name",
]

SEGMENT_MAGIC = b"OSHASEG\x00"
FORMAT_VERSION = 1
SEGMENT_HEADER = struct.Struct("<8sHHI")
SEGMENT_HEADER_BYTES = SEGMENT_HEADER.size  # 16
CLOSED_MARKER = "closed.json"
FLAG_RAW = 0x0001
FLAG_RESUMED = 0x0002

_SEGMENT_RE = re.compile(r"^(\d{6,})\.seg$")
_RAW_SEGMENT_RE = re.compile(r"^raw-(\d{6,})\.seg$")


def segment_name(number: int) -> str:
    """The file name of segment ``number``: ``000001.seg``."""
    return f"{number:06d}.seg"


def raw_segment_name(number: int) -> str:
    """The file name of raw-lane segment ``number``: ``raw-000001.seg``."""
    return f"raw-{number:06d}.seg"


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """The 16-byte header at the start of every segment file."""

    number: int
    format_version: int = FORMAT_VERSION
    flags: int = 0

    def pack(self) -> bytes:
        return SEGMENT_HEADER.pack(SEGMENT_MAGIC, self.format_version, self.flags, self.number)

    @classmethod
    def unpack(cls, data: bytes) -> SegmentHeader | str:
        """The header, or a sentence saying why these bytes are not one."""
        if len(data) < SEGMENT_HEADER_BYTES:
            return f"segment header is {len(data)} bytes, expected {SEGMENT_HEADER_BYTES}"
        magic, version, flags, number = SEGMENT_HEADER.unpack_from(data)
        if magic != SEGMENT_MAGIC:
            return f"bad segment magic {magic!r}"
        if version != FORMAT_VERSION:
            return f"segment format version {version} is not {FORMAT_VERSION} (upgrade osha)"
        return cls(number=number, format_version=version, flags=flags)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment file found in a ledger directory."""

    number: int
    path: Path
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ClosedMarker:
    """What ``closed.json`` says: the writer closed the ledger cleanly after this many records."""

    records: int
    segments: int
    closed_wall_s: float

    def dump(self) -> bytes:
        data = {
            "records": self.records,
            "segments": self.segments,
            "closed_wall_s": self.closed_wall_s,
        }
        return json.dumps(data, sort_keys=True).encode() + b"\n"


def require_ledger_directory(directory: Path) -> Path:
    """``directory`` if it holds a ledger, else a :class:`LedgerError` that says what to pass."""
    if not directory.is_dir() or not (directory / segment_name(1)).is_file():
        what = "does not exist" if not directory.exists() else "has no 000001.seg"
        raise LedgerError(
            f"not an osha ledger directory: {directory} ({what})",
            hint="pass the run directory printed at the end of a run, like runs/<id>.osha",
        )
    return directory


def list_segments(directory: Path) -> list[SegmentInfo]:
    """The segment files of a ledger, by number. Gaps in the numbering are kept as gaps."""
    return _list(directory, _SEGMENT_RE)


def list_raw_segments(directory: Path) -> list[SegmentInfo]:
    """The raw-lane segment files of a ledger, by number (retention leaves gaps)."""
    return _list(directory, _RAW_SEGMENT_RE)


def read_segment_flags(path: Path) -> int | None:
    """The ``flags`` of a segment file's header, or None if it has no valid header."""
    try:
        with path.open("rb") as file:
            header = SegmentHeader.unpack(file.read(SEGMENT_HEADER_BYTES))
    except OSError:
        return None
    return None if isinstance(header, str) else header.flags


def _list(directory: Path, pattern: re.Pattern[str]) -> list[SegmentInfo]:
    found: list[SegmentInfo] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                match = pattern.match(entry.name)
                if match and entry.is_symlink():
                    raise LedgerError(
                        f"{entry.path} is a symbolic link: osha never writes one, so it is "
                        "not followed",
                        hint="copy the segment it points to into the run directory in its place",
                    )
                if match and entry.is_file():
                    size = entry.stat().st_size
                    found.append(SegmentInfo(int(match.group(1)), Path(entry.path), size))
    except LedgerError:
        raise
    except OSError as exc:
        raise LedgerError(
            f"cannot list ledger directory {directory}: {exc.strerror}",
            hint="check the path and its permissions",
        ) from exc
    found.sort(key=lambda s: s.number)
    return found


def read_closed_marker(directory: Path) -> ClosedMarker | None:
    """The clean-close marker, or ``None`` if the ledger was not closed cleanly."""
    try:
        data = json.loads((directory / CLOSED_MARKER).read_bytes())
        return ClosedMarker(
            records=int(data["records"]),
            segments=int(data["segments"]),
            closed_wall_s=float(data["closed_wall_s"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(
            f"unreadable clean-close marker {directory / CLOSED_MARKER}: {exc}",
            hint="the ledger may still be read; delete the marker to treat the run as unclean",
        ) from exc


def fsync_directory(directory: Path) -> None:
    """Make a directory's entries (new files, renames) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
