"""The rabbitmq monitor's local views (``status = "local"``, the default) without the lab.

The outputs are real, recorded on the HA lab (RabbitMQ 3.10.8, Erlang 25): ``erl_call -e``'s
and ``rabbitmqctl -q eval``'s answers to :data:`LOCAL_STATUS_EVAL` on a whole cluster,
``erl_call``'s answer to a call that fails, and the views every member gave, once a second,
while ctl-3 was cut from the other two on the Erlang distribution's ports with nftables
``drop`` (``rabbitmq-3.10-local-partition.txt``: seconds after the cut, member, the JSON
decoded from erl_call's base64). The majority dropped its link to ctl-3 9 s after the cut,
ctl-3 its own at 11 s, and ctl-3 paused (``serving`` false) at 13 s; every call answered in
0.3-1.7 s throughout (the file keeps 8-16 s and 40-47 s: the revert was at 40 s, ctl-3
served again at 45 s), where ``cluster_status`` timed out on all three members.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from actors.monitors._rabbit_views import LOCAL_STATUS_EVAL
from actors.monitors.rabbitmq import (
    RabbitMqMonitor,
    StatusParseError,
    parse_local_status,
)
from osha.testing import FakeContext
from tests.unit.cluster_fakes import FakeMembers, build_monitor, last_state, poll_until

DATA = Path(__file__).parent / "data"
ERL_CALL = (DATA / "rabbitmq-3.10-local-erl_call.txt").read_text()
CTL_EVAL = (DATA / "rabbitmq-3.10-local-rabbitmqctl-eval.txt").read_text()
ERL_CALL_ERROR = (DATA / "rabbitmq-3.10-local-erl_call-error.txt").read_text()
NODES = ("rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3")


def timeline() -> list[tuple[float, str, str]]:
    """(seconds after the cut, member, its view's JSON) of the recorded partition."""
    rows = []
    for line in (DATA / "rabbitmq-3.10-local-partition.txt").read_text().splitlines():
        at, node, text = line.split(" ", 2)
        rows.append((float(at), node, text))
    return rows


def as_erl_call(json_text: str) -> str:
    """A view as erl_call prints it (its real envelope: ERL_CALL)."""
    return '{ok, "' + base64.b64encode(json_text.encode()).decode() + '"}'


def view_at(member: str, after_s: float) -> str:
    """The member's first recorded view at or after ``after_s`` seconds into the partition."""
    return next(t for at, n, t in timeline() if n == member and at >= after_s)


def test_parse_real_outputs_of_erl_call_and_rabbitmqctl_eval() -> None:
    for text in (ERL_CALL, CTL_EVAL):
        view = parse_local_status(text)
        assert view.node == "rabbit@ctl-2"
        assert view.serving
        assert view.running == NODES
        assert view.connected == ("rabbit@ctl-1", "rabbit@ctl-3")
        assert view.partitions == {}
        assert view.alarms == ()
    with pytest.raises(StatusParseError, match=r"the node failed the call: \{error, .*undef"):
        parse_local_status(ERL_CALL_ERROR)


def test_parse_refuses_what_is_not_the_local_view() -> None:
    with pytest.raises(StatusParseError, match="no quoted base64"):
        parse_local_status("erl_call: can't ei_gethostbyname(ctl-9)")
    with pytest.raises(StatusParseError, match="no node in the JSON object"):
        parse_local_status(as_erl_call('{"running_nodes": []}'))
    with pytest.raises(StatusParseError, match="serving is not true or false"):
        parse_local_status(as_erl_call('{"node": "rabbit@a", "serving": "yes"}'))


def test_parse_the_recorded_partition() -> None:
    paused = parse_local_status(as_erl_call(view_at("ctl-3", 13.0)))
    assert not paused.serving
    assert paused.running == ()
    assert paused.connected == ()
    assert "rabbit not running (paused, or starting)" in paused.describe()
    majority = parse_local_status(as_erl_call(view_at("ctl-1", 9.2)))
    assert majority.serving
    assert majority.running == ("rabbit@ctl-1", "rabbit@ctl-2")
    assert majority.connected == ("rabbit@ctl-2",)


def test_a_resource_alarm_is_named_as_cluster_status_names_it() -> None:
    alarm = "{resource_limit,memory,'rabbit@ctl-1'}"
    text = json.dumps({"node": "rabbit@ctl-1", "serving": True, "running_nodes": [],
                       "connected": [], "partitions": [],
                       "alarms": [alarm, "file_descriptor_limit"]})  # fmt: skip
    view = parse_local_status(as_erl_call(text))
    assert view.alarms == ("file_descriptor_limit@rabbit@ctl-1", "memory@rabbit@ctl-1")


def test_the_commands() -> None:
    fake_hosts = {"ctl-1": {"address": "10.9.0.1", "groups": ["controller"]}}
    monitor, _ = build_monitor(RabbitMqMonitor, _NoMembers(fake_hosts), {
        "erl_call_command": ". /lab/env-{node}.sh; erl_call -sname rabbit@{node}",
        "command_timeout_s": 7.5})  # fmt: skip
    [node] = monitor.members
    assert monitor.command(node) == (
        f"printf '%s\\n' '{LOCAL_STATUS_EVAL}' | "
        "{ . /lab/env-ctl-1.sh; erl_call -sname rabbit@ctl-1 -timeout 7 -e; }"
    )
    plain, _ = build_monitor(RabbitMqMonitor, _NoMembers(fake_hosts), {})
    assert plain.command(node) == f"rabbitmqctl -n rabbit@ctl-1 -q eval '{LOCAL_STATUS_EVAL}'"
    assert "'" not in LOCAL_STATUS_EVAL  # it is quoted in '...' for the shell


class _NoMembers(FakeMembers):
    """Members named by ``hosts`` whose command never runs (the command strings only)."""

    def __init__(self, hosts: dict[str, Any]) -> None:
        self._hosts = hosts

    def hosts(self) -> dict[str, Any]:
        return self._hosts


def _monitor(fake: FakeMembers, **extra: Any) -> tuple[RabbitMqMonitor, FakeContext]:
    return build_monitor(RabbitMqMonitor, fake, {"erl_call_command": fake.command, **extra})


@pytest.mark.parametrize("alive", [False, True])
def test_the_recorded_partition_through_the_monitor(tmp_path: Path, alive: bool) -> None:
    """The members' recorded views replayed: before the cut all up; once the links are gone,
    the majority up and serving (``:cluster`` up), ctl-3 down (paused), ``:cluster-size``
    down with the partition as evidence; after the revert all up again. With
    ``alive_command`` (the lab's settings) the same, the status in its own lane."""
    (tmp_path / "status").mkdir()
    (tmp_path / "alive").mkdir()
    fake = FakeMembers(tmp_path / "status")
    extra: dict[str, Any] = {}
    checks = FakeMembers(tmp_path / "alive")
    if alive:
        for n in checks.names:
            checks.answer(n, "")
        extra = {"alive_command": checks.command, "status_interval_s": 0.05}

    def at(after_s: float) -> None:
        for n in fake.names:
            fake.answer(n, as_erl_call(view_at(n, after_s)))

    at(8.0)  # whole
    monitor, ctx = _monitor(fake, **extra)
    try:
        whole = {f"rabbitmq@{n}": "up" for n in fake.names}
        poll_until(monitor, ctx, {**whole, "rabbitmq:cluster": "up",
                                  "rabbitmq:cluster-size": "up"}, "all running")  # fmt: skip
        at(13.0)  # ctl-3 paused, no links either way
        if alive:  # its AMQP listener closed with the pause
            checks.answer("ctl-3", "connection refused", rc=1)
        poll_until(monitor, ctx, {"rabbitmq@ctl-3": "down", "rabbitmq:cluster-size": "down"},
                   "ctl-3 paused as a minority")  # fmt: skip
        size = last_state(ctx, "rabbitmq:cluster-size")
        assert size is not None
        # the first judgement after the change: as soon as one majority member's view is in
        assert re.search(r"partition: rabbit@ctl-[12] and rabbit@ctl-3 answer but have no link",
                         size.evidence), size.evidence  # fmt: skip
        paused = last_state(ctx, "rabbitmq@ctl-3")
        assert paused is not None
        # seen down by whichever says so first: its alive check, or its own view
        assert re.search("alive_command: exit 1|rabbit is not running on it", paused.evidence)
        for target in ("rabbitmq@ctl-1", "rabbitmq@ctl-2", "rabbitmq:cluster"):
            state = last_state(ctx, target)
            assert state is not None
            assert state.state == "up", state
        at(45.8)  # healed: ctl-3 restarted, three running
        if alive:
            checks.answer("ctl-3", "")
        poll_until(monitor, ctx, {**whole, "rabbitmq:cluster-size": "up"}, "healed")
    finally:
        monitor.teardown()


def test_a_stopped_member_is_no_partition(tmp_path: Path) -> None:
    """A member that does not answer (stopped: erl_call cannot reach it) is down, and the
    others' missing link to it is not a partition."""
    fake = FakeMembers(tmp_path)
    for n in ("ctl-1", "ctl-2"):
        fake.answer(n, as_erl_call(view_at(n, 13.0)))
    fake.answer("ctl-3", "erl_call: failed to connect to node rabbit@ctl-3", rc=1)
    monitor, ctx = _monitor(fake)
    try:
        poll_until(monitor, ctx, {"rabbitmq@ctl-3": "down", "rabbitmq:cluster": "up",
                                  "rabbitmq:cluster-size": "down"}, "ctl-3 stopped")  # fmt: skip
        size = last_state(ctx, "rabbitmq:cluster-size")
        assert size is not None
        assert "partition" not in size.evidence.split("(")[0], size.evidence
    finally:
        monitor.teardown()
