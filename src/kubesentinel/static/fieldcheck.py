"""Warn about unknown fields in pod specs, containers and security contexts.

A typo such as ``runAsNonroot`` silently drops a security setting wherever the API server does
not validate strictly (older kubectl, ``--validate=false``, some GitOps tools), and no rule can
see the misspelt field. Field lists: Kubernetes v1.34 core/v1 types.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kubesentinel.errors import InputError
from kubesentinel.models import K8sObject
from kubesentinel.static.locate import line_of
from kubesentinel.static.podspec import Path, containers, format_path, pod_spec

POD_SPEC_FIELDS = frozenset(
    [
        "activeDeadlineSeconds",
        "affinity",
        "automountServiceAccountToken",
        "containers",
        "dnsConfig",
        "dnsPolicy",
        "enableServiceLinks",
        "ephemeralContainers",
        "hostAliases",
        "hostIPC",
        "hostNetwork",
        "hostPID",
        "hostUsers",
        "hostname",
        "hostnameOverride",
        "imagePullSecrets",
        "initContainers",
        "nodeName",
        "nodeSelector",
        "os",
        "overhead",
        "preemptionPolicy",
        "priority",
        "priorityClassName",
        "readinessGates",
        "resourceClaims",
        "resources",
        "restartPolicy",
        "runtimeClassName",
        "schedulerName",
        "schedulingGates",
        "securityContext",
        "serviceAccount",
        "serviceAccountName",
        "setHostnameAsFQDN",
        "shareProcessNamespace",
        "subdomain",
        "terminationGracePeriodSeconds",
        "tolerations",
        "topologySpreadConstraints",
        "volumes",
    ]
)
CONTAINER_FIELDS = frozenset(
    [
        "args",
        "command",
        "env",
        "envFrom",
        "image",
        "imagePullPolicy",
        "lifecycle",
        "livenessProbe",
        "name",
        "ports",
        "readinessProbe",
        "resizePolicy",
        "resources",
        "restartPolicy",
        "restartPolicyRules",
        "securityContext",
        "startupProbe",
        "stdin",
        "stdinOnce",
        "targetContainerName",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "tty",
        "volumeDevices",
        "volumeMounts",
        "workingDir",
    ]
)
SECURITY_CONTEXT_FIELDS = frozenset(
    [
        "allowPrivilegeEscalation",
        "appArmorProfile",
        "capabilities",
        "privileged",
        "procMount",
        "readOnlyRootFilesystem",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile",
        "windowsOptions",
    ]
)
POD_SECURITY_CONTEXT_FIELDS = frozenset(
    [
        "appArmorProfile",
        "fsGroup",
        "fsGroupChangePolicy",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxChangePolicy",
        "seLinuxOptions",
        "seccompProfile",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "sysctls",
        "windowsOptions",
    ]
)


def unknown_fields(obj: K8sObject) -> Iterator[InputError]:
    pod = pod_spec(obj)
    if pod is None:
        return
    yield from _check(obj, pod.spec, pod.path, POD_SPEC_FIELDS, "pod spec")
    yield from _check(obj, pod.security_context(), pod.sc_path, POD_SECURITY_CONTEXT_FIELDS,
                      "pod securityContext")  # fmt: skip
    for container in containers(pod):
        yield from _check(obj, container.spec, container.path, CONTAINER_FIELDS, container.label)
        sc_path = (*container.path, "securityContext")
        yield from _check(obj, container.security_context(), sc_path, SECURITY_CONTEXT_FIELDS,
                          f"securityContext of {container.label}")  # fmt: skip


def _check(
    obj: K8sObject, node: Mapping[str, Any], path: Path, known: frozenset[str], where: str
) -> Iterator[InputError]:
    for key in node:
        if key in known:
            continue
        import difflib  # only for a misspelt field

        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else None
        yield InputError(
            f"unknown field {key!r} in {where} of {obj.ref} ({format_path((*path, key))}); "
            "it has no effect and no rule can check it",
            file=obj.source.file,
            line=line_of(obj.body, (*path, key), obj.source.line),
            hint=hint,
            code="KS-W002",
        )
