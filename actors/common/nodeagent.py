"""The monitor side of the node agent (:mod:`actors.common._node_agent`): how to start it
over SSH, and how to read what it says.

The agent's source travels in the command line (zlib + base64), so nothing is installed on
the nodes; it needs only ``python3`` (3.7+; pidfds need 3.9 and Linux 5.3).
"""

from __future__ import annotations

import base64
import json
import shlex
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

__all__ = [
    "AgentConfig",
    "Hello",
    "Problem",
    "RoundEnd",
    "TargetLine",
    "agent_command",
    "parse_line",
]

StateWord = Literal["up", "down", "unknown"]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    interval_s: float
    services: tuple[tuple[str, str | None], ...]  # (name, cmdline regex or None)
    containers: tuple[str, ...] = ()
    docker_socket: str = "/var/run/docker.sock"
    once: bool = False


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    boot_id: str
    wall_s: float
    pidfd: bool
    hostname: str


@dataclass(frozen=True, slots=True)
class TargetLine:
    kind: Literal["p", "c"]  # process (service) or container
    name: str
    state: StateWord
    pid: int
    start_wall_s: float  # 0.0 when not running
    obs_wall_s: float
    detail: str


@dataclass(frozen=True, slots=True)
class RoundEnd:
    round: int
    wall_s: float


@dataclass(frozen=True, slots=True)
class Problem:
    text: str


Line = Hello | TargetLine | RoundEnd | Problem


@cache
def _packed_source() -> str:
    src = resources.files("actors.common").joinpath("_node_agent.py").read_bytes()
    return base64.b64encode(zlib.compress(src, 9)).decode()


def agent_command(config: AgentConfig, *, python: str = "python3") -> str:
    """The shell command that runs the agent on a node."""
    cfg = {
        "interval_s": config.interval_s,
        "services": [list(s) for s in config.services],
        "containers": list(config.containers),
        "docker_socket": config.docker_socket,
        "once": config.once,
    }
    packed_cfg = base64.b64encode(json.dumps(cfg).encode()).decode()
    boot = (
        "import base64,sys,zlib;sys.argv=sys.argv[1:];"
        "exec(compile(zlib.decompress(base64.b64decode(sys.argv[0])),'osha-node-agent','exec'))"
    )
    # -I: ignore PYTHON* variables and user site; -S: skip site (faster start, stdlib only)
    return (
        f"exec {shlex.quote(python)} -I -S -c {shlex.quote(boot)} {_packed_source()} {packed_cfg}"
    )


#: The words of an ``S`` line, typed (a lookup narrows them for mypy; anything else is refused)
_TARGET_KINDS: dict[str, Literal["p", "c"]] = {"p": "p", "c": "c"}
_STATE_WORDS: dict[str, StateWord] = {"up": "up", "down": "down", "unknown": "unknown"}


class ParseError(ValueError):
    """A line the agent should not have written (or noise on the session)."""


def parse_line(line: str) -> Line:
    """Parse one agent line; ParseError for anything else."""
    kind, _, rest = line.partition(" ")
    try:
        if kind == "S":
            f = rest.split(" ", 6)
            tkind, state = _TARGET_KINDS.get(f[0]), _STATE_WORDS.get(f[2])
            if tkind is None or state is None:
                raise ParseError(f"bad S line: {line!r}")
            detail = f[6] if len(f) > 6 else ""
            return TargetLine(tkind, f[1], state, int(f[3]), float(f[4]), float(f[5]), detail)
        if kind == "T":
            n, wall = rest.split(" ")
            return RoundEnd(int(n), float(wall))
        if kind == "H":
            f = rest.split(" ", 4)
            return Hello(int(f[0]), f[1], float(f[2]), f[3] == "1", f[4] if len(f) > 4 else "")
        if kind == "E":
            return Problem(rest)
    except (IndexError, ValueError) as exc:
        raise ParseError(f"bad agent line {line!r}: {exc}") from None
    raise ParseError(f"not an agent line: {line[:120]!r}")
