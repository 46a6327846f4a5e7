"""JUnit XML for CI test reports (Jenkins, GitLab): a suite per file, a case per object and rule.

A case fails when the rule found something at or above the threshold, is skipped when its
findings are below it or suppressed (with the reason), and input errors are error cases. A file
with nothing to report gets one passing case, so every scanned file shows up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, Suppressed
from kubesentinel.static.formats import ScanReport
from kubesentinel.static.formats.common import TOOL_NAME, folded_note, object_ref, printable

_NO_FILE = "(no file)"
# Count attributes of a suite and the child tag of a case each one counts.
_COUNTS = {"tests": "", "failures": "failure", "errors": "error", "skipped": "skipped"}


@dataclass(slots=True)
class _Suite:
    cases: list[ET.Element] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def render(report: ScanReport) -> str:
    suites = [_suite_element(name, suite, report) for name, suite in _suites(report).items()]
    root = ET.Element("testsuites", name=TOOL_NAME)
    for key in _COUNTS:
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", f"{report.duration_s:.3f}")
    root.extend(suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suites(report: ScanReport) -> dict[str, _Suite]:
    result = report.result
    suites = {file: _Suite() for file in result.files}
    for (file, _obj, _rule), findings in _cases(result.findings).items():
        case = _case(file, findings, report)
        suites.setdefault(file, _Suite()).cases.append(case)
    for item in result.suppressed:  # every severity, as findings below the threshold
        suites.setdefault(item.finding.file, _Suite()).cases.append(_suppressed_case(item))
    for error in result.errors:
        suites.setdefault(error.file or _NO_FILE, _Suite()).cases.append(_error_case(error))
    for warning in result.warnings:
        suites.setdefault(warning.file or _NO_FILE, _Suite()).warnings.append(str(warning))
    return suites


def _cases(findings: Iterable[Finding]) -> dict[tuple[str, tuple[object, ...], str], list[Finding]]:
    """Findings per (file, object, rule), in report order."""
    cases: dict[tuple[str, tuple[object, ...], str], list[Finding]] = {}
    for f in findings:
        key = (f.file, (f.obj, f.doc_index, f.item_index), f.rule_id)
        cases.setdefault(key, []).append(f)
    return cases


def _case(file: str, findings: list[Finding], report: ScanReport) -> ET.Element:
    first = findings[0]
    case = _testcase(file, f"{first.rule_id} {object_ref(first.obj)}", first.line)
    if first.severity < report.threshold:
        message = f"{first.severity.label} finding below the {report.threshold.label} threshold"
        ET.SubElement(case, "skipped", message=message)
        return case
    message = printable(first.message)
    if len(findings) > 1:
        message += f" (and {len(findings) - 1} more)"
    folded = list(dict.fromkeys(rule_id for f in findings for rule_id in f.folded_ids))
    if folded:
        message += f" (also {', '.join(folded)})"
    failure = ET.SubElement(case, "failure", message=message, type=first.rule_id)
    lines = [f"{printable(object_ref(first.obj))}: {first.title} ({first.severity.label})"]
    for f in findings:
        lines.append(f"line {f.line}: {printable(f.message)} [{printable(f.field_path)}]")
        if f.folded:
            lines.append(f"  also: {printable(folded_note(f))}")
    lines.append(f"Remediation: {first.remediation}")
    failure.text = "\n".join(lines)
    return case


def _suppressed_case(item: Suppressed) -> ET.Element:
    f, why = item.finding, item.suppression
    case = _testcase(f.file, f"{f.rule_id} {object_ref(f.obj)} {f.field_path} (suppressed)", f.line)
    reason = f": {why.reason}" if why.reason else ""
    also = f" (also {', '.join(f.folded_ids)})" if f.folded else ""
    ET.SubElement(case, "skipped", message=printable(f"suppressed by {why.kind}{reason}{also}"))
    return case


def _error_case(error: InputError) -> ET.Element:
    file = error.file or _NO_FILE
    name = f"{error.code} input error" + (f" at line {error.line}" if error.line else "")
    case = _testcase(file, name, error.line)
    element = ET.SubElement(case, "error", message=printable(error.message), type=error.code)
    hint = f"\nhint: {printable(error.hint)}" if error.hint else ""
    element.text = printable(str(error)) + hint
    return case


def _testcase(file: str, name: str, line: int | None) -> ET.Element:
    case = ET.Element("testcase", classname=printable(file), name=printable(name))
    case.set("file", printable(file))
    if line:
        case.set("line", str(line))
    return case


def _suite_element(name: str, suite: _Suite, report: ScanReport) -> ET.Element:
    clean = f"no findings at or above {report.threshold.label}"
    cases = suite.cases or [_testcase(name, clean, None)]
    element = ET.Element("testsuite", name=printable(name), tests=str(len(cases)))
    for key, tag in _COUNTS.items():
        if tag:
            element.set(key, str(sum(1 for c in cases if c.find(tag) is not None)))
    element.extend(cases)
    if suite.warnings:
        ET.SubElement(element, "system-err").text = "\n".join(printable(w) for w in suite.warnings)
    return element
