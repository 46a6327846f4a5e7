"""Predicates over the pod spec's security settings (privilege, host namespaces)."""

from __future__ import annotations

from collections.abc import Iterator

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import containers, pod_spec
from kubesentinel.static.predicates import Params, Violation, predicate


@predicate("container_flag_true")
def container_flag_true(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A boolean securityContext field (params.field) is true on some container."""
    pod = pod_spec(obj)
    if pod is None:
        return
    key = params["field"]
    for container in containers(pod):
        if container.security_context().get(key) is True:
            yield Violation(
                f"{container.label} sets securityContext.{key}: true",
                (*container.path, "securityContext", key),
            )


@predicate("pod_flag_true")
def pod_flag_true(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A boolean pod spec field (params.field, e.g. hostPID) is true."""
    pod = pod_spec(obj)
    if pod is not None and pod.spec.get(params["field"]) is True:
        yield Violation(f"pod spec sets {params['field']}: true", (*pod.path, params["field"]))
