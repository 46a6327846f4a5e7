"""Predicates on container resources (requests, limits) and health probes."""

from __future__ import annotations

from collections.abc import Iterator

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import CONTAINER_LISTS, containers, mapping, pod_spec
from kubesentinel.static.predicates import Params, Violation, predicate

_WORDS = {"cpu": "CPU", "memory": "memory", "requests": "request", "limits": "limit"}


@predicate("container_resource_missing")
def container_resource_missing(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """A container has no resources.<section>.<resource> (params: section, resource, lists)."""
    pod = pod_spec(obj)
    if pod is None:
        return
    section, resource = params["section"], params["resource"]
    lists = tuple(params.get("lists", CONTAINER_LISTS))
    for container in containers(pod, lists):
        value = mapping(mapping(container.spec.get("resources")).get(section)).get(resource)
        if value is None or value == "":
            yield Violation(
                f"{container.label} has no {_WORDS[resource]} {_WORDS[section]}",
                (*container.path, "resources", section, resource),
            )


@predicate("probe_missing")
def probe_missing(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A regular container has no probe of the given kind (params.probe, e.g. livenessProbe).

    Init containers run to completion and ephemeral ones may not declare probes, so only
    spec.containers is checked. Jobs and CronJobs are included, as the concept defines.
    """
    pod = pod_spec(obj)
    if pod is None:
        return
    probe = params["probe"]
    for container in containers(pod, ("containers",)):
        if not mapping(container.spec.get(probe)):
            yield Violation(f"{container.label} has no {probe}", (*container.path, probe))
