"""Pin the public names so a change to them is a deliberate one."""

import kubesentinel
import kubesentinel.models


def test_package_exports() -> None:
    assert kubesentinel.__all__ == ["__version__"]


def test_models_exports() -> None:
    assert sorted(kubesentinel.models.__all__) == [
        "Event", "FalcoAlert", "FeatureVector", "Finding", "Incident", "K8sObject", "ObjectRef",
        "Priority", "References", "RiskReason", "Rule", "RuleCount", "Scored", "Severity",
        "SourceRef", "Suppressed", "Suppression", "Workload",
    ]  # fmt: skip
