"""Pod Security Standards, Baseline profile, as kubernetes/pod-security-admission checks it.

Each predicate mirrors one ``policy/check_*.go``: same fields, same containers (containers,
initContainers and ephemeralContainers, as ``visitContainers`` walks them), same allowed
values, and the policy version each behaviour starts at (``ctx.pss_version``, latest v1.37).
Values are compared exactly as the Go structs would hold them: ``True`` only for booleans,
integers that are not booleans, and names matched case-sensitively.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import Path, PodSpec, containers, mapping, pod_spec, sequence
from kubesentinel.static.predicates import Params, Violation, predicate

# check_capabilities_baseline.go, one set since v1.0 (Docker's default set minus NET_RAW).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)

# check_sysctls.go: the safe set grows with the policy version; each entry is (since, names).
SAFE_SYSCTLS: tuple[tuple[tuple[int, int], frozenset[str]], ...] = (
    (
        (1, 0),
        frozenset(
            {
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            }
        ),
    ),
    ((1, 27), frozenset({"net.ipv4.ip_local_reserved_ports"})),
    (
        (1, 29),
        frozenset(
            {
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            }
        ),
    ),
    ((1, 32), frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})),
    ((1, 37), frozenset({"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})),
)

# check_seLinuxOptions.go: container_engine_t is allowed from v1.31.
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES | {"container_engine_t"}

ALLOWED_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HOOKS = ("postStart", "preStop")


def show(value: Any) -> str:
    """A manifest value as it reads in YAML: true, 0, "Unconfined"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def is_int(value: Any) -> bool:
    """An integer as Go decodes one (YAML ``yes`` is a boolean, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def setters(pod: PodSpec) -> Iterator[tuple[str, Mapping[str, Any], Path]]:
    """The pod and every container, each with its securityContext and that context's path."""
    yield "pod", pod.security_context(), pod.sc_path
    for container in containers(pod):
        yield container.label, container.security_context(), (*container.path, "securityContext")


def volumes(pod: PodSpec) -> Iterator[tuple[str, Mapping[str, Any], Path]]:
    """Each entry of spec.volumes: its name for messages, the entry, and its path."""
    for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
        if isinstance(volume, dict):
            name = volume.get("name")
            label = f'volume "{name}"' if name is not None else f"volumes[{index}]"
            yield label, volume, (*pod.path, "volumes", index)


def profile_type(
    who: str, context: Mapping[str, Any], sc_path: Path, field: str
) -> Violation | None:
    """A seccompProfile/appArmorProfile whose type is not RuntimeDefault or Localhost.

    An empty profile counts as type "" and is rejected, as the Go check does.
    """
    profile = context.get(field)
    if profile is None:
        return None
    kind = mapping(profile).get("type") or ""
    if isinstance(kind, str) and kind in ALLOWED_PROFILE_TYPES:
        return None
    path = (*sc_path, field, "type") if "type" in mapping(profile) else (*sc_path, field)
    return Violation(f"{who} sets securityContext.{field}.type to {show(kind)}", path)


def proc_mount_violations(pod: PodSpec) -> Iterator[Violation]:
    """procMount_1_0: every container's procMount must be unset or "Default"."""
    for container in containers(pod):
        value = container.security_context().get("procMount")
        if value is not None and value != "Default":
            yield Violation(
                f"{container.label} sets securityContext.procMount to {show(value)}",
                (*container.path, "securityContext", "procMount"),
            )


@predicate("pss_host_path_volumes")
def host_path_volumes(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_hostPathVolumes.go: no spec.volumes[*].hostPath (v1.0+)."""
    pod = pod_spec(obj)
    for label, volume, path in volumes(pod) if pod else ():
        if volume.get("hostPath") is not None:
            host_path = mapping(volume["hostPath"]).get("path")
            shown = f" {show(host_path)}" if host_path is not None else ""
            yield Violation(f"{label} uses hostPath{shown}", (*path, "hostPath"))


@predicate("pss_host_ports")
def host_ports(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_hostPorts.go: every container's ports[*].hostPort unset or 0 (v1.0+)."""
    pod = pod_spec(obj)
    for container in containers(pod) if pod else ():
        for index, port in enumerate(sequence(container.spec.get("ports"))):
            host_port = mapping(port).get("hostPort")
            if host_port is not None and host_port != 0 and not isinstance(host_port, bool):
                yield Violation(
                    f"{container.label} sets hostPort: {host_port}",
                    (*container.path, "ports", index, "hostPort"),
                )


@predicate("pss_capabilities_baseline")
def capabilities_baseline(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_capabilities_baseline.go: capabilities.add within the default set, exact names."""
    pod = pod_spec(obj)
    for container in containers(pod) if pod else ():
        caps = mapping(container.security_context().get("capabilities"))
        for index, cap in enumerate(sequence(caps.get("add"))):
            if not isinstance(cap, str) or cap not in BASELINE_CAPABILITIES:
                yield Violation(
                    f"{container.label} adds capability {show(cap)} beyond the baseline set",
                    (*container.path, "securityContext", "capabilities", "add", index),
                )


@predicate("pss_seccomp_baseline")
def seccomp_baseline(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_seccompProfile_baseline.go: annotations before v1.19, the field from v1.19."""
    pod = pod_spec(obj)
    if pod is None:
        return
    if not ctx.pss_at_least(1, 19):
        yield from _seccomp_annotations(pod)
        return
    for who, context, sc_path in setters(pod):
        violation = profile_type(who, context, sc_path, "seccompProfile")
        if violation:
            yield violation


def _seccomp_annotations(pod: PodSpec) -> Iterator[Violation]:
    """v1.0-v1.18: the pod and per-container annotations allow runtime/default,
    docker/default and localhost/*."""
    annotations = mapping(pod.metadata.get("annotations"))
    keys = [SECCOMP_POD_ANNOTATION]
    keys += [SECCOMP_CONTAINER_ANNOTATION + c.name for c in containers(pod)]
    for key in keys:
        value = annotations.get(key)
        if key not in annotations or (
            isinstance(value, str)
            and (value in ("runtime/default", "docker/default") or value.startswith("localhost/"))
        ):
            continue
        path = (*pod.metadata_path, "annotations", key)
        yield Violation(f"annotation {key} is {show(value)}", path)


@predicate("pss_apparmor")
def apparmor(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_appArmorProfile.go (one version since v1.0, fields read since Kubernetes 1.30):
    appArmorProfile.type RuntimeDefault/Localhost; legacy annotations empty, runtime/default
    or localhost/*."""
    pod = pod_spec(obj)
    if pod is None:
        return
    for who, context, sc_path in setters(pod):
        violation = profile_type(who, context, sc_path, "appArmorProfile")
        if violation:
            yield violation
    for key, value in mapping(pod.metadata.get("annotations")).items():
        text = "" if value is None else str(value)
        if str(key).startswith(APPARMOR_ANNOTATION) and not (
            text in ("", "runtime/default") or text.startswith("localhost/")
        ):
            yield Violation(
                f"annotation {key} is {show(value)}", (*pod.metadata_path, "annotations", key)
            )


@predicate("pss_selinux_options")
def selinux_options(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_seLinuxOptions.go: type in the allowed set, user and role empty, pod and containers."""
    pod = pod_spec(obj)
    allowed = SELINUX_TYPES_1_31 if ctx.pss_at_least(1, 31) else SELINUX_TYPES
    for who, context, sc_path in setters(pod) if pod else ():
        options = mapping(context.get("seLinuxOptions"))
        for key in ("type", "user", "role"):
            value = options.get(key)
            text = "" if value is None else str(value)
            if (key == "type" and text not in allowed) or (key != "type" and text):
                yield Violation(
                    f"{who} sets securityContext.seLinuxOptions.{key} to {show(value)}",
                    (*sc_path, "seLinuxOptions", key),
                )


@predicate("pss_proc_mount_baseline")
def proc_mount_baseline(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_procMount_baseline.go: procMount unset or Default; from v1.35 any value is allowed
    when spec.hostUsers is false (the pod runs in a user namespace)."""
    pod = pod_spec(obj)
    if pod is None or (ctx.pss_at_least(1, 35) and pod.host_users_false):
        return
    yield from proc_mount_violations(pod)


@predicate("pss_sysctls")
def sysctls(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_sysctls.go: spec.securityContext.sysctls[*].name within the version's safe set."""
    pod = pod_spec(obj)
    if pod is None:
        return
    safe = frozenset().union(*(names for since, names in SAFE_SYSCTLS if ctx.pss_version >= since))
    for index, sysctl in enumerate(sequence(pod.security_context().get("sysctls"))):
        name = mapping(sysctl).get("name")
        if name is not None and not (isinstance(name, str) and name in safe):
            yield Violation(
                f"pod sets unsafe sysctl {show(name)}", (*pod.sc_path, "sysctls", index, "name")
            )


@predicate("pss_windows_host_process")
def windows_host_process(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_windowsHostProcess.go (v1.0+): windowsOptions.hostProcess not true anywhere."""
    pod = pod_spec(obj)
    for who, context, sc_path in setters(pod) if pod else ():
        if mapping(context.get("windowsOptions")).get("hostProcess") is True:
            yield Violation(
                f"{who} sets securityContext.windowsOptions.hostProcess: true",
                (*sc_path, "windowsOptions", "hostProcess"),
            )


@predicate("pss_probe_host")
def probe_host(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """check_hostProbesAndhostLifecycle.go (v1.34+): no non-empty httpGet.host or tcpSocket.host
    in liveness/readiness/startup probes or postStart/preStop hooks."""
    pod = pod_spec(obj)
    if pod is None or not ctx.pss_at_least(1, 34):
        return
    for container in containers(pod):
        for where, handler in _handlers(container.spec):
            for action in ("httpGet", "tcpSocket"):
                host = mapping(handler.get(action)).get("host")
                if host is not None and host != "":
                    field = ".".join((*where, action, "host"))
                    yield Violation(
                        f"{container.label} sets {field} to {show(host)}",
                        (*container.path, *where, action, "host"),
                    )


def _handlers(spec: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """The container's probes and lifecycle hooks, each with its path below the container."""
    for name in PROBES:
        yield (name,), mapping(spec.get(name))
    lifecycle = mapping(spec.get("lifecycle"))
    for name in LIFECYCLE_HOOKS:
        yield ("lifecycle", name), mapping(lifecycle.get(name))
