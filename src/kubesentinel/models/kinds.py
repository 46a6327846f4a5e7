"""The workload kinds: objects that hold a pod template. One list for the scanner and the monitor.

``WORKLOAD_KINDS`` is what the scanner checks as a workload (the ``workloads`` kind group of the
rule files), in the order docs/rules.md lists them. ``RUNTIME_WORKLOAD_KINDS`` is the part of it
a runtime alert can name: the monitor names a workload by the top owner of the pod that raised
the alert (Deployment over ReplicaSet, CronJob over Job, DeploymentConfig over
ReplicationController on OpenShift), or by the pod itself when it has none. A PodTemplate never
runs a pod, so no alert can belong to one, and its findings have no runtime workload to join.
"""

from __future__ import annotations

from typing import Final

WORKLOAD_KINDS: Final[tuple[str, ...]] = (
    "Pod",
    "PodTemplate",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "ReplicationController",
    "DeploymentConfig",  # OpenShift
    "CronJob",
)
RUNTIME_WORKLOAD_KINDS: Final[frozenset[str]] = frozenset(WORKLOAD_KINDS) - {"PodTemplate"}
