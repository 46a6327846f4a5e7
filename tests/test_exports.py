"""Pin the public names so a change to them is a deliberate one."""

import kubesentinel
import kubesentinel.models


def test_package_exports() -> None:
    assert kubesentinel.__all__ == ["__version__"]


def test_models_exports() -> None:
    assert sorted(kubesentinel.models.__all__) == [
        "Finding", "K8sObject", "ObjectRef", "References", "Rule", "Severity", "SourceRef",
    ]  # fmt: skip
