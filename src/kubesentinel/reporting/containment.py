"""Containment steps for an incident's workload (provisional: one quarantine step).

The full plan (scale down, cordon, token rotation, patched securityContext) replaces this
module; the interface stays.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from kubesentinel.models.event import Workload
from kubesentinel.models.posture import PostureFinding

__all__ = ["ContainmentStep", "containment_plan"]


@dataclass(frozen=True, slots=True)
class ContainmentStep:
    title: str
    why: str
    commands: tuple[str, ...]
    manifest: str | None = None
    manifest_name: str | None = None


def containment_plan(
    workload: Workload,
    findings: Sequence[PostureFinding],
    *,
    pods: Sequence[str] = (),
    containers: Sequence[str] = (),
    nodes: Sequence[str] = (),
    service_account: str | None = None,
) -> tuple[ContainmentStep, ...]:
    """Label the incident's pods into quarantine and deny their traffic."""
    del findings, containers, nodes, service_account  # used by the full plan
    if workload.kind == "Host" or not pods:
        return ()
    namespace = shlex.quote(workload.namespace)
    name = "kubesentinel-quarantine"
    manifest = (
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {_yaml_string(workload.namespace)}\n"
        "spec:\n"
        "  podSelector:\n"
        "    matchLabels:\n"
        '      kubesentinel.io/quarantine: "true"\n'
        "  policyTypes: [Ingress, Egress]\n"
    )
    commands = [
        f"kubectl -n {namespace} label pod {shlex.quote(pod)} "
        "kubesentinel.io/quarantine=true --overwrite"
        for pod in pods
    ]
    commands.append(f"kubectl apply -f {name}.yaml")
    return (
        ContainmentStep(
            title="Isolate the workload's pods",
            why="A deny-all NetworkPolicy on quarantined pods cuts their traffic while the "
            "evidence is kept.",
            commands=tuple(commands),
            manifest=manifest,
            manifest_name=f"{name}.yaml",
        ),
    )


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escaping is valid YAML)."""
    import json

    return json.dumps(text)
