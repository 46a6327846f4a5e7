"""Machine-readable report: schema in scan-result.schema.json, documented in docs/json-output.md."""

from __future__ import annotations

import json
from typing import Any

from kubesentinel.errors import InputError
from kubesentinel.models import Finding, Rule
from kubesentinel.static.formats import JSON_SCHEMA_VERSION, ScanReport
from kubesentinel.static.formats.common import TOOL_NAME, rules_of, severity_counts


def render(report: ScanReport) -> str:
    """Top-level keys one per line and list items one per line, each item compact.

    ``json.dumps(indent=...)`` falls back to the pure-Python encoder, which took longer than the
    scan on a 10,000-finding report; compact items keep the C encoder and stay diff-friendly.
    ASCII escapes keep the output writable even when a JSON manifest held a lone surrogate.
    """
    lines = ["{"]
    items = list(document(report).items())
    for position, (key, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if isinstance(value, list) and value:
            body = ",\n".join(f"    {json.dumps(item)}" for item in value)
            lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def document(report: ScanReport) -> dict[str, Any]:
    """The report as plain JSON data, keys in schema order."""
    result = report.result
    rules = rules_of(report)
    findings = report.findings
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": report.tool_version},
        "threshold": report.threshold.label,
        "summary": {
            "files": len(result.files),
            "objects": result.objects,
            "findings": len(findings),
            "by_severity": severity_counts(findings),
            "below_threshold": report.below_threshold,
            "errors": len(result.errors),
            "warnings": len(result.warnings),
            "notices": len(result.notices),
        },
        "findings": [_finding(f, rules.get(f.rule_id)) for f in findings],
        "errors": [_problem(e) for e in result.errors],
        "warnings": [_problem(w) for w in result.warnings],
        "notices": [{"file": n.file, "line": n.line, "message": n.message} for n in result.notices],
    }


def _finding(finding: Finding, rule: Rule | None) -> dict[str, Any]:
    obj = finding.obj
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.label,
        "title": finding.title,
        "message": finding.message,
        "remediation": finding.remediation,
        "category": finding.category,
        "object": {
            "api_version": obj.api_version,
            "kind": obj.kind,
            "namespace": obj.namespace,
            "name": obj.name,
        },
        "file": finding.file,
        "line": finding.line,
        "doc_index": finding.doc_index,
        "item_index": finding.item_index,
        "field_path": finding.field_path,
        "references": _references(rule),
    }


def _references(rule: Rule | None) -> dict[str, list[str]]:
    if rule is None:  # a finding of a rule missing from the catalogue: nothing to cite
        return {"pss": [], "peers": [], "cis": [], "nsa": [], "concepts": []}
    refs = rule.references
    return {
        "pss": list(refs.pss),
        "peers": list(refs.peers),
        "cis": list(refs.cis),
        "nsa": list(refs.nsa),
        "concepts": list(refs.concepts),
    }


def _problem(problem: InputError) -> dict[str, Any]:
    return {
        "code": problem.code,
        "file": problem.file,
        "line": problem.line,
        "message": problem.message,
        "hint": problem.hint,
    }
