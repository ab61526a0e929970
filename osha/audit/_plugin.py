"""The audit plugin contract: a read-only look at the cloud that returns what is broken.

An audit plugin is a small class with a typed config, registered in the entry-point group
``osha.audits``::

    class ServersAudit(Audit[ServersAuditConfig]):
        '''Servers in ERROR, stuck in BUILD or a task, or on a down compute host.

        Profile:  [[audits]]  plugin = "servers"  stuck_after_s = 600
        '''
        config_type = ServersAuditConfig

        def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]: ...

It is given an openstacksdk connection and its validated config. It must only *read*: the
connection it gets refuses every write (:mod:`osha.audit._readonly`), so an audit that tries
one fails with :class:`AuditWriteRefused`, recorded, never a change to the cloud. It walks
the cloud's listings page by page and checks ``budget.take()`` between pages: when the time
or item bound is reached it stops, and the audit is recorded as truncated.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from osha.audit._share import Seat
from osha.messages.audit import Debris

__all__ = ["Audit", "AuditConfig", "Budget"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditConfig:
    """Settings every audit has; a plugin's own config subclasses this.

    ``timeout_s``: the audit's time bound (it stops between pages and is recorded as
    truncated); ``max_items``: how many items it reads at most (servers, projects, ...);
    ``page_size``: items per API page; ``cloud``/``clouds_yaml``/``region``: which cloud
    (``cloud`` and ``clouds_yaml`` default to ``[cloud]``); ``cleanup``: after the campaign,
    remove what it finds that osha itself made (``Debris.osha_made``; a plugin that
    implements :meth:`Audit.clean`), recorded; never anything else."""

    cloud: str = ""
    clouds_yaml: str = ""
    region: str = ""
    cleanup: bool = False
    timeout_s: float = 60.0
    max_items: int = 5000
    page_size: int = 200

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s = {self.timeout_s}: must be > 0")
        if self.max_items < 1 or self.page_size < 1:
            raise ValueError("max_items and page_size must be >= 1")


@dataclass(slots=True)
class Budget:
    """How much an audit may still read: a deadline (monotonic) and an item count. A plugin
    calls :meth:`take` for every item it reads and stops when it returns False."""

    deadline_s: float
    items_left: int
    truncated: str = ""  # why it stopped early; empty while within bounds
    clock: Any = field(default=time.monotonic, repr=False)

    @classmethod
    def of(cls, config: AuditConfig) -> Budget:
        return cls(time.monotonic() + config.timeout_s, config.max_items)

    def take(self) -> bool:
        """Count one item read; False (and ``truncated`` says why) once a bound is reached."""
        if self.truncated:
            return False
        if self.items_left <= 0:
            self.truncated = "reached max_items"
            return False
        if self.clock() >= self.deadline_s:
            self.truncated = "reached timeout_s"
            return False
        self.items_left -= 1
        return True


C = TypeVar("C", bound=AuditConfig)


class Audit(Generic[C]):
    """The base of an audit plugin. Subclasses set ``config_type`` and implement
    :meth:`findings`; the docstring's ``Profile:`` line shows a profile entry."""

    config_type: ClassVar[type[Any]] = AuditConfig
    #: it reads a cloud: ``osha audit CLOUD`` runs it (a test plugin says False)
    reads_cloud: ClassVar[bool] = True

    def __init__(self, config: C) -> None:
        self.config = config
        #: its place at the sweep's :class:`~osha.audit.Share` (the sweep gives it one before
        #: :meth:`findings`; alone, a share of its own)
        self.share = Seat()

    def shares(self) -> tuple[str, ...]:
        """The keys of the readings it shares with the other audits of its sweep (each made
        once: :mod:`osha.audit._share`); none by default."""
        return ()

    def connect(self) -> Any:
        """A connection to the cloud (openstacksdk's ``Connection``: its ``session`` is
        guarded read-only before :meth:`findings` gets it). Nothing is sent yet."""
        raise NotImplementedError(f"{type(self).__name__}.connect")

    @classmethod
    def can_clean(cls) -> bool:
        """Whether the plugin implements :meth:`clean` (``cleanup = true`` is allowed)."""
        return cls.clean is not Audit.clean

    def clean(self, conn: Any, item: Debris) -> str:
        """Remove ``item`` (one osha made: ``item.osha_made``); return what was done. Only
        called after the campaign with ``cleanup = true``; writes are let through for this
        call only. Raise :class:`~osha.errors.PluginError` if it cannot."""
        raise NotImplementedError(f"{type(self).__name__}.clean")

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        """Every broken item, read through ``conn`` (read-only); stop when ``budget.take()``
        says so. Raise :class:`~osha.errors.PluginError` when the cloud cannot be read."""
        raise NotImplementedError(f"{type(self).__name__}.findings")
