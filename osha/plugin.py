"""The plugin API: what a monitor, disruptor or runner implements, and what it is given.

A plugin is a small class with a typed config and a clear lifecycle. It runs inside its own
OS process, wrapped by a pykka actor (see :mod:`osha.actorhost`)::

    class TickerMonitor(Monitor[TickerConfig]):
        '''Emits one sample per interval.

        Profile:  [[monitors]]  id = "tick"  plugin = "ticker"  interval_s = 0.5
        '''
        config_type = TickerConfig

        def setup(self) -> None: ...           # connect; raise PluginError if impossible
        def check(self) -> list[Finding]: ...  # pre-flight health gate
        def poll(self) -> None: ...            # called every interval_s; emits via self.ctx
        def teardown(self) -> None: ...

A monitor that *sees* an outage reports it (``failures``, ``monitor.state``). A plugin that
*cannot run* raises: the child reports the error, exits, and the supervisor records the crash
and restarts it as its child spec says.

Register a plugin as an entry point in the group of its kind, with a kebab-case name::

    [project.entry-points."osha.monitors"]
    ticker = "actors.testing.ticker:TickerMonitor"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, ParamSpec, Protocol, TypeVar

from osha.errors import PluginError
from osha.messages import Build, Message, stamp

__all__ = [
    "Disruptor",
    "EmptyConfig",
    "Finding",
    "Kind",
    "Monitor",
    "MonitorConfig",
    "Plugin",
    "PluginContext",
    "RequestAborted",
    "RequestTimeout",
    "Runner",
    "check_offline",
    "offline",
]

Kind = Literal["monitor", "disruptor", "runner"]

M = TypeVar("M", bound=Message)
F = ParamSpec("F")


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a pre-flight check. ``ok=False`` blocks the campaign's health gate."""

    target: str
    ok: bool
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class EmptyConfig:
    """A plugin that takes no settings."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Settings every monitor has. A monitor's own config subclasses this."""

    interval_s: float = 1.0


class Emit(Protocol):
    """``emit(cls, **fields)``: mypy checks the fields' names and types against ``cls``."""

    def __call__(self, cls: Build[F, M], /, *args: F.args, **fields: F.kwargs) -> M: ...


class Request(Protocol):
    def __call__(self, cls: type[Message], /, *, timeout_s: float, **fields: Any) -> Message: ...


class RequestTimeout(PluginError, TimeoutError):
    """``ctx.request`` got no reply in time (the receiver in the supervisor process is missing
    or busy)."""


class RequestAborted(PluginError):
    """``ctx.request`` gave up waiting because the actor is being stopped."""


class PluginContext:
    """What the host gives a plugin: its identity, the seed, a way to speak, and a stop flag.

    ``emit(cls, **fields)`` builds a message with the envelope filled in (sender, seq, clocks),
    queues it for the ledger, and returns it. It is thread-safe.

    ``request(cls, timeout_s=..., **fields)`` sends a *control* message (not recorded) up to
    the supervisor process and waits for its reply: ``cls`` has a ``request_id: str`` field,
    filled in here, and the reply is the first command coming down with the same
    ``request_id``. It raises :class:`RequestTimeout`, or :class:`RequestAborted` when the
    actor is stopped meanwhile. The fault broker answers ``fault.sync`` and ``fault.request``
    this way. Thread-safe.
    """

    def __init__(
        self,
        *,
        actor_id: str,
        seed: int,
        emit: Emit,
        stopping: threading.Event,
        log: logging.Logger | None = None,
        request: Request | None = None,
    ) -> None:
        self.actor_id = actor_id
        self.seed = seed
        self.emit = emit
        self.stopping = stopping
        self.log = log or logging.getLogger(f"osha.actor.{actor_id}")
        self._request = request

    def request(self, cls: type[Message], /, *, timeout_s: float, **fields: Any) -> Message:
        """Send a control message up and wait for the reply (see the class docstring)."""
        if self._request is None:
            raise RequestTimeout(
                f"{self.actor_id}: this context cannot send requests to the supervisor process",
                hint="run the plugin under an actor host (osha run-actors), or give the test "
                "context a request function",
            )
        return self._request(cls, timeout_s=timeout_s, **fields)

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True if the actor is being stopped. Use instead of sleep."""
        return self.stopping.wait(timeout_s)


C = TypeVar("C")
P = TypeVar("P", bound="Plugin[Any]")


class Plugin(Generic[C]):
    """Base of every plugin. Subclasses set ``config_type`` and a docstring with an example."""

    kind: ClassVar[Kind]
    config_type: ClassVar[type[Any]] = EmptyConfig
    #: control messages this plugin accepts, tag → handler name is not used: override
    #: :meth:`on_command` and match on the message type instead.

    def __init__(self, config: C, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx

    def setup(self) -> None:
        """Acquire connections and resources. Raise :class:`~osha.errors.PluginError` if the
        plugin cannot run."""

    def check(self) -> list[Finding]:
        """Pre-flight: is the target healthy and reachable? Used by the campaign's health gate."""
        return []

    def teardown(self) -> None:
        """Release what ``setup`` acquired. Called once, also after a failure."""

    def on_command(self, command: Message) -> None:
        """Handle a control message sent to this actor. The default refuses every command."""
        raise NotImplementedError(f"{type(self).__name__} accepts no command {command.TAG!r}")


class Monitor(Plugin[C]):
    """Watches targets. ``poll`` is called every ``config.interval_s`` seconds."""

    kind: ClassVar[Kind] = "monitor"

    def poll(self) -> None:
        """Observe once and emit samples and state changes through ``self.ctx.emit``."""
        raise NotImplementedError


class Runner(Plugin[C]):
    """Runs load (e.g. a Rally task) until it is done or ``ctx.stopping`` is set."""

    kind: ClassVar[Kind] = "runner"

    def run(self) -> None:
        """Run, emitting progress; return when finished or when ``self.ctx.stopping`` is set."""
        raise NotImplementedError


class Disruptor(Plugin[C]):
    """Injects faults and reverts them. Schedules and fault leases come with the disruptors."""

    kind: ClassVar[Kind] = "disruptor"

    def run(self) -> None:
        """Drive the disruptor's schedule until done or stopped. The default waits to be stopped."""
        self.ctx.stopping.wait()


PluginFactory = Callable[[Any, PluginContext], Plugin[Any]]


def offline(cls: type[P], config: Any, *, actor_id: str, seed: int) -> P:
    """Build a plugin in this process, outside its child, to ask it something that changes
    nothing: its pre-flight ``check()`` (see :func:`check_offline`), or the labels of a planned
    fault. The preflight, ``osha faults check`` and ``osha faults plan`` build plugins here.

    Its context records nothing: ``emit`` fills in the envelope and returns the message,
    which goes nowhere; ``request`` raises :class:`RequestTimeout`; ``stopping`` is never set.
    """

    def emit(msg_cls: Build[F, M], /, *args: F.args, **fields: F.kwargs) -> M:
        return stamp(msg_cls, actor_id, 0, *args, **fields)

    ctx = PluginContext(actor_id=actor_id, seed=seed, emit=emit, stopping=threading.Event())
    return cls(config, ctx)


def check_offline(
    cls: type[Plugin[Any]], config: Any, *, actor_id: str, seed: int
) -> list[Finding]:
    """Build the plugin :func:`offline`, run its ``check()``, and tear it down (also when the
    check raises)."""
    plugin = offline(cls, config, actor_id=actor_id, seed=seed)
    try:
        return list(plugin.check())
    finally:
        plugin.teardown()
