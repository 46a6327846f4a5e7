"""Predicates on container resources (requests, limits) and health probes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import CONTAINER_LISTS, containers, mapping, pod_spec
from kubesentinel.static.predicates import Params, Violation, predicate

_WORDS = {"cpu": "CPU", "memory": "memory", "requests": "request", "limits": "limit"}
_ZERO_QUANTITY = re.compile(r"[+-]?(0+\.?0*|\.0+)([eE][+-]?\d+|[A-Za-z]+)?")


def _quantity_problem(value: Any) -> str | None:
    """Why a resource quantity does not count: unset, empty, or zero (which reserves nothing)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "has no"
    if isinstance(value, bool):
        return None  # not a quantity at all; the API server rejects it, nothing to add here
    if isinstance(value, int | float) and value == 0:
        return "sets a zero"
    if isinstance(value, str) and _ZERO_QUANTITY.fullmatch(value.strip()):
        return "sets a zero"
    return None


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
        problem = _quantity_problem(value)
        if problem is not None:
            yield Violation(
                f"{container.label} {problem} {_WORDS[resource]} {_WORDS[section]}",
                (*container.path, "resources", section, resource),
            )


@predicate("probe_missing")
def probe_missing(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A regular container has no probe of the given kind (params.probe, e.g. livenessProbe).

    Init containers run to completion and ephemeral ones may not declare probes, so only
    spec.containers is checked. Which kinds are checked is the rule's choice (kinds in its YAML).
    """
    pod = pod_spec(obj)
    if pod is None:
        return
    probe = params["probe"]
    for container in containers(pod, ("containers",)):
        value = container.spec.get(probe)
        if not mapping(value):
            problem = "has no" if value is None else "sets an empty"
            yield Violation(f"{container.label} {problem} {probe}", (*container.path, probe))
