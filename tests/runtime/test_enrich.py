"""Enrichment: Kubernetes context, workload, MITRE mapping and ids of parsed alerts."""

from __future__ import annotations

import hashlib
import json
from types import MappingProxyType
from typing import Any

import pytest

import kubesentinel.runtime.enrich as enrich_module
from kubesentinel.models.event import Event, Workload
from kubesentinel.models.falco_alert import FalcoAlert, Priority
from kubesentinel.runtime.enrich import Enricher, content_id
from kubesentinel.runtime.identity import CachedOwnerLookup
from kubesentinel.runtime.parse import parse_alert, parse_batch
from kubesentinel.runtime.sources.interface import RawAlert
from tests.conftest import shared_path


def _alert(fields: dict[str, Any], **overrides: Any) -> FalcoAlert:
    values: dict[str, Any] = {
        "time_ns": 1_700_000_000_000_000_000,
        "rule": "Terminal shell in container",
        "priority": Priority.NOTICE,
        "source": "syscall",
        "output": "a shell",
        "hostname": "node-1",
        "tags": ("container", "mitre_execution", "T1059"),
        "output_fields": fields,
        "uuid": None,
        "origin": "test:1",
    }
    values.update(overrides)
    return FalcoAlert(**values)


def _one(alert: FalcoAlert, enricher: Enricher | None = None) -> Event:
    return (enricher or Enricher(cluster="prod")).enrich([(alert, 42)])[0]


def _samples() -> list[Event]:
    lines = shared_path("falco", "samples", "alerts.jsonl").read_bytes().splitlines()
    parsed, rejected = parse_batch([RawAlert(line, f"s:{n}", n) for n, line in enumerate(lines, 1)])
    assert rejected == []
    return Enricher().enrich(parsed)


def test_public_names() -> None:
    assert sorted(enrich_module.__all__) == ["Enricher", "content_id"]


def test_every_sample_enriches_in_order_with_unique_ids() -> None:
    events = _samples()
    assert [e.origin for e in events] == [f"s:{n}" for n in range(1, 99)]
    assert [e.received_ns for e in events] == list(range(1, 99))
    assert len({e.id for e in events}) == 98
    assert all(len(e.id) == 32 and int(e.id, 16) >= 0 for e in events)


def test_samples_k8s_audit_targets() -> None:
    events = _samples()
    # Disallowed K8s User on a cluster-scoped volumeattachment.
    assert events[0].workload == Workload(
        "default",
        "",
        "VolumeAttachment",
        "csi-6afb06dce281b86b7bab718b5d966dc261b2b1554941ae449519a128cb2e3fb3",
    )
    assert events[0].pod is None
    # Attach/Exec Pod: the pod's Deployment.
    assert events[3].workload == Workload("default", "hello-app", "Deployment", "nginx")
    assert events[3].pod == "nginx-676b6c5bbc-4xc6t"
    assert events[3].container_id is None
    # K8s Serviceaccount Created.
    assert events[4].workload == Workload("default", "default", "ServiceAccount", "default")
    # Attach/Exec to a bare pod.
    assert events[5].workload == Workload("default", "default", "Pod", "kubecon")
    assert events[5].tactics == ()


def test_samples_syscall_context() -> None:
    events = _samples()
    old = events[6]  # Falco < 0.30, bare pod, null image
    assert old.workload == Workload("default", "default", "Pod", "alpine")
    assert (old.pod, old.container_id, old.container_image) == ("alpine", "5892b41bcf46", None)
    api = events[8]
    assert api.workload == Workload("default", "openfaas-fn", "Deployment", "falco-pod-delete")
    assert api.container_image == "devopps/falco-pod-delete:latest"
    shell = events[15]
    assert shell.workload == Workload("default", "default", "Pod", "kubecon")
    assert shell.container_image == "docker.io/library/alpine"
    assert (shell.tactics, shell.techniques) == (("execution",), ())
    host = events[16]  # a host process: container.id "host"
    assert host.workload == Workload("default", "", "Host", "x86")
    assert (host.pod, host.container_id, host.container_image) == (None, None, None)
    assert (host.tactics, host.techniques) == (("credential_access",), ("T1555",))
    memfd = events[17]  # k8s fields null, image repository ""
    assert memfd.workload == Workload("default", "", "Host", "a042604a283a")
    assert (memfd.container_id, memfd.container_image) == (None, None)
    drift = events[21]  # a container outside Kubernetes: grouped by container, not host
    assert drift.workload == Workload("default", "", "Container", "lab9-helper")
    assert (drift.container_id, drift.container_image) == ("734c7523764d", "alpine:3.19")
    assert events[44].tactics == ("persistence",)  # TA0003 and mitre_persistence


def test_event_carries_the_alert() -> None:
    alert = _alert({"k8s.ns.name": "shop", "k8s.pod.name": "web-5968574496-bq2xz"})
    event = _one(alert)
    assert event == Event(
        id=content_id(alert),
        time_ns=alert.time_ns,
        received_ns=42,
        rule=alert.rule,
        priority=Priority.NOTICE,
        source="syscall",
        hostname="node-1",
        workload=Workload("prod", "shop", "Deployment", "web"),
        pod="web-5968574496-bq2xz",
        container_id=None,
        container_image=None,
        tactics=("execution",),
        techniques=("T1059",),
        tags=alert.tags,
        output="a shell",
        fields=alert.output_fields,
        origin="test:1",
    )
    assert Enricher(cluster="prod").enrich_one(alert, 42) == event


def test_uuid_is_the_id_when_present() -> None:
    event = _one(_alert({}, uuid="3b3e8f4e-6c1d-4e0f-9d52-2d6f0a1b9c77"))
    assert event.id == "3b3e8f4e-6c1d-4e0f-9d52-2d6f0a1b9c77"


def test_content_id_is_sha256_of_canonical_json() -> None:
    fields = {"proc.name": "sh", "container.id": "abc", "proc.aname[2]": None, "n": 1.5}
    alert = _alert(fields)
    canonical = json.dumps(
        [alert.rule, alert.time_ns, alert.hostname, alert.output, fields],
        sort_keys=True,
        separators=(",", ":"),
    )
    assert content_id(alert) == hashlib.sha256(canonical.encode()).hexdigest()[:32]


def test_content_id_of_any_mapping_matches_the_dict() -> None:
    fields = {"b": 1, "a": "x"}
    proxy = MappingProxyType(fields)
    assert content_id(_alert(proxy)) == content_id(_alert(dict(fields)))


def test_content_id_is_stable_across_key_order_and_origin() -> None:
    line = {
        "rule": "R",
        "priority": "Warning",
        "time": "2024-01-01T00:00:00.000000001Z",
        "output": "o",
        "hostname": "h",
        "output_fields": {"a": 1, "b": "x", "c": None},
    }
    reordered = {key: line[key] for key in reversed(list(line))}
    reordered["output_fields"] = {"c": None, "b": "x", "a": 1}
    first = parse_alert(json.dumps(line), "file:1")
    second = parse_alert(json.dumps(reordered), "http:10.0.0.1")
    assert content_id(first) == content_id(second)
    for changed in (
        {"rule": "R2"},
        {"output": "o2"},
        {"hostname": "h2"},
        {"time": "2024-01-01T00:00:00.000000002Z"},
        {"output_fields": {"a": 2, "b": "x", "c": None}},
    ):
        other = parse_alert(json.dumps({**line, **changed}), "file:1")
        assert content_id(other) != content_id(first), changed


def test_k8smeta_fields_and_their_deployment() -> None:
    fields = {
        "k8s.ns.name": None,
        "k8s.pod.name": None,
        "k8smeta.ns.name": "shop",
        "k8smeta.pod.name": "worker-x7k2p",
        "k8smeta.deployment.name": "worker",
    }
    event = _one(_alert(fields))
    assert event.workload == Workload("prod", "shop", "Deployment", "worker")
    assert event.pod == "worker-x7k2p"


def test_not_available_values_are_absent() -> None:
    fields = {
        "k8s.ns.name": "<NA>",
        "k8s.pod.name": "<NA>",
        "container.id": "",
        "container.image.repository": "<NA>",
        "container.image": "<NA>",
    }
    event = _one(_alert(fields))
    assert event.workload == Workload("prod", "", "Host", "node-1")
    assert (event.pod, event.container_id, event.container_image) == (None, None, None)


def test_image_falls_back_to_container_image() -> None:
    event = _one(_alert({"container.image": "nginx:1.25", "container.image.repository": None}))
    assert event.container_image == "nginx:1.25"


def test_lookup_comes_before_naming_and_alert_fields_before_lookup() -> None:
    asked: list[tuple[str, str]] = []

    def lookup_fn(namespace: str, pod: str) -> tuple[str, str] | None:
        asked.append((namespace, pod))
        return ("Job", "migrate") if pod == "migrate-x7k2p" else None

    enricher = Enricher(cluster="c", lookup=CachedOwnerLookup(lookup_fn, ttl_s=60))
    migrate = _alert({"k8s.ns.name": "db", "k8s.pod.name": "migrate-x7k2p"})
    postgres = _alert({"k8s.ns.name": "db", "k8s.pod.name": "postgres-0"})
    named = _alert(
        {"k8s.ns.name": "db", "k8s.pod.name": "api-x7k2p", "k8smeta.deployment.name": "api"}
    )
    events = enricher.enrich([(migrate, 1), (postgres, 2), (migrate, 3), (named, 4)])
    assert [e.workload for e in events] == [
        Workload("c", "db", "Job", "migrate"),
        Workload("c", "db", "StatefulSet", "postgres"),
        Workload("c", "db", "Job", "migrate"),
        Workload("c", "db", "Deployment", "api"),
    ]
    assert asked == [("db", "migrate-x7k2p"), ("db", "postgres-0")]


def test_audit_pod_target_uses_the_lookup_too() -> None:
    enricher = Enricher(lookup=CachedOwnerLookup(lambda ns, pod: ("DaemonSet", "falco"), ttl_s=60))
    fields = {
        "ka.target.namespace": "falco",
        "ka.target.resource": "pods",
        "ka.target.name": "falco-xczjd",
    }
    event = _one(_alert(fields, source="k8s_audit", tags=("k8s",)), enricher)
    assert event.workload == Workload("default", "falco", "DaemonSet", "falco")
    assert event.pod == "falco-xczjd"


@pytest.mark.parametrize(
    ("fields", "workload"),
    [
        (
            {
                "ka.target.resource": "deployments",
                "ka.target.namespace": "shop",
                "ka.target.name": "web",
            },
            Workload("prod", "shop", "Deployment", "web"),
        ),
        (
            # A pod create: the name was generated, so it is only in the response.
            {"ka.target.resource": "pods", "ka.target.namespace": "shop", "ka.resp.name": "web-1"},
            Workload("prod", "shop", "StatefulSet", "web"),
        ),
        (
            {"ka.target.resource": "clusterrolebindings", "ka.target.name": "admin-all"},
            Workload("prod", "", "ClusterRoleBinding", "admin-all"),
        ),
        (
            {"ka.target.resource": "secrets", "ka.target.namespace": "shop"},  # a list: no name
            Workload("prod", "shop", "Host", "node-1"),
        ),
        ({}, Workload("prod", "", "Host", "node-1")),
    ],
)
def test_audit_targets(fields: dict[str, Any], workload: Workload) -> None:
    event = _one(_alert(fields, source="k8s_audit", tags=("k8s",)))
    assert event.workload == workload
    assert event.container_id is None


def test_other_sources_map_to_the_host() -> None:
    event = _one(_alert({"ct.user": "alice"}, source="aws_cloudtrail", hostname=""))
    assert event.workload == Workload("prod", "", "Host", "")


def test_naming_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enrich_module, "_MAX_CACHED_PODS", 2)
    enricher = Enricher()
    alerts = [(_alert({"k8s.ns.name": "ns", "k8s.pod.name": f"web-{i}"}), i) for i in range(5)]
    events = enricher.enrich(alerts)
    assert [e.workload.name for e in events] == ["web"] * 5
    assert len(enricher._named) <= 2


def test_empty_batch() -> None:
    assert Enricher().enrich([]) == []


def test_audit_namespace_falls_back_to_the_request_uri() -> None:
    from kubesentinel.runtime.enrich import _uri_namespace

    assert _uri_namespace("/apis/apps/v1/namespaces/staging/deployments/web") == "staging"
    assert _uri_namespace("/api/v1/namespaces/default/pods?watch=1") == "default"
    assert _uri_namespace("/api/v1/namespaces/kube-system") == "kube-system"
    assert _uri_namespace("/api/v1/nodes/n1") is None
    assert _uri_namespace(None) is None
