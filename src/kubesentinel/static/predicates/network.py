"""Predicates on network exposure and isolation: namespaces, NetworkPolicies, Ingress, Service."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext, namespace_of
from kubesentinel.static.podspec import Path, mapping, pod_spec, sequence
from kubesentinel.static.predicates import Params, Violation, predicate

# Built-in kinds that live outside namespaces (kubectl api-resources --namespaced=false).
CLUSTER_SCOPED_KINDS = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "ClusterTrustBundle", "ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition",
    "DeviceClass", "FlowSchema", "IngressClass", "IPAddress", "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration",
    "ResourceSlice", "RuntimeClass", "SelfSubjectAccessReview", "SelfSubjectReview",
    "SelfSubjectRulesReview", "ServiceCIDR", "StorageClass", "StorageVersion",
    "StorageVersionMigration", "SubjectAccessReview", "TokenReview",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment", "VolumeAttributesClass",
})  # fmt: skip
# Cluster-wide custom resources follow the Cluster* naming habit (cert-manager ClusterIssuer,
# Kyverno ClusterPolicy, ...); OLM's ClusterServiceVersion is the namespaced exception.
_NAMESPACED_CLUSTER_PREFIXED = frozenset({"ClusterServiceVersion"})
# Tool configuration files that are never applied to a cluster (kubeconfig, kustomization).
_CONFIG_GROUPS = ("kustomize.config.k8s.io", "kubeadm.k8s.io", "audit.k8s.io", "apiserver.k8s.io")
_EXEMPT_OBJECTS = frozenset({("ServiceAccount", "default"), ("Service", "kubernetes")})
NETWORK_POLICY_GROUP = "networking.k8s.io/"


def is_cluster_scoped(obj: K8sObject) -> bool:
    """Kinds that have no namespace, or files that are not cluster objects at all."""
    if obj.kind in CLUSTER_SCOPED_KINDS:
        return True
    if obj.kind.startswith("Cluster") and obj.kind not in _NAMESPACED_CLUSTER_PREFIXED:
        return True
    group = obj.api_version.rpartition("/")[0]
    if group.endswith(".config.k8s.io") or group in _CONFIG_GROUPS:
        return True
    return obj.api_version == "v1" and obj.kind == "Config"


@predicate("default_namespace")
def default_namespace(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A namespaced object sets namespace "default" or none (it lands in default)."""
    if is_cluster_scoped(obj) or (obj.kind, obj.name) in _EXEMPT_OBJECTS:
        return
    path = ("metadata", "namespace")
    if obj.namespace == "default":
        yield Violation('metadata.namespace is "default"', path)
    elif obj.namespace is None:
        raw = mapping(obj.body.get("metadata")).get("namespace")
        state = "not set" if raw is None else "empty"
        yield Violation(f"metadata.namespace is {state}, so the object lands in default", path)


def _label_text(value: Any) -> str:
    """A label value as the API server stores it (YAML may have read "true" or 1 unquoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# A label selector read once: matchLabels as (key, value text) pairs, and matchExpressions as
# (key, operator, value texts). Policies are matched against every workload of their namespace.
_Selector = tuple[tuple[tuple[Any, str], ...], tuple[tuple[str, str, frozenset[str]], ...]]
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _compile(selector: Any) -> _Selector | None:
    """A metav1.LabelSelector, or None when it is invalid and so selects nothing."""
    if selector is None:
        return (), ()  # an empty selector matches everything
    if not isinstance(selector, Mapping):
        return None
    match_labels = selector.get("matchLabels")
    if match_labels is not None and not isinstance(match_labels, Mapping):
        return None
    pairs = tuple((key, _label_text(value)) for key, value in mapping(match_labels).items())
    expressions = []
    for expression in sequence(selector.get("matchExpressions")):
        expr = mapping(expression)
        key, operator = expr.get("key"), expr.get("operator")
        if not isinstance(key, str) or operator not in _OPERATORS:
            return None  # no key, or an unknown operator: the selector is invalid
        values = frozenset(_label_text(v) for v in sequence(expr.get("values")))
        expressions.append((key, str(operator), values))
    return pairs, tuple(expressions)


def _label_texts(labels: Mapping[Any, Any]) -> dict[Any, str]:
    return {key: _label_text(value) for key, value in labels.items()}


def _matches(selector: _Selector, texts: Mapping[Any, str]) -> bool:
    """Every matchLabels pair and expression holds for the labels (as _label_texts)."""
    pairs, expressions = selector
    for key, wanted in pairs:
        if texts.get(key) != wanted:
            return False
    for key, operator, values in expressions:
        value = texts.get(key)  # None: the label is absent
        if operator == "In":
            holds = value is not None and value in values
        elif operator == "NotIn":
            holds = value is None or value not in values
        else:
            holds = (value is not None) == (operator == "Exists")
        if not holds:
            return False
    return True


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels pair and expression must hold;
    an empty selector matches everything."""
    compiled = _compile(selector)
    return compiled is not None and _matches(compiled, _label_texts(labels))


def _is_k8s_network_policy(obj: K8sObject) -> bool:
    # CNI-specific policies (Calico, Cilium) have other shapes and do not count.
    return obj.kind == "NetworkPolicy" and obj.api_version.startswith(NETWORK_POLICY_GROUP)


def _pod_selectors(ctx: ScanContext) -> dict[str, tuple[_Selector, ...]]:
    """Namespace -> the distinct valid pod selectors of its NetworkPolicies in the scan."""

    def build() -> dict[str, tuple[_Selector, ...]]:
        found: dict[str, dict[_Selector, None]] = {}
        for policy in ctx.of_kind("NetworkPolicy"):
            selector = _compile(mapping(policy.body.get("spec")).get("podSelector"))
            if _is_k8s_network_policy(policy) and selector is not None:
                found.setdefault(namespace_of(policy), {})[selector] = None
        return {namespace: tuple(selectors) for namespace, selectors in found.items()}

    return ctx.memo("network_pod_selectors", build)


@predicate("network_policy_missing")
def network_policy_missing(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """No NetworkPolicy of the scan in the workload's namespace selects its pod labels."""
    pod = pod_spec(obj)
    if pod is None:
        return
    texts = _label_texts(mapping(pod.metadata.get("labels")))
    namespace = namespace_of(obj)
    if any(_matches(selector, texts) for selector in _pod_selectors(ctx).get(namespace, ())):
        return
    yield Violation(
        f'no NetworkPolicy in namespace "{namespace}" selects the pods of this workload',
        (*pod.metadata_path, "labels"),
    )


@predicate("ingress_no_tls")
def ingress_no_tls(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """An Ingress has no spec.tls entries, so it serves plain HTTP only."""
    if not sequence(mapping(obj.body.get("spec")).get("tls")):
        yield Violation("Ingress has no spec.tls entries", ("spec", "tls"))


@predicate("service_type")
def service_type(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A Service has the given spec.type (params.type, e.g. NodePort)."""
    if mapping(obj.body.get("spec")).get("type") == params["type"]:
        yield Violation(f"Service is of type {params['type']}", ("spec", "type"))


def _policy_types(spec: Mapping[str, Any]) -> set[str]:
    """policyTypes as the API server defaults them: Ingress, plus Egress when egress rules exist."""
    listed = {t for t in sequence(spec.get("policyTypes")) if isinstance(t, str)}
    if listed:
        return listed
    return {"Ingress", "Egress"} if sequence(spec.get("egress")) else {"Ingress"}


def _is_empty_selector(selector: Any) -> bool:
    return isinstance(selector, dict) and not (
        mapping(selector.get("matchLabels")) or sequence(selector.get("matchExpressions"))
    )


def _open_peer(peer: Any) -> str | None:
    """Why a from/to peer admits everyone, or None."""
    peer = mapping(peer)
    cidr = mapping(peer.get("ipBlock")).get("cidr")
    if isinstance(cidr, str):
        try:
            if ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0:
                return f"any address ({cidr.strip()})"
        except ValueError:
            return None
    pods = peer.get("podSelector")
    any_pod = pods is None or _is_empty_selector(pods)
    if _is_empty_selector(peer.get("namespaceSelector")) and any_pod:
        return "every pod in every namespace"
    return None


def _open_rules(spec: Mapping[str, Any], direction: str) -> Iterator[Violation]:
    peer_key, word = ("from", "from") if direction == "ingress" else ("to", "to")
    for index, rule in enumerate(sequence(spec.get(direction))):
        rule_path: Path = ("spec", direction, index)
        peers = sequence(mapping(rule).get(peer_key))
        ports = "on its listed ports" if sequence(mapping(rule).get("ports")) else "on any port"
        if not peers:
            yield Violation(
                f'{direction} rule {index} lists no "{peer_key}" peers, so it allows traffic '
                f"{word} anywhere {ports}",
                rule_path,
            )
        for peer_index, peer in enumerate(peers):
            reason = _open_peer(peer)
            if reason is not None:
                yield Violation(
                    f"{direction} rule {index} allows traffic {word} {reason} {ports}",
                    (*rule_path, peer_key, peer_index),
                )


@predicate("network_policy_allows_all")
def network_policy_allows_all(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """An enforced ingress/egress rule of a NetworkPolicy admits traffic from/to everywhere."""
    if not _is_k8s_network_policy(obj):
        return
    spec = mapping(obj.body.get("spec"))
    types = _policy_types(spec)
    for direction in ("ingress", "egress"):
        if direction.capitalize() in types:
            yield from _open_rules(spec, direction)


# Annotations that make a cloud load balancer internal (reachable from the VPC only).
_INTERNAL_LB_ANNOTATIONS: Mapping[str, str] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "internal",
    "cloud.google.com/load-balancer-type": "internal",
    "service.beta.kubernetes.io/oci-load-balancer-internal": "true",
    "service.beta.kubernetes.io/openstack-internal-load-balancer": "true",
}
_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def _internal_load_balancer(annotations: Mapping[str, Any]) -> bool:
    return any(
        _label_text(annotations.get(key)).lower() == value
        for key, value in _INTERNAL_LB_ANNOTATIONS.items()
    )


def _open_ranges(ranges: list[Any]) -> list[str]:
    """The source ranges that admit every address (prefix length 0)."""
    open_ranges = []
    for cidr in ranges:
        try:
            if ipaddress.ip_network(str(cidr).strip(), strict=False).prefixlen == 0:
                open_ranges.append(str(cidr).strip())
        except ValueError:
            continue  # the API server rejects it; not this rule's concern
    return open_ranges


@predicate("load_balancer_open")
def load_balancer_open(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A LoadBalancer Service that is not internal and restricts no source addresses."""
    spec = mapping(obj.body.get("spec"))
    if spec.get("type") != "LoadBalancer":
        return
    annotations = mapping(mapping(obj.body.get("metadata")).get("annotations"))
    if _internal_load_balancer(annotations):
        return
    ranges = list(sequence(spec.get("loadBalancerSourceRanges")))
    path: Path = ("spec", "loadBalancerSourceRanges")
    if not ranges:  # the annotation is the older form; the field wins when both are set
        text = annotations.get(_SOURCE_RANGES_ANNOTATION)
        ranges = [r for r in str(text).split(",") if r.strip()] if text else []
        path = ("metadata", "annotations", _SOURCE_RANGES_ANNOTATION)
    if not ranges:
        yield Violation(
            "LoadBalancer Service sets no loadBalancerSourceRanges: every address can reach it",
            ("spec", "type"),
        )
    elif open_ranges := _open_ranges(ranges):
        yield Violation(
            f"LoadBalancer Service admits every address ({', '.join(open_ranges)})", path
        )


@predicate("service_external_ips")
def service_external_ips(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A Service lists spec.externalIPs (traffic to those addresses is captured: CVE-2020-8554)."""
    ips = [str(ip) for ip in sequence(mapping(obj.body.get("spec")).get("externalIPs"))]
    if ips:
        yield Violation(f"Service sets externalIPs {', '.join(ips)}", ("spec", "externalIPs"))


def _workloads(ctx: ScanContext) -> dict[str, list[K8sObject]]:
    """Namespace -> the objects of the scan that run pods there, in scan order."""

    def build() -> dict[str, list[K8sObject]]:
        found: dict[str, list[K8sObject]] = {}
        for obj in ctx.objects:
            if pod_spec(obj) is not None:
                found.setdefault(namespace_of(obj), []).append(obj)
        return found

    return ctx.memo("workloads_by_namespace", build)


def _unprotected_namespaces(ctx: ScanContext) -> dict[str, K8sObject]:
    """Namespace -> the object to report on, for every namespace of the scan that runs
    workloads and has no NetworkPolicy: its Namespace object when the scan holds one, else
    its first workload in scan order."""

    def build() -> dict[str, K8sObject]:
        protected = {
            namespace_of(p) for p in ctx.of_kind("NetworkPolicy") if _is_k8s_network_policy(p)
        }
        reported: dict[str, K8sObject] = {}
        for namespace, workloads in _workloads(ctx).items():
            if namespace not in protected:
                found = ctx.find("Namespace", namespace)
                reported[namespace] = found if found is not None else workloads[0]
        return reported

    return ctx.memo("unprotected_namespaces", build)


@predicate("namespace_without_network_policy")
def namespace_without_network_policy(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """A namespace runs workloads and no NetworkPolicy of the scan applies in it: one finding
    per namespace, on its Namespace object or else on its first workload."""
    namespace = obj.name if obj.kind == "Namespace" else namespace_of(obj)
    if namespace is None or _unprotected_namespaces(ctx).get(namespace) is not obj:
        return
    # Distinct workloads: a file scanned twice (two paths naming it) must give one message.
    workloads = {(o.kind, o.name) for o in _workloads(ctx)[namespace]}
    yield Violation(
        f'namespace "{namespace}" runs {len(workloads)} workload(s) and has no NetworkPolicy, '
        "so every pod accepts traffic from anywhere",
        ("metadata", "name"),
    )
