"""Retention policy of the forensic vault: which class each stored event belongs to.

Precedence, highest first: legal hold, incident evidence (``effective_class``), then an
explicit rule, the severity tier, the default class (``classify``). The schema and the
shipped default are described in docs/vault-policies.md.

Modules: ``policy_model`` (the data and tiny predicates), ``policy_match`` (rules compiled
for the hot path), ``policy_schema`` (reading and validating files) on ``policy_nodes``
(typed reads of YAML nodes with their file:line:column).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy_match import IncidentLink, MatchRule
from kubesentinel.vault.policy_model import (
    DEFAULT,
    HOLD,
    INCIDENT,
    Policy,
    RetentionClass,
    effective_class,
    eviction_order,
    in_context_window,
)
from kubesentinel.vault.policy_schema import DEFAULT_POLICY, load_policy_files


def load_policy(paths: Sequence[Path], *, retention_days: int = 90) -> Policy:
    """The policy of ``paths`` combined in order; with none, the shipped default policy.
    ``retention_days`` (forensics.retention_days) is the default class's keep_days unless a
    file sets it. Raises PolicyError naming the file, line and key of the first problem."""
    return load_policy_files(paths, retention_days=retention_days)


def classify(
    policy: Policy,
    *,
    priority: Priority,
    rule: str,
    tags: tuple[str, ...],
    source: str,
    namespace: str,
    kind: str,
    name: str,
    incident: IncidentLink,
) -> str:
    """The event's static class: the first matching rule's, else its priority's tier, else
    the default. Runs once per event: answers are cached per distinct input."""
    return policy.matcher.lookup(priority, rule, tags, source, namespace, kind, name, incident)


__all__ = [
    "DEFAULT",
    "DEFAULT_POLICY",
    "HOLD",
    "INCIDENT",
    "IncidentLink",
    "MatchRule",
    "Policy",
    "RetentionClass",
    "classify",
    "effective_class",
    "eviction_order",
    "in_context_window",
    "load_policy",
]
