"""Read live objects from a cluster through kubeconfig (the official ``kubernetes`` client).

Each kind a rule reads is listed once (all namespaces, or one with ``--namespace``), in pages.
Objects become the same K8sObject a manifest gives, named ``cluster://CONTEXT/NS/KIND/NAME``,
without the server's bookkeeping (status, managedFields, resourceVersion, the
last-applied-configuration annotation). Pods, ReplicaSets and Jobs run by a controller that is
scanned too are left out: their findings belong to the controller, as in a manifest repository.
Secrets are never read. A kind the credentials may not list (403) is a warning and the rest is
scanned; no kubeconfig or an unreachable API server is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubesentinel.errors import InputError
from kubesentinel.models import K8sObject, SourceRef
from kubesentinel.static.objects import Notice
from kubesentinel.static.reader import ReadBatch

PAGE_SIZE = 500
REQUEST_TIMEOUT_S = 30.0
_NOISE_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                   "selfLink")  # fmt: skip
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True, slots=True)
class Resource:
    group_version: str  # "v1" or "apps/v1"
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"


# The built-in kinds a rule may read; Secret is left out on purpose (its values).
RESOURCES: dict[str, Resource] = {
    "Pod": Resource("v1", "pods"),
    "ReplicationController": Resource("v1", "replicationcontrollers"),
    "PodTemplate": Resource("v1", "podtemplates"),
    "Service": Resource("v1", "services"),
    "ServiceAccount": Resource("v1", "serviceaccounts"),
    "ConfigMap": Resource("v1", "configmaps"),
    "LimitRange": Resource("v1", "limitranges"),
    "ResourceQuota": Resource("v1", "resourcequotas"),
    "Namespace": Resource("v1", "namespaces", namespaced=False),
    "Deployment": Resource("apps/v1", "deployments"),
    "StatefulSet": Resource("apps/v1", "statefulsets"),
    "DaemonSet": Resource("apps/v1", "daemonsets"),
    "ReplicaSet": Resource("apps/v1", "replicasets"),
    "Job": Resource("batch/v1", "jobs"),
    "CronJob": Resource("batch/v1", "cronjobs"),
    "Ingress": Resource("networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": Resource("networking.k8s.io/v1", "networkpolicies"),
    "PodDisruptionBudget": Resource("policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": Resource("autoscaling/v2", "horizontalpodautoscalers"),
    "Role": Resource("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Resource("rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": Resource("rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": Resource(
        "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False
    ),
}
# Kinds whose objects a scanned controller creates: (owned kind, owner kind).
_CONTROLLED = {("Pod", "ReplicaSet"), ("Pod", "Job"), ("Pod", "StatefulSet"), ("Pod", "DaemonSet"),
               ("Pod", "ReplicationController"), ("ReplicaSet", "Deployment"),
               ("Job", "CronJob")}  # fmt: skip


def kinds_to_read(rule_targets: frozenset[str]) -> list[str]:
    """The kinds some rule reads, plus Namespace (cross-object checks group by it)."""
    return [kind for kind in RESOURCES if kind in rule_targets or kind == "Namespace"]


def read_cluster(
    rule_targets: frozenset[str],
    context: str | None = None,
    namespace: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> ReadBatch:
    api, context_name = connect(context)
    try:
        return read_objects(api, context_name, kinds_to_read(rule_targets), namespace, timeout_s)
    finally:
        api.close()


def connect(context: str | None) -> tuple[Any, str]:
    """An ApiClient from kubeconfig ($KUBECONFIG, ~/.kube/config), else the in-cluster account."""
    try:
        from kubernetes import config
    except ImportError:
        raise InputError(
            "--cluster needs the kubernetes client",
            hint="pip install 'kubesentinel[cluster]'",
            code="KS-E042",
        ) from None
    # Read $KUBECONFIG now: the client reads it once, at import.
    path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        contexts, active = config.list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
        name = context or (active or {}).get("name") or "default"
        if context is not None and context not in {c.get("name") for c in contexts or ()}:
            raise InputError(
                f"no context {context!r} in the kubeconfig",
                hint="`kubectl config get-contexts` lists them",
                code="KS-E042",
            )
        return config.new_client_from_config(path, context=context), str(name)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        problem = exc
    if context is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            from kubernetes import client

            return client.ApiClient(), "in-cluster"
        except config.ConfigException:
            pass
    raise InputError(
        f"cannot load a kubeconfig: {problem}",
        hint="set KUBECONFIG or create ~/.kube/config (e.g. with your provider's CLI)",
        code="KS-E042",
    )


def read_objects(
    api: Any, context: str, kinds: list[str], namespace: str | None, timeout_s: float
) -> ReadBatch:
    batch = ReadBatch(files=[f"cluster://{quote(context, safe='')}"])
    listed: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        resource = RESOURCES[kind]
        if namespace and not resource.namespaced and kind != "Namespace":
            continue  # cluster-wide objects are out of a one-namespace scan
        try:
            listed[kind] = list(_list(api, resource, namespace, kind, timeout_s))
        except _Denied as denied:
            batch.warnings.append(denied.warning(context, kind))
    skipped = 0
    for kind, items in listed.items():
        for item in items:
            if _run_by_scanned_controller(kind, item, listed):
                skipped += 1
                continue
            batch.objects.append(_object(kind, item, context, len(batch.objects)))
    if skipped:
        batch.notices.append(
            Notice(batch.files[0], 1, f"{skipped} objects run by a scanned controller (pods of a "
                   "Deployment, say) were left out; their controller carries the findings")
        )  # fmt: skip
    return batch


class _Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def warning(self, context: str, kind: str) -> InputError:
        return InputError(
            f"cannot list {kind} objects (HTTP {self.status}: {self.reason}); "
            "the other kinds are scanned",
            file=f"cluster://{quote(context, safe='')}",
            hint="grant list on this resource to scan it",
            code="KS-W040",
        )


def _list(
    api: Any, resource: Resource, namespace: str | None, kind: str, timeout_s: float
) -> Iterator[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    query: list[tuple[str, str]] = [("limit", str(PAGE_SIZE))]
    path = resource.path(namespace)
    if kind == "Namespace" and namespace:
        query.append(("fieldSelector", f"metadata.name={namespace}"))
    token = ""
    while True:
        params = query + ([("continue", token)] if token else [])
        request = api.param_serialize(method="GET", resource_path=path, query_params=params,
                                      header_params={"Accept": "application/json"},
                                      auth_settings=["BearerToken"])  # fmt: skip
        try:
            response = api.call_api(*request, _request_timeout=timeout_s)
            response.read()
        except ApiException as exc:  # TLS failures come this way, with status 0
            raise _unreachable(api, str(exc.reason or exc)) from None
        except Exception as exc:  # urllib3's connection errors: no answer at all
            raise _unreachable(api, f"{type(exc).__name__}: {exc}") from None
        if response.status in (401, 403, 404):
            # 404: the API group is not served by this cluster (an old or trimmed server).
            raise _Denied(response.status, _status_message(response.data))
        if response.status != 200:
            raise _unreachable(
                api, f"HTTP {response.status} on {path}: {_status_message(response.data)}"
            )
        page = json.loads(response.data)
        yield from (item for item in page.get("items") or () if isinstance(item, dict))
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


def _unreachable(api: Any, detail: str) -> InputError:
    return InputError(
        f"cannot read from the API server at {api.configuration.host}: {detail}",
        hint="check the kubeconfig context and that the cluster is reachable (kubectl get ns)",
        code="KS-E043",
    )


def _status_message(data: bytes) -> str:
    try:
        status = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace")
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or status.get("reason") or "no message")


def _run_by_scanned_controller(
    kind: str, item: dict[str, Any], listed: dict[str, list[dict[str, Any]]]
) -> bool:
    for ref in (item.get("metadata") or {}).get("ownerReferences") or ():
        owner = ref.get("kind")
        if ref.get("controller") and (kind, owner) in _CONTROLLED and owner in listed:
            return True
    return False


def _object(kind: str, item: dict[str, Any], context: str, index: int) -> K8sObject:
    resource = RESOURCES[kind]
    item.pop("status", None)
    metadata = item.setdefault("metadata", {})
    for key in _NOISE_METADATA:
        metadata.pop(key, None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(_LAST_APPLIED, None)
    # List items carry no apiVersion/kind of their own.
    body = {"apiVersion": resource.group_version, "kind": kind, **item}
    name = str(metadata.get("name") or "<unnamed>")
    namespace = metadata.get("namespace") or None
    where = f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"
    file = f"cluster://{quote(context, safe='')}/{where}"
    return K8sObject(
        api_version=resource.group_version,
        kind=kind,
        namespace=namespace,
        name=name,
        body=body,
        source=SourceRef(file=file, doc_index=index, item_index=None, line=1),
    )
