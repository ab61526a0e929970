"""Nagios plugin output and the nagios monitor, with real plugin output as fixtures and real
subprocesses (small nagios-style scripts), no network."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from actors.monitors._nagios_output import PerfDatum, parse_output, parse_perfdata
from actors.monitors.nagios import NagiosConfig, NagiosMonitor, run_local
from osha import schema
from osha.errors import PluginError
from osha.messages.monitor import Metric, Sample, StateChange
from osha.testing import FakeContext, wait_for

# Captured from monitoring-plugins 2.3.3 (Debian 12) on this kind of machine.
REAL = {
    "check_tcp ok": (
        0,
        "TCP OK - 0.000 second response time on 127.0.0.1 port 18080"
        "|time=0.000282s;;;0.000000;10.000000\n",
    ),
    "check_tcp refused": (2, "connect to address 127.0.0.1 and port 18081: Connection refused\n"),
    "check_http ok": (
        0,
        "HTTP OK: HTTP/1.0 200 OK - 3095 bytes in 0.001 second response time |"
        "time=0.001488s;;;0.000000;10.000000 size=3095B;;;0;\n",
    ),
    "check_procs": (0, "PROCS OK: 1 process with command name 'python3' | procs=1;1:100;;0;\n"),
    "check_disk": (
        0,
        "DISK OK - free space: / 79428MiB (76% inode=97%);| "
        "/=25656557568B;243497277849;257024904396;0;270552530944\n",
    ),
    "check_load usage": (
        3,
        "check_load: Could not parse arguments\nUsage:\ncheck_load [-r] -w WLOAD1\n",
    ),
}


def test_real_check_tcp_output() -> None:
    out = parse_output(*REAL["check_tcp ok"])
    assert out.status_name == "OK"
    assert out.text == "TCP OK - 0.000 second response time on 127.0.0.1 port 18080"
    assert out.perfdata == (PerfDatum("time", 0.000282, "s", "", "", 0.0, 10.0),)
    refused = parse_output(*REAL["check_tcp refused"])
    assert (refused.status_name, refused.perfdata) == ("CRITICAL", ())
    assert "Connection refused" in refused.text


def test_real_outputs_with_several_items_and_ranges() -> None:
    http = parse_output(*REAL["check_http ok"])
    assert [(p.label, p.value, p.unit) for p in http.perfdata] == [
        ("time", 0.001488, "s"),
        ("size", 3095.0, "B"),
    ]
    procs = parse_output(*REAL["check_procs"])
    assert procs.perfdata[0].warn == "1:100"
    disk = parse_output(*REAL["check_disk"])
    assert disk.perfdata[0].label == "/"
    assert disk.perfdata[0].max == 270552530944.0
    usage = parse_output(*REAL["check_load usage"])
    assert (usage.status_name, usage.text, usage.perfdata) == (
        "UNKNOWN",
        "check_load: Could not parse arguments",
        (),
    )
    assert "Usage" in usage.long_text


def test_multiline_output_with_perfdata_in_the_long_text() -> None:
    # The example of the Nagios plugin guidelines.
    text = (
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414 \n/var/log=818MB;970;975;0;980\n"
    )
    out = parse_output(0, text)
    assert out.text == "DISK OK - free space: / 3326 MB (56%);"
    assert [p.label for p in out.perfdata] == ["/", "/boot", "/home", "/var/log"]
    assert out.long_text.startswith("/ 15272 MB")
    assert "/var/log 819 MB (84%);" in out.long_text


def test_perfdata_edge_cases() -> None:
    items, errors = parse_perfdata(
        "'in use'=5%;80;90 'it''s'=U x=1,5ms;;;; c=12c bad novalue= 'q'=3"
    )
    assert [(p.label, p.value, p.unit) for p in items] == [
        ("in use", 5.0, "%"),
        ("it's", None, ""),
        ("x", 1.5, "ms"),
        ("c", 12.0, "c"),
        ("q", 3.0, ""),
    ]
    assert items[0].warn == "80"
    assert items[0].crit == "90"
    assert items[0].min is None
    assert errors == ["bad", "novalue="]


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _config(**data: Any) -> NagiosConfig:
    cfg, problems = schema.build(NagiosConfig, data, file="t")
    assert not problems, problems
    assert cfg is not None
    return cfg


def test_run_local_kills_a_plugin_that_hangs(tmp_path: Path) -> None:
    hang = _script(tmp_path, "check_hang", "sleep 30 & sleep 30")
    start = time.monotonic()
    status, _, timed_out = run_local((hang,), 0.3)
    assert timed_out
    assert status == -1
    assert time.monotonic() - start < 5


def test_monitor_states_metrics_and_timeout(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flip = _script(
        tmp_path,
        "check_flip",
        f'if [ -e {flag} ]; then echo "CRITICAL - gone"; exit 2; fi\n'
        'echo "OK - fine | t=0.5s;1;2;0; n=3"; exit 0',
    )
    warn = _script(tmp_path, "check_warn", 'echo "WARNING - meh"; exit 1')
    odd = _script(tmp_path, "check_odd", 'echo "weird"; exit 7')
    hang = _script(tmp_path, "check_hang", "sleep 30")
    cfg = _config(
        interval_s=0.1,
        report_interval_s=0.0,
        checks=[
            {"target": "flip", "command": [flip]},
            {"target": "warn", "command": [warn]},
            {"target": "odd", "command": [odd]},
            {"target": "hang", "command": [hang], "timeout_s": 0.2},
        ],
    )
    ctx = FakeContext()
    mon = NagiosMonitor(cfg, ctx)
    mon.setup()
    try:
        mon.poll()
        wait_for(lambda: mon.tracker.state("hang") == "down", timeout_s=5, what="timeout")
        assert mon.tracker.state("flip") == "up"
        assert mon.tracker.state("warn") == "up"
        assert mon.tracker.state("odd") == "unknown"
        flag.write_text("x")
        wait_for(
            lambda: (mon.poll(), mon.tracker.state("flip") == "down")[1],
            timeout_s=5,
            what="CRITICAL",
        )
        flag.unlink()
        wait_for(
            lambda: (mon.poll(), mon.tracker.state("flip") == "up")[1], timeout_s=5, what="OK again"
        )
    finally:
        mon.teardown()
    flips = [(c.state, c.evidence) for c in ctx.of(StateChange) if c.target == "flip"]
    assert flips == [
        ("up", "OK: OK - fine"),
        ("down", "CRITICAL: CRITICAL - gone"),
        ("up", "OK: OK - fine"),
    ]
    hang_change = next(c for c in ctx.of(StateChange) if c.target == "hang")
    assert "timed out" in hang_change.evidence
    metrics = {(m.target, m.name): m for m in ctx.of(Metric)}
    assert metrics[("flip", "t")].unit == "s"
    assert metrics[("flip", "t")].last == 0.5
    assert metrics[("flip", "n")].last == 3.0
    assert any(s.target == "flip" and s.failures >= 1 for s in ctx.of(Sample))


def test_warning_can_count_as_down(tmp_path: Path) -> None:
    warn = _script(tmp_path, "check_warn", 'echo "WARNING - meh"; exit 1')
    ctx = FakeContext()
    mon = NagiosMonitor(
        _config(warning_is_down=True, checks=[{"target": "w", "command": [warn]}]), ctx
    )
    findings = mon.check()
    assert [(f.target, f.ok) for f in findings] == [("w", False)]


def test_missing_plugin_binary_is_a_clear_finding(tmp_path: Path) -> None:
    cfg = _config(
        plugin_dirs=[str(tmp_path)], checks=[{"target": "x", "command": ["check_nothing_here"]}]
    )
    mon = NagiosMonitor(cfg, FakeContext())
    (finding,) = mon.check()
    assert not finding.ok
    assert "check_nothing_here" in finding.message
    assert "not found" in finding.message
    assert "monitoring-plugins" in finding.hint
    with pytest.raises(PluginError, match="not found"):
        mon.setup()


def test_bare_names_are_found_in_plugin_dirs(tmp_path: Path) -> None:
    _script(tmp_path, "check_here", 'echo "OK - here"; exit 0')
    cfg = _config(plugin_dirs=[str(tmp_path)], checks=[{"target": "h", "command": ["check_here"]}])
    assert [f.ok for f in NagiosMonitor(cfg, FakeContext()).check()] == [True]


def test_remote_checks_need_known_nodes() -> None:
    cfg = _config(
        hosts={"n1": {"address": "127.0.0.1"}},
        ssh={"private_key": "/nonexistent/key"},
        checks=[{"target": "p", "node": "n2", "command": ["check_procs"]}],
    )
    findings = NagiosMonitor(cfg, FakeContext()).check()
    assert any("unknown node 'n2'" in f.message for f in findings)
