"""The child process: one plugin, wrapped by a pykka actor, talking to its parent over one
socket. The parent starts it fresh (never by forking itself)::

    python -m osha.actorhost --fd N

Protocol, over the socket, in frames of :mod:`osha.wire`:

- parent → child: CONTROL ``actor.boot`` first; then any registered message as a command for
  the plugin (``Plugin.on_command``); ``actor.stop`` to tear down and exit 0.
- child → parent: CONTROL ``actor.hello`` (right after boot), ``actor.ready`` (after
  ``setup``), ``actor.heartbeat`` (every ``heartbeat_interval_s``), ``actor.failed`` (the
  plugin raised; the child then exits non-zero). RECORDS frames carry the plugin's events.
- requests (``PluginContext.request``): the child sends a CONTROL message with a
  ``request_id`` field up; a command coming down with the same ``request_id`` is its reply and
  wakes the waiting plugin thread instead of going to ``on_command``. A reply that comes too
  late (nobody waits for it any more) is dropped.

A RECORDS body is ``count:u32 big-endian | ledger-framed records`` (:mod:`osha.record`): the
child stamps, encodes and frames every event, and a writer thread sends them in batches every
``flush_interval_s`` or when a batch is full, so the parent does per-batch work only
(:mod:`osha.actorhost.outbox`).

Control frames carry ``seq = 0``: they are not part of the sender's recorded sequence.

The child runs in its own process group and ignores SIGINT (signals to osha's group are the
parent's to handle: it stops every child in order) and exits when its socket reaches EOF:
the parent died, so there are no orphans. It exits at once and tells its plugin nothing (no
stop, no teardown, so no revert that nobody could record: the dead-man switch and ``osha
faults recover`` revert what a dead osha held). Exit codes: :data:`EXIT_CLEAN`,
:data:`EXIT_PLUGIN_FAILED`, :data:`EXIT_PROTOCOL`, :data:`EXIT_PARENT_GONE`.

Modules, one noun each: :mod:`~osha.actorhost.outbox` (stamping, batching, the writer thread),
``_replies`` (requests waiting for their reply), ``_host`` (the plugin's actor and its
lifecycle), ``_main`` (argument parsing and boot). The parent's side is :mod:`osha.child`,
which never imports this package; both speak :mod:`osha.wire`. Nothing here imports the ledger.
"""

from osha.actorhost._host import (
    EXIT_CLEAN,
    EXIT_PARENT_GONE,
    EXIT_PLUGIN_FAILED,
    EXIT_PROTOCOL,
    Host,
)
from osha.actorhost._main import main
from osha.actorhost.outbox import Outbox

__all__ = [
    "EXIT_CLEAN",
    "EXIT_PARENT_GONE",
    "EXIT_PLUGIN_FAILED",
    "EXIT_PROTOCOL",
    "Host",
    "Outbox",
    "main",
]
