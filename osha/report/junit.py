"""The JUnit XML report: one test case per SLO result, for CI dashboards.

``<testsuites>`` holds one ``<testsuite name="osha.slo">``; each :class:`~osha.analysis.SloResult`
is a ``<testcase classname="osha.slo.<slo>" name="<result name>">`` with a ``<failure>`` when
it is violated. An aborted run adds a ``run.completed`` test case with an ``<error>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from osha.analysis import Analysis

__all__ = ["to_junit"]


def _num(value: float | bool | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:.3f}"


def to_junit(a: Analysis) -> str:
    """The verdict as JUnit XML text."""
    v = a.verdict
    failures = len(v.failed)
    errors = 1 if v.aborted else 0
    tests = len(v.results) + errors
    root = ET.Element("testsuites", name="osha", tests=str(tests), failures=str(failures),
                      errors=str(errors))  # fmt: skip
    suite = ET.SubElement(root, "testsuite", name="osha.slo", tests=str(tests),
                          failures=str(failures), errors=str(errors), time="0",
                          hostname=a.run.host)  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", a.run.run_id), ("ledger", str(a.run_dir)),
                        ("summary", v.summary), ("exit_code", str(v.exit_code))):  # fmt: skip
        ET.SubElement(props, "property", name=name, value=value)
    if v.aborted:
        case = ET.SubElement(suite, "testcase", classname="osha.run", name="run.completed",
                             time="0")  # fmt: skip
        ET.SubElement(case, "error", message=v.abort_reason, type="aborted").text = v.abort_reason
    for r in v.results:
        case = ET.SubElement(suite, "testcase", classname=f"osha.slo.{r.slo}", name=r.name,
                             time="0")  # fmt: skip
        text = f"value {_num(r.value)}, threshold {_num(r.threshold)}: {r.detail}"
        if not r.passed:
            ET.SubElement(case, "failure", message=text, type="slo").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"
