"""Plain data records shared by every layer. No I/O lives here."""

from kubesentinel.models.finding import Finding, ObjectRef
from kubesentinel.models.k8s_object import K8sObject, SourceRef
from kubesentinel.models.rule import References, Rule
from kubesentinel.models.severity import Severity

__all__ = ["Finding", "K8sObject", "ObjectRef", "References", "Rule", "Severity", "SourceRef"]
