"""What a RabbitMQ member says of the cluster: ``cluster_status``'s view, or its local view.

``rabbitmqctl cluster_status`` asks every member it knows of: while one member is cut off by
a ``drop`` partition, each of those calls waits on the unreachable node, so every member's
status times out and the majority, which serves, looks as dead as the minority. The local
view asks only the node named by ``-n``, with calls that never leave it:

- ``serving``: ``rabbit:is_running()`` (false while paused as a minority, or booting);
- ``running_nodes``: the members it runs with (``rabbit_nodes:all_running()``, only while
  serving);
- ``connected``: ``nodes()``, the Erlang nodes it has a distribution link to right now;
- ``partitions``: the nodes its ``rabbit_node_monitor`` reports a partition from;
- ``alarms``: its own alarms (``rabbit_alarm:get_local_alarms/1``).

Each call that may block has a 2 s timeout, and a failed one gives an empty answer rather
than none. The view is a JSON object, e.g. (RabbitMQ 3.10 on the HA lab, ctl-3 paused 13 s
into a partition)::

    {"alarms":[],"connected":[],"node":"rabbit@ctl-3","partitions":[],
     "running_nodes":[],"serving":false}

``erl_call`` (a small C program shipped with Erlang) asks the node in a quarter of a second;
``rabbitmqctl eval`` starts a whole Erlang VM for it (18 s measured on the loaded lab).

Two members that both answer but are not connected to each other are partitioned; a member
that is stopped does not answer at all.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

__all__ = [
    "LOCAL_STATUS_EVAL",
    "ClusterView",
    "StatusParseError",
    "parse_cluster_status",
    "parse_local_status",
]

#: The Erlang expression each member evaluates (``erl_call -e`` or ``rabbitmqctl eval``): its
#: value is the JSON object in base64, a string of letters, digits, ``+/=`` that each tool
#: prints inside double quotes (``{ok, "eyJ..."}``, ``"eyJ..."``) without escapes. No single
#: quote in it, so it fits in '...' for the shell.
LOCAL_STATUS_EVAL = re.sub(
    r"\s+",
    " ",
    """
Serving = try rabbit:is_running() catch _:_ -> false end,
Running = case Serving of true -> try rabbit_nodes:all_running() catch _:_ -> [] end;
                          _ -> [] end,
Parts = try gen_server:call(rabbit_node_monitor, partitions, 2000) catch _:_ -> [] end,
Alarms = try rabbit_alarm:get_local_alarms(2000) catch _:_ -> [] end,
binary_to_list(base64:encode(rabbit_json:encode(#{node => node(), serving => Serving,
  running_nodes => Running, connected => nodes(), partitions => Parts,
  alarms => [list_to_binary(io_lib:format("~p", [A])) || A <- Alarms]}))).
""",
).strip()

#: A quoted base64 string, perhaps printed as adjacent literals over several lines (``~p``)
_QUOTED_B64 = re.compile(r'"((?:[A-Za-z0-9+/=]|"\s*")+)"')
_RESOURCE = re.compile(r"^\{resource_limit,\s*(\w+),")
_ATOM = re.compile(r"^\{?(\w+)")


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What one member says: its ``cluster_status``, or its local view (then ``node``, the
    member's Erlang name, and ``connected`` are set; ``serving`` false while paused)."""

    running: tuple[str, ...]  # Erlang node names, sorted
    disk_nodes: tuple[str, ...]
    partitions: dict[str, tuple[str, ...]]  # node → the nodes it is partitioned from
    alarms: tuple[str, ...]  # "memory@rabbit@ctl-1", "disk@...", "file_descriptor_limit@..."
    node: str = ""
    serving: bool = True
    connected: tuple[str, ...] | None = None  # the Erlang nodes it has a link to


    def describe(self) -> str:
        parts = [f"running {len(self.running)}: {', '.join(self.running) or 'none'}"]
        if not self.serving:
            parts.insert(0, "rabbit not running (paused, or starting)")
        if self.connected is not None:
            parts.append(f"connected to {', '.join(self.connected) or 'none'}")
        if self.partitions:
            parts.append(
                "partitions: "
                + "; ".join(f"{n} from {', '.join(p)}" for n, p in sorted(self.partitions.items()))
            )
        if self.alarms:
            parts.append(f"alarms: {', '.join(self.alarms)}")
        return "; ".join(parts)


class StatusParseError(ValueError):
    """The output is not ``rabbitmqctl cluster_status --formatter json``'s."""


def _names(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StatusParseError(f"{key} is not a list of node names: {value!r:.80}")
    return tuple(sorted(value))


def parse_cluster_status(text: str) -> ClusterView:
    """``rabbitmqctl cluster_status --formatter json`` (RabbitMQ 3.8 and later): one JSON
    object with ``running_nodes``, ``disk_nodes``, ``partitions`` (node → nodes) and
    ``alarms`` (``{node, resource, type}``). Lines around it (a warning on stderr merged in)
    are skipped."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise StatusParseError("no JSON object in the output")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise StatusParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or "running_nodes" not in data:
        raise StatusParseError("no running_nodes in the JSON object")
    raw_partitions = data.get("partitions") or {}
    if not isinstance(raw_partitions, dict):
        raise StatusParseError(f"partitions is not an object: {raw_partitions!r:.80}")
    partitions = {
        str(node): _names(peers, f"partitions.{node}")
        for node, peers in raw_partitions.items()
        if peers
    }
    alarms = []
    for alarm in data.get("alarms") or []:
        if isinstance(alarm, dict):
            what = alarm.get("resource") or alarm.get("type") or "alarm"
            alarms.append(f"{what}@{alarm.get('node', '?')}")
        else:
            alarms.append(str(alarm))
    return ClusterView(
        running=_names(data["running_nodes"], "running_nodes"),
        disk_nodes=_names(data.get("disk_nodes") or [], "disk_nodes"),
        partitions=partitions,
        alarms=tuple(sorted(alarms)),
    )


def _alarm(text: str, node: str) -> str:
    """``{resource_limit,memory,'rabbit@ctl-1'}`` → ``memory@rabbit@ctl-1`` (as
    ``cluster_status`` names them); another alarm by its first atom."""
    found = _RESOURCE.match(text) or _ATOM.match(text)
    return f"{found.group(1) if found else text}@{node}"


def parse_local_status(text: str) -> ClusterView:
    """The local view from the output of :data:`LOCAL_STATUS_EVAL` (``erl_call -e`` prints
    ``{ok, "<base64>"}``, ``rabbitmqctl -q eval`` the quoted string); warnings around it are
    skipped."""
    if text.lstrip().startswith("{error,"):
        raise StatusParseError(f"the node failed the call: {' '.join(text.split())[:160]}")
    found = max(_QUOTED_B64.findall(text), key=len, default="")
    if not found:
        raise StatusParseError("no quoted base64 string in the output")
    try:
        data = json.loads(base64.b64decode(re.sub(r'"\s*"', "", found), validate=True))
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise StatusParseError(f"not base64 JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise StatusParseError("no node in the JSON object: not the local view")
    serving = data.get("serving")
    if not isinstance(serving, bool):
        raise StatusParseError(f"serving is not true or false: {serving!r:.40}")
    node = str(data["node"])
    raw_alarms = data.get("alarms")
    if not isinstance(raw_alarms, list):
        raise StatusParseError(f"alarms is not a list: {raw_alarms!r:.80}")
    partitions = _names(data.get("partitions"), "partitions")
    return ClusterView(
        running=_names(data.get("running_nodes"), "running_nodes"),
        disk_nodes=(),
        partitions={node: partitions} if partitions else {},
        alarms=tuple(sorted(_alarm(str(a), node) for a in raw_alarms)),
        node=node,
        serving=serving,
        connected=_names(data.get("connected"), "connected"),
    )
