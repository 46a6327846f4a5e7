"""Version-aware Pod Security Standards rules: the same manifest at different policy versions.

Each case names the rule, a pod spec, and the policy versions where PSA rejects or admits it;
the boundaries are the MinimumVersion values of kubernetes/pod-security-admission's checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from kubesentinel.models import K8sObject, Severity, SourceRef
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.context import ScanContext
from kubesentinel.static.engine import evaluate

PSS_RULES = tuple(f"KS-{n:04d}" for n in range(3, 22))


def _pod(spec: str, annotations: dict[str, str] | None = None) -> K8sObject:
    metadata: dict[str, Any] = {"name": "p"}
    if annotations:
        metadata["annotations"] = annotations
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": yaml.safe_load(spec)}
    return K8sObject("v1", "Pod", None, "p", body, SourceRef("pod.yaml", 0, None, 1))


def _messages(obj: K8sObject, rule_id: str, version: tuple[int, int]) -> list[str]:
    ctx = ScanContext.build([obj], pss_version=version)
    findings = evaluate([obj], builtin_catalogue(), ctx)
    return [f.message for f in findings if f.rule_id == rule_id]


def _sysctl(name: str) -> str:
    return f"""
securityContext:
  sysctls: [{{name: {name}, value: "1"}}]
containers: [{{name: app, image: app:1}}]
"""


USER_NS = """
hostUsers: false
securityContext: {runAsNonRoot: false, runAsUser: 0}
containers:
  - name: app
    image: app:1
    securityContext: {procMount: Unmasked}
"""
WINDOWS = """
os: {name: windows}
containers: [{name: app, image: app:1}]
"""
ANNOTATED = "containers: [{name: app, image: app:1}]"
SECCOMP_FIELD = """
securityContext:
  seccompProfile: {type: Unconfined}
containers: [{name: app, image: app:1}]
"""
SELINUX_ENGINE = """
containers:
  - name: app
    image: app:1
    securityContext:
      seLinuxOptions: {type: container_engine_t}
"""
PROBE_HOST = """
containers:
  - name: app
    image: app:1
    livenessProbe:
      httpGet: {host: 10.0.0.1, port: 80}
"""
ROOT_UID = """
containers:
  - name: app
    image: app:1
    securityContext: {runAsUser: 0}
"""
NO_CAPS = "containers: [{name: app, image: app:1}]"


@dataclass(frozen=True)
class Case:
    rule_id: str
    spec: str
    since: tuple[int, int]  # first policy version with the new behaviour
    before: tuple[int, int]  # a version before it
    rejects: bool  # whether the newer version rejects the pod (else only the older one does)
    annotations: dict[str, str] | None = None


CASES = [
    Case("KS-0012", _sysctl("net.ipv4.ip_local_reserved_ports"), (1, 27), (1, 26), False),
    Case("KS-0012", _sysctl("net.ipv4.tcp_keepalive_time"), (1, 29), (1, 26), False),
    Case("KS-0012", _sysctl("net.ipv4.tcp_fin_timeout"), (1, 29), (1, 28), False),
    Case("KS-0012", _sysctl("net.ipv4.tcp_rmem"), (1, 32), (1, 31), False),
    Case("KS-0012", _sysctl("net.ipv4.tcp_notsent_lowat"), (1, 37), (1, 36), False),
    Case("KS-0010", SELINUX_ENGINE, (1, 31), (1, 30), False),
    Case("KS-0014", PROBE_HOST, (1, 34), (1, 33), True),
    Case("KS-0011", USER_NS, (1, 35), (1, 34), False),
    Case("KS-0017", USER_NS, (1, 35), (1, 34), False),
    Case("KS-0018", USER_NS, (1, 35), (1, 34), False),
    Case("KS-0018", ROOT_UID, (1, 23), (1, 22), True),
    Case("KS-0008", SECCOMP_FIELD, (1, 19), (1, 18), True),
    Case(
        "KS-0008",
        ANNOTATED,
        (1, 19),
        (1, 18),
        False,
        {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
    ),
    Case(
        "KS-0008",
        ANNOTATED,
        (1, 19),
        (1, 18),
        False,
        {"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"},
    ),
    Case("KS-0016", WINDOWS, (1, 25), (1, 24), False),
    Case("KS-0016", NO_CAPS, (1, 8), (1, 7), True),
    Case("KS-0019", WINDOWS, (1, 25), (1, 24), False),
    Case("KS-0019", NO_CAPS, (1, 19), (1, 18), True),
    Case("KS-0020", WINDOWS, (1, 25), (1, 24), False),
    Case("KS-0020", NO_CAPS, (1, 22), (1, 21), True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule_id}-v{c.since[0]}.{c.since[1]}")
def test_behaviour_changes_at_the_policy_version(case: Case) -> None:
    obj = _pod(case.spec, case.annotations)
    assert bool(_messages(obj, case.rule_id, case.since)) is case.rejects
    assert bool(_messages(obj, case.rule_id, case.before)) is not case.rejects


def test_restricted_proc_mount_ignores_host_users_at_every_version() -> None:
    obj = _pod(USER_NS)
    for version in ((1, 0), (1, 34), (1, 35), (1, 37)):
        assert _messages(obj, "KS-0021", version) == [
            'container "app" sets securityContext.procMount to "Unmasked"'
        ]


def test_legacy_seccomp_annotation_message_names_the_annotation() -> None:
    obj = _pod(ANNOTATED, {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    assert _messages(obj, "KS-0008", (1, 18)) == [
        'annotation seccomp.security.alpha.kubernetes.io/pod is "unconfined"'
    ]


def test_default_version_is_the_latest_policy() -> None:
    obj = _pod(_sysctl("net.ipv4.tcp_slow_start_after_idle"))
    findings = evaluate([obj], builtin_catalogue(), ScanContext.build([obj]))
    assert [f for f in findings if f.rule_id == "KS-0012"] == []


HARDENED = """
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  seccompProfile: {type: RuntimeDefault}
initContainers:
  - name: setup
    image: app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
containers:
  - name: app
    image: app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      seccompProfile: {type: Localhost, localhostProfile: profiles/app.json}
"""


@pytest.mark.parametrize("version", [(1, 22), (1, 25), (1, 30), (1, 35), (1, 37)])
def test_hardened_pod_raises_no_pss_finding(version: tuple[int, int]) -> None:
    obj = _pod(HARDENED)
    findings = evaluate([obj], builtin_catalogue(), ScanContext.build([obj], pss_version=version))
    assert [f for f in findings if f.rule_id in PSS_RULES and f.severity >= Severity.LOW] == []


MALFORMED = """
hostUsers: [false]
os: windows
securityContext:
  sysctls: [{name: {a: 1}}, [x], {name: 7}]
  seccompProfile: {type: [RuntimeDefault]}
  seLinuxOptions: [container_t]
  windowsOptions: true
  runAsUser: no
volumes: [{name: v, hostPath: /etc}, x]
containers:
  - name: app
    image: app:1
    ports: [{hostPort: true}, 80]
    livenessProbe: {httpGet: [host]}
    lifecycle: {postStart: {tcpSocket: {host: 0}}}
    securityContext:
      capabilities: {add: [{SYS_ADMIN: true}], drop: ALL}
      appArmorProfile: Unconfined
  - just a string
"""


def test_malformed_manifest_is_judged_without_crashing() -> None:
    obj = _pod(MALFORMED)
    findings = evaluate([obj], builtin_catalogue(), ScanContext.build([obj]))
    by_rule = {(f.rule_id, f.message) for f in findings if f.rule_id in PSS_RULES}
    assert ("KS-0012", "pod sets unsafe sysctl 7") in by_rule
    assert ("KS-0005", 'volume "v" uses hostPath') in by_rule
    assert ("KS-0018", "pod sets securityContext.runAsUser: 0") not in by_rule
    assert any(rule == "KS-0020" and "does not drop" in msg for rule, msg in by_rule)
