"""Where every workload kind keeps its pod template, and walks over its containers.

Predicates call these helpers instead of knowing each kind's layout; every helper returns the
field path next to the value so a finding can point at the right line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesentinel.models import K8sObject

Path = tuple[str | int, ...]

_TEMPLATE: Path = ("spec", "template")
# One entry per kind of models/kinds.py's WORKLOAD_KINDS, in its order (a test checks it).
POD_TEMPLATE_PATHS: Mapping[str, Path] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": _TEMPLATE,
    "ReplicaSet": _TEMPLATE,
    "StatefulSet": _TEMPLATE,
    "DaemonSet": _TEMPLATE,
    "Job": _TEMPLATE,
    "ReplicationController": _TEMPLATE,
    "DeploymentConfig": _TEMPLATE,  # OpenShift, seen in peer fixtures
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")
EMPTY: Mapping[str, Any] = {}


_LIST_WORDS = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
}


@dataclass(frozen=True, slots=True)
class Container:
    spec: Mapping[str, Any]
    path: Path
    list_name: str  # containers, initContainers or ephemeralContainers
    # Derived once: dozens of rules ask each container for them (containers() reuses records).
    label: str = field(init=False, repr=False, compare=False)
    _security_context: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # How messages name the container: 'container "app"', 'init container "setup"'.
        word = _LIST_WORDS.get(self.list_name, self.list_name)
        object.__setattr__(self, "label", f'{word} "{self.name}"')
        object.__setattr__(self, "_security_context", mapping(self.spec.get("securityContext")))

    @property
    def name(self) -> str:
        name = self.spec.get("name")
        return str(name) if name is not None else f"{self.list_name}[{self.path[-1]}]"

    @property
    def is_regular(self) -> bool:
        return self.list_name == "containers"

    def security_context(self) -> Mapping[str, Any]:
        return self._security_context


@dataclass(frozen=True, slots=True)
class PodSpec:
    spec: Mapping[str, Any]
    path: Path
    metadata: Mapping[str, Any]  # the pod template's metadata (annotations, labels)
    metadata_path: Path

    def security_context(self) -> Mapping[str, Any]:
        return mapping(self.spec.get("securityContext"))

    @property
    def sc_path(self) -> Path:
        return (*self.path, "securityContext")

    @property
    def is_windows(self) -> bool:
        return mapping(self.spec.get("os")).get("name") == "windows"

    @property
    def host_users_false(self) -> bool:
        """spec.hostUsers: false (user namespaces) relaxes some PSS controls from v1.35."""
        return self.spec.get("hostUsers") is False


def mapping(value: Any) -> Mapping[str, Any]:
    """The value if it is a mapping, else an empty one (manifests are untrusted).

    Parsed manifests hold plain dicts (LineDict from files, dict from JSON and the cluster);
    checking ``dict`` avoids the slow ABC check on hot paths, and predicates do the same.
    """
    return value if isinstance(value, dict) else EMPTY


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dig(root: Any, path: Path) -> Any:
    """Follow a path of keys and indexes; None as soon as a step is missing."""
    node = root
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, (dict, Mapping)):  # dict first: no ABC check on parsed data
            return None
        node = node[step] if isinstance(step, int) else node.get(step)
        if node is None:
            return None
    return node


_last_pod_spec: tuple[K8sObject | None, PodSpec | None] = (None, None)


def pod_spec(obj: K8sObject) -> PodSpec | None:
    """The pod spec of any workload kind, or None for other kinds or a missing template."""
    # Every rule asks for the same object in turn: remember the last answer.
    global _last_pod_spec  # noqa: PLW0603 - a one-entry cache, reset on every new object
    if _last_pod_spec[0] is not obj:
        _last_pod_spec = (obj, _find_pod_spec(obj))
    return _last_pod_spec[1]


def _find_pod_spec(obj: K8sObject) -> PodSpec | None:
    template_path = POD_TEMPLATE_PATHS.get(obj.kind)
    if template_path is None:
        return None
    template = obj.body if not template_path else dig(obj.body, template_path)
    if not isinstance(template, (dict, Mapping)):  # the body itself for a Pod
        return None
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return None
    return PodSpec(
        spec=spec,
        path=(*template_path, "spec"),
        metadata=mapping(template.get("metadata")),
        metadata_path=(*template_path, "metadata"),
    )


# The container records of the last pod asked for: per list name, and per tuple of lists.
_last_containers: tuple[PodSpec | None, dict[Any, tuple[Container, ...]]] = (None, {})


def containers(pod: PodSpec, lists: tuple[str, ...] = CONTAINER_LISTS) -> tuple[Container, ...]:
    """Every container of the pod spec, in the given container lists."""
    # Every rule walks the same pod in turn: build its Container records once (one entry).
    global _last_containers  # noqa: PLW0603 - a one-entry cache, reset on every new pod
    if _last_containers[0] is not pod:
        _last_containers = (pod, {name: tuple(_containers(pod, name)) for name in CONTAINER_LISTS})
    cache = _last_containers[1]
    found = cache.get(lists)
    if found is None:
        found = cache[lists] = tuple(
            container
            for name in lists
            for container in (cache[name] if name in cache else _containers(pod, name))
        )
    return found


def _containers(pod: PodSpec, list_name: str) -> Iterator[Container]:
    for index, spec in enumerate(sequence(pod.spec.get(list_name))):
        if isinstance(spec, dict):
            yield Container(spec, (*pod.path, list_name, index), list_name)


def regular_containers(pod: PodSpec) -> tuple[Container, ...]:
    return containers(pod, ("containers",))


def effective(container: Container, pod: PodSpec, key: str) -> tuple[Any, Path]:
    """A securityContext field as the kubelet applies it: the container's, else the pod's.

    Returns the value and the path where it was found (the container's own field when unset,
    which the locator reports at the object's line because it does not exist).
    """
    own_path = (*container.path, "securityContext", key)
    own = container.security_context()
    if own.get(key) is not None:
        return own[key], own_path
    pod_sc = pod.security_context()
    if pod_sc.get(key) is not None:
        return pod_sc[key], (*pod.sc_path, key)
    return None, own_path


def format_path(path: Path) -> str:
    """spec.template.spec.containers[0].image"""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out
