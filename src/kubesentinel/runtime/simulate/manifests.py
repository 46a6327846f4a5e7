"""Manifests of the simulated cluster, one YAML file per namespace, for `kubesentinel scan`."""

# ruff: noqa: S108  # the /tmp mount is part of the manifests we write, not a file we open

from __future__ import annotations

import copy
from typing import Any

import yaml

from kubesentinel.runtime.simulate.constants import CLUSTER
from kubesentinel.runtime.simulate.records import SimWorkload
from kubesentinel.runtime.simulate.workloads import WORKLOADS


def cluster_manifests() -> dict[str, str]:
    files: dict[str, list[dict[str, Any]]] = {}
    for w in WORKLOADS:
        docs = files.setdefault(w.namespace, [_object("v1", "Namespace", w.namespace, None, {})])
        if w.hardened:
            docs.append(_network_policy(w))
            docs.append(_object("v1", "ServiceAccount", w.name, w.namespace, {}))
            docs[-1]["automountServiceAccountToken"] = False
        docs.append(_workload(w))
    out: dict[str, str] = {}
    for namespace, docs in files.items():
        notes = ", ".join(
            f"{w.kind}/{w.name} ({'hardened' if w.hardened else 'misconfigured'})"
            for w in WORKLOADS
            if w.namespace == namespace
        )
        text = yaml.safe_dump_all(docs, sort_keys=False, width=100)
        out[f"{namespace}.yaml"] = f"# Simulated cluster {CLUSTER!r}: {notes}.\n{text}"
    return out


def _object(
    api: str, kind: str, name: str, namespace: str | None, spec: dict[str, Any]
) -> dict[str, Any]:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    doc: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": meta}
    if spec:
        doc["spec"] = spec
    return doc


def _network_policy(w: SimWorkload) -> dict[str, Any]:
    def peers(namespace: str) -> list[dict[str, Any]]:
        selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        return [{"namespaceSelector": selector}]

    spec = {
        "podSelector": {"matchLabels": {"app": w.name}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers("ingress")}],
        "egress": [{"to": peers("data")}],
    }
    return _object("networking.k8s.io/v1", "NetworkPolicy", w.name, w.namespace, spec)


def _container(w: SimWorkload) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": w.container, "image": w.image}
    if not w.hardened:
        spec["securityContext"] = {"runAsUser": 0}
        if w.name in ("storefront", "node-agent"):
            spec["securityContext"]["privileged"] = True
        if w.name == "node-agent":
            spec["volumeMounts"] = [{"name": "host-root", "mountPath": "/host"}]
        elif w.name == "fluent-bit":
            spec["volumeMounts"] = [{"name": "varlog", "mountPath": "/var/log", "readOnly": True}]
        return spec
    if w.kind == "StatefulSet":
        probe: dict[str, Any] = {"exec": {"command": ["pg_isready", "-U", "postgres"]}}
    else:
        probe = {"httpGet": {"path": "/healthz", "port": 8080}}
    return spec | {
        "imagePullPolicy": "Always",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "livenessProbe": probe,
        "readinessProbe": copy.deepcopy(probe),  # a copy, so the YAML has no anchors
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip


def _pod_spec(w: SimWorkload) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if w.hardened:
        uid = w.user[1]
        spec["serviceAccountName"] = w.name
        spec["automountServiceAccountToken"] = False
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    if w.kind == "CronJob":
        spec["restartPolicy"] = "OnFailure"
    if w.name == "node-agent":
        spec |= {"hostPID": True, "hostNetwork": True}
    spec["containers"] = [_container(w)]
    if w.hardened:
        spec["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    elif w.name == "node-agent":
        spec["volumes"] = [{"name": "host-root", "hostPath": {"path": "/"}}]
    elif w.name == "fluent-bit":
        spec["volumes"] = [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
    return spec


def _workload(w: SimWorkload) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": w.name}}, "spec": _pod_spec(w)}
    spec: dict[str, Any]
    if w.kind == "CronJob":
        job = {"spec": {"template": template}}
        spec = {"schedule": w.schedule, "concurrencyPolicy": "Forbid", "jobTemplate": job}
        return _object("batch/v1", w.kind, w.name, w.namespace, spec)
    spec = {"selector": {"matchLabels": {"app": w.name}}, "template": template}
    if w.kind != "DaemonSet":
        spec = {"replicas": w.replicas, **spec}
    if w.kind == "StatefulSet":
        spec["serviceName"] = w.name
    return _object("apps/v1", w.kind, w.name, w.namespace, spec)
