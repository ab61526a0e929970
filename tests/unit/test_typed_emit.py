"""Emitting a message is type-checked (issue 13 §4): mypy checks the fields given to
``ctx.emit``, ``Outbox.emit``, ``Outbox.control`` and ``stamp`` against the message class, by
name and by type, with no runtime cost (a ``ParamSpec`` over the class's constructor,
:data:`osha.messages.Build`). This test runs mypy on a small module that emits a good message
and then a wrong field name and a wrong field type through each of them."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

SOURCE = """
from osha.actorhost.outbox import Outbox
from osha.messages import ActorStop, Sample, State, StateChange, stamp
from osha.plugin import PluginContext


def emits(ctx: PluginContext, outbox: Outbox) -> None:
    ctx.emit(Sample, target="a", count=1, failures=0)  # good
    ctx.emit(Sample, target="a", count=1, failure=0)  # wrong name
    ctx.emit(Sample, target="a", count="1", failures=0)  # wrong type
    outbox.emit(Sample, target="a", count=1, failures=0, latency_max_s=0.5)  # good
    outbox.emit(Sample, target="a", count=1, failures=0, latency_max=0.5)  # wrong name
    outbox.emit(Sample, target="a", count=1, failures=0.5)  # wrong type
    outbox.control(ActorStop, reason="done")  # good
    outbox.control(ActorStop, why="done")  # wrong name
    outbox.control(ActorStop, reason=1)  # wrong type
    stamp(StateChange, "m", 1, target="a", state=State.DOWN,  # good
          previous=State.UP, last_good_mono_s=None, first_bad_mono_s=1.0)
    stamp(StateChange, "m", 1, target="a", first_bad_s=1.0,  # wrong name
          state=State.DOWN, previous=State.UP, last_good_mono_s=None)
    stamp(StateChange, "m", 1, target="a", state="down",  # wrong type
          previous=State.UP, last_good_mono_s=None, first_bad_mono_s=1.0)
"""


def test_mypy_rejects_a_wrong_field_name_and_type_at_every_emit(tmp_path: Path) -> None:
    module = tmp_path / "emits.py"
    module.write_text(SOURCE)
    out, err, _ = api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir=/dev/null", str(module)]
    )
    lines = SOURCE.splitlines()
    flagged = {int(m.group(1)) for m in re.finditer(r"emits\.py:(\d+): error:", out + err)}
    marks = {
        i: line.split("# ")[-1]
        for i, line in enumerate(lines, start=1)
        if "# good" in line or "# wrong" in line
    }
    wrong = {i for i, mark in marks.items() if mark.startswith("wrong")}
    assert flagged == wrong, out + err  # each call's mark is on its first line
    assert len(wrong) == 8
