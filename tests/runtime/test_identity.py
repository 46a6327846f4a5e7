"""Workload identity: pod naming patterns, their ambiguities, the owner lookup and its cache."""

from __future__ import annotations

import pytest

import kubesentinel.runtime.identity as identity_module
from kubesentinel.models.event import Workload
from kubesentinel.runtime.identity import (
    CachedOwnerLookup,
    host_workload,
    kind_of_pod_name,
    kind_of_resource,
    workload_of,
)


def test_public_names() -> None:
    assert sorted(identity_module.__all__) == [
        "CachedOwnerLookup",
        "OwnerLookup",
        "host_workload",
        "kind_of_pod_name",
        "kind_of_resource",
        "workload_of",
    ]


@pytest.mark.parametrize(
    ("pod", "kind", "name"),
    [
        # Deployments: <deploy>-<pod-template-hash>-<5>; real names from the shared samples.
        ("nginx-676b6c5bbc-4xc6t", "Deployment", "nginx"),
        ("falco-pod-delete-7dc9f5fbb8-gbfk7", "Deployment", "falco-pod-delete"),
        ("alpine-deployment-77789455d6-m7flp", "Deployment", "alpine-deployment"),
        ("poolmgr-go-default-516098-5bdbf8c8f5-g8gvc", "Deployment", "poolmgr-go-default-516098"),
        ("falco-k8saudit-eks-96d7f6f99-vwjgc", "Deployment", "falco-k8saudit-eks"),
        ("coredns-5d78c9869d-2xq4z", "Deployment", "coredns"),
        ("web-5968574496-24567", "Deployment", "web"),  # all-digit hash and suffix
        ("api.v2-6b7f8d9c4-zz9x2", "Deployment", "api.v2"),
        # CronJobs: <cronjob>-<unix minutes | seconds>-<5>, optionally indexed.
        ("backup-29123460-x7k2p", "CronJob", "backup"),
        ("hello-28394400-b2c4d", "CronJob", "hello"),
        ("report-1567686000-q8wzt", "CronJob", "report"),  # the old controller: seconds
        ("nightly-etl-29123460-3-bq2xz", "CronJob", "nightly-etl"),
        # Indexed Jobs: <job>-<index>-<5>.
        ("train-3-bq2xz", "Job", "train"),
        ("train-0-bq2xz", "Job", "train"),
        ("shard-job-12345-bq2xz", "Job", "shard-job"),
        # StatefulSets: <name>-<ordinal>.
        ("postgres-0", "StatefulSet", "postgres"),
        ("kafka-broker-12", "StatefulSet", "kafka-broker"),
        ("web-1", "StatefulSet", "web"),
        # DaemonSets (and plain Jobs, bare ReplicaSets: the same shape): <name>-<5>.
        ("fluent-bit-9zq7d", "DaemonSet", "fluent-bit"),
        ("kube-proxy-7vxkq", "DaemonSet", "kube-proxy"),
        ("falco-xczjd", "DaemonSet", "falco"),
        ("node-exporter-24567", "DaemonSet", "node-exporter"),  # all-digit random part
        # Bare pods.
        ("alpine", "Pod", "alpine"),
        ("kubecon", "Pod", "kubecon"),
        ("my-debug-pod", "Pod", "my-debug-pod"),
        ("nginx-hello", "Pod", "nginx-hello"),  # vowels: not a random suffix
        ("web-01", "Pod", "web-01"),  # ordinals have no leading zero
        ("db-0a", "Pod", "db-0a"),
        ("-0", "Pod", "-0"),
    ],
)
def test_pod_naming_patterns(pod: str, kind: str, name: str) -> None:
    assert kind_of_pod_name(pod) == (kind, name)
    assert workload_of("prod", "shop", pod) == Workload("prod", "shop", kind, name)


@pytest.mark.parametrize(
    ("pod", "kind", "name", "why"),
    [
        ("migrate-x7k2p", "DaemonSet", "migrate", "a plain Job pod has the DaemonSet shape"),
        ("rs-only-b2c4d", "DaemonSet", "rs-only", "so does a bare ReplicaSet's pod"),
        ("nginx-2", "StatefulSet", "nginx", "a hand-named pod looks like an ordinal"),
        ("job-45678-bq2xz", "Deployment", "job", "digits 4-9 only read as a pod-template-hash"),
        # Hash chars outside 4-9/b/c/d/f: the ReplicaSet controller never writes these.
        ("web-2x2x2x2x-bq2xz", "DaemonSet", "web-2x2x2x2x", "not a pod-template-hash"),
        (
            "a-very-long-deployment-name-that-fills-the-limit-7dc9f5fbb8fq7",
            "Pod",
            "a-very-long-deployment-name-that-fills-the-limit-7dc9f5fbb8fq7",
            "a cut generateName prefix loses the dash before the random part",
        ),
    ],
)
def test_ambiguous_names_resolve_as_documented(pod: str, kind: str, name: str, why: str) -> None:
    assert kind_of_pod_name(pod) == (kind, name), why


def test_lookup_wins_over_naming_and_falls_back_when_it_has_no_answer() -> None:
    class Lookup:
        def owner_of(self, namespace: str, pod: str) -> tuple[str, str] | None:
            return ("Job", "migrate") if pod == "migrate-x7k2p" else None

    assert workload_of("c", "ns", "migrate-x7k2p", Lookup()) == Workload(
        "c", "ns", "Job", "migrate"
    )
    assert workload_of("c", "ns", "postgres-0", Lookup()) == Workload(
        "c", "ns", "StatefulSet", "postgres"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cached_owner_lookup_caches_answers_and_misses_until_the_ttl() -> None:
    calls: list[tuple[str, str]] = []
    owners = {("shop", "web-5968574496-abcde"): ("Deployment", "web")}

    def lookup_fn(namespace: str, pod: str) -> tuple[str, str] | None:
        calls.append((namespace, pod))
        return owners.get((namespace, pod))

    clock = FakeClock()
    cached = CachedOwnerLookup(lookup_fn, ttl_s=30, clock=clock)
    assert cached.owner_of("shop", "web-5968574496-abcde") == ("Deployment", "web")
    assert cached.owner_of("shop", "web-5968574496-abcde") == ("Deployment", "web")
    assert cached.owner_of("shop", "ghost") is None
    assert cached.owner_of("shop", "ghost") is None
    assert calls == [("shop", "web-5968574496-abcde"), ("shop", "ghost")]
    assert len(cached) == 2

    clock.now += 29.9
    owners[("shop", "ghost")] = ("Pod", "ghost")
    assert cached.owner_of("shop", "ghost") is None  # still cached
    clock.now += 0.2
    assert cached.owner_of("shop", "ghost") == ("Pod", "ghost")  # expired: asked again
    assert calls[-1] == ("shop", "ghost")
    assert len(calls) == 3


def test_cached_owner_lookup_is_bounded() -> None:
    cached = CachedOwnerLookup(
        lambda ns, pod: ("Pod", pod), ttl_s=60, clock=FakeClock(), max_entries=3
    )
    for pod in ("a", "b", "c", "d"):
        cached.owner_of("ns", pod)
    assert len(cached) == 3
    calls: list[str] = []

    def lookup_fn(namespace: str, pod: str) -> tuple[str, str]:
        calls.append(pod)
        return ("Pod", pod)

    inner = CachedOwnerLookup(lookup_fn, ttl_s=60, clock=FakeClock(), max_entries=2)
    for pod in ("a", "b", "c", "a"):
        inner.owner_of("ns", pod)
    assert calls == ["a", "b", "c", "a"]  # "a" was evicted first


def test_cached_owner_lookup_rejects_a_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        CachedOwnerLookup(lambda ns, pod: None, ttl_s=0)


def test_cached_owner_lookup_is_an_owner_lookup() -> None:
    cached = CachedOwnerLookup(lambda ns, pod: ("StatefulSet", "db"), ttl_s=5)
    assert workload_of("c", "ns", "db-0", cached) == Workload("c", "ns", "StatefulSet", "db")


def test_host_workload() -> None:
    assert host_workload("c", None, "node-1") == Workload("c", "", "Host", "node-1")
    assert host_workload("c", "kube-system", "node-1") == Workload(
        "c", "kube-system", "Host", "node-1"
    )


@pytest.mark.parametrize(
    ("resource", "kind"),
    [
        ("pods", "Pod"),
        ("deployments", "Deployment"),
        ("daemonsets", "DaemonSet"),
        ("statefulsets", "StatefulSet"),
        ("cronjobs", "CronJob"),
        ("serviceaccounts", "ServiceAccount"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("volumeattachments", "VolumeAttachment"),
        ("networkpolicies", "NetworkPolicy"),
        ("Secrets", "Secret"),
        ("nodepools", "Nodepool"),  # a custom resource: capitals cannot be recovered
        ("gateways", "Gateway"),
        ("proxies", "Proxy"),
        ("ingressclasses", "IngressClass"),
        ("sandboxes", "Sandbox"),
        ("patches", "Patch"),
        ("status", "Status"),
        ("", ""),
    ],
)
def test_kind_of_resource(resource: str, kind: str) -> None:
    assert kind_of_resource(resource) == kind
