"""The JUnit XML report: one test case per SLO result, for CI dashboards.

``<testsuites>`` holds one ``<testsuite name="osha.slo">``; each :class:`~osha.analysis.SloResult`
is a ``<testcase classname="osha.slo.<slo>" name="<result name>">`` with a ``<failure>`` when
it is violated. An aborted run adds a ``run.completed`` test case with an ``<error>``. A
``ledger-integrity`` test case (classname ``osha.ledger``) says whether the ledger was read
whole: it fails, naming where it is damaged and what was skipped, unless the damage was
accepted (``--accept-damaged``), which its output then says. Text that came from the ledger
is cleaned of characters XML cannot carry.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from osha.analysis import Analysis
from osha.report._fmt import xml_safe

__all__ = ["to_junit", "xml_text"]


def _num(value: float | bool | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:.3f}"


def to_junit(a: Analysis) -> str:
    """The verdict as JUnit XML text."""
    v = a.verdict
    damage = a.run.damage
    refused = damage.damaged and not v.accepted_damage
    failures = len(v.failed) + (1 if refused else 0)
    errors = 1 if v.aborted else 0
    tests = len(v.results) + errors + 1
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
    case = ET.SubElement(suite, "testcase", classname="osha.ledger", name="ledger-integrity",
                         time="0")  # fmt: skip
    if not damage.damaged:
        ET.SubElement(case, "system-out").text = f"intact: {a.run.records} records read"
    else:
        text = "\n".join([f"ledger damaged: {damage.summary()}", *damage.problems])
        if refused:
            ET.SubElement(case, "failure", message=damage.summary(), type="ledger").text = text
        else:
            ET.SubElement(case, "system-out").text = text + "\n(accepted: --accept-damaged)"
    for r in v.results:
        case = ET.SubElement(suite, "testcase", classname=f"osha.slo.{r.slo}", name=r.name,
                             time="0")  # fmt: skip
        text = f"value {_num(r.value)}, threshold {_num(r.threshold)}: {r.detail}"
        if not r.passed:
            ET.SubElement(case, "failure", message=text, type="slo").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    return xml_text(root)


def xml_text(root: ET.Element) -> str:
    """``root`` as an indented XML document, every attribute and text cleaned of the
    characters XML cannot carry (they may come from the ledger)."""
    for element in root.iter():
        element.attrib = {k: xml_safe(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = xml_safe(element.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"
