"""The Helm chart in deploy/helm/kubesentinel, rendered by Helm and judged by our own scanner."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.runtime import k8s_owners
from tests.deploy.chart import ALL_FEATURES, NATS, RULES_FILE, objects, one, render, scan

VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "defaults": (),
    "all-features": (ALL_FEATURES,),
    "nats-source": (ALL_FEATURES, NATS),
    "mtls-without-probe-certificate": ({"ingest": {"mtls": {"probeClientSecretName": ""}}},),
    "token-without-tls": (
        {"ingest": {"tls": {"enabled": False}, "token": {"existingSecret": "ingest-token"}}},
    ),
    "no-owner-lookups": ({"monitor": {"ownerLookups": False}},),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_manifest_passes_pss_restricted(tmp_path: Path, variant: str) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render(tmp_path, *VARIANTS[variant]))
    code, report = scan(manifest, "--framework", "pss-restricted", "--severity-threshold", "low")
    assert report["findings"] == []
    assert code == 0
    assert report["summary"]["objects"] >= 8
    # The scanner also knows every field of these kinds: a misspelt one would be KS-W002.
    assert report["warnings"] == []
    assert report["errors"] == []


# At the default threshold (medium) the one finding left is the API server egress rule of the
# defaults: its address differs per cluster, so the chart cannot name it (networkPolicy.apiServer).
@pytest.mark.parametrize("variant", VARIANTS)
def test_default_threshold_findings_are_only_the_unset_api_server_address(
    tmp_path: Path, variant: str
) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render(tmp_path, *VARIANTS[variant]))
    _, report = scan(manifest)
    found = {(f["rule_id"], f["object"]["kind"], f["field_path"]) for f in report["findings"]}
    api_open = "apiServer" not in str(VARIANTS[variant]) and variant != "no-owner-lookups"
    expected = {("KS-0057", "NetworkPolicy", "spec.egress[1]")} if api_open else set()
    assert found == expected
    if api_open:
        assert 'no "to" peers' in report["findings"][0]["message"]


def test_nats_source_suppresses_only_the_probe_rules_with_a_reason(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render(tmp_path, ALL_FEATURES, NATS))
    _, report = scan(manifest, "--severity-threshold", "low")  # probes are hygiene: low
    suppressed = {(s["rule_id"], s["suppression"]["reason"]) for s in report["suppressed"]}
    reason = "a nats:// source has no HTTP listener, hence no /healthz to probe"
    assert suppressed == {("KS-0044", reason), ("KS-0045", reason)}


def _api_reads() -> set[tuple[str, str]]:
    """(API group, resource) of every ``read_namespaced_*`` call in runtime/k8s_owners.py, the
    API group from the client class the attribute was made from (CoreV1Api -> "")."""
    tree = ast.parse(Path(k8s_owners.__file__).read_text())
    groups: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            target, func = node.targets[0], node.value.func
            if isinstance(target, ast.Attribute) and isinstance(func, ast.Attribute):
                match = re.fullmatch(r"(Core|Apps|Batch)V1Api", func.attr)
                if match:
                    groups[target.attr] = "" if match[1] == "Core" else match[1].lower()
    reads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("read_namespaced_"):
            assert isinstance(node.value, ast.Attribute), ast.dump(node)
            resource = node.attr.removeprefix("read_namespaced_").replace("_", "") + "s"
            reads.add((groups[node.value.attr], resource))
    return reads


def test_rbac_grants_get_on_exactly_what_the_owner_lookups_read(tmp_path: Path) -> None:
    reads = _api_reads()
    assert ("", "pods") in reads
    assert ("apps", "replicasets") in reads
    manifest = render(tmp_path, ALL_FEATURES)
    role = one(manifest, "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert rule["verbs"] == ["get"], rule  # no list, watch, or anything else
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames etc.
        granted |= {
            (group, resource) for group in rule["apiGroups"] for resource in rule["resources"]
        }
    assert granted == reads
    binding = one(manifest, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    monitor = one(manifest, "StatefulSet")
    account = monitor["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "kubesentinel"}
    ]
    assert [o for o in objects(manifest) if o["kind"] in ("Role", "RoleBinding")] == []


def test_without_owner_lookups_there_is_no_rbac_and_no_token(tmp_path: Path) -> None:
    manifest = render(tmp_path, {"monitor": {"ownerLookups": False}})
    kinds = {obj["kind"] for obj in objects(manifest)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    pod = one(manifest, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "kube-api-access" not in {volume["name"] for volume in pod["volumes"]}
    assert "--no-k8s-lookup" in pod["containers"][0]["args"]


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


@pytest.mark.parametrize("variant", ["defaults", "all-features"])
def test_network_policy_selects_the_monitor_and_admits_only_falco(
    tmp_path: Path, variant: str
) -> None:
    manifest = render(tmp_path, *VARIANTS[variant])
    policy = one(manifest, "NetworkPolicy", "kubesentinel")
    pod_labels = one(manifest, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(policy["spec"]["podSelector"], pod_labels)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingest, *others = policy["spec"]["ingress"]
    assert ingest["ports"] == [{"port": "ingest", "protocol": "TCP"}]
    falco = ingest["from"][0]
    assert falco["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "falco"}
    assert falco["podSelector"]["matchExpressions"][0]["values"] == ["falco", "falcosidekick"]
    if variant == "all-features":  # metrics: the monitoring namespace, same port
        (metrics,) = others
        assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        analyzer = one(manifest, "NetworkPolicy", "analyzer")
        analyzer_labels = one(manifest, "Deployment", "analyzer")["spec"]["template"]["metadata"]
        assert _labels_match(analyzer["spec"]["podSelector"], analyzer_labels["labels"])
        assert analyzer["spec"]["egress"] == []
    else:
        assert others == []
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    expected = {53, 443, 6443} | ({5432, 50051} if variant == "all-features" else set())
    assert egress_ports == expected


def test_nats_source_has_no_ingress_and_egress_to_nats(tmp_path: Path) -> None:
    manifest = render(tmp_path, ALL_FEATURES, NATS)
    assert "Service" not in {
        o["kind"] for o in objects(manifest) if "analyzer" not in o["metadata"]["name"]
    }
    policy = one(manifest, "NetworkPolicy", "kubesentinel")
    assert policy["spec"]["ingress"] == []
    assert any(
        rule["ports"] == [{"port": 4222, "protocol": "TCP"}] for rule in policy["spec"]["egress"]
    )
    container = one(manifest, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert "--source=$(KUBESENTINEL_NATS_URL)" in container["args"]
    assert "readinessProbe" not in container
    assert "ports" not in container


def _probes(manifest: str) -> list[dict[str, Any]]:
    container = one(manifest, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    return [container["readinessProbe"], container["livenessProbe"]]


def test_probes_get_healthz(tmp_path: Path) -> None:
    # TLS without mutual TLS: the kubelet asks /healthz itself.
    for probe in _probes(render(tmp_path, VARIANTS["token-without-tls"][0])):
        assert probe["httpGet"] == {"path": "/healthz", "port": "ingest", "scheme": "HTTP"}
    tls_token = {"ingest": {"mtls": {"enabled": False}, "token": {"existingSecret": "t"}}}
    for probe in _probes(render(tmp_path, tls_token)):
        assert probe["httpGet"] == {"path": "/healthz", "port": "ingest", "scheme": "HTTPS"}
    # Mutual TLS (the defaults): the healthcheck script with the probe's client certificate.
    for probe in _probes(render(tmp_path)):
        command = probe["exec"]["command"]
        assert command[:3] == ["python3", "-I", "/etc/kubesentinel/config/healthcheck.py"]
        assert command[3] == "https://127.0.0.1:2801/healthz"


def test_hardened_pod_and_container_security(tmp_path: Path) -> None:
    manifest = render(tmp_path, ALL_FEATURES)
    for kind in ("StatefulSet", "Deployment"):
        pod = one(manifest, kind)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] == 10001
            assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"]), container["image"]
            assert {"requests", "limits"} <= set(container["resources"])
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp or container["name"] == "signing-key"


def test_a_tag_instead_of_a_digest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="image/digest"):  # values.schema.json
        render(tmp_path, {"image": {"digest": "latest"}})


def test_unauthenticated_ingest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="needs authentication"):
        render(tmp_path, {"ingest": {"tls": {"enabled": False}}})


def test_postgres_without_a_shared_signing_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="same key"):
        render(tmp_path, {"vault": {"postgres": {"enabled": True}}})


def test_the_chart_ships_the_telemetry_rules_file_unchanged(tmp_path: Path) -> None:
    rules = one(render(tmp_path), "ConfigMap", "falco-rules")
    assert rules["metadata"]["namespace"] == "falco"
    assert rules["data"] == {"kubesentinel-telemetry.yaml": RULES_FILE.read_text()}


# Falco's http_output keys (falco.yaml of Falco 0.4x and the falco chart's falco.http_output).
FALCO_HTTP_OUTPUT_KEYS = {
    "enabled", "url", "user_agent", "insecure", "ca_cert", "ca_bundle", "ca_path", "mtls",
    "client_cert", "client_key", "echo", "compress_uploads", "keep_alive",
}  # fmt: skip


def test_falco_output_fragment_posts_to_the_monitor_service_with_mutual_tls(
    tmp_path: Path,
) -> None:
    import yaml

    manifest = render(tmp_path)
    fragment = yaml.safe_load(
        one(manifest, "ConfigMap", "falco-output")["data"]["kubesentinel-output.yaml"]
    )
    assert fragment["json_output"] is True
    assert fragment["json_include_tags_property"] is True
    http = fragment["http_output"]
    assert set(http) <= FALCO_HTTP_OUTPUT_KEYS
    service = one(manifest, "Service")
    port = service["spec"]["ports"][0]["port"]
    assert http["url"] == f"https://{service['metadata']['name']}.kubesentinel.svc:{port}/falco"
    assert http["mtls"] is True
    assert http["insecure"] is False
    assert http["compress_uploads"] is False  # the receiver does not decompress


def test_a_misspelt_value_is_refused_by_the_schema(tmp_path: Path) -> None:
    # values.schema.json: unknown keys and wrong enums fail the render instead of being ignored.
    with pytest.raises(AssertionError, match="additional properties 'enable' not allowed"):
        render(tmp_path, {"ingest": {"mtls": {"enable": False}}})
    with pytest.raises(AssertionError, match="monitor/source"):
        render(tmp_path, {"monitor": {"source": "kafka"}})
