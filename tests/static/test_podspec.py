"""The container walk (cached per pod for speed) must follow the lists asked for, in order."""

from __future__ import annotations

from typing import Any

from kubesentinel.models import K8sObject, SourceRef
from kubesentinel.models.kinds import WORKLOAD_KINDS
from kubesentinel.static.podspec import POD_TEMPLATE_PATHS, containers, pod_spec, regular_containers


def _pod(name: str, spec: dict[str, Any]) -> K8sObject:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    return K8sObject("v1", "Pod", None, name, body, SourceRef("p.yaml", 0, None, 1))


def test_containers_follow_the_requested_lists_and_order() -> None:
    obj = _pod("a", {
        "containers": [{"name": "app"}, "not-a-mapping", {"name": "side"}],
        "initContainers": [{"name": "init"}],
        "ephemeralContainers": [{"name": "debug"}],
    })  # fmt: skip
    pod = pod_spec(obj)
    assert pod is not None
    assert [(c.name, c.path) for c in containers(pod)] == [
        ("app", ("spec", "containers", 0)),
        ("side", ("spec", "containers", 2)),
        ("init", ("spec", "initContainers", 0)),
        ("debug", ("spec", "ephemeralContainers", 0)),
    ]
    assert [c.name for c in containers(pod, ("initContainers", "containers"))] == [
        "init", "app", "side",
    ]  # fmt: skip
    assert [c.name for c in regular_containers(pod)] == ["app", "side"]


def test_each_pod_gets_its_own_containers() -> None:
    first = pod_spec(_pod("a", {"containers": [{"name": "one"}]}))
    assert first is not None
    assert [c.name for c in containers(first)] == ["one"]
    second = pod_spec(_pod("b", {"containers": [{"name": "two"}], "initContainers": []}))
    assert second is not None
    assert [c.name for c in containers(second)] == ["two"]
    assert [c.name for c in containers(first)] == ["one"]


def test_every_workload_kind_has_its_template_path_in_the_shared_order() -> None:
    assert tuple(POD_TEMPLATE_PATHS) == WORKLOAD_KINDS
