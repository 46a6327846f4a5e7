"""Background noise: what an untuned Falco says all day about a healthy cluster."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

from kubesentinel.runtime.simulate.cluster import API_SERVER, Cluster, Pod
from kubesentinel.runtime.simulate.fields import connect, ephemeral_port, proc
from kubesentinel.runtime.simulate.plan import Target
from kubesentinel.runtime.simulate.render import Templates
from kubesentinel.runtime.simulate.workloads import BY_NAME

Variant = list[tuple[str, dict[str, Any]]]  # the alerts of one event: (rule, fields beyond pod's)
_NoiseFn = Callable[[random.Random, Pod], list[Variant]]


def _noise_packages(rng: random.Random, pod: Pod) -> list[Variant]:
    commands = (
        ("npm", "/usr/local/bin/npm", "npm ci --no-audit --prefer-offline", "sh"),
        ("npm", "/usr/local/bin/npm", "npm audit --json --omit=dev", "sh"),
        ("apt-get", "/usr/bin/apt-get", "apt-get update -qq", "sh"),
        ("apt-get", "/usr/bin/apt-get", "apt-get install -y --no-install-recommends jq", "sh"),
        ("dpkg", "/usr/bin/dpkg", "dpkg --status-fd 29 --configure --pending", "apt-get"),
        ("pip3", "/usr/bin/pip3", "pip3 install --no-cache-dir -r requirements-audit.txt", "sh"),
    )
    rule = "Launch Package Management Process in Container"
    return [[(rule, proc(*cmd, "node", "containerd-shim"))] for cmd in commands]


def _noise_downloads(rng: random.Random, pod: Pod) -> list[Variant]:
    trivy = (
        "https://github.com/aquasecurity/trivy/releases/download/v0.58.1/trivy_0.58.1_Linux-64bit"
    )
    commands = (
        ("curl", "/usr/bin/curl", f"curl -fsSL {trivy}.tar.gz -o /tmp/trivy.tgz"),
        ("wget", "/usr/bin/wget", "wget -q https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip"),
        ("curl", "/usr/bin/curl", "curl -sSfL https://registry.npmjs.org/-/npm/v1/security/advisories/"
         "bulk -o /tmp/advisories.json"),
    )  # fmt: skip
    rule = "Launch Ingress Remote File Copy Tools in Container"
    return [[(rule, proc(*cmd, "sh", "node", "containerd-shim"))] for cmd in commands]


def _noise_wal_archive(rng: random.Random, pod: Pod) -> list[Variant]:
    # archive_command runs a shell under postgres: two rules fire on the same execve.
    out: list[Variant] = []
    first = rng.randrange(0x30, 0xA0)
    for segment in range(first, first + 12):
        wal = f"0000000100000042000000{segment:02X}"
        archive = f"/var/lib/postgresql/wal-archive/{wal}"
        cmd = f"sh -c test ! -f {archive} && cp pg_wal/{wal} {archive}"
        fields = proc("sh", "/usr/bin/dash", cmd, "postgres", "postgres", "containerd-shim",
                      user=pod.workload.user, pexe="/usr/lib/postgresql/16/bin/postgres",
                      pcmdline="postgres: archiver archiving")  # fmt: skip
        out.append([("DB program spawned process", fields), ("Run shell untrusted", fields)])
    return out


def _noise_api_server(rng: random.Random, pod: Pod) -> list[Variant]:
    cmd = "/fluent-bit/bin/fluent-bit -c /fluent-bit/etc/conf/fluent-bit.conf"
    base = proc("fluent-bit", "/fluent-bit/bin/fluent-bit", cmd, "containerd-shim")
    rule = "Contact K8S API Server From Container"
    return [
        [(rule, base | connect(pod.ip, ephemeral_port(rng), API_SERVER, 443))] for _ in range(8)
    ]


def _noise_metadata(rng: random.Random, pod: Pod) -> list[Variant]:
    cmd = "/usr/local/bin/node-agent --config=/etc/node-agent/config.yaml"
    base = proc("node-agent", "/usr/local/bin/node-agent", cmd, "containerd-shim")
    rule = "Contact cloud metadata service from container"
    return [
        [(rule, base | connect(pod.ip, ephemeral_port(rng), "169.254.169.254", 80))]
        for _ in range(6)
    ]


def _noise_instance_credentials(rng: random.Random, pod: Pod) -> list[Variant]:
    # The AWS SDK in the cart asks the instance metadata service for credentials.
    cmd = "java -XX:MaxRAMPercentage=75 -jar /app/cart.jar"
    base = proc(
        "java", "/opt/java/openjdk/bin/java", cmd, "containerd-shim", user=pod.workload.user
    )
    rule = "Contact cloud metadata service from container"
    return [
        [(rule, base | connect(pod.ip, ephemeral_port(rng), "169.254.169.254", 80))]
        for _ in range(6)
    ]


def _noise_redirect(rng: random.Random, pod: Pod) -> list[Variant]:
    cmd = "bash -c cat < /dev/tcp/10.96.0.10/53"  # a developer's DNS check in staging
    fields = proc("bash", "/usr/bin/bash", cmd, "sh", "containerd-shim", user=pod.workload.user)
    fields |= connect(pod.ip, ephemeral_port(rng), "10.96.0.10", 53, evt_type="dup2")
    return [[("Redirect STDOUT/STDIN to Network Connection in Container", fields)]]


# (workload, weight, variants): weights are shares of the background rate.
_NOISE: Final[tuple[tuple[str, float, _NoiseFn], ...]] = (
    ("dependency-audit", 35.0, _noise_packages),
    ("dependency-audit", 10.0, _noise_downloads),
    ("postgres", 20.0, _noise_wal_archive),
    ("fluent-bit", 20.0, _noise_api_server),
    ("node-agent", 5.0, _noise_metadata),
    ("cart", 5.0, _noise_instance_credentials),
    ("web-preview", 0.1, _noise_redirect),
)


def noise_profiles(c: Cluster, templates: Templates) -> list[tuple[float, Target]]:
    profiles: list[tuple[float, Target]] = []
    for name, weight, make in _NOISE:
        slots = c.slots[name]
        variants = [
            [
                [tuple(templates.add(p.host, rule, p.fields() | extra) for rule, extra in event)
                 for event in make(c.rng, p)]
                for p in pods
            ]
            for pods in slots
        ]  # fmt: skip
        starts = [[p.start for p in pods] for pods in slots]
        ends = (
            [[p.end for p in pods] for pods in slots] if BY_NAME[name].kind == "CronJob" else None
        )
        profiles.append((weight, Target(starts, variants, ends)))
    return profiles
