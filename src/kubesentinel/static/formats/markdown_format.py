"""GitHub-flavoured Markdown for pull-request comments: summary, findings by file, fixes by rule."""

from __future__ import annotations

import re
from collections.abc import Sequence

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, Suppressed
from kubesentinel.static.formats import ScanReport
from kubesentinel.static.formats.common import (
    by_file,
    object_label,
    plural,
    printable,
    rules_of,
    severity_counts,
    suppressed_note,
    worst_first,
)

# Characters that would start emphasis, code, links, HTML, strikethrough, maths, entities or
# headings, or (the pipe) end a table cell; manifest values are untrusted text.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#$])")
_BACKTICKS = re.compile(r"`+")
_LINKABLE = re.compile(r"https?://[^\s()<>]+")
# GitHub refuses comments over 65,536 characters: list this many findings at most.
MAX_ROWS = 200


def escape(text: str) -> str:
    """Text shown literally in Markdown, on one line (safe inside a table cell)."""
    return _SPECIAL.sub(r"\\\1", printable(text))


def code(text: str) -> str:
    """Text in a code span that stays literal and inside its table cell."""
    text = printable(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render(report: ScanReport) -> str:
    parts = [_summary(report)]
    budget = MAX_ROWS
    for file, group in by_file(report.findings):
        if budget > 0:
            parts.append(_file_section(file, worst_first(group)[:budget]))
        budget -= len(group)
    if budget < 0:
        parts.append(
            f"_{plural(-budget, 'more finding')} not shown: "
            "the JSON and SARIF formats list every finding._"
        )
    if report.findings:
        parts.append(_remediations(report))
    if report.suppressed:
        parts.append(_suppressed(report.suppressed))
    parts.extend(_problems("Input errors", report.result.errors))
    parts.extend(_problems("Warnings", report.result.warnings))
    return "\n\n".join(parts) + "\n"


def _summary(report: ScanReport) -> str:
    result = report.result
    findings = report.findings
    threshold = report.threshold.label
    scanned = f"{plural(len(result.files), 'file')} ({plural(result.objects, 'object')})"
    if findings:
        head = f"**{plural(len(findings), 'finding')}** at or above **{threshold}** in {scanned}."
    else:
        head = f"No findings at or above **{threshold}** in {scanned}."
    rows = [f"| {label.capitalize()} | {n} |" for label, n in severity_counts(findings).items()]
    lines = ["## KubeSentinel scan", "", head, "", "| Severity | Findings |", "| --- | ---: |"]
    lines.extend(rows)
    notes = []
    if report.below_threshold:
        notes.append(
            f"{plural(report.below_threshold, 'finding')} below the threshold hidden: "
            "use `--severity-threshold low`."
        )
    if report.suppressed:
        notes.append(f"{suppressed_note(report.suppressed)}: listed below with their reasons.")
    if result.errors:
        errors = plural(len(result.errors), "input error")
        notes.append(f"{errors}: those inputs were not fully scanned.")
    if notes:
        lines.extend(["", *(f"> {note}" for note in notes)])
    return "\n".join(lines)


def _file_section(file: str, findings: list[Finding]) -> str:
    lines = [
        f"### {code(file)}",
        "",
        "| Severity | Rule | Object | Line | Message |",
        "| --- | --- | --- | ---: | --- |",
    ]
    lines.extend(
        f"| {f.severity.label} | {_rule_cell(f)} | {code(object_label(f.obj))} | {f.line} "
        f"| {escape(f.message)} |"
        for f in findings
    )
    return "\n".join(lines)


def _rule_cell(finding: Finding) -> str:
    """The rule id, and the implied rules a folded finding holds."""
    if not finding.folded:
        return escape(finding.rule_id)
    return f"{escape(finding.rule_id)} (also {escape(', '.join(finding.folded_ids))})"


def _remediations(report: ScanReport) -> str:
    rules = rules_of(report)
    lines = ["### How to fix", ""]
    for rule_id in dict.fromkeys(f.rule_id for f in worst_first(report.findings)):
        rule = rules.get(rule_id)
        if rule is None:
            continue
        urls = [u for u in rule.references.urls if _LINKABLE.fullmatch(u)]
        link = f"[{escape(rule.id)}]({urls[0]})" if urls else escape(rule.id)
        lines.append(f"- **{link}** {escape(rule.title)}: {escape(rule.remediation)}")
    return "\n".join(lines)


def _suppressed(suppressed: list[Suppressed]) -> str:
    """Suppressions are review material: a new one in a pull request deserves a look."""
    lines = [
        "### Suppressed",
        "",
        "| Rule | Object | Where | Suppressed by | Reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for item in suppressed[:MAX_ROWS]:
        f, why = item.finding, item.suppression
        lines.append(
            f"| {_rule_cell(f)} | {code(object_label(f.obj))} | {code(f'{f.file}:{f.line}')} "
            f"| {why.kind} | {escape(why.reason or '')} |"
        )
    if len(suppressed) > MAX_ROWS:
        lines.extend(["", f"_{plural(len(suppressed) - MAX_ROWS, 'more')} in the JSON report._"])
    return "\n".join(lines)


def _problems(title: str, problems: Sequence[InputError]) -> list[str]:
    if not problems:
        return []
    lines = [f"### {title}", "", "| File | Line | Code | Message |", "| --- | ---: | --- | --- |"]
    for p in problems:
        message = p.message + (f" (hint: {p.hint})" if p.hint else "")
        file = code(p.file) if p.file else ""
        lines.append(f"| {file} | {p.line or ''} | {p.code} | {escape(message)} |")
    return ["\n".join(lines)]
