"""Generate docs/rules.md from the rule catalogue (`make docs`); a test fails when it is stale."""

from __future__ import annotations

from kubesentinel.models import Rule
from kubesentinel.static.catalogue import Catalogue, builtin_catalogue


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rule_section(rule: Rule) -> list[str]:
    refs = rule.references
    lines = [
        f"## {rule.id}: {rule.title}",
        "",
        f"- Severity: **{rule.severity.label}**; category: {rule.category}",
        f"- Applies to: {', '.join(rule.kinds)}",
        f"- Pod Security Standards: {', '.join(refs.pss) or '-'}",
        f"- CIS: {', '.join(refs.cis) or '-'}; NSA/CISA: {', '.join(refs.nsa) or '-'}",
        f"- Equivalent peer checks: {', '.join(f'`{p}`' for p in refs.peers) or '-'}",
        f"- Runtime impact: {rule.runtime_impact or '-'}",
        "",
        rule.description,
        "",
        f"**Remediation:** {rule.remediation}",
    ]
    lines += [f"See: <{url}>" for url in refs.urls]
    return [*lines, ""]


def render(catalogue: Catalogue) -> str:
    out = [
        "# Rule catalogue",
        "",
        "Generated from `src/kubesentinel/static/rules/` by `make docs`; do not edit by hand.",
        "",
        "A rule with a runtime impact (`runtime: {impact: LABEL}` in its file) raises the risk of",
        "`kubesentinel monitor` incidents on the workloads it fails on, and the incident names it",
        "with that label (docs/custom-rules.md).",
        "",
        "| id | severity | title | Pod Security Standards |",
        "|---|---|---|---|",
    ]
    out += [
        f"| [{r.id}](#{r.id.lower()}-{_anchor(r.title)}) | {r.severity.label} | {_cell(r.title)} "
        f"| {', '.join(r.references.pss) or '-'} |"
        for r in catalogue.rules
    ]
    out.append("")
    for rule in catalogue.rules:
        out += _rule_section(rule)
    return "\n".join(out)


def _anchor(title: str) -> str:
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return kept.replace(" ", "-")


if __name__ == "__main__":
    print(render(builtin_catalogue()))
