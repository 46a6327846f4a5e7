"""Human-readable report for a terminal: findings grouped by file and object, then a summary."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, Severity
from kubesentinel.static.formats import ScanReport
from kubesentinel.static.formats.common import (
    by_file,
    by_object,
    folded_note,
    object_label,
    plural,
    printable,
    severity_counts,
    suppressed_note,
    worst_first,
)

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_SEVERITY_COLOURS = {
    Severity.CRITICAL: "\033[1;31m",  # bold red
    Severity.HIGH: "\033[31m",
    Severity.MEDIUM: "\033[33m",
    Severity.LOW: "\033[36m",
}
_SEVERITY_WIDTH = max(len(s.name) for s in Severity)


class _Style:
    """Wraps text in ANSI codes, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled else text


def render(report: ScanReport) -> str:
    style = _Style(report.color)
    lines: list[str] = []
    findings = report.findings
    line_width = max((len(str(f.line)) for f in findings), default=1)
    for file, group in by_file(findings):
        lines.append(style(_BOLD, printable(file)))
        for obj, object_findings in by_object(group):
            item = object_findings[0].item_index
            suffix = f" (line {object_findings[0].object_line})"
            suffix += f" (List item {item})" if item is not None else ""
            lines.append(f"  {printable(object_label(obj))}{suffix}")
            lines.extend(_object_lines(object_findings, style, line_width))
        lines.append("")
    lines.extend(_problems("Input errors", report.result.errors, style))
    lines.extend(_problems("Warnings", report.result.warnings, style))
    notices = report.result.notices
    if notices:
        lines.append(style(_BOLD, f"Skipped ({len(notices)})"))
        lines.extend(f"  {printable(n.file)}:{n.line}  {printable(n.message)}" for n in notices)
        lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def _object_lines(findings: list[Finding], style: _Style, line_width: int) -> list[str]:
    """Worst rule first: its findings by line, then its fix once."""
    lines: list[str] = []
    for rule_id, group in groupby(worst_first(findings), key=lambda f: f.rule_id):
        rule_findings = list(group)
        indent = " " * (4 + _SEVERITY_WIDTH + 2 + len(rule_id) + 2 + 5 + line_width + 2)
        for finding in rule_findings:
            lines.append(_finding_line(finding, style, line_width))
            if finding.folded:
                lines.append(indent + style(_DIM, f"also: {folded_note(finding)}"))
        lines.append(indent + style(_DIM, f"fix: {rule_findings[0].remediation}"))
    return lines


def _finding_line(finding: Finding, style: _Style, line_width: int) -> str:
    colour = _SEVERITY_COLOURS[finding.severity]
    severity = style(colour, finding.severity.name.ljust(_SEVERITY_WIDTH))
    where = f"line {finding.line:<{line_width}}"
    return f"    {severity}  {finding.rule_id}  {where}  {printable(finding.message)}"


def _problems(title: str, problems: Sequence[InputError], style: _Style) -> list[str]:
    if not problems:
        return []
    lines = [style(_BOLD, f"{title} ({len(problems)})")]
    for problem in problems:
        where = printable(problem.location) if problem.location else "(no file)"
        lines.append(f"  {where}  {problem.code}  {printable(problem.message)}")
        if problem.hint:
            lines.append(f"    hint: {printable(problem.hint)}")
    return [*lines, ""]


def summary(report: ScanReport) -> str:
    """One line: what was scanned and found (the table's last line; stderr with --output)."""
    result = report.result
    scanned = f"{plural(len(result.files), 'file')}, {plural(result.objects, 'object')}"
    findings = report.findings
    threshold = report.threshold.label
    if findings:
        counts = ", ".join(f"{n} {label}" for label, n in severity_counts(findings).items())
        text = f"{scanned}: {plural(len(findings), 'finding')} at or above {threshold} ({counts})."
    else:
        text = f"{scanned}: no findings at or above {threshold}."
    if report.below_threshold:
        text += f" {report.below_threshold} below threshold hidden: use --severity-threshold low."
    if report.suppressed:
        text += f" {suppressed_note(report.suppressed)}: --format json lists them with reasons."
    if result.errors:
        text += f" {plural(len(result.errors), 'input error')}."
    if result.warnings:
        text += f" {plural(len(result.warnings), 'warning')}."
    return text
