"""Faults around the supervisor: garbage on the wire, and the supervisor's own death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import osha.child
from osha.messages import ActorCrashed
from osha.supervisor import ChildSpec, ChildState, Supervisor
from osha.testing import MemorySink, wait_for

pytestmark = pytest.mark.timeout(30)

Factory = Callable[..., tuple[Supervisor, MemorySink]]

# A child host that says hello and ready like the real one, then sends a garbage frame. The
# second time it is started (the marker file exists) it becomes the real host.
_GARBAGE_HOST = textwrap.dedent(
    """
    import os, socket, sys, time
    marker, fd = sys.argv[1], int(sys.argv[3])
    if os.path.exists(marker):
        os.execv(sys.executable, [sys.executable, "-m", "osha.actorhost", "--fd", str(fd)])
    open(marker, "w").close()
    from osha.messages import ActorHello, ActorReady
    from osha.wire import FrameDecoder, FrameKind, decode, encode, pack_frame
    sock = socket.socket(fileno=fd)
    boot = decode(list(FrameDecoder().feed(sock.recv(65536)))[0][1])
    for msg in (
        ActorHello(boot.actor_id, 0, 0.0, 0.0, boot.actor_id, os.getpid(), 1, "x"),
        ActorReady(boot.actor_id, 0, 0.0, 0.0, boot.actor_id),
    ):
        sock.sendall(pack_frame(FrameKind.CONTROL, encode(msg)))
    time.sleep(0.2)
    sock.sendall(b"\\x00\\x00\\x00\\x07garbage")
    time.sleep(60)
    """
)


def test_a_garbage_frame_kills_and_restarts_the_child(
    supervise: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "garbage_host.py"
    script.write_text(_GARBAGE_HOST)
    marker = tmp_path / "marker"
    monkeypatch.setattr(osha.child, "HOST_ARGV", (sys.executable, str(script), str(marker)))
    sup, sink = supervise(ChildSpec("tick", "monitor", "ticker", {"interval_s": 0.05}))

    def restarted() -> bool:
        [child] = sup.children()
        return child.incarnation == 2 and child.state is ChildState.RUNNING

    wait_for(restarted, timeout_s=10, what="the garbled child restarted")
    [crash] = sink.messages(ActorCrashed)
    assert crash.reason == "wire"  # type: ignore[attr-defined]
    assert crash.signal == signal.SIGKILL  # type: ignore[attr-defined]
    assert "bad frame from the child" in crash.last_error  # type: ignore[attr-defined]


_DOOMED_PARENT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from osha.supervisor import ChildSpec, Supervisor, SupervisorSpec
    from osha.testing import MemorySink
    spec = SupervisorSpec(children=(
        ChildSpec("tick", "monitor", "ticker", {"interval_s": 0.05}),
        ChildSpec("crash", "runner", "crasher"),
    ))
    sup = Supervisor(spec, MemorySink(), run_dir=Path(sys.argv[1]))
    sup.start()
    print(" ".join(str(c.pid) for c in sup.children()), flush=True)
    threading.Event().wait(60)
    """
)


def test_children_exit_when_the_supervisor_is_killed(
    tmp_path: Path, no_children_left: Callable[[], None]
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(lambda: all(gone(p) for p in pids), timeout_s=10, what="orphans to exit")
    no_children_left()
