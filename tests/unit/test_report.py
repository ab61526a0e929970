"""Renderers: terminal, JSON (schema osha.report/1), JUnit, comparison, and the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osha.analysis import SloSpec, analyze, compare
from osha.report import (
    SCHEMA,
    comparison_to_dict,
    dumps,
    render_comparison,
    render_summary,
    to_dict,
    to_junit,
)
from osha.report.html import render_html
from osha.testing import SyntheticLedger


def _run(path: Path, down_to: float = 112.5, slo: dict[str, object] | None = None) -> Path:
    led = SyntheticLedger(path, profile={"slo": slo or {"max_downtime_s": {"*": 20}}})
    led.target("hs", "nova-api@ctl-1", end_s=300.0, down=[(100.0, down_to)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    led.runner("boot", end_s=300.0, errors=[(100.0, 113.0)], degraded=[(120.0, 150.0, 3.0)])
    return led.write(stop_s=301.0)


def test_terminal_summary(tmp_path: Path) -> None:
    text = render_summary(analyze(_run(tmp_path / "a.osha")))
    assert "kill nova-api@ctl-1" in text
    assert "12.500 ± 0.500 s" in text
    assert "verdict: PASS: 3/3 SLOs met (exit 0)" in text  # "*" matches the runner too


def test_json_is_versioned_and_complete(tmp_path: Path) -> None:
    data = json.loads(dumps(to_dict(analyze(_run(tmp_path / "a.osha")))))
    assert data["schema"] == SCHEMA == "osha.report/1"
    assert "performance-docs" in data["methodology"]
    assert list(data) == ["schema", "methodology", "run", "options", "slo", "verdict", "faults",
                          "targets", "runners", "actors", "soak"]  # fmt: skip
    assert data["soak"] is None  # not a soak
    fault = data["faults"][0]
    assert fault["label"] == "kill nova-api@ctl-1"
    assert fault["detection_s"] == pytest.approx(0.1)
    assert fault["targets"][0]["downtime_s"] == pytest.approx(12.5)
    target = data["targets"][0]
    assert target["episodes"][0]["bound_s"] == pytest.approx(0.5)
    runner = data["runners"][0]
    assert runner["baseline"]["count"] == 89
    assert runner["degraded"][0]["length_s"] == pytest.approx(30.0)
    assert data["verdict"]["exit_code"] == 0


def test_junit_has_one_case_per_slo(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path / "a.osha"), slo=SloSpec(max_downtime_s={"*@*": 5}))
    root = ET.fromstring(to_junit(a))  # noqa: S314 - our own output, not untrusted data
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "ledger-integrity",
        "max_downtime_s[nova-api@ctl-1 (by *@*)]",
        "require_reverted",
    ]
    assert cases[0].find("failure") is None  # an intact ledger
    assert cases[1].find("failure") is not None
    assert cases[2].find("failure") is None
    assert root.get("failures") == "1"


def test_compare_two_ledgers(tmp_path: Path) -> None:
    a = analyze(_run(tmp_path / "a.osha"))
    b = analyze(_run(tmp_path / "b.osha", down_to=105.0))
    c = compare(a, b)
    row = next(r for r in c.rows if r.section == "targets" and r.metric == "downtime")
    assert row.a == pytest.approx(12.5)
    assert row.b == pytest.approx(5.0)
    assert row.delta == pytest.approx(-7.5)
    assert row.change == "better"
    assert "B is" in render_comparison(c)
    assert comparison_to_dict(c)["schema"] == "osha.compare/1"


def _cli(*args: str) -> tuple[int, str]:
    import typer

    from osha.cli.report import register

    app = typer.Typer()
    register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps "report" a sub-command
        """Nothing."""

    result = CliRunner().invoke(app, ["report", *args])
    return result.exit_code, result.output


def test_cli_outputs_and_exit_codes(tmp_path: Path) -> None:
    run = _run(tmp_path / "a.osha")
    code, out = _cli(str(run), "--json", str(tmp_path / "r.json"), "--junit",
                     str(tmp_path / "r.xml"))  # fmt: skip
    assert code == 0, out
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == SCHEMA
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")
    code, out = _cli(str(run), "--slo", "max_downtime_s.nova-api@ctl-1=5", "-q")
    assert code == 1
    assert "FAIL" in out
    slo_file = tmp_path / "slo.toml"
    slo_file.write_text("[slo]\nmax_recovery_s = 1\n")
    code, out = _cli(str(run), "--slo", str(slo_file), "--json", "-")
    assert code == 1
    assert json.loads(out)["verdict"]["exit_code"] == 1
    code, out = _cli(str(run), str(_run(tmp_path / "b.osha", down_to=105.0)))
    assert code == 0
    assert "better" in out


def test_cli_bad_input_is_exit_2(tmp_path: Path) -> None:
    from osha.errors import OshaError

    run = _run(tmp_path / "a.osha")
    for args in ([str(run), "--slo", "bogus=1"], [str(tmp_path / "nothing")]):
        import typer

        from osha.cli.report import report

        app = typer.Typer()
        app.command()(report)
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, OshaError), result.output
        assert result.exception.exit_code == 2
        assert result.exception.hint


def _band_x(svg: str, gid: str) -> tuple[float, float]:
    """The x extent (SVG user units) of the path inside the group ``gid`` of an SVG."""
    import re

    group = svg[svg.index(f'id="{gid}"') :]
    path = re.search(r'<path d="([^"]+)"', group)
    assert path is not None, gid
    xs = [float(x) for x, _y in re.findall(r"(-?[\d.]+) (-?[\d.]+)", path.group(1))]
    return min(xs), max(xs)


def test_vip_moves_are_drawn_on_the_timeline_where_they_happened(tmp_path: Path) -> None:
    """Each move is a band from the old holder's last sighting to the new one's first, in the
    timeline's run seconds: a later move is drawn further right, a longer one wider."""
    from osha.messages import VipMoved
    from osha.report._plots import timeline_svg

    led = SyntheticLedger(tmp_path / "v.osha")
    led.target("vip", "vip:internal", end_s=100.0)
    for at, last, first, old, new in ((21.0, 19.0, 20.0, "ctl-1", "ctl-2"),
                                      (72.0, 60.0, 70.0, "ctl-2", "ctl-3")):  # fmt: skip
        led.add(at, "vip", VipMoved, target="vip:internal", address="10.231.0.10",
                from_node=old, to_node=new, last_seen_mono_s=led.mono(last),
                first_seen_mono_s=led.mono(first))  # fmt: skip
    svg = timeline_svg(analyze(led.write(stop_s=100.0)))
    for label in ("VIP 10.231.0.10 ctl-1 → ctl-2", "VIP 10.231.0.10 ctl-2 → ctl-3"):
        assert label in svg, label
    (a0, a1), (b0, b1) = _band_x(svg, "vip-move-0"), _band_x(svg, "vip-move-1")
    assert a1 < b0  # 20 s < 60 s
    assert (b1 - b0) == pytest.approx(10 * (a1 - a0), rel=0.05)  # 10 s wide vs 1 s
    assert (b0 - a0) / (b1 - b0) == pytest.approx(41 / 10, rel=0.05)
    led2 = SyntheticLedger(tmp_path / "none.osha")
    led2.target("vip", "vip:internal", end_s=100.0)
    assert "vip-move" not in timeline_svg(analyze(led2.write(stop_s=100.0)))


def test_vip_moves_are_listed_with_both_observations(tmp_path: Path) -> None:
    """A ``monitor.vip_moved`` record (the ``vip`` monitor's) is in the terminal, HTML and
    JSON reports, in run seconds: the old holder last seen with the address, the new one
    first seen with it."""
    from osha.messages import VipMoved

    led = SyntheticLedger(tmp_path / "v.osha")
    led.target("vip", "vip:internal", end_s=60.0, down=[(30.0, 31.2)])
    led.add(31.3, "vip", VipMoved, target="vip:internal", address="10.231.0.10",
            from_node="ctl-1", to_node="ctl-2", last_seen_mono_s=led.mono(29.9),
            first_seen_mono_s=led.mono(31.2))  # fmt: skip
    analysis = analyze(led.write(stop_s=61.0))
    (move,) = analysis.vip_moves
    assert (move.from_node, move.to_node, move.monitor) == ("ctl-1", "ctl-2", "vip")
    assert move.last_seen_s == pytest.approx(29.9)
    assert move.within_s == pytest.approx(1.3)
    text = render_summary(analysis)
    assert "VIP moves:" in text
    assert "+29.900 s" in text
    assert "1.300 s" in text
    html = render_html(analysis)
    assert 'id="vip-moves"' in html
    timeline = html[html.index('<figure id="timeline">') : html.index("</figure>")]
    assert 'id="vip-move-0"' in timeline
    assert 'id="vip-move-line-0"' in timeline
    assert "VIP 10.231.0.10 ctl-1 → ctl-2" in timeline
    (item,) = json.loads(dumps(to_dict(analysis)))["vip_moves"]
    assert (item["to_node"], round(item["within_s"], 3)) == ("ctl-2", 1.3)
