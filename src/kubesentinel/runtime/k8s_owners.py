"""Owner lookups through the Kubernetes API (the official ``kubernetes`` client).

A pod's controller is found by following ``metadata.ownerReferences`` (the one marked
``controller: true``): Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, Pod ->
ReplicationController -> DeploymentConfig (OpenShift), or a StatefulSet/DaemonSet directly.
These are the runtime workload kinds of ``models/kinds.py``. The monitor wraps this in
``identity.CachedOwnerLookup`` (TTL cache, misses cached too), so the API sees one request per
new pod at most; naming is the fallback when the API does not answer.

An unreachable API must not stall the stream: requests time out after ``timeout_s`` and, after
a connection failure, the API is left alone for ``backoff_s`` (answers are None meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubesentinel.errors import SourceError

log = logging.getLogger("kubesentinel.monitor")

# Intermediate controllers whose own controller is the workload people name.
_PARENTS = {
    "ReplicaSet": "Deployment",
    "Job": "CronJob",
    "ReplicationController": "DeploymentConfig",  # OpenShift's; a bare one stays itself
}


class KubernetesOwnerLookup:
    def __init__(
        self,
        api_client: Any,
        timeout_s: float = 2.0,
        backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._timeout = timeout_s
        self._backoff = backoff_s
        self._clock = clock
        self._quiet_until = 0.0
        self._kubeconfig_context: str | None = None
        self._from_kubeconfig = False

    def __reduce__(self) -> tuple[Any, ...]:
        """A worker process (spawned: nothing is inherited) gets a lookup built from the same
        configuration; API clients, with their sockets and locks, do not pickle."""
        if not self._from_kubeconfig:
            raise TypeError("only a KubernetesOwnerLookup made by from_kubeconfig() pickles")
        return (_from_kubeconfig, (self._kubeconfig_context, self._timeout, self._backoff))

    @classmethod
    def from_kubeconfig(cls, context: str | None = None) -> KubernetesOwnerLookup:
        """In-cluster service account first, then kubeconfig ($KUBECONFIG, ~/.kube/config)."""
        try:
            from kubernetes import client, config
        except ImportError:
            raise SourceError(
                "owner lookups need the kubernetes client",
                hint="pip install 'kubesentinel[cluster]'",
            ) from None
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            lookup = cls(client.ApiClient())
        except config.ConfigException:
            try:
                lookup = cls(config.new_client_from_config(context=context))  # type: ignore[no-untyped-call]
            except (config.ConfigException, OSError) as exc:
                raise SourceError(
                    f"no Kubernetes configuration: {exc}",
                    hint="set KUBECONFIG, or run without --k8s-lookup",
                ) from None
        lookup._kubeconfig_context = context
        lookup._from_kubeconfig = True
        return lookup

    def owner_of(self, namespace: str, pod: str) -> tuple[str, str] | None:
        """(kind, name) of the pod's top controller; None when unknown or unreachable."""
        if self._clock() < self._quiet_until:
            return None
        try:
            obj = self._core.read_namespaced_pod(pod, namespace, _request_timeout=self._timeout)
            owner = _controller(obj)
            if owner is None:
                return ("Pod", pod)
            parent_kind = _PARENTS.get(owner[0])
            if parent_kind is not None:
                parent = self._read_owner(owner[0], namespace, owner[1])
                return parent if parent is not None else owner
            return owner
        except Exception as exc:
            self._failed(exc, namespace, pod)
            return None

    def _read_owner(self, kind: str, namespace: str, name: str) -> tuple[str, str] | None:
        obj: Any
        if kind == "ReplicaSet":
            read = self._apps.read_namespaced_replica_set
            obj = read(name, namespace, _request_timeout=self._timeout)
        elif kind == "ReplicationController":
            read_rc = self._core.read_namespaced_replication_controller
            obj = read_rc(name, namespace, _request_timeout=self._timeout)
        else:
            obj = self._batch.read_namespaced_job(name, namespace, _request_timeout=self._timeout)
        owner = _controller(obj)
        return owner if owner is not None and owner[0] == _PARENTS[kind] else None

    def _failed(self, exc: Exception, namespace: str, pod: str) -> None:
        status = getattr(exc, "status", None)
        if status == 404:
            return  # gone already: naming will do
        if status is None:  # no HTTP answer at all: leave the API alone for a while
            self._quiet_until = self._clock() + self._backoff
        log.warning("owner lookup for %s/%s failed (%s); using pod naming", namespace, pod,
                    type(exc).__name__)  # fmt: skip
        return None


def _from_kubeconfig(
    context: str | None, timeout_s: float, backoff_s: float
) -> KubernetesOwnerLookup:
    lookup = KubernetesOwnerLookup.from_kubeconfig(context)
    lookup._timeout, lookup._backoff = timeout_s, backoff_s
    return lookup


def _controller(obj: Any) -> tuple[str, str] | None:
    for ref in obj.metadata.owner_references or ():
        if ref.controller:
            return (str(ref.kind), str(ref.name))
    return None
