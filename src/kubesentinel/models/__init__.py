"""Plain data records shared by every layer. No I/O lives here.

The runtime records load on first use (PEP 562): a static scan never needs them, and their
dataclasses would cost a scan's start-up the time to create them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kubesentinel.models.finding import Finding, ObjectRef
from kubesentinel.models.k8s_object import K8sObject, SourceRef
from kubesentinel.models.rule import References, Rule
from kubesentinel.models.severity import Severity
from kubesentinel.models.suppression import Suppressed, Suppression

if TYPE_CHECKING:
    from kubesentinel.models.anomaly_score import Scored
    from kubesentinel.models.event import Event, Workload
    from kubesentinel.models.falco_alert import FalcoAlert, Priority
    from kubesentinel.models.feature_vector import FeatureVector
    from kubesentinel.models.incident import Incident, RiskReason, RuleCount

_RUNTIME = {
    "Event": "event",
    "Workload": "event",
    "FalcoAlert": "falco_alert",
    "Priority": "falco_alert",
    "Incident": "incident",
    "RiskReason": "incident",
    "RuleCount": "incident",
    "FeatureVector": "feature_vector",
    "Scored": "anomaly_score",
}


def __getattr__(name: str) -> Any:
    module = _RUNTIME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


__all__ = [
    "Event",
    "FalcoAlert",
    "FeatureVector",
    "Finding",
    "Incident",
    "K8sObject",
    "ObjectRef",
    "Priority",
    "References",
    "RiskReason",
    "Rule",
    "RuleCount",
    "Scored",
    "Severity",
    "SourceRef",
    "Suppressed",
    "Suppression",
    "Workload",
]
