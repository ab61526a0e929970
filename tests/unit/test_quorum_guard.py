"""The quorum guard (``[guard] quorum``): its arithmetic from monitor states and active leases,
the broker's refusal record, ``allow_quorum_loss``, the run tree's tap that feeds it, and the
profile's errors."""

from __future__ import annotations

import io
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha import profile
from osha.errors import ProfileError
from osha.faults import FaultBroker, Guard, Lease
from osha.messages import FaultGrant, FaultLease, FaultRefused, FaultRequest, StateChange, stamp
from osha.messages.monitor import State
from osha.profile import QuorumRule
from osha.record import frame_record
from osha.recorder import RecordTap
from osha.testing import MemorySink
from osha.wire import encode
from tests.unit.test_fault_broker import FAST, Target
from tests.unit.test_fault_support import BrokerContext, SyncSink

MEMBERS = ("ctl-1", "ctl-2", "ctl-3")


def lease(node: str, holder: str = "kill-db", index: int = 0, resource: str = "mariadb") -> Lease:
    return Lease(
        lease_id=f"{holder}/{index}", holder=holder, plugin="fake", index=index, action="kill",
        node=node, address="10.0.0.1", resource=resource, groups=("all", "controller"),
        down_s=1.0, planned_wall_s=time.time(), revert_by_wall_s=time.time() + 60, revert={},
    )  # fmt: skip


def state(target: str, value: State, evidence: str = "") -> StateChange:
    return stamp(StateChange, "monitor/galera", 1, target=target, state=value,
                 previous=State.UNKNOWN, last_good_mono_s=None, first_bad_mono_s=1.0,
                 evidence=evidence)  # fmt: skip


def guard_with(rules: dict[str, QuorumRule], up: tuple[str, ...] = MEMBERS,
               down: tuple[str, ...] = ()) -> Guard:  # fmt: skip
    guard = Guard({}, rules)
    for node in up:
        guard.observe(state(f"galera@{node}", State.UP))
    for node in down:
        guard.observe(state(f"galera@{node}", State.DOWN, "non-Primary"))
    return guard


MAJORITY = {"galera": QuorumRule()}


def test_a_second_member_down_is_refused_with_the_arithmetic() -> None:
    guard = guard_with(MAJORITY)
    assert guard.check([], lease("ctl-3")) is None  # 3 up: one may go
    refusal = guard.check([lease("ctl-3")], lease("ctl-1", "kill-db2"))
    assert refusal is not None
    assert refusal.limit == "quorum.galera"
    assert refusal.reason == (
        "galera: 3 members, 1 down (ctl-3, lease kill-db/0), this fault takes ctl-1: "
        "1 left < majority 2"
    )
    assert refusal.active == ("kill-db/0 kill mariadb@ctl-3",)
    assert not refusal.overridden


def test_monitor_state_counts_as_down_and_a_node_counts_once() -> None:
    guard = guard_with(MAJORITY, up=("ctl-1", "ctl-2"), down=("ctl-3",))
    refusal = guard.check([lease("ctl-3")], lease("ctl-2", "other"))
    assert refusal is not None
    assert "1 down (ctl-3, down)" in refusal.reason  # the lease's node is not counted twice
    # a fault on a member already down takes nobody more
    assert guard.check([], lease("ctl-3", "again")) is None


def test_already_below_quorum_refuses_every_fault() -> None:
    guard = guard_with(MAJORITY, up=("ctl-1",), down=("ctl-2", "ctl-3"))
    refusal = guard.check([], lease("cmp-1", resource="nova-compute"))
    assert refusal is not None
    assert refusal.reason == (
        "galera: 3 members, 2 down (ctl-2, down; ctl-3, down): 1 up < majority 2: already "
        "below quorum, no fault until it recovers"
    )
    whole = guard_with(MAJORITY)
    whole.observe(state("galera:cluster", State.DOWN, "no member is in a Primary component"))
    refusal = whole.check([], lease("cmp-1"))
    assert refusal is not None
    assert "galera:cluster is down (no member is in a Primary component)" in refusal.reason


def test_min_members_and_resources_decide_which_faults_count() -> None:
    rules = {"galera": QuorumRule(min_members=3, resources=("mariadb", ""))}
    guard = guard_with(rules)
    assert guard.check([], lease("ctl-1", resource="nova-api")) is None  # takes no member
    power_off = guard.check([], lease("ctl-1", resource=""))  # node-wide
    assert power_off is not None
    assert "this fault takes ctl-1: 2 left < min_members 3" in power_off.reason


def test_no_member_known_is_refused_rather_than_guessed() -> None:
    refusal = Guard({}, {"rabbitmq": QuorumRule()}).check([], lease("ctl-1"))
    assert refusal is not None
    assert "no monitor has reported a rabbitmq@<node> target yet" in refusal.reason


def test_allow_quorum_loss_overrides_and_says_so() -> None:
    guard = guard_with(MAJORITY)
    allowed = guard.check([lease("ctl-3")], lease("ctl-1", "x"), allow_quorum_loss=True)
    assert allowed is not None
    assert allowed.overridden
    assert allowed.reason.startswith("allow_quorum_loss: galera: 3 members, 1 down")


# -- through the broker ---------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[tuple[FaultBroker, SyncSink, dict[str, BrokerContext]]]:
    sink, target = SyncSink(), Target()
    fb = FaultBroker(sink, max_down={}, revert=target.revert, policy=FAST, quorum=MAJORITY)
    contexts: dict[str, BrokerContext] = {}
    fb.attach(lambda child, msg: contexts[child].deliver(msg))
    fb.start()
    for name in ("kill-db", "kill-db2"):
        contexts[name] = BrokerContext(fb, name)
    for node in MEMBERS:
        fb.observe(state(f"galera@{node}", State.UP))
    yield fb, sink, contexts
    fb.close(timeout_s=5)


def test_the_broker_refuses_the_second_kill_and_records_why(
    broker: tuple[FaultBroker, SyncSink, dict[str, BrokerContext]],
) -> None:
    fb, sink, ctx = broker
    first = ctx["kill-db"].request(FaultRequest, timeout_s=5, lease=lease("ctl-3"))
    assert isinstance(first, FaultGrant)
    assert first.granted
    second = ctx["kill-db2"].request(FaultRequest, timeout_s=5, lease=lease("ctl-1", "kill-db2"))
    assert isinstance(second, FaultGrant)
    assert not second.granted
    assert "1 left < majority 2" in second.reason
    (refused,) = [m for m in sink.messages() if isinstance(m, FaultRefused)]
    assert (refused.limit, refused.node, refused.holder) == ("quorum.galera", "ctl-1", "kill-db2")
    assert refused.reason == second.reason
    assert [lease.lease_id for lease in fb.active()] == ["kill-db/0"]


def test_the_broker_grants_allow_quorum_loss_and_the_lease_says_so(
    broker: tuple[FaultBroker, SyncSink, dict[str, BrokerContext]],
) -> None:
    fb, sink, ctx = broker
    ctx["kill-db"].request(FaultRequest, timeout_s=5, lease=lease("ctl-3"))
    grant = ctx["kill-db2"].request(FaultRequest, timeout_s=5, lease=lease("ctl-1", "kill-db2"),
                                    allow_quorum_loss=True)  # fmt: skip
    assert isinstance(grant, FaultGrant)
    assert grant.granted
    leases = [m for m in sink.messages() if isinstance(m, FaultLease)]
    assert leases[0].guard_note == ""
    assert leases[1].guard_note.startswith("allow_quorum_loss: galera: 3 members, 1 down")
    assert len(fb.active()) == 2


def test_the_tap_shows_the_broker_only_monitor_states_of_framed_batches() -> None:
    seen: list[object] = []
    inner = MemorySink()
    tap = RecordTap(inner, seen.append, frozenset({StateChange.TAG}))
    change = state("galera@ctl-1", State.DOWN)
    other = stamp(FaultRefused, "faults", 2, lease_id="x/0", holder="x", index=0,
                  action="kill", node="ctl-1", resource="", reason="r")  # fmt: skip
    blob = frame_record(encode(other)) + frame_record(encode(change))
    tap.write_framed(blob, 2)
    assert seen == [change]
    assert len(inner.messages()) == 2  # everything is forwarded, watched or not


# -- the profile ----------------------------------------------------------------------------


def _profile(tmp_path: Path, guard: str) -> profile.Profile:
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(guard) + '\n[[monitors]]\nid = "t"\nplugin = "ticker"\n')
    return profile.load(path)


def test_profile_quorum_forms(tmp_path: Path) -> None:
    prof = _profile(tmp_path, """
        [guard.quorum]
        galera = "majority"
        rabbitmq = 2
        keystone = { min_members = 1, resources = ["keystone*", ""] }
    """)  # fmt: skip
    rules = prof.guard.quorum_rules()
    assert rules["galera"] == QuorumRule()
    assert rules["rabbitmq"] == QuorumRule(min_members=2)
    assert rules["keystone"] == QuorumRule(min_members=1, resources=("keystone*", ""))


@pytest.mark.parametrize(
    ("guard", "key", "text"),
    [
        ('quorum = { galera = "most" }', "guard.quorum.galera", "expected"),
        ("quorum = { galera = 0 }", "guard", "quorum.galera = 0: at least 1 member"),
        ("quorum = { galera = { min_members = 0 } }", "guard.quorum.galera", "min_members = 0"),
        ("quorum = { galera = { resources = [] } }", "guard", "quorum.galera.resources is empty"),
        ("quorum = { galera = { min = 2 } }", "guard.quorum.galera.min", "unknown key"),
    ],
)
def test_profile_errors_name_the_key(tmp_path: Path, guard: str, key: str, text: str) -> None:
    with pytest.raises(ProfileError) as info:
        _profile(tmp_path, f"[guard]\n{guard}\n")
    problems = info.value.problems
    assert [p.key for p in problems] == [key], problems
    assert text in problems[0].problem


# -- a whole campaign: real children, the monitor's states through the run tree's tap -------

CAMPAIGN = """\
[campaign]
name = "quorum"
seed = 1
warmup_s = 0
baseline_s = 0.3
chaos_s = 2.5
recovery_timeout_s = 10
recovery_hold_s = 0.2

[guard]
quorum = {{ galera = "majority" }}

[[monitors]]
id = "galera"
plugin = "marker"
markers = "{markers}"
targets = ["galera@ctl-1", "galera@ctl-2", "galera@ctl-3"]
interval_s = 0.05
{disruptors}
"""

KILL = """
[[disruptors]]
id = "{id}"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
resource = "galera"
target = {{ group = "controller", pick = "node:{node}" }}
schedule = {{ start_s = {start_s}, times = 1, down_s = {down_s} }}
allow_quorum_loss = {allow}
"""


@pytest.mark.timeout(90)
def test_two_kills_at_once_the_second_is_refused_and_an_allowed_one_says_so(
    tmp_path: Path,
) -> None:
    """The issue's acceptance, without the lab: two disruptors kill a Galera member each at
    the same moment; the second is refused with the arithmetic, so no two members are ever
    down together, until a third disruptor breaks quorum on purpose."""
    from rich.console import Console

    from osha.campaign import StartOptions, run_campaign
    from osha.ledger import LedgerReader

    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[controller]\nctl-1\nctl-2\nctl-3\n")
    markers = tmp_path / "markers"
    kills = "".join(
        KILL.format(
            id=i, markers=markers, inventory=inventory, node=n, start_s=s, down_s=d, allow=a
        )
        for i, n, s, d, a in [
            ("kill-db-1", "ctl-1", 0.2, 2.0, "false"),
            ("kill-db-2", "ctl-2", 0.2, 2.0, "false"),
            ("break-quorum", "ctl-3", 1.2, 0.5, "true"),
        ]
    )
    path = tmp_path / "p.toml"
    path.write_text(CAMPAIGN.format(markers=markers, disruptors=kills))
    out = io.StringIO()
    options = StartOptions(live=False, ledger_dir=tmp_path)
    outcome = run_campaign(profile.load(path), options, Console(file=out, width=120))
    records = list(LedgerReader(outcome.run_dir).messages())
    refused = [m for m in records if isinstance(m, FaultRefused)]
    leases = [m for m in records if isinstance(m, FaultLease)]
    assert len(refused) == 1, refused
    assert refused[0].limit == "quorum.galera"
    assert re.fullmatch(
        r"galera: 3 members, 1 down \(ctl-[12], (lease kill-db-[12]/0|down)\), this fault "
        r"takes ctl-[12]: 1 left < majority 2",
        refused[0].reason,
    ), refused[0].reason
    holders = sorted(m.lease.holder for m in leases)
    assert holders in (["break-quorum", "kill-db-1"], ["break-quorum", "kill-db-2"]), holders
    allowed = [m for m in leases if m.lease.holder == "break-quorum"]
    assert len(allowed) == 1
    assert allowed[0].guard_note.startswith("allow_quorum_loss: galera: 3 members, 1 down")
    assert "(ctl-1, down)" in allowed[0].guard_note or "(ctl-2, down)" in allowed[0].guard_note
    # the report says so too
    from osha.analysis import analyze
    from osha.report.terminal import render_summary

    analysis = analyze(outcome.run_dir)
    (broke,) = [f for f in analysis.faults if f.holder == "break-quorum"]
    assert broke.guard_note == allowed[0].guard_note
    assert f"break-quorum/0: {broke.guard_note}" in render_summary(analysis)
    (no,) = [f for f in analysis.faults if f.status == "refused"]
    assert no.refused == refused[0].reason
    # the monitor's view: two members down together only once break-quorum struck
    down: set[str] = set()
    most_before_break = 0
    granted_break = allowed[0].mono_s
    for m in records:
        if isinstance(m, StateChange) and m.target.startswith("galera@"):
            (down.add if m.state == State.DOWN else down.discard)(m.target)
            if m.mono_s < granted_break:
                most_before_break = max(most_before_break, len(down))
    assert most_before_break == 1


def test_the_plan_and_the_dry_run_name_the_quorum_rules(tmp_path: Path) -> None:
    """The quorum guard needs live state: ``faults plan`` and ``--dry-run`` say so, with the
    rules, instead of pretending to check them."""
    from typer.testing import CliRunner

    from osha.cli import app

    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[controller]\nctl-1\nctl-2\nctl-3\n")
    path = tmp_path / "p.toml"
    kill = KILL.format(id="kill-db", markers=tmp_path / "m", inventory=inventory, node="ctl-1",
                       start_s=1, down_s=1, allow="false")  # fmt: skip
    rabbit = 'rabbitmq = { min_members = 2, resources = ["", "rabbit*"] }'
    text = CAMPAIGN.format(markers=tmp_path / "m", disruptors=kill).replace(
        'quorum = { galera = "majority" }', f'quorum = {{ galera = "majority", {rabbit} }}'
    )
    path.write_text(text)
    want = (
        "quorum guard: galera: majority; rabbitmq: 2 up (faults on node-wide, rabbit*); checked "
        "at each inject against the cluster monitors' states, not in this plan"
    )
    plan = CliRunner().invoke(app, ["faults", "plan", str(path)])
    assert plan.exit_code == 0, plan.output
    assert want in plan.output
    dry = CliRunner().invoke(app, ["campaign", "start", "--dry-run", str(path)])
    assert dry.exit_code == 0, dry.output
    assert want in dry.output
