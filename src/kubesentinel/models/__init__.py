"""Plain data records shared by every layer. No I/O lives here."""

from kubesentinel.models.event import Event, Workload
from kubesentinel.models.falco_alert import FalcoAlert, Priority
from kubesentinel.models.finding import Finding, ObjectRef
from kubesentinel.models.incident import Incident, RiskReason, RuleCount
from kubesentinel.models.k8s_object import K8sObject, SourceRef
from kubesentinel.models.rule import References, Rule
from kubesentinel.models.severity import Severity
from kubesentinel.models.suppression import Suppressed, Suppression

__all__ = [
    "Event",
    "FalcoAlert",
    "Finding",
    "Incident",
    "K8sObject",
    "ObjectRef",
    "Priority",
    "References",
    "RiskReason",
    "Rule",
    "RuleCount",
    "Severity",
    "SourceRef",
    "Suppressed",
    "Suppression",
    "Workload",
]
