"""A rule of the static catalogue: metadata plus the name of the predicate it runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesentinel.models.severity import Severity


@dataclass(frozen=True, slots=True)
class References:
    # Pod Security Standards controls, e.g. "baseline:capabilities".
    pss: tuple[str, ...] = ()
    cis: tuple[str, ...] = ()
    nsa: tuple[str, ...] = ()
    # Equivalent check ids of peer scanners: CKV_K8S_16, C-0057, KSV017, privileged-container, ...
    peers: tuple[str, ...] = ()
    # Concept ids from the shared conformance vocabulary.
    concepts: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    category: str
    description: str
    remediation: str
    kinds: tuple[str, ...]
    predicate: str
    params: Mapping[str, Any] = field(default_factory=dict)
    references: References = field(default_factory=References)
    aliases: tuple[str, ...] = ()
    # Kinds the predicate looks up in the scan context (e.g. a pod's ServiceAccount).
    reads: tuple[str, ...] = ()
    # YAML ``runtime: {impact: LABEL}``: a failure of this rule makes a runtime incident on the
    # workload riskier (kubesentinel/bridge.py); the label names it in the incident's reason.
    runtime_impact: str | None = None
    source_file: str = ""
    # Rules that always fail with this one on the same container, volume or field (YAML
    # ``implies:``); their findings there fold into this rule's (static/folding.py).
    implies: tuple[str, ...] = ()
