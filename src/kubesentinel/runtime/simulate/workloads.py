"""The simulated cluster's workloads: some hardened, some misconfigured."""

from __future__ import annotations

import hashlib
from typing import Final

from kubesentinel.runtime.simulate.records import SimWorkload


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _pinned(image: str) -> str:
    return f"{image}@{digest(image)}"


WORKLOADS: Final = (
    SimWorkload("shop", "Deployment", "storefront", "web",
                "registry.example.com/shop/storefront:4.2.1", False, replicas=3),
    SimWorkload("shop", "Deployment", "cart", "cart",
                _pinned("registry.example.com/shop/cart:2.7.0"), True, replicas=2,
                user=("app", 10001)),
    SimWorkload("payments", "Deployment", "payments-api", "api",
                _pinned("registry.example.com/payments/api:1.19.3"), True, replicas=3,
                user=("app", 10001)),
    SimWorkload("data", "StatefulSet", "postgres", "postgres",
                _pinned("docker.io/library/postgres:16.4"), True, replicas=2,
                user=("postgres", 999)),
    SimWorkload("data", "CronJob", "metrics-rollup", "rollup",
                "docker.io/acmecorp/metrics-rollup:latest", False, schedule="*/10 * * * *"),
    SimWorkload("ci", "CronJob", "dependency-audit", "audit",
                "registry.example.com/ci/node-builder:20.18", False, schedule="*/5 * * * *"),
    SimWorkload("monitoring", "DaemonSet", "node-agent", "agent",
                "registry.example.com/ops/node-agent:1.8.3", False),
    SimWorkload("logging", "DaemonSet", "fluent-bit", "fluent-bit",
                "cr.fluentbit.io/fluent/fluent-bit:3.1.9", False),
    SimWorkload("staging", "Deployment", "web-preview", "web",
                _pinned("docker.io/nginxinc/nginx-unprivileged:1.27.3"), True,
                user=("nginx", 101)),
)  # fmt: skip
BY_NAME: Final = {w.name: w for w in WORKLOADS}
