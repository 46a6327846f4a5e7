"""The report's posture section: the workload's scan findings, why each mattered for this
incident, and its fix from the rule catalogue.

Rule texts come from the built-in rules' bundle (as ``bridge.runtime_impacts`` reads it: none
of the scanner's modules load), plus the user rule files at ``static.rules_path``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.models.report import PostureItem, PostureSection
from kubesentinel.models.severity import Severity

__all__ = ["posture_section", "rule_texts"]

# What a runtime impact (the rule files' ``runtime.impact``) gives an attacker inside the
# workload, and the ATT&CK tactics it makes easier: an incident that reached one of them used it.
_IMPACTS: Final[Mapping[str, tuple[str, frozenset[str]]]] = {
    "privileged": ("a privileged container holds every capability and the host's devices, so "
                   "escaping to the node takes one step",
                   frozenset({"privilege_escalation", "defense_evasion", "persistence", "impact"})),
    "host PID": ("sharing the node's process namespace lets it see and signal every process on "
                 "the node", frozenset({"discovery", "privilege_escalation", "credential_access"})),
    "host IPC": ("sharing the node's IPC namespace exposes other processes' shared memory",
                 frozenset({"collection", "credential_access"})),
    "host network": ("on the node's network its traffic bypasses NetworkPolicies and reaches "
                     "node-local services",
                     frozenset({"command_and_control", "exfiltration", "discovery",
                                "lateral_movement", "credential_access"})),
    "hostPath": ("a hostPath volume gives it files of the node",
                 frozenset({"persistence", "privilege_escalation", "credential_access"})),
    "writable hostPath": ("a writable hostPath lets it change the node's files",
                          frozenset({"persistence", "privilege_escalation", "impact"})),
    "sensitive host path": ("a sensitive host path (/, /etc, /proc...) hands it the node's "
                            "configuration and secrets",
                            frozenset({"credential_access", "privilege_escalation",
                                       "persistence"})),
    "runtime socket": ("the container runtime's socket lets it start containers on the node",
                       frozenset({"execution", "privilege_escalation", "lateral_movement"})),
    "added capability": ("added capabilities widen what a compromised process may do",
                         frozenset({"privilege_escalation", "defense_evasion"})),
    "dangerous capability": ("a dangerous capability is a known path out of the container",
                             frozenset({"privilege_escalation", "defense_evasion"})),
    "SYS_ADMIN": ("SYS_ADMIN allows mounts and cgroup changes, the usual container escapes",
                  frozenset({"privilege_escalation", "defense_evasion"})),
    "NET_RAW": ("NET_RAW allows spoofed and sniffed packets on the pod network",
                frozenset({"credential_access", "discovery", "lateral_movement"})),
    "runs as root": ("running as root makes any escape land as root on the node",
                     frozenset({"privilege_escalation", "persistence", "execution"})),
    "may run as root": ("nothing stops it running as root, so an escape may land as root",
                        frozenset({"privilege_escalation", "persistence", "execution"})),
    "privilege escalation allowed": ("allowPrivilegeEscalation lets setuid binaries gain "
                                     "privileges", frozenset({"privilege_escalation"})),
    "Windows HostProcess": ("a HostProcess container runs as a process of the Windows node",
                            frozenset({"privilege_escalation", "execution"})),
}  # fmt: skip


@lru_cache(maxsize=8)
def rule_texts(rules_path: str | None = None) -> Mapping[str, tuple[str, str, Severity]]:
    """Rule id -> (title, remediation, severity), built-in rules and those at ``rules_path``."""
    from kubesentinel.static import rulebundle

    try:
        rules = rulebundle.load(rulebundle.BUNDLE.read_bytes(), rulebundle.BUNDLE.parent / "rules")
    except FileNotFoundError:
        rules = None
    if rules is None:
        from kubesentinel.static.catalogue import builtin_catalogue

        rules = builtin_catalogue().rules
    texts = {rule.id: (rule.title, rule.remediation, rule.severity) for rule in rules}
    if rules_path and Path(rules_path).exists():
        from kubesentinel.static.catalogue import load_catalogue

        for rule in load_catalogue([Path(rules_path)]).rules:
            texts[rule.id] = (rule.title, rule.remediation, rule.severity)
    return MappingProxyType(texts)


def posture_section(
    posture: Posture | None,
    findings: Sequence[PostureFinding],
    failing_ids: Sequence[str],
    tactics: Sequence[str],
    texts: Mapping[str, tuple[str, str, Severity]],
) -> PostureSection:
    """``findings``: the stored posture's findings on the workload; ``failing_ids``: the rule
    ids the incident recorded when it was scored (kept even if a later scan dropped them)."""
    reached = set(tactics)
    by_id = {f.rule_id: f for f in findings}
    for rule_id in failing_ids:
        if rule_id not in by_id:  # the stored posture no longer has it: the catalogue's data
            title, _, severity = texts.get(rule_id, (rule_id, "", Severity.LOW))
            by_id[rule_id] = PostureFinding(rule_id, severity, title, None)
    ordered = sorted(by_id.values(), key=lambda f: (f.impact is None, -f.severity, f.rule_id))
    items = tuple(
        PostureItem(
            f.rule_id,
            f.severity.label,
            f.title,
            f.impact,
            _why(f, reached, recorded=f.rule_id in failing_ids),
            texts[f.rule_id][1] if f.rule_id in texts else None,
        )
        for f in ordered
    )
    if posture is None:
        return PostureSection(None, None, items)
    return PostureSection(posture.source, posture.saved_ns, items)


def _why(finding: PostureFinding, reached: set[str], *, recorded: bool) -> str:
    if finding.impact is None:
        return "No runtime impact: part of the workload's posture, not of this incident's risk."
    counted = "it counted in this incident's risk score" if recorded else "found by a later scan"
    effect, helps = _IMPACTS.get(finding.impact, (f"runtime impact: {finding.impact}", frozenset()))
    used = sorted(reached & helps)
    if used:
        return f"The incident reached {', '.join(used)}: {effect} ({counted})."
    return f"{effect[0].upper()}{effect[1:]}; the incident did not reach what it eases ({counted})."
