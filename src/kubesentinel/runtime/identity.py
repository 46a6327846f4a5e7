"""Which workload an alert belongs to: from owner references when known, else from pod naming.

The owner lookup is injected (an ``OwnerLookup``): tests pass a function, and a lookup backed by
the Kubernetes API plugs in the same way. ``CachedOwnerLookup`` puts a TTL cache in front of any
such function. Without a lookup, the controller is read from the pod name, using how the
controllers name their pods:

=============  ===========================================  ===================================
kind           pod name                                     example
=============  ===========================================  ===================================
Deployment     ``<deploy>-<pod-template-hash>-<5 random>``  ``nginx-676b6c5bbc-4xc6t``
CronJob        ``<cronjob>-<schedule time>-<5 random>``     ``backup-29123460-x7k2p``
Job (indexed)  ``<job>-<completion index>-<5 random>``      ``train-3-bq2xz``
StatefulSet    ``<name>-<ordinal>``                         ``postgres-0``
DaemonSet      ``<name>-<5 random>``                        ``fluent-bit-9zq7d``
Pod            anything else                                ``alpine``
=============  ===========================================  ===================================

Random parts come from Kubernetes' name alphabet ``bcdfghjklmnpqrstvwxz2456789`` (no vowels,
no 0/1/3, so real words rarely match). The pod-template-hash is tighter still: the ReplicaSet
controller writes ``SafeEncodeString`` of a decimal uint32, which maps each digit to one of
``4 5 6 7 8 9 b c d f``; a hash has 1 to 10 of them, and we require 5 to 10 (shorter ones
occur for fewer than 1 in 400,000 hashes). The CronJob controller names Jobs ``<cronjob>-<unix
minutes>`` (8 digits; the old controller used unix seconds, 10 digits); an indexed Job adds
``-<index>`` before the random part of each pod name.

Ambiguities, and what we choose:

- ``<name>-<5 random>`` is a DaemonSet pod, a plain Job pod, a pod of a bare ReplicaSet or
  ReplicationController, or a pod created with ``generateName``: the names are identical. We
  say DaemonSet, since node agents are long-lived and raise most runtime alerts; the workload
  name is right in every case, only the kind may be wrong.
- ``<name>-<digits>`` is a StatefulSet pod or a bare pod named so by hand (``nginx-2``). We say
  StatefulSet. A random part can be all digits too (about 1 in 850 are, from 2 and 4-9):
  five such digits read as DaemonSet, since an ordinal like 24567 needs 24,568 replicas.
- A middle part made only of the digits 4-9 reads as a pod-template-hash, so ``<x>-45678-<5>``
  is a Deployment; an indexed Job with 10,000+ completions, or a schedule time after the year
  2054, would be misread. Schedule times today start with 1, 2 or 3, so they never collide.
- Pod names are capped at 63 characters: the API server cuts a ``generateName`` prefix to 58,
  so a pod of a long-named controller loses the ``-`` before its random part and reads as a
  bare Pod. An owner lookup resolves it.

Alerts outside any pod map to the host (kind ``Host``, name = hostname); k8s_audit alerts map to
the audit target (``ka.target.resource`` gives the kind).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Protocol

from kubesentinel.models.event import Workload

__all__ = [
    "CachedOwnerLookup",
    "OwnerLookup",
    "host_workload",
    "kind_of_pod_name",
    "kind_of_resource",
    "workload_of",
]

_RANDOM: Final = "[bcdfghjklmnpqrstvwxz2456789]"
_HASH: Final = "[456789bcdf]"

_DEPLOYMENT: Final = re.compile(rf"(.+)-{_HASH}{{5,10}}-{_RANDOM}{{5}}")
# Unix minutes (8 digits) or seconds (10), then an optional index when the Job is indexed.
_CRONJOB: Final = re.compile(rf"(.+)-[1-9]\d{{7,10}}(?:-\d+)?-{_RANDOM}{{5}}")
_INDEXED_JOB: Final = re.compile(rf"(.+)-(?:0|[1-9]\d{{0,6}})-{_RANDOM}{{5}}")
_STATEFULSET: Final = re.compile(r"(.+)-(?:0|[1-9]\d*)")
_DAEMONSET: Final = re.compile(rf"(.+)-{_RANDOM}{{5}}")

# Checked in this order: the first match wins.
_PATTERNS: Final = (
    (_DEPLOYMENT, "Deployment"),
    (_CRONJOB, "CronJob"),
    (_INDEXED_JOB, "Job"),
    (_DAEMONSET, "DaemonSet"),
    (_STATEFULSET, "StatefulSet"),
)

_RESOURCE_KINDS: Final = {
    "pods": "Pod",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "replicationcontrollers": "ReplicationController",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "services": "Service",
    "endpoints": "Endpoints",
    "endpointslices": "EndpointSlice",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "serviceaccounts": "ServiceAccount",
    "namespaces": "Namespace",
    "nodes": "Node",
    "events": "Event",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding",
    "persistentvolumes": "PersistentVolume",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "storageclasses": "StorageClass",
    "volumeattachments": "VolumeAttachment",
    "ingresses": "Ingress",
    "ingressclasses": "IngressClass",
    "networkpolicies": "NetworkPolicy",
    "podsecuritypolicies": "PodSecurityPolicy",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "customresourcedefinitions": "CustomResourceDefinition",
    "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
    "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
    "certificatesigningrequests": "CertificateSigningRequest",
    "tokenreviews": "TokenReview",
    "subjectaccessreviews": "SubjectAccessReview",
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "leases": "Lease",
}


class OwnerLookup(Protocol):
    """Finds the top-level controller of a pod (a ReplicaSet's Deployment, a Job's CronJob).

    Returns ``(kind, name)``, or None when the pod or its owner is unknown. It never raises:
    an unreachable cluster is None too, and the caller falls back to pod naming.
    """

    def owner_of(self, namespace: str, pod: str) -> tuple[str, str] | None: ...


@dataclass(slots=True)
class _Entry:
    expires: float
    owner: tuple[str, str] | None


class CachedOwnerLookup:
    """A TTL cache in front of an owner lookup function; misses (None) are cached too.

    ``lookup_fn(namespace, pod)`` does the real work, and ``clock`` (seconds, monotonic) is
    injected so tests control time. At most ``max_entries`` pods are kept; the oldest entry
    goes first when full.
    """

    def __init__(
        self,
        lookup_fn: Callable[[str, str], tuple[str, str] | None],
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 65_536,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self._lookup_fn = lookup_fn
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[tuple[str, str], _Entry] = {}

    def owner_of(self, namespace: str, pod: str) -> tuple[str, str] | None:
        key = (namespace, pod)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            return entry.owner
        owner = self._lookup_fn(namespace, pod)
        if entry is None and len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(now + self._ttl_s, owner)
        return owner

    def __len__(self) -> int:
        return len(self._entries)


# Pod names are at most 253 characters; a longer (hostile) one is answered but not cached.
_MAX_CACHED_NAME: Final = 253


def kind_of_pod_name(pod_name: str) -> tuple[str, str]:
    """(kind, name) of the controller that a pod's name points to; ("Pod", pod) if none."""
    if len(pod_name) > _MAX_CACHED_NAME:
        return _kind_of_pod_name.__wrapped__(pod_name)
    return _kind_of_pod_name(pod_name)


@lru_cache(maxsize=65_536)
def _kind_of_pod_name(pod_name: str) -> tuple[str, str]:
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(pod_name)
        if match is not None:
            return kind, match.group(1)
    return "Pod", pod_name


def workload_of(
    cluster: str, namespace: str, pod_name: str, lookup: OwnerLookup | None = None
) -> Workload:
    """The workload that owns a pod: the owner lookup's answer when it has one, else naming."""
    owner = lookup.owner_of(namespace, pod_name) if lookup is not None else None
    kind, name = owner if owner is not None else kind_of_pod_name(pod_name)
    return Workload(cluster, namespace, kind, name)


def host_workload(cluster: str, namespace: str | None, hostname: str) -> Workload:
    """The workload of an alert outside any pod: the host that raised it."""
    return Workload(cluster, namespace or "", "Host", hostname)


@lru_cache(maxsize=1024)
def kind_of_resource(resource: str) -> str:
    """Kind of an API resource as audit logs name it: "deployments" -> "Deployment".

    Known resources map exactly; others (custom resources) are singularised and capitalised,
    which cannot restore inner capitals: "nodepools" -> "Nodepool".
    """
    resource = resource.lower()
    known = _RESOURCE_KINDS.get(resource)
    if known is not None:
        return known
    if resource.endswith("ies"):
        singular = resource[:-3] + "y"
    elif resource.endswith(("sses", "xes", "ches", "shes")):
        singular = resource[:-2]
    elif resource.endswith("s") and not resource.endswith(("ss", "us")):
        singular = resource[:-1]
    else:
        singular = resource
    return singular[:1].upper() + singular[1:]
