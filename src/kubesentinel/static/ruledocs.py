"""Generate docs/rules.md from the rule catalogue (`make docs`); a test fails when it is stale."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kubesentinel.models import Rule
from kubesentinel.static.catalogue import Catalogue, builtin_catalogue, implied_closure
from kubesentinel.static.yamldoc import LineDict, parse_file

PEER_SEVERITIES = Path(__file__).parent / "peer_severities.yaml"
PEERS = ("kubescape", "trivy", "kube-linter")
NONE = "—"

CALIBRATION = """\
## Severity calibration

Severities are set for a security gate: the default threshold (medium) fails a build for
security problems, not for hygiene, and `--severity-threshold low` shows everything.

- Pod Security Standards **Baseline** violations are **high** or **critical** (critical where the
  container can take over the node: privileged, SYS_ADMIN, HostProcess, runtime sockets and
  sensitive host paths).
- **Restricted** gaps (a hardening setting left unset) are **medium**; a setting that explicitly
  turns protection off (`allowPrivilegeEscalation: true`, `runAsUser: 0`) stays **high**.
- Reliability hygiene is **low**: liveness and readiness probes, CPU and memory requests and
  limits, image pull policy, mutable or undigested image tags, the default namespace and
  service account.
- A rule is never less severe than a rule it implies, so a folded finding keeps its own
  severity, the highest of the rules it holds.

Peers' severities for the matching checks, read from their sources (see
`src/kubesentinel/static/peer_severities.yaml` for where): Kubescape (regolibrary control
baseScore, mapped as Kubescape maps it), Trivy (trivy-checks KSV metadata) and kube-linter, which
has no severities, so its column names the check. Checkov has no severity per check. "—": the
peer has no equivalent check.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def peer_severities() -> dict[str, dict[str, str]]:
    """Rule id -> peer -> "C-0057 high" (or the kube-linter check name, or "—")."""
    parsed = parse_file(PEER_SEVERITIES.read_bytes(), str(PEER_SEVERITIES))
    table = parsed.documents[0].value if parsed.documents and not parsed.errors else None
    if not isinstance(table, LineDict):
        raise ValueError(f"{PEER_SEVERITIES}: expected a mapping of rule ids")
    return {
        str(rule_id): {peer: str(row.get(peer, NONE)) for peer in PEERS}
        for rule_id, row in table.items()
        if isinstance(row, Mapping)
    }


def _calibration(catalogue: Catalogue) -> list[str]:
    peers = peer_severities()
    lines = [
        CALIBRATION,
        "| id | title | ours | Kubescape | Trivy | kube-linter |",
        "|---|---|---|---|---|---|",
    ]
    for rule in catalogue.rules:
        row = peers.get(rule.id, dict.fromkeys(PEERS, NONE))
        cells = " | ".join(_cell(row[peer]) for peer in PEERS)
        lines.append(f"| {rule.id} | {_cell(rule.title)} | **{rule.severity.label}** | {cells} |")
    return [*lines, ""]


def _implications(rule: Rule, implied_by: Mapping[str, list[str]]) -> list[str]:
    lines = []
    if rule.implies:
        lines.append(f"- Implies: {', '.join(rule.implies)} (their findings on the same spot fold "
                     "into this rule's)")  # fmt: skip
    if implied_by.get(rule.id):
        lines.append(f"- Implied by: {', '.join(implied_by[rule.id])}")
    return lines


def _rule_section(rule: Rule, implied_by: Mapping[str, list[str]]) -> list[str]:
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
        *_implications(rule, implied_by),
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
    out += _folding_note(catalogue)
    out += _calibration(catalogue)
    implied_by: dict[str, list[str]] = {}
    for rule in catalogue.rules:
        for implied in rule.implies:
            implied_by.setdefault(implied, []).append(rule.id)
    for rule in catalogue.rules:
        out += _rule_section(rule, implied_by)
    return "\n".join(out)


def _folding_note(catalogue: Catalogue) -> list[str]:
    closure = implied_closure(catalogue.rules)
    chains = [f"- {r.id} implies {', '.join(sorted(closure[r.id]))}" for r in catalogue.rules
              if r.implies]  # fmt: skip
    return [
        "## Implied rules and folding",
        "",
        "A rule's `implies` lists rules that always fail with it on the same container, volume",
        "or field (a test checks it on every fixture, the shared corpus and the conformance",
        "fixtures). `scan` folds their findings into the implier's: one finding per problem,",
        "naming the folded rules and citing their references; one suppression of the implier",
        "covers them. `scan --all-findings` keeps one finding per rule. With chains followed:",
        "",
        *chains,
        "",
    ]


def _anchor(title: str) -> str:
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return kept.replace(" ", "-")


if __name__ == "__main__":
    print(render(builtin_catalogue()))
