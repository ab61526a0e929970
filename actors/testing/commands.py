"""Commands understood by the built-in test plugins (``ticker``, ``crasher``).

They are registered in the codec when this module is imported (the test plugins import it, and
so do the tests and benchmarks that send them); core osha does not know them.
"""

from __future__ import annotations

from dataclasses import dataclass

from osha.messages import Message, message

__all__ = ["TestCrash", "TestFlood", "TestHang"]


@message("test.crash")
@dataclass(frozen=True, slots=True)
class TestCrash(Message):
    """Command: the receiving test actor exits at once with ``exit_code`` (or raises)."""

    __test__ = False  # not a pytest test class

    exit_code: int = 1
    raise_error: bool = False


@message("test.hang")
@dataclass(frozen=True, slots=True)
class TestHang(Message):
    """Command: the receiving test actor blocks its whole process for ``hold_s``."""

    __test__ = False

    hold_s: float = 3600.0


@message("test.flood")
@dataclass(frozen=True, slots=True)
class TestFlood(Message):
    """Command: the receiving ticker emits ``count`` samples as fast as it can."""

    __test__ = False

    count: int
