"""Redaction of secrets (passwords, tokens, keys) before anything is written to the ledger.

What is redacted
----------------
- **Mapping keys.** In a profile, an actor config or any ``dict`` field, the value of a key that
  names a secret is replaced by ``<redacted>``. A key names a secret when one of its words
  (split on ``_``, ``-``, ``.`` and camelCase) is ``password``, ``passwd``, ``pwd``,
  ``passphrase``, ``secret``, ``token``, ``credential(s)`` or ``apikey``, when it contains
  ``api_key``, ``private_key``, ``secret_key`` or ``access_key``, or when the whole key is
  ``auth``, ``authorization`` or ``x-auth-token``. Keys whose *last* word says the value is
  not the secret itself are kept: ``auth_url``, ``token_ttl``, ``password_file``,
  ``secret_name``, ``token_type``... (suffixes: url, uri, endpoint, type, file, path, ttl,
  expiry, version, method, plugin, name, id, length, s). A secret-named key whose value is a
  mapping or list (``auth = {username, password, auth_url}`` in clouds.yaml) is recursed into
  rather than dropped, so ``auth_url`` and ``username`` stay readable.
- **Free text** (error messages, tracebacks, evidence, command lines, string values anywhere):
  ``X-Auth-Token: …``, ``Authorization: Bearer …``, ``OS_PASSWORD=…``, ``password=…``,
  ``"token": "…"``, ``--os-password …`` and the password in ``scheme://user:password@host``;
  and the password arguments of the usual tools: ``ipmitool … -P …``, ``sshpass -p …``,
  ``mysql -p…`` (and ``mariadb``, ``mysqladmin``, ``mysqldump``), ``curl -u user:…`` /
  ``--user user:…``, ``passwd …`` / ``chpasswd``. The name is kept, the value becomes
  ``<redacted>``.
- **Logs**: a child's standard error (its log file in ``logs/``: tracebacks, warnings) goes
  through :class:`RedactingStream`, line by line.

Contract with children (the hot path)
-------------------------------------
Children pre-frame their records and the recorder writes their batches as they are, without
decoding them. Redaction costs nothing there because **each child redacts its own free text**
before it frames a record: plugin code builds messages through its context, and the context
passes error texts and configs through :func:`redact_message` (or :func:`redact_text`). The
supervisor's own records (the ledger header with the resolved profile, ``actor.started`` with
the plugin config, crash texts) go through :func:`redact_message` in the ledger writer.
"""

from __future__ import annotations

import dataclasses
import io
import re
import threading
from collections.abc import Mapping
from typing import Any, TextIO, TypeVar

from osha.messages import Message

__all__ = [
    "REDACTED",
    "RedactingStream",
    "is_secret_key",
    "redact_message",
    "redact_text",
    "redact_value",
]

REDACTED = "<redacted>"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "credentials",
        "apikey",
        "pass",
        "passwords",
        "pw",
        "secrets",
        "tokens",
    }
)
_SECRET_PAIRS = ("api_key", "private_key", "secret_key", "access_key")
_SECRET_WHOLE = frozenset({"auth", "authorization", "x_auth_token", "x_subject_token"})
_SAFE_LAST_WORDS = frozenset(
    {
        "url",
        "uri",
        "endpoint",
        "type",
        "file",
        "path",
        "ttl",
        "expiry",
        "version",
        "method",
        "plugin",
        "name",
        "id",
        "length",
        "s",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[_\-.\s]+")

_VALUE = r"(?:\"[^\"]*\"|'[^']*'|[^\s,;&\"'}\]]+)"
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # HTTP headers: X-Auth-Token: abc, Authorization: Bearer abc
    (
        re.compile(
            r"(?i)\b((?:x-(?:auth|subject|service)-token|x-auth-key|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token)\s+)?([^\s\"',;}]+)"
        ),
        r"\1\2" + REDACTED,
    ),
    # key=value, key: value, "key": "value", OS_PASSWORD=value
    (
        re.compile(
            r"(?i)((?<![\w-])[\w.-]*(?:password|passwd|passphrase|secret|token|api_?key|"
            r"private_?key|credential)s?[\"']?\s*[:=]\s*)(" + _VALUE + ")"
        ),
        r"\1" + REDACTED,
    ),
    # command-line flags: --os-password value, --token value
    (
        re.compile(
            r"(?i)(--[\w-]*(?:password|passwd|secret|token|api-?key|credential)[\w-]*\s+)"
            r"(?!--)(\S+)"
        ),
        r"\1" + REDACTED,
    ),
    # URL user info: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)"), r"\1" + REDACTED + r"\3"),
    # ipmitool -P PASSWORD, sshpass -p PASSWORD (the flag may be anywhere on the line)
    (
        re.compile(r"(\b(?:ipmitool|ipmi)\b[^\n]*?\s-P\s*)(" + _VALUE + ")"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(\bsshpass\b[^\n]*?\s-p\s*)(" + _VALUE + ")"), r"\1" + REDACTED),
    # mysql -pPASSWORD (only attached: `-p X` makes X the database name)
    (
        re.compile(r"(\b(?:mysql|mariadb|mysqladmin|mysqldump)\b[^\n]*?\s-p)([^\s\-][^\s]*)"),
        r"\1" + REDACTED,
    ),
    # curl -u user:PASSWORD, --user user:PASSWORD, --proxy-user user:PASSWORD
    (
        re.compile(r"((?:\s-u|--user|--proxy-user)[\s=]*[\"']?[^\s:\"']+:)([^\s\"']+)"),
        r"\1" + REDACTED,
    ),
    # passwd PASSWORD, chpasswd's user:PASSWORD
    (re.compile(r"(?i)(\bpasswd\s+)(?!-)(\S+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\bchpasswd\b[^\n]*?\b[\w.-]+:)(\S+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)([\w.-]+:)([^\s:'\"]+)(['\"]?\s*\|\s*chpasswd\b)"), r"\1" + REDACTED + r"\3"),
)
_HINT = re.compile(r"(?i)pass|secret|token|key|credential|auth|://|ipmi|mysql|mariadb|-u|--user|pw")

T = TypeVar("T", bound=Message)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (see the module docstring for the rule)."""
    words = [w for w in _SPLIT.split(_CAMEL.sub("_", key).lower()) if w]
    if not words:
        return False
    joined = "_".join(words)
    if joined in _SECRET_WHOLE:
        return True
    if len(words) > 1 and words[-1] in _SAFE_LAST_WORDS:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in joined for pair in _SECRET_PAIRS)


def redact_text(text: str) -> str:
    """``text`` with secret values in headers, assignments, flags and URLs replaced."""
    if not _HINT.search(text):
        return text
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """A copy of plain data (dicts, lists, strings) with secrets redacted; the rest as is."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if (
                isinstance(key, str)
                and is_secret_key(key)
                and not isinstance(item, Mapping | list | tuple)
            ):
                keep = item is None or item == "" or isinstance(item, bool)
                out[key] = item if keep else REDACTED
            else:
                out[key] = redact_value(item)
        return out
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_message(msg: T) -> T:
    """``msg`` with every string, tuple and dict field redacted (envelope fields excepted).

    Returns ``msg`` itself when nothing changed, so clean messages cost no copy.
    """
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(msg):
        if field.name in ("sender", "seq", "mono_s", "wall_s"):
            continue
        value = getattr(msg, field.name)
        if isinstance(value, str | dict | tuple | list):
            redacted = redact_value(value)
            if redacted != value:
                changes[field.name] = redacted
    return dataclasses.replace(msg, **changes) if changes else msg


class RedactingStream(io.TextIOBase):
    """A text stream that redacts each whole line before it writes it to ``target`` (a
    child's standard error, which is its log file). A partial line waits for its end, or for
    :meth:`flush`, so that a secret split across two writes is still seen whole."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self._target = target
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            head, sep, tail = self._pending.rpartition("\n")
            if sep:
                self._target.write(redact_text(head + sep))
                self._pending = tail
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._target.write(redact_text(self._pending))
                self._pending = ""
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8") or "utf-8"
