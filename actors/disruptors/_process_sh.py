"""The node-side shell of the ``process`` disruptor: find a service's main process exactly, and
never signal more than it.

**Finding.** A service is a plain name (see :func:`check_service_name`), never a pattern. Its
main process is systemd's ``MainPID`` of the unit of that exact name, else the process the
host-services monitor would report for it: the node agent (:mod:`actors.common._node_agent`)
runs one round and matches the process name (``comm``) or the script a ``python3`` runs,
exactly, never as a regular expression. So ``.*`` cannot be a service, and ``nova`` does not
match ``nova-api``.

**Guarding.** Before anything is signalled, on the node and in the same shell that then
signals, :func:`guard` refuses (exit :data:`REFUSED`, with the reason on stdout) when the
process, or for a group kill its process group, is

- PID 0 or 1, or the process group of PID 1: the node's init (``kill -- -1`` signals every
  process of the node);
- osha's own SSH session or one of its parents (``sshd``): osha would cut its own access;
- the node agent of the host-services monitor or one of its parents: osha would blind itself.

Every loop here walks a chain of parents, which ends at PID 1; each is also capped at
:data:`_MAX_DEPTH` steps.
"""

from __future__ import annotations

import re
import shlex

from actors.common.nodeagent import AgentConfig, agent_command

__all__ = [
    "NO_PROCESS",
    "PROTECTED_SERVICES",
    "REFUSED",
    "check_service_name",
    "guard",
    "lookup",
    "signal_command",
]

NO_PROCESS = 3  # lookup: no process runs the service
REFUSED = 5  # guard: the target is protected; stdout says why
_MAX_DEPTH = 64
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,99}$")
#: services whose kill takes the node's management down with them: refused at validate time
PROTECTED_SERVICES = frozenset(
    {"init", "systemd", "sshd", "ssh", "openssh-server", "kthreadd", "osha-node-agent"}
)


def check_service_name(service: str) -> None:
    """ValueError unless ``service`` is a plain name osha may disrupt."""
    if not _PLAIN.match(service):
        raise ValueError(
            f"service = {service!r} is not a plain service name: letters, digits and "
            "'_ . @ : + -', not starting with '-' (a name, matched exactly; never a pattern)"
        )
    if service.removesuffix(".service") in PROTECTED_SERVICES:
        raise ValueError(
            f"service = {service!r}: osha never disrupts the node's init or SSH daemon (it "
            "would take the node, or osha's access to it, down); to take a whole node down, "
            'use plugin = "node"'
        )


def lookup(service: str) -> str:
    """A POSIX sh snippet printing ``PID PGID`` of ``service``'s main process (exit
    :data:`NO_PROCESS` if none runs). A frozen one counts: the agent reports it down with
    its PID."""
    check_service_name(service)
    unit = shlex.quote(service)
    agent = agent_command(AgentConfig(interval_s=1.0, services=((service, None),), once=True))
    pick = shlex.quote('$1 == "S" && $2 == "p" && $3 == n && $5 != "0" { print $5; exit }')
    return (
        f"pid=$(systemctl show -p MainPID --value {unit} 2>/dev/null); "
        'case "$pid" in ""|0|*[!0-9]*) '
        f"pid=$( ({agent}) 2>/dev/null | awk -v n={unit} {pick});; esac; "
        f'[ -n "$pid" ] || exit {NO_PROCESS}; '
        'echo "$pid $(ps -o pgid= -p "$pid" | tr -d " ")"'
    )


_GUARD = """\
osha_parents() {{ p=$1; n=0; while [ -n "$p" ] && [ "$p" -gt 1 ] && [ $n -lt {depth} ]; do
  echo "$p"; p=$(ps -o ppid= -p "$p" | tr -d ' '); n=$((n+1)); done; }}
osha_refuse() {{ echo "refused: $1"; exit {refused}; }}
[ "{pid}" -gt 1 ] || osha_refuse "pid {pid} is the node's init"
init_pgid=$(ps -o pgid= -p 1 | tr -d ' ')
if [ {group} = 1 ]; then
  [ "{pgid}" -gt 1 ] || osha_refuse "process group {pgid}: a group kill would signal every process"
  [ "{pgid}" != "$init_pgid" ] || osha_refuse "process group {pgid} is the node's init's"
fi
for q in $(osha_parents $$); do
  [ "$q" != "{pid}" ] || osha_refuse "pid {pid} is osha's own SSH session or one of its parents"
  [ {group} = 0 ] || [ "$(ps -o pgid= -p "$q" | tr -d ' ')" != "{pgid}" ] || \\
    osha_refuse "process group {pgid} holds osha's own SSH session"
done
for a in $(pgrep -f osha-node-agent); do for q in $(osha_parents "$a"); do
  [ "$q" != "{pid}" ] || osha_refuse "pid {pid} is osha's node agent or one of its parents"
  [ {group} = 0 ] || [ "$(ps -o pgid= -p "$q" | tr -d ' ')" != "{pgid}" ] || \\
    osha_refuse "process group {pgid} holds osha's node agent"
done; done
"""


def guard(pid: int, pgid: int, *, group: bool) -> str:
    """A POSIX sh snippet that exits :data:`REFUSED` (printing why) if signalling ``pid`` (or,
    with ``group``, its process group ``pgid``) would hit init, osha's SSH session or its
    node agent; else it does nothing."""
    return _GUARD.format(
        pid=int(pid), pgid=int(pgid), group=int(group), depth=_MAX_DEPTH, refused=REFUSED
    )


def signal_command(sig: str, pid: int, pgid: int, *, group: bool) -> str:
    """The command that sends ``sig`` (``SIGKILL``...) to the process group (``group`` and the
    main process leads it), to the main process and its children (``group``), or to the main
    process only. Guarded: nothing is signalled if :func:`guard` refuses."""
    name = sig.removeprefix("SIG")
    if group and pgid == pid:
        act = f"kill -s {name} -- -{int(pgid)}"
    elif group:
        act = f"kill -s {name} {int(pid)}; pkill --signal {name} -P {int(pid)}; true"
    else:
        act = f"kill -s {name} {int(pid)}"
    return guard(pid, pgid, group=group) + act
