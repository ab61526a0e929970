"""The audit's core: the comparison with the audit before (new, pre-existing, unknown,
healed), the attribution to a fault's window, the budget's bounds, the read-only session,
the sweep's bookkeeping, and ``max_new_debris`` judged from a ledger."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session

from osha.analysis import analyze
from osha.audit import (
    Audit,
    AuditConfig,
    AuditEntry,
    AuditTally,
    AuditWriteRefused,
    Budget,
    Debris,
    FaultWindow,
    Origin,
    attribute,
    compare,
    guard,
    sweep,
)
from osha.messages import Message, stamp
from osha.messages.audit import AuditEnd, AuditFinding, AuditStart, AuditWhen
from osha.report.json import to_dict
from osha.report.terminal import render_summary
from osha.testing import SyntheticLedger

CLOSED_PORT = "http://127.0.0.1:9"  # loopback discard port: nothing listens, refused at once


def _found(
    resource_id: str, when: AuditWhen = AuditWhen.AFTER, *, wall_s: float = 1000.0,
    since_s: float | None = None, audit: str = "servers", state: str = "ERROR",
) -> AuditFinding:  # fmt: skip
    item = Debris(kind="server", resource_id=resource_id, state=state,
                  evidence="status ERROR", since_s=since_s, name="", osha_made=False)  # fmt: skip
    return AuditFinding("campaign", 1, 0.0, wall_s, audit=audit, when=when, item=item)


# -- comparison and attribution ---------------------------------------------------------------


def test_compare_tells_new_from_pre_existing_and_healed() -> None:
    before = [_found("a", AuditWhen.BEFORE, wall_s=10.0), _found("gone", AuditWhen.BEFORE)]
    after = [_found("a", state="stuck:BUILD"), _found("b"), _found("b")]  # b twice: 2 pages
    c = compare(before, after)
    origins = {j.finding.item.resource_id: j.origin for j in c.after}
    assert origins == {"a": Origin.PRE_EXISTING, "b": Origin.NEW}
    assert [j.finding.item.resource_id for j in c.new] == ["b"]
    (pre,) = [j for j in c.after if j.finding.item.resource_id == "a"]
    assert pre.first_seen_s == 10.0  # first seen by the audit before, in another state
    assert [f.item.resource_id for f in c.healed] == ["gone"]


def test_without_a_complete_audit_before_everything_counts_as_new() -> None:
    c = compare(None, [_found("a"), _found("b")])
    assert {j.origin for j in c.after} == {Origin.UNKNOWN}
    assert len(c.new) == 2
    assert c.healed == ()


def test_attribution_to_the_fault_window_latest_first() -> None:
    windows = [FaultWindow("kill a", 100.0, 110.0), FaultWindow("kill b", 105.0, None)]
    assert attribute(99.0, windows, grace_s=5.0) == ""  # before any fault
    assert attribute(102.0, windows, grace_s=5.0) == "kill a"
    assert attribute(107.0, windows, grace_s=5.0) == "kill b"  # both: the later one
    assert attribute(114.0, [windows[0]], grace_s=5.0) == "kill a"  # within the grace
    assert attribute(116.0, [windows[0]], grace_s=5.0) == ""
    assert attribute(10_000.0, windows, grace_s=0.0) == "kill b"  # never reverted: open
    assert attribute(None, windows, grace_s=5.0) == ""  # the cloud gave no time
    c = compare([], [_found("x", since_s=102.0)], windows=windows, grace_s=5.0)
    assert c.after[0].fault == "kill a"


def test_pre_existing_items_are_never_attributed() -> None:
    windows = [FaultWindow("kill a", 100.0, 110.0)]
    c = compare([_found("x", AuditWhen.BEFORE)], [_found("x", since_s=105.0)], windows=windows)
    assert c.after[0].fault == ""


# -- the budget ---------------------------------------------------------------------------------


def test_budget_stops_at_max_items_and_at_the_deadline() -> None:
    by_count = Budget(deadline_s=float("inf"), items_left=3)
    assert [by_count.take() for _ in range(5)] == [True, True, True, False, False]
    assert by_count.truncated == "reached max_items"
    now = iter([0.0, 1.0, 2.0, 3.0])
    by_time = Budget(deadline_s=2.0, items_left=100, clock=lambda: next(now))
    assert [by_time.take() for _ in range(4)] == [True, True, False, False]
    assert by_time.truncated == "reached timeout_s"


# -- read-only ----------------------------------------------------------------------------------


def test_guarded_session_refuses_every_write_before_sending() -> None:
    session = ks_session.Session()
    calls = guard(session)
    api = ks_adapter.Adapter(session=session, endpoint_override=CLOSED_PORT)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(AuditWriteRefused, match=f"tried {method}"):
            api.request("/servers/x", method)
    with pytest.raises(AuditWriteRefused):
        session.delete(f"{CLOSED_PORT}/servers/x")  # the session's own helpers too
    assert [m for m, _ in calls.refused] == ["POST", "PUT", "PATCH", "DELETE", "DELETE"]
    assert calls.sent == []  # nothing went out
    with pytest.raises(ks_exc.ConnectFailure):  # a read goes on, to the (closed) port
        api.get("/servers")
    assert [m for m, _ in calls.sent] == ["GET"]
    assert len(calls.writes) == 5


def test_a_keystone_login_is_not_a_write() -> None:
    """keystoneauth sends its login (POST .../v3/auth/tokens) through the guarded session:
    refusing it made every audit fail on the lab before its first read."""
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=f"{CLOSED_PORT}/v3", username="u", password="p",  # noqa: S106
                       project_name="p", user_domain_id="default",
                       project_domain_id="default")  # fmt: skip
    session = ks_session.Session(auth=auth)
    calls = guard(session)
    with pytest.raises(ks_exc.ConnectFailure):  # the login went out, to the (closed) port
        session.get(f"{CLOSED_PORT}/compute/servers", authenticated=True)
    assert calls.sent == [  # the read, then the login it needed first
        ("GET", f"{CLOSED_PORT}/compute/servers"),
        ("POST", f"{CLOSED_PORT}/v3/auth/tokens"),
    ]
    assert calls.writes == []
    with pytest.raises(AuditWriteRefused):  # any other POST to keystone is still a write
        session.request(f"{CLOSED_PORT}/v3/users", "POST", authenticated=False)


def test_openstacksdk_proxies_send_through_the_guarded_session() -> None:
    import openstack.connection
    from keystoneauth1 import token_endpoint

    session = ks_session.Session(auth=token_endpoint.Token(f"{CLOSED_PORT}/compute", "t"))
    conn = openstack.connection.Connection(
        session=session, compute_endpoint_override=f"{CLOSED_PORT}/compute"
    )
    calls = guard(conn.session)
    with pytest.raises(Exception):  # noqa: B017, PT011 - only the calls it made matter here
        list(conn.compute.servers())
    assert calls.sent
    assert all(m == "GET" for m, _ in calls.sent)
    assert calls.writes == []


class _Planted(Audit[AuditConfig]):
    """Test double of a plugin: yields two items, then (if asked) tries a write."""

    write = False

    def connect(self) -> Any:
        return ks_adapter.Adapter(session=ks_session.Session(), endpoint_override=CLOSED_PORT)

    def findings(self, conn: Any, budget: Budget) -> Iterator[Debris]:
        for n in range(2):
            if budget.take():
                yield Debris(kind="server", resource_id=f"s{n}", state="ERROR", evidence="e",
                             since_s=None, name="", osha_made=False)  # fmt: skip
        if self.write:
            conn.session.request(f"{CLOSED_PORT}/servers/s0", "DELETE")


class _Writer(_Planted):
    write = True


class _Entry(AuditEntry):
    def build(self) -> Audit[Any]:
        return (_Writer if self.plugin == "writer" else _Planted)(self.config)


def _record_into(out: list[Message]) -> Any:
    seq = itertools.count(1)

    def record(cls: type[Message], /, **fields: Any) -> Message:
        msg = stamp(cls, "campaign", next(seq), **fields)
        out.append(msg)
        return msg

    return record


def test_sweep_records_each_audit_and_a_write_fails_it_unsent() -> None:
    out: list[Message] = []
    entries = [_Entry("good", "planted", AuditConfig()), _Entry("bad", "writer", AuditConfig()),
               _Entry("short", "planted", AuditConfig(max_items=1))]  # fmt: skip
    runs = sweep(entries, AuditWhen.AFTER, _record_into(out))
    good, bad, short = runs
    assert good.ok
    assert [d.resource_id for d in good.found] == ["s0", "s1"]
    assert not bad.ok
    assert "read-only audit tried DELETE" in bad.error
    assert bad.calls is not None
    assert bad.calls.writes == [("DELETE", f"{CLOSED_PORT}/servers/s0")]
    assert bad.calls.sent == []
    assert short.ok
    assert short.truncated == "reached max_items"
    assert len(short.found) == 1
    tags = [(m.TAG, getattr(m, "audit", "")) for m in out]
    assert tags[:3] == [("audit.start", "good"), ("audit.start", "bad"), ("audit.start", "short")]
    ends = {m.audit: m for m in out if isinstance(m, AuditEnd)}
    assert ends["good"].ok
    assert (ends["good"].findings, ends["good"].items_read) == (2, 2)
    assert not ends["bad"].ok
    assert "DELETE" in ends["bad"].error
    assert ends["short"].truncated
    tally = AuditTally()
    for m in out:
        tally.feed(m)
    by_id = {o.audit: o for o in tally.outcomes()}
    assert by_id["good"].new_count == 2  # no audit before: of unknown origin, judged as new
    assert by_id["bad"].new_count is None  # the sweep failed: no figure


# -- the verdict, from a ledger -------------------------------------------------------------


def _ledger(tmp_path: Path, *, audited: bool = True, slo: dict[str, Any] | None = None) -> Path:
    led = SyntheticLedger(tmp_path / "run.osha", profile={"slo": slo or {}})
    led.target("api", "endpoint:compute", end_s=300.0, down=[(100.0, 112.5)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-conductor")
    if audited:
        w0 = led.wall0_s
        after = [("old", None), ("s-err", w0 + 105.0), ("s-late", w0 + 250.0)]
        for when, t, items in (
            (AuditWhen.BEFORE, 5.0, [("old", None)]),
            (AuditWhen.AFTER, 290.0, after),
        ):
            led.add(t, "campaign", AuditStart, audit="servers", plugin="servers", when=when,
                    timeout_s=60.0)  # fmt: skip
            for rid, since in items:
                item = Debris(kind="server", resource_id=rid, state="ERROR",
                              evidence="status ERROR", since_s=since, name="",
                              osha_made=False)  # fmt: skip
                led.add(t + 0.1, "campaign", AuditFinding, audit="servers", when=when, item=item)
            led.add(t + 0.2, "campaign", AuditEnd, audit="servers", when=when, ok=True,
                    findings=len(items), elapsed_s=0.2)  # fmt: skip
    return led.write(stop_s=301.0)


def test_max_new_debris_fails_on_new_items_tied_to_the_fault(tmp_path: Path) -> None:
    a = analyze(_ledger(tmp_path, slo={"max_new_debris": {"servers": 1}}))
    (result,) = [r for r in a.verdict.results if r.slo == "max_new_debris"]
    assert result.name == "max_new_debris[servers]"
    assert result.value == 2.0
    assert not result.passed
    assert result.detail == (
        "2 new (1 tied to kill nova-conductor@ctl-1 #f1), 1 pre-existing, 0 healed"
    )
    (outcome,) = a.audits
    judged = {j.finding.item.resource_id: j for j in outcome.compared.after}  # type: ignore[union-attr]
    assert judged["old"].origin is Origin.PRE_EXISTING
    assert judged["s-err"].fault.endswith("#f1")  # entered ERROR inside the fault's window
    assert judged["s-late"].fault == ""  # long after the revert and its grace
    text = render_summary(a)
    assert "audits (before the campaign, after its teardown):" in text
    assert "new: server s-err" in text
    data = to_dict(a)
    assert data["audits"][0]["new_count"] == 2
    json.dumps(data)
    assert analyze(tmp_path / "run.osha").verdict == a.verdict  # replays the same


def test_max_new_debris_passes_within_the_limit_and_patterns_match(tmp_path: Path) -> None:
    a = analyze(_ledger(tmp_path, slo={"max_new_debris": {"*": 2}}))
    (result,) = [r for r in a.verdict.results if r.slo == "max_new_debris"]
    assert result.passed
    assert result.subject == "servers"


def test_a_run_without_audits_reads_as_before(tmp_path: Path) -> None:
    a = analyze(_ledger(tmp_path, audited=False))
    assert a.audits == ()
    assert "audits" not in to_dict(a)
    assert "audits (" not in render_summary(a)
    b = analyze(_ledger(tmp_path / "b", audited=False, slo={"max_new_debris": {"servers": 0}}))
    (result,) = [r for r in b.verdict.results if r.slo == "max_new_debris"]
    assert not result.passed
    assert "matches no [[audits]]" in result.detail


def test_max_new_debris_must_not_be_negative() -> None:
    from osha.analysis import SloSpec
    from osha.schema import build

    _, problems = build(SloSpec, {"max_new_debris": {"servers": -1}}, file="p.toml", key="slo")
    assert any("0 or more" in p.problem for p in problems)


def test_a_non_finite_time_in_a_finding_is_damage_and_none_is_not() -> None:
    # ledger.damage checks optional floats of a nested record (``item.since_s``) by path
    from osha.errors import WireError
    from osha.ledger.damage import require_finite

    ok = _found("a", since_s=None)
    assert require_finite(ok) is ok
    assert require_finite(_found("a", since_s=5.0)).item.since_s == 5.0
    with pytest.raises(WireError, match=r"item\.since_s is nan"):
        require_finite(_found("a", since_s=float("nan")))


def test_a_resumed_run_does_not_sweep_before_again() -> None:
    # a second sweep "before" in a resumed run would make what the run broke pre-existing
    from osha.campaign.audit import CampaignAudit

    out: list[Message] = []
    audit = CampaignAudit([_Entry("good", "planted", AuditConfig())], _record_into(out),
                          lambda _line: None)  # fmt: skip
    audit.before(resumed=True)
    assert out == []
    audit.before()
    audit.after()
    assert [(m.TAG, m.when) for m in out if isinstance(m, AuditStart)] == [
        ("audit.start", AuditWhen.BEFORE), ("audit.start", AuditWhen.AFTER),
    ]  # fmt: skip


# -- cleanup = true -----------------------------------------------------------------------------


def _planted(**cfg: Any) -> AuditEntry:
    from actors.testing.planted import PlantedAuditConfig

    return AuditEntry("planted", "planted", PlantedAuditConfig(**cfg))


def test_cleanup_removes_only_what_osha_made_only_after_and_records_it() -> None:
    from osha.messages.audit import AuditCleanup

    entry = _planted(cleanup=True, sweeps=(("mine", "other"),), osha_made=("mine",))
    out: list[Message] = []
    (before,) = sweep([entry], AuditWhen.BEFORE, _record_into(out))  # clean=False
    assert before.calls is not None
    assert before.calls.sent == []
    assert before.cleaned == []
    (after,) = sweep([entry], AuditWhen.AFTER, _record_into(out), clean=True)
    assert after.ok, after.error
    assert after.calls is not None
    assert after.calls.sent == [("DELETE", "planted://servers/mine")]  # not "other"
    assert [(d.resource_id, ok) for d, ok, _ in after.cleaned] == [("mine", True)]
    cleanups = [m for m in out if isinstance(m, AuditCleanup)]
    assert [(m.resource_id, m.ok, m.detail) for m in cleanups] == [
        ("mine", True, "deleted (planted)"),
    ]
    (off,) = sweep([_planted(sweeps=(("mine",),), osha_made=("mine",))], AuditWhen.AFTER,
                   _record_into(out), clean=True)  # fmt: skip
    assert off.cleaned == []  # cleanup = false: it only reports
    assert off.calls is not None
    assert off.calls.sent == []


def test_writes_stay_refused_outside_the_cleanup_of_one_item() -> None:
    out: list[Message] = []
    (bad,) = sweep([_Entry("bad", "writer", AuditConfig(cleanup=True))], AuditWhen.AFTER,
                   _record_into(out), clean=True)  # fmt: skip
    assert "read-only audit tried DELETE" in bad.error  # from findings(): refused
    assert bad.calls is not None
    assert bad.calls.sent == []
    session_calls = guard(ks_session.Session())
    with session_calls.writes_allowed():
        assert session_calls.writable
    assert not session_calls.writable


def test_cleanup_on_an_audit_that_cannot_clean_is_a_profile_problem() -> None:
    from osha.audit import audit_entries

    items = [
        {"plugin": "rally", "cleanup": True, "cloud": "lab"},
        {"plugin": "servers", "cleanup": True, "cloud": "lab"},
    ]
    entries, problems = audit_entries(items, file="p.toml")
    assert [e.id for e in entries] == ["servers"]
    assert [(p.key, p.problem) for p in problems] == [
        ("audits[0].cleanup", "the rally audit cannot clean up"),
    ]


def test_the_html_report_has_the_audits_only_when_there_were_audits(tmp_path: Path) -> None:
    from osha.report.html import render_html

    page = render_html(analyze(_ledger(tmp_path / "a", slo={"max_new_debris": {"servers": 0}})))
    assert '<h2 id="audits">Audits</h2>' in page
    assert "new: server s-err" in page
    assert "max_new_debris[servers]" in page  # the SLO row of the verdict
    assert 'id="audits"' not in render_html(analyze(_ledger(tmp_path / "b", audited=False)))
