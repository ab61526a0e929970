"""``osha audit PROFILE|CLOUD``: one sweep on demand (the ``planted`` audit: no cloud), its
rows and JSON and exit codes; every bad input is one screen, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_bad_input import _osha  # one screen, no traceback: the same check

PROFILE = """\
[[monitors]]
id = "tick"
plugin = "ticker"
"""

PLANTED = """
[[audits]]
plugin = "planted"
sweeps = [{items}]
"""


def _profile(tmp_path: Path, body: str) -> str:
    path = tmp_path / "p.toml"
    path.write_text(body)
    return str(path)


def test_a_sweep_that_finds_something_exits_1_and_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _profile(tmp_path, PROFILE + PLANTED.format(items='["s1", "s2"]'))
    code, out = _osha(capsys, "audit", path)
    assert code == 1, out
    assert "planted: server s1: ERROR" in out
    assert "planted: server s2: ERROR" in out
    code, out = _osha(capsys, "audit", path, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["schema"] == "osha.audit/1"
    (audit,) = data["audits"]
    assert audit["ok"] is True
    assert [i["resource_id"] for i in audit["items"]] == ["s1", "s2"]


def test_a_clean_sweep_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _osha(capsys, "audit", _profile(tmp_path, PROFILE + PLANTED.format(items="[]")))
    assert code == 0, out
    assert "planted" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["audit", "{profile_without}"], "has no [[audits]]"),
        (["audit", "{missing}"], "no such file"),
        (["audit", "{profile_with}", "--audit", "nope"], "--audit 'nope': no such audit here"),
        (["audit", "no-such-cloud", "--clouds-yaml", "{clouds}"],
         "cloud 'no-such-cloud' is not in"),
        (["audit", "lab", "--clouds-yaml", "{missing}"], "does not exist"),
    ],
)
def test_bad_input_is_one_screen_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n")
    without = tmp_path / "without"
    without.mkdir()
    names = {
        "profile_without": _profile(without, PROFILE),
        "profile_with": _profile(tmp_path, PROFILE + PLANTED.format(items="[]")),
        "missing": str(tmp_path / "missing.toml"),
        "clouds": str(clouds),
    }
    code, out = _osha(capsys, *[a.format(**names) for a in argv])
    assert code == 2, out
    assert says in out
    assert out.count("error:") == 1


def test_a_cloud_gets_every_audit_that_reads_a_cloud(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from osha.cli import audit as cli_audit

    seen: list[str] = []

    def check(entries: list[cli_audit.AuditEntry]) -> None:
        seen.extend(e.id for e in entries)
        raise cli_audit.OshaError("stop here: nothing is sent in a unit test", exit_code=2)

    monkeypatch.setattr(cli_audit, "_check_cloud", check)
    code, _ = _osha(capsys, "audit", "lab")
    assert code == 2
    assert seen == ["placement", "ports", "rally", "servers", "services"]  # not "planted"


def test_every_problem_of_the_audits_is_listed_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = PROFILE + (
        '[[audits]]\nplugin = "servers"\nstuck_after = 1\n'  # a typo
        '[[audits]]\nplugin = "servers"\n'  # the same id (the plugin's name) again
        '[[audits]]\nplugin = "bogus"\n'
        '[[audits]]\nplugin = "rally"\ntimeout_s = 0\n'
    )
    code, out = _osha(capsys, "audit", _profile(tmp_path, body))
    assert code == 2, out
    assert "4 problems in the profile" in out
    assert "audits[0].stuck_after: unknown key" in out
    assert "did you mean 'stuck_after_s'?" in out
    assert "audits[1].id: audit id 'servers' is used twice" in out
    assert "audits[2].plugin: unknown audit plugin 'bogus'" in out
    assert "audits[3]: timeout_s = 0.0: must be > 0" in out


def test_a_dry_run_names_the_audits_and_their_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _profile(tmp_path, PROFILE + PLANTED.format(items='["s1"]') + "timeout_s = 20\n")
    code, out = _osha(capsys, "campaign", "start", path, "--dry-run")
    assert code == 0, out
    assert "audits: planted [planted]; swept before the load and after the teardown" in out
    assert "each sweep at most 50 s" in out  # timeout_s + the 30 s margin
    code, out = _osha(capsys, "campaign", "start", _profile(tmp_path, PROFILE), "--dry-run")
    assert code == 0, out
    assert "audits:" not in out  # a profile without audits reads as before


def test_a_sweep_cut_short_with_nothing_found_is_not_a_clean_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ports and placement judge nothing when a bound cut a listing short: "found nothing"
    # then means "could not tell", not "clean"
    from osha.cli import audit as cli_audit

    real = cli_audit.sweep

    def cut_short(*args: object, **kwargs: object) -> list[cli_audit.AuditRun]:
        runs = real(*args, **kwargs)  # type: ignore[arg-type]
        for run in runs:
            run.truncated = "reached max_items"
        return runs

    monkeypatch.setattr(cli_audit, "sweep", cut_short)
    code, out = _osha(capsys, "audit", _profile(tmp_path, PROFILE + PLANTED.format(items="[]")))
    assert code == 1, out
    assert "reached max_items" in out
