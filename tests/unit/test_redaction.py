# ruff: noqa: S105 - these tests feed fake secrets to the redactor on purpose
"""Secrets never reach the ledger: keys, free text, and whole messages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from osha.ledger import LedgerReader, LedgerWriter
from osha.ledger.testing import header
from osha.messages import ActorCrashed, ActorStarted
from osha.redaction import REDACTED, is_secret_key, redact_message, redact_text, redact_value


@pytest.mark.parametrize(
    "key",
    ["password", "OS_PASSWORD", "passwd", "secret", "client_secret", "token", "auth_token",
     "api_key", "apiKey", "private_key", "credential", "app_credential_secret", "auth",
     "X-Auth-Token", "ssh_passphrase"],
)  # fmt: skip
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["auth_url", "auth_type", "username", "project_name", "token_ttl", "password_file",
     "secret_name", "interval_s", "keystone", "target", "user_domain_id"],
)  # fmt: skip
def test_not_secret_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_nested_values_are_redacted_and_readable_keys_kept() -> None:
    profile: dict[str, Any] = {
        "clouds": {"lab": {"auth": {"auth_url": "http://k:5000", "username": "admin",
                                    "password": "hunter2"}, "region": "RegionOne"}},
        "ssh": [{"host": "ctl-1", "private_key": "-----BEGIN..."}],
        "token_ttl": 300,
        "verify": True,
        "empty_password": "",
    }  # fmt: skip
    out = redact_value(profile)
    auth = out["clouds"]["lab"]["auth"]
    assert auth == {"auth_url": "http://k:5000", "username": "admin", "password": REDACTED}
    assert out["ssh"][0] == {"host": "ctl-1", "private_key": REDACTED}
    assert out["token_ttl"] == 300
    assert out["verify"] is True
    assert out["empty_password"] == ""
    assert profile["clouds"]["lab"]["auth"]["password"] == "hunter2"  # input untouched


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("401 for request with X-Auth-Token: gAAAAABkXyz123", "gAAAAABkXyz123"),
        ("headers {'X-Auth-Token': 'abc.def'}", "abc.def"),
        ("Authorization: Bearer eyJhbGciOi", "eyJhbGciOi"),
        ("env OS_PASSWORD=s3cr3t OS_USERNAME=admin", "s3cr3t"),
        ("connect failed password=hunter2, retrying", "hunter2"),
        ('{"password": "p@ss word"}', "p@ss word"),
        ("openstack --os-password hunter2 server list", "hunter2"),
        ("GET https://admin:hunter2@keystone:5000/v3", "hunter2"),
        ("client_secret: abcdef", "abcdef"),
    ],
)
def test_free_text(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert REDACTED in out


def test_plain_text_is_untouched() -> None:
    text = "nova-api@ctl-1 down: connection refused (auth_url=http://k:5000/v3)"
    assert redact_text(text) == text


def test_messages_and_the_ledger_header_are_redacted_on_write(tmp_path: object) -> None:
    started = ActorStarted("supervisor", 2, 0.0, time.time(), "m", "ticker", "monitor", 1, 1,
                           {"cloud": {"password": "pw1"}, "interval_s": 1.0})  # fmt: skip
    crashed = ActorCrashed("supervisor", 3, 0.0, time.time(), "m", 1, 1, "exit", 1, None,
                           "Unauthorized: X-Auth-Token: tok123 rejected")  # fmt: skip
    assert redact_message(started).config["cloud"]["password"] == REDACTED
    clean = ActorCrashed("s", 1, 0.0, 0.0, "m", 1, 1, "exit", 1, None, "boom")
    assert redact_message(clean) is clean

    from pathlib import Path

    run = Path(str(tmp_path)) / "r.osha"
    writer = LedgerWriter.create(run, header(profile={"os": {"password": "pw0"}}))
    writer.append(started)
    writer.append_many([crashed])
    writer.close()
    raw = b"".join(p.read_bytes() for p in run.glob("*.seg"))
    for secret in (b"pw0", b"pw1", b"tok123"):
        assert secret not in raw
    assert len(list(LedgerReader(run).messages())) == 3
