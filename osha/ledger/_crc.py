"""CRC-32 algebra, so that resynchronising after corruption costs time linear in the segment.

After a corrupt record the reader looks for the next offset where a whole, valid record
starts: a magic, a plausible length and a payload whose CRC matches. Checking each candidate
by computing the CRC of its payload costs the claimed length, so a segment seeded with
thousands of fake headers that claim 15 MiB each would cost thousands x 15 MiB. Here the CRC
of any span is found from two *prefix* CRCs instead (CRC-32 is linear over GF(2)):

    crc(A + S) = shift(crc(A), len(S)) ^ crc(S),   so   crc(S) = crc(A + S) ^ shift(crc(A), len(S))

where ``shift(c, n)`` multiplies ``c`` by x^(8n) modulo the CRC polynomial (zlib's
``crc32_combine``). :class:`SpanCrc` keeps prefix CRCs of one file every
:data:`CHECKPOINT_BYTES` bytes, built once as far as needed, so the CRC of any span costs two
short CRC runs and one ``shift`` (a few dozen word operations), whatever the span's length.
"""

from __future__ import annotations

import mmap
import zlib
from array import array
from functools import cache, lru_cache

__all__ = ["CHECKPOINT_BYTES", "SpanCrc", "crc32_shift"]

_POLY = 0xEDB88320  # CRC-32 (zlib), reflected
CHECKPOINT_BYTES = 256


def _multmodp(a: int, b: int) -> int:
    """a·b modulo the CRC polynomial, in zlib's reflected representation (bit 31 is x^0)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


@cache
def _x2n(k: int) -> int:
    """x^(2^k) modulo the polynomial."""
    return 1 << 30 if k == 0 else _multmodp(_x2n(k - 1), _x2n(k - 1))


@lru_cache(maxsize=4096)
def _factor(length: int) -> int:
    """x^(8·length) modulo the polynomial (fake headers often repeat a length: cached)."""
    factor, n, k = 1 << 31, length, 3
    while n:
        if n & 1:
            factor = _multmodp(_x2n(k), factor)
        n >>= 1
        k += 1
    return factor


def crc32_shift(crc: int, length: int) -> int:
    """``crc`` shifted over ``length`` bytes: ``crc32(A + S) == crc32_shift(crc32(A), len(S))
    ^ crc32(S)`` for any ``A`` and ``S``."""
    if length <= 0:
        return crc
    return _multmodp(_factor(length), crc)


class SpanCrc:
    """CRCs of arbitrary spans of one read-only buffer (an mmap of a segment file)."""

    __slots__ = ("_checkpoints", "_data")

    def __init__(self, data: bytes | memoryview | mmap.mmap) -> None:
        self._data = memoryview(data)
        self._checkpoints = array("I", [0])  # [i]: crc32 of data[: i * CHECKPOINT_BYTES]

    def prefix(self, end: int) -> int:
        """crc32 of ``data[:end]``."""
        cps = self._checkpoints
        data = self._data
        index = end // CHECKPOINT_BYTES
        if index >= len(cps):  # extend once, as far as needed: linear overall
            at = (len(cps) - 1) * CHECKPOINT_BYTES
            crc = cps[-1]
            while len(cps) <= index:
                crc = zlib.crc32(data[at : at + CHECKPOINT_BYTES], crc)
                cps.append(crc)
                at += CHECKPOINT_BYTES
        return zlib.crc32(data[index * CHECKPOINT_BYTES : end], cps[index])

    def release(self) -> None:
        """Let go of the buffer (an mmap cannot close while it is exported)."""
        self._data.release()

    def span(self, start: int, end: int) -> int:
        """crc32 of ``data[start:end]``, without reading the span itself."""
        if end - start <= 4 * CHECKPOINT_BYTES:
            return zlib.crc32(self._data[start:end])
        return self.prefix(end) ^ crc32_shift(self.prefix(start), end - start)
