"""securityContext patches for posture findings, as data: rule id -> the fields that fix it.

A fix is a strategic-merge fragment for the pod spec and one for each named container. A value
of None deletes the field (``kubectl patch`` sends it as JSON null), which is how a fix removes
what a rule forbids, such as every added capability. Rules whose fix is not a securityContext
change (hostPath volumes, image tags, resources, probes) are not listed: the plan points to
their remediation instead of inventing a patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from kubesentinel.static.podspec import POD_TEMPLATE_PATHS

__all__ = ["FIXES", "NON_ROOT_ID", "Fix", "HardeningPatch", "builtin_remediations", "patch_for"]

# Above 10000 (KS-0024), so it cannot be a real user of the node; the image must run as it.
NON_ROOT_ID: Final = 10001


@dataclass(frozen=True, slots=True)
class Fix:
    pod: Mapping[str, Any] = field(default_factory=dict)  # merged into the pod spec
    container: Mapping[str, Any] = field(default_factory=dict)  # merged into each named container
    # Template annotations per named container: "{name}" is replaced by the container's name.
    container_annotations: Mapping[str, None] = field(default_factory=dict)
    note: str = ""  # what the fix may change in the application's behaviour, for the step's why


def _sc(**fields: Any) -> Mapping[str, Any]:
    return {"securityContext": fields}


def _both(note: str = "", **fields: Any) -> Fix:
    """The same securityContext fields at pod and container level (the container's win)."""
    return Fix(pod=_sc(**fields), container=_sc(**fields), note=note)


# Profiles: clear localhostProfile too, which the API rejects beside any type but Localhost.
_RUNTIME_DEFAULT = {"type": "RuntimeDefault", "localhostProfile": None}
_NO_ADDED_CAPS = _sc(capabilities={"add": None})
_CAPS_NOTE = "it removes every added capability (add NET_BIND_SERVICE back for a port below 1024)"
_UID_NOTE = f"it runs the containers as UID {NON_ROOT_ID}, which the image must support"
_GID_NOTE = f"it runs the containers with GID {NON_ROOT_ID}, which the image's files must allow"
_NON_ROOT_NOTE = "the kubelet will not start a container whose image user is root (UID 0)"

FIXES: Final[Mapping[str, Fix]] = MappingProxyType({
    "KS-0001": Fix(container=_sc(privileged=False)),
    "KS-0002": Fix(pod={"hostPID": False}),
    "KS-0003": Fix(pod={"hostIPC": False}),
    "KS-0004": Fix(
        pod={"hostNetwork": False},
        note="the pods leave the node's network: expose their ports through a Service",
    ),
    "KS-0007": Fix(container=_NO_ADDED_CAPS, note=_CAPS_NOTE),
    "KS-0008": _both(seccompProfile=_RUNTIME_DEFAULT),
    "KS-0009": Fix(
        pod=_sc(appArmorProfile=_RUNTIME_DEFAULT),
        container=_sc(appArmorProfile=_RUNTIME_DEFAULT),
        # The legacy annotation must go too: the API rejects one that contradicts the field.
        container_annotations={"container.apparmor.security.beta.kubernetes.io/{name}": None},
    ),
    "KS-0010": _both(seLinuxOptions={"user": None, "role": None, "type": None}),
    "KS-0011": Fix(container=_sc(procMount="Default")),
    "KS-0013": _both(windowsOptions={"hostProcess": False}),
    "KS-0016": Fix(container=_sc(allowPrivilegeEscalation=False)),
    "KS-0017": _both(_NON_ROOT_NOTE, runAsNonRoot=True),
    "KS-0018": _both(_UID_NOTE, runAsUser=NON_ROOT_ID),
    "KS-0019": _both(seccompProfile=_RUNTIME_DEFAULT),
    "KS-0020": Fix(container=_sc(capabilities={"drop": ["ALL"], "add": None}), note=_CAPS_NOTE),
    "KS-0021": Fix(container=_sc(procMount="Default")),
    "KS-0022": Fix(
        container=_sc(allowPrivilegeEscalation=False, privileged=False, capabilities={"add": None}),
        note=_CAPS_NOTE,
    ),
    "KS-0023": _both(_NON_ROOT_NOTE, runAsNonRoot=True),
    "KS-0024": _both(_UID_NOTE, runAsUser=NON_ROOT_ID),
    "KS-0025": _both(_GID_NOTE, runAsGroup=NON_ROOT_ID),
    "KS-0026": Fix(
        container=_sc(readOnlyRootFilesystem=True),
        note="the root filesystem becomes read-only: mount an emptyDir where the app writes",
    ),
    "KS-0027": Fix(container=_NO_ADDED_CAPS, note=_CAPS_NOTE),
    "KS-0028": Fix(container=_sc(capabilities={"drop": ["ALL"]})),
    "KS-0029": Fix(container=_sc(capabilities={"drop": ["ALL"]})),
    "KS-0030": Fix(container=_NO_ADDED_CAPS, note=_CAPS_NOTE),
    "KS-0031": Fix(container=_NO_ADDED_CAPS, note=_CAPS_NOTE),
    "KS-0032": Fix(container=_NO_ADDED_CAPS, note=_CAPS_NOTE),
    "KS-0033": _both(seccompProfile=_RUNTIME_DEFAULT),
    "KS-0051": Fix(
        pod={"automountServiceAccountToken": False},
        note="the pods get no API token: a workload that calls the API needs a projected one",
    ),
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class HardeningPatch:
    document: Mapping[str, Any]  # the strategic-merge patch, with apiVersion, kind and metadata
    fixed: tuple[str, ...]  # rule ids the patch fixes in full
    # Rule ids whose container-level part is missing because no container was named.
    needs_containers: tuple[str, ...] = ()


def patch_for(
    rule_ids: Iterable[str],
    *,
    api_version: str,
    kind: str,
    name: str,
    namespace: str,
    containers: Sequence[str] = (),
    init_containers: Sequence[str] = (),
) -> HardeningPatch | None:
    """The patch fixing the rules of ``rule_ids`` that FIXES covers; None when it covers none or
    the kind has no pod template."""
    template_path = POD_TEMPLATE_PATHS.get(kind)
    covered = [rule_id for rule_id in dict.fromkeys(rule_ids) if rule_id in FIXES]
    if template_path is None or not covered:
        return None
    pod: dict[str, Any] = {}
    container: dict[str, Any] = {}
    annotations: dict[str, None] = {}
    for rule_id in covered:
        fix = FIXES[rule_id]
        _merge_into(pod, fix.pod)
        _merge_into(container, fix.container)
        for each in (*containers, *init_containers):
            annotations.update({key.format(name=each): None for key in fix.container_annotations})
    named = bool(containers or init_containers)
    if named and container:
        if containers:
            pod["containers"] = [{"name": each, **_copy(container)} for each in containers]
        if init_containers:
            pod["initContainers"] = [{"name": each, **_copy(container)} for each in init_containers]
    needs = () if named else tuple(r for r in covered if FIXES[r].container)
    template: dict[str, Any] = {"metadata": {"annotations": annotations}} if annotations else {}
    template["spec"] = pod
    body: dict[str, Any] = template if not template_path else _nest(template_path, template)
    document = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, **body.pop("metadata", {})},
        **body,
    }
    fixed = tuple(r for r in covered if r not in needs)
    return HardeningPatch(document, fixed, needs)


def _merge_into(target: dict[str, Any], fragment: Mapping[str, Any]) -> None:
    """Merge a fragment of the table into a patch being built: maps merge, others replace."""
    for key, value in fragment.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = _copy(value)


def _copy(value: Any) -> Any:
    """A plain, unshared copy (the table is read-only and shared; YAML dumps plain types)."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _nest(path: Sequence[str | int], leaf: dict[str, Any]) -> dict[str, Any]:
    node = leaf
    for step in reversed(path):
        node = {str(step): node}
    return node


@lru_cache(maxsize=1)
def builtin_remediations() -> Mapping[str, str]:
    """Rule id -> remediation of the built-in rules, from their bundle (read once)."""
    from kubesentinel.static import rulebundle

    rules = rulebundle.load(rulebundle.BUNDLE.read_bytes(), rulebundle.BUNDLE.parent / "rules")
    if rules is None:  # a bundle of another layout: read the YAML files
        from kubesentinel.static.catalogue import builtin_catalogue

        rules = builtin_catalogue().rules
    return MappingProxyType({rule.id: rule.remediation for rule in rules})
