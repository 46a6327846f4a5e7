"""Pod Security Standards, Restricted profile, as kubernetes/pod-security-admission checks it.

Same conventions as pss_baseline: every container list, exact values, and the policy version
each behaviour starts at. Windows pods (spec.os.name: windows) are exempt where the Go check
exempts them, from v1.25; spec.hostUsers: false relaxes runAsNonRoot and runAsUser from v1.35.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import PodSpec, containers, mapping, pod_spec, sequence
from kubesentinel.static.predicates import Params, Violation, predicate
from kubesentinel.static.predicates.pss_baseline import (
    is_int,
    proc_mount_violations,
    profile_type,
    setters,
    show,
    volumes,
)

# check_restrictedVolumes.go: the only inline sources allowed (image since Kubernetes 1.33, in
# the v1.0 function, so at every policy version). A volume without any source defaults to
# emptyDir and passes.
ALLOWED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
RESTRICTED_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def windows_exempt(pod: PodSpec, ctx: ScanContext) -> bool:
    """From v1.25 the Linux-only restricted checks skip pods with spec.os.name: windows."""
    return ctx.pss_at_least(1, 25) and pod.is_windows


def user_namespace_exempt(pod: PodSpec, ctx: ScanContext) -> bool:
    """From v1.35 runAsNonRoot/runAsUser are skipped for pods with spec.hostUsers: false."""
    return ctx.pss_at_least(1, 35) and pod.host_users_false


@predicate("pss_restricted_volumes")
def restricted_volumes(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_restrictedVolumes.go (v1.0+): every volume source outside the allowed set.

    A volume naming several sources is invalid for the API server; we report each restricted
    source in it rather than letting an allowed one hide it, as the Go switch would.
    """
    pod = pod_spec(obj)
    for label, volume, path in volumes(pod) if pod else ():
        for source in RESTRICTED_VOLUME_SOURCES:
            if volume.get(source) is not None:
                yield Violation(f"{label} uses restricted volume type {source}", (*path, source))


@predicate("pss_privilege_escalation")
def privilege_escalation(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_allowPrivilegeEscalation.go (v1.8+): every container sets it to exactly false."""
    pod = pod_spec(obj)
    if pod is None or not ctx.pss_at_least(1, 8) or windows_exempt(pod, ctx):
        return
    for container in containers(pod):
        value = container.security_context().get("allowPrivilegeEscalation")
        if value is not False:
            what = "does not set" if value is None else "sets"
            shown = "false" if value is None else show(value)
            yield Violation(
                f"{container.label} {what} securityContext.allowPrivilegeEscalation: {shown}",
                (*container.path, "securityContext", "allowPrivilegeEscalation"),
            )


@predicate("pss_run_as_non_root")
def run_as_non_root(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_runAsNonRoot.go (v1.0+): pod-level true covers unset containers; any explicit
    non-true value fails, a pod-level false even when every container sets true."""
    pod = pod_spec(obj)
    if pod is None or user_namespace_exempt(pod, ctx):
        return
    pod_value = pod.security_context().get("runAsNonRoot")
    if pod_value is not None and pod_value is not True:
        yield Violation(
            f"pod sets securityContext.runAsNonRoot: {show(pod_value)}",
            (*pod.sc_path, "runAsNonRoot"),
        )
    for container in containers(pod):
        value = container.security_context().get("runAsNonRoot")
        path = (*container.path, "securityContext", "runAsNonRoot")
        if value is None and pod_value is not True:
            yield Violation(
                f"{container.label} does not set securityContext.runAsNonRoot: true "
                "and the pod does not either",
                path,
            )
        elif value is not None and value is not True:
            shown = show(value)
            yield Violation(f"{container.label} sets securityContext.runAsNonRoot: {shown}", path)


@predicate("pss_run_as_user_root")
def run_as_user_root(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_runAsUser.go (v1.23+): runAsUser: 0 at pod or container level."""
    pod = pod_spec(obj)
    if pod is None or not ctx.pss_at_least(1, 23) or user_namespace_exempt(pod, ctx):
        return
    for who, context, sc_path in setters(pod):
        value = context.get("runAsUser")
        if is_int(value) and value == 0:
            yield Violation(f"{who} sets securityContext.runAsUser: 0", (*sc_path, "runAsUser"))


@predicate("pss_seccomp_restricted")
def seccomp_restricted(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_seccompProfile_restricted.go (v1.19+): each container's own profile, else the
    pod's, must be RuntimeDefault or Localhost; a bad pod-level type fails on its own."""
    pod = pod_spec(obj)
    if pod is None or not ctx.pss_at_least(1, 19) or windows_exempt(pod, ctx):
        return
    pod_context = pod.security_context()
    pod_bad = profile_type("pod", pod_context, pod.sc_path, "seccompProfile")
    if pod_bad:
        yield pod_bad
    pod_set = pod_context.get("seccompProfile") is not None
    pod_ok = pod_bad is None and pod_set
    pod_note = "the pod's is not allowed either" if pod_set else "the pod sets none"
    for container in containers(pod):
        context = container.security_context()
        sc_path = (*container.path, "securityContext")
        if context.get("seccompProfile") is not None:
            bad = profile_type(container.label, context, sc_path, "seccompProfile")
            if bad:
                yield bad
        elif not pod_ok:
            yield Violation(
                f"{container.label} has no seccompProfile of type RuntimeDefault or Localhost "
                f"and {pod_note}",
                (*sc_path, "seccompProfile"),
            )


@predicate("pss_capabilities_restricted")
def capabilities_restricted(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """check_capabilities_restricted.go (v1.22+): drop must list "ALL" and add may only hold
    "NET_BIND_SERVICE", both matched exactly."""
    pod = pod_spec(obj)
    if pod is None or not ctx.pss_at_least(1, 22) or windows_exempt(pod, ctx):
        return
    for container in containers(pod):
        caps = mapping(container.security_context().get("capabilities"))
        caps_path = (*container.path, "securityContext", "capabilities")
        if "ALL" not in sequence(caps.get("drop")):
            message = f'{container.label} does not drop "ALL" capabilities'
            yield Violation(message, (*caps_path, "drop"))
        for index, cap in enumerate(sequence(caps.get("add"))):
            if cap != "NET_BIND_SERVICE":
                yield Violation(
                    f"{container.label} adds capability {show(cap)} "
                    "(only NET_BIND_SERVICE is allowed)",
                    (*caps_path, "add", index),
                )


@predicate("pss_proc_mount_restricted")
def proc_mount_restricted(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_procMount_restricted.go: procMount unset or Default, whatever spec.hostUsers says.

    The check id exists from v1.35, when baseline started relaxing user-namespace pods; before
    that the baseline check already forbade it unconditionally, so Restricted always does.
    """
    pod = pod_spec(obj)
    if pod is not None:
        yield from proc_mount_violations(pod)
