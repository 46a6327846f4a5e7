"""Predicates over container hardening: root, privilege escalation, capabilities, seccomp.

Capability names are compared case-insensitively and with an optional ``CAP_`` prefix, so
``sys_admin`` and ``CAP_SYS_ADMIN`` both mean SYS_ADMIN: runtimes upper-case the names, and
some accept the prefix, so no spelling that can take effect is missed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import (
    Container,
    Path,
    PodSpec,
    containers,
    effective,
    mapping,
    pod_spec,
    sequence,
)
from kubesentinel.static.predicates import Params, Violation, predicate

RUNTIME_DEFAULT = "RuntimeDefault"
POD_SECCOMP_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
CONTAINER_SECCOMP_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"
# Legacy annotation values and the profile type the API server mapped them to.
_ANNOTATION_TYPES = {
    "runtime/default": RUNTIME_DEFAULT,
    "docker/default": RUNTIME_DEFAULT,
    "unconfined": "Unconfined",
}


def _is_uid(value: Any) -> bool:
    """An integer UID; YAML booleans are ints in Python but not UIDs."""
    return isinstance(value, int) and not isinstance(value, bool)


def show(value: Any) -> str:
    """A manifest value as a message shows it: unset, true/false, quoted strings."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def cap_name(value: Any) -> str | None:
    """Canonical capability name (upper case, no CAP_ prefix); None for non-strings.

    ALL is a keyword, not a capability: runtimes do not read CAP_ALL as ALL.
    """
    if not isinstance(value, str):
        return None
    name = value.strip().upper()
    return name if name == "CAP_ALL" else name.removeprefix("CAP_")


def _caps(container: Container) -> Mapping[str, Any]:
    return mapping(container.security_context().get("capabilities"))


def _caps_path(container: Container, key: str) -> Path:
    return (*container.path, "securityContext", "capabilities", key)


def added_caps(container: Container) -> Iterator[tuple[int, Any, str | None]]:
    """(index, raw value, canonical name) of each capabilities.add entry."""
    for index, raw in enumerate(sequence(_caps(container).get("add"))):
        yield index, raw, cap_name(raw)


def _with_pod(obj: K8sObject) -> Iterator[tuple[PodSpec, Container]]:
    pod = pod_spec(obj)
    if pod is not None:
        for container in containers(pod):
            yield pod, container


def _sc_path(container: Container, key: str) -> Path:
    return (*container.path, "securityContext", key)


@predicate("privilege_escalation_explicit")
def privilege_escalation_explicit(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """allowPrivilegeEscalation: true, or privileged / SYS_ADMIN, which imply it."""
    for _pod, container in _with_pod(obj):
        reason = _escalation_reason(container)
        if reason is not None:
            yield Violation(f"{container.label} {reason[0]}", reason[1])


def _escalation_reason(container: Container) -> tuple[str, Path] | None:
    sc = container.security_context()
    if sc.get("allowPrivilegeEscalation") is True:
        return (
            "sets securityContext.allowPrivilegeEscalation: true",
            _sc_path(container, "allowPrivilegeEscalation"),
        )
    if sc.get("privileged") is True:
        return (
            "is privileged, which allows privilege escalation",
            _sc_path(container, "privileged"),
        )
    for index, raw, name in added_caps(container):
        if name == "SYS_ADMIN":
            return (
                f"adds capability {raw}, which allows privilege escalation",
                (*_caps_path(container, "add"), index),
            )
    return None


@predicate("may_run_as_root")
def may_run_as_root(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """Effective runAsUser 0, or neither runAsNonRoot: true nor runAsUser > 0 in effect."""
    for pod, container in _with_pod(obj):
        user, user_path = effective(container, pod, "runAsUser")
        non_root, non_root_path = effective(container, pod, "runAsNonRoot")
        if _is_uid(user) and user == 0:
            yield Violation(f"{container.label} runs as root: runAsUser is 0", user_path)
        elif non_root is not True and not (_is_uid(user) and user > 0):
            yield Violation(
                f"{container.label} may run as root: runAsNonRoot is {show(non_root)}"
                f" and runAsUser is {show(user)}",
                non_root_path,
            )


@predicate("run_as_user_not_high")
def run_as_user_not_high(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """Effective runAsUser unset or not above params.above (a user namespace is exempt)."""
    above = int(params.get("above", 10000))
    pod = pod_spec(obj)
    if pod is None or pod.host_users_false:  # user namespace: no collision with host UIDs
        return
    for container in containers(pod):
        user, path = effective(container, pod, "runAsUser")
        if not (_is_uid(user) and user > above):
            yield Violation(
                f"{container.label} has runAsUser {show(user)}; use a UID above {above}", path
            )


@predicate("run_as_group_root")
def run_as_group_root(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """runAsGroup: 0 in the pod securityContext or in any container's."""
    pod = pod_spec(obj)
    if pod is None:
        return
    if _is_root_id(pod.security_context().get("runAsGroup")):
        yield Violation("pod securityContext sets runAsGroup: 0", (*pod.sc_path, "runAsGroup"))
    for container in containers(pod):
        if _is_root_id(container.security_context().get("runAsGroup")):
            yield Violation(
                f"{container.label} sets securityContext.runAsGroup: 0",
                _sc_path(container, "runAsGroup"),
            )


def _is_root_id(value: Any) -> bool:
    return _is_uid(value) and value == 0


@predicate("readonly_root_fs_not_set")
def readonly_root_fs_not_set(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """readOnlyRootFilesystem is not true on some container (there is no pod-level field)."""
    for _pod, container in _with_pod(obj):
        value = container.security_context().get("readOnlyRootFilesystem")
        if value is not True:
            yield Violation(
                f"{container.label} has securityContext.readOnlyRootFilesystem {show(value)},"
                " not true",
                _sc_path(container, "readOnlyRootFilesystem"),
            )


@predicate("capabilities_added")
def capabilities_added(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """Some container lists any capability under capabilities.add."""
    for _pod, container in _with_pod(obj):
        added = [str(raw) for _index, raw, _name in added_caps(container)]
        if added:
            yield Violation(
                f"{container.label} adds capabilities: {', '.join(added)}",
                _caps_path(container, "add"),
            )


@predicate("capabilities_add_forbidden")
def capabilities_add_forbidden(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """capabilities.add holds one of params.names (canonical names, e.g. SYS_ADMIN, ALL)."""
    forbidden = {cap_name(name) for name in params["names"]}
    for _pod, container in _with_pod(obj):
        for index, raw, name in added_caps(container):
            if name in forbidden:
                yield Violation(
                    f"{container.label} adds capability {raw}",
                    (*_caps_path(container, "add"), index),
                )


@predicate("capabilities_drop_missing")
def capabilities_drop_missing(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """capabilities.drop holds none of params.any_of (e.g. [ALL] or [NET_RAW, ALL]).

    Windows pods are exempt: Linux capabilities do not exist there, and the API server
    rejects securityContext.capabilities in a pod with spec.os.name: windows."""
    wanted = [str(name) for name in params["any_of"]]
    accepted = {cap_name(name) for name in wanted}
    for pod, container in _with_pod(obj):
        if pod.is_windows:
            continue
        dropped = sequence(_caps(container).get("drop"))
        if not any(cap_name(raw) in accepted for raw in dropped):
            shown = ", ".join(str(raw) for raw in dropped) or "none"
            yield Violation(
                f"{container.label} does not drop {' or '.join(wanted)} (drop: {shown})",
                _caps_path(container, "drop"),
            )


@predicate("seccomp_not_runtime_default")
def seccomp_not_runtime_default(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """Some container's effective seccomp profile is not RuntimeDefault (Localhost fails too)."""
    for pod, container in _with_pod(obj):
        profile, shown, path = effective_seccomp(container, pod)
        if profile != RUNTIME_DEFAULT:
            yield Violation(
                f"{container.label} does not use the RuntimeDefault seccomp profile ({shown})",
                path,
            )


def effective_seccomp(container: Container, pod: PodSpec) -> tuple[Any, str, Path]:
    """(profile type, how it was set, path) as the kubelet resolves it.

    Order: container field, container legacy annotation, pod field, pod legacy annotation
    (the API server copied each annotation into its field when the field was unset).
    """
    found = (
        _seccomp_field(container.security_context(), _sc_path(container, "seccompProfile"))
        or _seccomp_annotation(pod, CONTAINER_SECCOMP_ANNOTATION + container.name)
        or _seccomp_field(pod.security_context(), (*pod.sc_path, "seccompProfile"))
        or _seccomp_annotation(pod, POD_SECCOMP_ANNOTATION)
    )
    return found or (None, "none set", _sc_path(container, "seccompProfile"))


def _seccomp_field(sc: Mapping[str, Any], path: Path) -> tuple[Any, str, Path] | None:
    kind = mapping(sc.get("seccompProfile")).get("type")
    if kind is None:
        return None
    return kind, f"seccompProfile.type {show(kind)}", (*path, "type")


def _seccomp_annotation(pod: PodSpec, key: str) -> tuple[Any, str, Path] | None:
    value = mapping(pod.metadata.get("annotations")).get(key)
    if not isinstance(value, str):
        return None
    kind = _ANNOTATION_TYPES.get(value, "Localhost" if value.startswith("localhost/") else value)
    return kind, f'annotation {key}: "{value}"', (*pod.metadata_path, "annotations", key)
