"""The sweep's guarantees to the campaign around it: a plugin's bad item fails its audit and
never reaches the ledger; a sweep cut short by a bound is not judged; a stop ends the wait
for the sweep before the load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from osha.audit import Audit, AuditConfig, AuditEntry, AuditTally, Budget, Debris, sweep
from osha.campaign.audit import CampaignAudit
from osha.messages import Message, stamp
from osha.messages.audit import AuditEnd, AuditFinding, AuditStart, AuditWhen
from osha.wire import decode, encode
from tests.unit.test_audit import _record_into  # the same stamping recorder


def _offline() -> Any:
    return SimpleNamespace(session=SimpleNamespace(request=lambda *a, **k: None))


GOOD = Debris(kind="server", resource_id="s0", state="ERROR", evidence="e", since_s=1.0,
              name="", osha_made=False)  # fmt: skip
RELEASE = threading.Event()  # the blocking plugin waits on it; every test releases it


class _Yields(Audit[AuditConfig]):
    """Yields one good item, then what ``BAD[self.config.cloud]`` says."""

    def connect(self) -> Any:
        return _offline()

    def findings(self, conn: Any, budget: Budget) -> Iterator[Any]:
        yield GOOD
        if self.config.cloud == "block":
            RELEASE.wait(60.0)
            return
        yield BAD[self.config.cloud]


def _debris(**fields: Any) -> Debris:
    """A Debris with some fields of the wrong kind (what a buggy plugin might yield)."""
    base: dict[str, Any] = {"kind": "server", "resource_id": "s1", "state": "ERROR",
                            "evidence": "e", "since_s": None, "name": "", "osha_made": False}
    return Debris(**{**base, **fields})


BAD: dict[str, Any] = {
    "str-time": _debris(since_s="yesterday"),
    "nan-time": _debris(since_s=float("nan")),
    "not-debris": {"kind": "server", "resource_id": "s1"},
    "int-id": _debris(resource_id=7),
}


class _Entry(AuditEntry):
    def build(self) -> Audit[Any]:
        return _Yields(self.config)


@pytest.mark.parametrize("bad", sorted(BAD))
def test_a_bad_item_fails_its_audit_and_never_reaches_the_ledger(bad: str) -> None:
    out: list[Message] = []
    (run,) = sweep([_Entry("a", "yields", AuditConfig(cloud=bad))], AuditWhen.AFTER,
                   _record_into(out))  # fmt: skip
    assert not run.ok
    assert "bad Debris" in run.error or "not a Debris" in run.error
    assert [d.resource_id for d in run.found] == ["s0"]  # what it found before is kept
    for msg in out:
        assert decode(encode(msg)) == msg  # every record replays
    (end,) = [m for m in out if isinstance(m, AuditEnd)]
    assert not end.ok
    assert end.error == run.error


def test_an_int_time_is_taken_as_a_float() -> None:
    from osha.audit._sweep import _checked

    item = Debris(kind="server", resource_id="s", state="ERROR", evidence="e", since_s=5,
                  name="", osha_made=False)  # fmt: skip
    assert type(_checked(item, "p").since_s) is float


def _tally(end: AuditEnd) -> AuditTally:
    tally = AuditTally()
    item = Debris(kind="server", resource_id="s", state="ERROR", evidence="e", since_s=None,
                  name="", osha_made=False)  # fmt: skip
    for when in (AuditWhen.BEFORE, AuditWhen.AFTER):
        tally.feed(stamp(AuditStart, "campaign", 1, audit="servers", plugin="servers",
                         when=when, timeout_s=60.0))  # fmt: skip
    tally.feed(stamp(AuditEnd, "campaign", 2, audit="servers", when=AuditWhen.BEFORE, ok=True,
                     findings=0, elapsed_s=1.0))  # fmt: skip
    tally.feed(stamp(AuditFinding, "campaign", 3, audit="servers", when=AuditWhen.AFTER,
                     item=item))  # fmt: skip
    tally.feed(end)
    return tally


def test_a_sweep_after_cut_short_by_a_bound_is_not_judged() -> None:
    # its one new item is a floor: max_new_debris = 1 must not pass on it
    cut = stamp(AuditEnd, "campaign", 4, audit="servers", when=AuditWhen.AFTER, ok=True,
                findings=1, elapsed_s=60.0, truncated=True, error="reached timeout_s")  # fmt: skip
    (outcome,) = _tally(cut).outcomes()
    assert outcome.new_count is None
    whole = stamp(AuditEnd, "campaign", 4, audit="servers", when=AuditWhen.AFTER, ok=True,
                  findings=1, elapsed_s=1.0)  # fmt: skip
    (outcome,) = _tally(whole).outcomes()
    assert outcome.new_count == 1


def test_a_stop_ends_the_wait_for_the_sweep_before_the_load() -> None:
    out: list[Message] = []
    stop = threading.Event()
    audit = CampaignAudit([_Entry("slow", "yields", AuditConfig(cloud="block", timeout_s=60.0))],
                          _record_into(out), lambda _note: None, stopped=stop.is_set)  # fmt: skip
    threading.Timer(0.3, stop.set).start()
    began_s = time.monotonic()
    try:
        audit.before()
    finally:
        RELEASE.set()
    took_s = time.monotonic() - began_s
    assert took_s < 10.0  # not the audit's 60 s + the 30 s margin
    (end,) = [m for m in out if isinstance(m, AuditEnd)]
    assert not end.ok
    assert end.error == "not waited for: the campaign was stopped"
    assert end.findings == 1  # what it had found is recorded


def test_a_cloud_that_fails_mid_audit_is_a_recorded_clear_error() -> None:
    # the cloud answers the compute services, then the server listing breaks off
    from keystoneauth1.exceptions import ConnectFailure

    from actors.audits.servers import ServersAudit, ServersAuditConfig

    def get(path: str, microversion: str | None = None) -> Any:
        raise ConnectFailure("Unable to establish connection to http://ctl-1:8774/v2.1/servers")

    class Broken(ServersAudit):
        def connect(self) -> Any:
            conn = _offline()
            conn.compute = SimpleNamespace(services=lambda **q: iter(()), get=get)
            return conn

    class Entry(AuditEntry):
        def build(self) -> Audit[Any]:
            return Broken(self.config)

    out: list[Message] = []
    (run,) = sweep([Entry("servers", "servers", ServersAuditConfig(cloud="lab"))],
                   AuditWhen.AFTER, _record_into(out))  # fmt: skip
    assert not run.ok
    assert run.error.startswith("cannot list servers: ConnectFailure: Unable to establish")
    (end,) = [m for m in out if isinstance(m, AuditEnd)]
    assert (end.ok, end.error) == (False, run.error)
    assert [decode(encode(m)) for m in out] == out  # the ledger has it, whole
    tally = AuditTally()
    for m in out:
        tally.feed(m)
    (outcome,) = tally.outcomes()
    assert outcome.new_count is None  # max_new_debris is not judged on it: not a pass
