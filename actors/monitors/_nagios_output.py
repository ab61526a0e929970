"""The Nagios plugin output format, per the Nagios Plugin Development Guidelines.

- The exit status is the state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
- The first line is the status text, then optionally ``|`` and performance data.
- Further lines are long text; the first ``|`` in them starts more performance data, which
  runs to the end of the output.
- Performance data is ``'label'=value[UOM];[warn];[crit];[min];[max]``, space separated.
  A label with spaces or ``=`` is quoted with ``'``, and ``''`` is a quote inside it. The
  value may be ``U`` (undetermined). UOM is one of s, ms, us, %, B, KB, MB, TB (and the
  binary ones that monitoring-plugins write, KiB...), c (a counter), or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["STATUS_NAMES", "PerfDatum", "PluginOutput", "parse_output", "parse_perfdata"]

STATUS_NAMES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}

_NUMBER = re.compile(r"^([-+]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][-+]?[0-9]+)?)(.*)$")


@dataclass(frozen=True, slots=True)
class PerfDatum:
    label: str
    value: float | None  # None for "U" (undetermined)
    unit: str
    warn: str = ""  # a Nagios range, e.g. "10", "10:", "~:10", "@10:20"
    crit: str = ""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class PluginOutput:
    status: int
    text: str  # the first line, without performance data
    long_text: str
    perfdata: tuple[PerfDatum, ...]
    perf_errors: tuple[str, ...] = ()  # perfdata items that did not parse

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"exit {self.status}")


def _float(text: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _tokens(perf: str) -> list[str]:
    """Split on spaces, keeping quoted labels ('a b'=1) together."""
    out: list[str] = []
    i, n = 0, len(perf)
    while i < n:  # each pass consumes at least one character
        if perf[i].isspace():
            i += 1
            continue
        start = i
        if perf[i] == "'":
            i += 1
            while i < n:
                if perf[i] == "'" and i + 1 < n and perf[i + 1] == "'":
                    i += 2
                    continue
                if perf[i] == "'":
                    i += 1
                    break
                i += 1
        while i < n and not perf[i].isspace():
            i += 1
        out.append(perf[start:i])
    return out


def parse_perfdata(perf: str) -> tuple[list[PerfDatum], list[str]]:
    """Parse performance data; return the items and the raw items that did not parse."""
    items: list[PerfDatum] = []
    errors: list[str] = []
    for token in _tokens(perf):
        label, eq, rest = token.rpartition("=")
        if not eq or not label:
            errors.append(token)
            continue
        if len(label) >= 2 and label[0] == label[-1] == "'":
            label = label[1:-1].replace("''", "'")
        fields = rest.split(";")
        raw_value = fields[0]
        if raw_value == "U":
            value, unit = None, ""
        else:
            m = _NUMBER.match(raw_value)
            if m is None:
                errors.append(token)
                continue
            value, unit = _float(m.group(1)), m.group(2)
        fields += [""] * (5 - len(fields))
        items.append(
            PerfDatum(
                label=label,
                value=value,
                unit=unit,
                warn=fields[1],
                crit=fields[2],
                min=_float(fields[3]),
                max=_float(fields[4]),
            )
        )
    return items, errors


def parse_output(status: int, output: str) -> PluginOutput:
    """Parse a plugin's exit status and standard output."""
    lines = output.replace("\r\n", "\n").rstrip("\n").split("\n") if output.strip() else [""]
    first, _, perf = lines[0].partition("|")
    rest = "\n".join(lines[1:])
    long_text, bar, more = rest.partition("|")
    perf_text = perf + (" " + more.replace("\n", " ") if bar else "")
    items, errors = parse_perfdata(perf_text)
    return PluginOutput(
        status=status,
        text=first.strip(),
        long_text=long_text.strip(),
        perfdata=tuple(items),
        perf_errors=tuple(errors),
    )
