"""The chaos gate: whether the broker may grant a lease now, and the requests it holds back.

The campaign *holds* the gate while it judges a soak cycle (a judgement may stop the run) or
waits for a cycle's overrun, and *closes* it for good once a stop is decided. So no fault can
be injected after the decision: a disruptor injects only once it has its grant.

- ``open``: requests are granted (or refused by the guard) as they come;
- ``held``: requests are *parked* in arrival order; when the gate opens again each is granted
  then (late: the lease records when) unless its holder has stopped waiting for the reply
  (``fault.request.wait_s``) or crashed meanwhile: then it is refused, and says why;
- ``closed``: every parked and every new request is refused with the stop's reason.

The gate is the broker worker's own state (one thread, no lock); the broker's ``hold``,
``resume`` and ``close_gate`` reach it through the worker's queue, in order with requests.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field

from osha.messages import FaultRequest

__all__ = ["DEFAULT_WAIT_S", "ChaosGate", "GateAction", "GateCommand", "GateState", "Parked"]

#: How long a requester that does not say (``wait_s`` = 0) is assumed to wait for its grant:
#: the disruptors' default ``lease_timeout_s`` is 15 s.
DEFAULT_WAIT_S = 15.0
#: A parked request is granted only if its holder still waits this much longer (the reply
#: crosses a socket and the holder's clock started before the request did).
_REPLY_MARGIN_S = 1.0


class GateState(enum.Enum):
    OPEN = "open"
    HELD = "held"
    CLOSED = "closed"


class GateAction(enum.Enum):
    HOLD = "hold"
    RESUME = "resume"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class GateCommand:
    """A command to the gate, queued in order with the requests; ``done`` is set once the
    worker applied it, and ``refused`` then holds how many held-back requests it refused."""

    action: GateAction
    reason: str
    done: threading.Event = field(default_factory=threading.Event)
    refused: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Parked:
    """A request released from the gate: grant it, or refuse it for ``refusal``."""

    request: FaultRequest
    refusal: str = ""


class ChaosGate:
    """The gate's state and its parked requests. Not thread-safe: the broker's worker owns it."""

    def __init__(self) -> None:
        self.state = GateState.OPEN
        self.reason = ""  # why it is held or closed
        self._held_since_wall_s = 0.0
        self._parked: list[FaultRequest] = []

    def apply(self, command: GateCommand) -> list[Parked]:
        """Apply ``command``; the held-back requests it lets out, each to grant or refuse."""
        if command.action is GateAction.HOLD:
            self.hold(command.reason)
            return []
        if command.action is GateAction.RESUME:
            return self.resume()
        return self.close(command.reason)

    def hold(self, reason: str) -> None:
        if self.state is GateState.OPEN:
            self.state = GateState.HELD
            self.reason = reason
            self._held_since_wall_s = time.time()

    def park(self, request: FaultRequest) -> None:
        self._parked.append(request)

    @property
    def parked(self) -> int:
        return len(self._parked)

    def refusal(self) -> str:
        """Why a new request is refused now ("" if the gate is not closed)."""
        if self.state is GateState.CLOSED:
            return f"the campaign is stopping ({self.reason}): no new fault after a stop"
        return ""

    def drop_holder(self, holder: str) -> list[Parked]:
        """The parked requests of ``holder``, which crashed: each refused."""
        mine = [r for r in self._parked if r.lease.holder == holder]
        self._parked = [r for r in self._parked if r.lease.holder != holder]
        return [Parked(r, f"{holder} crashed while its request was held back") for r in mine]

    def resume(self) -> list[Parked]:
        """Open the gate; the parked requests in arrival order, each to grant or refuse."""
        if self.state is not GateState.HELD:
            return []
        self.state = GateState.OPEN
        now_s = time.time()
        held_s = now_s - self._held_since_wall_s
        out = []
        for request in self._parked:
            wait_s = request.wait_s if request.wait_s > 0 else DEFAULT_WAIT_S
            waited_s = now_s - request.wall_s
            refusal = ""
            if waited_s > wait_s - _REPLY_MARGIN_S:
                refusal = (
                    f"held back {waited_s:.1f} s ({self.reason}, {held_s:.1f} s); its holder "
                    f"waits only {wait_s:g} s for a grant: skipped, never retried"
                )
            out.append(Parked(request, refusal))
        self._parked = []
        self.reason = ""
        return out

    def close(self, reason: str) -> list[Parked]:
        """Close the gate for good; the parked requests, each refused."""
        if self.state is GateState.CLOSED:
            return []
        self.state = GateState.CLOSED
        self.reason = reason
        out = [Parked(r, self.refusal()) for r in self._parked]
        self._parked = []
        return out
