"""The bridge: posture loaded from scans, keyed per cluster, scored from the rules' data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubesentinel import bridge
from kubesentinel.bridge import load_posture_file, posture_score, runtime_impacts
from kubesentinel.cli import main
from kubesentinel.errors import RuntimeLayerError
from kubesentinel.models import Workload
from kubesentinel.models.kinds import RUNTIME_WORKLOAD_KINDS, WORKLOAD_KINDS
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.models.severity import Severity
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.static.catalogue import builtin_catalogue

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: nginx:1.25
          securityContext: {privileged: true}
        - name: sidecar
          image: busybox:1.36
          securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  hostPID: true
  containers:
    - {name: sh, image: "alpine:3.19"}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: prod}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: backup
              image: alpine:3.19
              volumeMounts: [{name: host, mountPath: /host}]
          volumes: [{name: host, hostPath: {path: /}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: everything}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
"""
HINT = (
    "create it with: kubesentinel scan --path DIR --format json --severity-threshold low "
    "--output FILE"
)


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("posture")
    manifest = folder / "app.yaml"
    manifest.write_text(MANIFEST)
    output = folder / "scan.json"
    args = ["scan", "--path", str(manifest), "--format", "json", "--severity-threshold", "low"]
    assert main([*args, "--output", str(output)]) == 1  # findings
    return output


def test_public_names() -> None:
    assert sorted(bridge.__all__) == [
        "POSTURE_CAP", "POSTURE_POINTS", "impacts_of", "load_posture_file", "posture_document",
        "posture_from_document", "posture_from_findings", "posture_key", "posture_score",
        "runtime_impacts",
    ]  # fmt: skip


def test_runtime_kinds_are_the_scanners_workloads_an_alert_can_name() -> None:
    assert set(WORKLOAD_KINDS) - RUNTIME_WORKLOAD_KINDS == {"PodTemplate"}
    owners = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet",
              "ReplicationController", "Pod", "DeploymentConfig"}  # fmt: skip
    assert owners == RUNTIME_WORKLOAD_KINDS


def web(cluster: str = "default") -> Workload:
    return Workload(cluster, "prod", "Deployment", "web")


def test_posture_from_a_real_scan(scan_file: Path) -> None:
    scan = json.loads(scan_file.read_text())
    posture = load_posture_file(scan_file)
    assert (posture.source, posture.cluster) == (str(scan_file), "default")
    assert sorted(posture.workloads) == [
        "default/default/Pod/debug",
        "default/prod/CronJob/backup",
        "default/prod/Deployment/web",
    ]

    findings = posture.of(web())
    web_rules = [f.rule_id for f in findings]
    assert "KS-0001" in web_rules  # privileged
    assert len(web_rules) == len(set(web_rules))  # two privileged containers: counted once
    # Each finding's rule, and the implied rules a folded finding holds.
    expected = {
        rule_id
        for f in scan["findings"]
        if f["object"] == {"api_version": "apps/v1", "kind": "Deployment", "namespace": "prod",
                           "name": "web"}
        for rule_id in (f["rule_id"], *f["folded"])
    }  # fmt: skip
    assert set(web_rules) == expected
    escalation = next(f for f in findings if f.rule_id == "KS-0022")  # folded into KS-0001
    assert (escalation.severity, escalation.impact) == (
        Severity.HIGH,
        "privilege escalation allowed",
    )
    privileged = next(f for f in findings if f.rule_id == "KS-0001")
    assert privileged == PostureFinding(
        "KS-0001", Severity.CRITICAL, privileged.title, "privileged"
    )
    assert privileged.title
    # Highest severity first, then rule id.
    assert [(-f.severity, f.rule_id) for f in findings] == sorted(
        (-f.severity, f.rule_id) for f in findings
    )

    debug = Workload("default", "", "Pod", "debug")  # an unset namespace reads as "default"
    assert "KS-0002" in [f.rule_id for f in posture.of(debug)]  # hostPID
    backup = Workload("default", "prod", "CronJob", "backup")
    assert "KS-0005" in [f.rule_id for f in posture.of(backup)]  # hostPath
    # Non-workload objects (the Service, the ClusterRole) had findings but do not count.
    kinds = {f["object"]["kind"] for f in scan["findings"]}
    assert {"Service", "ClusterRole"} & kinds
    assert posture.of(Workload("default", "prod", "Service", "web")) == ()
    assert posture.of(Workload("default", "", "ClusterRole", "everything")) == ()


def test_two_clusters_with_the_same_names_get_different_posture(scan_file: Path) -> None:
    prod = load_posture_file(scan_file, cluster="prod")
    assert prod.cluster == "prod"
    assert all(key.startswith("prod/") for key in prod.workloads)
    assert "KS-0001" in [f.rule_id for f in prod.of(web("prod"))]
    assert prod.of(web("staging")) == ()
    assert prod.of(web()) == ()
    staging = load_posture_file(scan_file, cluster="staging")
    assert staging.of(web("staging")) == prod.of(web("prod"))


# The table runtime/correlate.py hard-coded before the rules carried it (release 0.1).
BEFORE_RULE_DATA = {
    "KS-0001": "privileged", "KS-0002": "host PID", "KS-0003": "host IPC",
    "KS-0004": "host network", "KS-0005": "hostPath", "KS-0034": "writable hostPath",
    "KS-0035": "sensitive host path", "KS-0036": "runtime socket", "KS-0007": "added capability",
    "KS-0030": "NET_RAW", "KS-0031": "SYS_ADMIN", "KS-0032": "dangerous capability",
    "KS-0013": "Windows HostProcess", "KS-0018": "runs as root", "KS-0023": "may run as root",
    "KS-0022": "privilege escalation allowed",
}  # fmt: skip
BEFORE_POINTS = {Severity.CRITICAL: 12.0, Severity.HIGH: 7.0, Severity.MEDIUM: 3.0,
                 Severity.LOW: 1.0}  # fmt: skip


def score_before(findings: list[PostureFinding]) -> tuple[float, str] | None:
    """The posture reason as release 0.1 computed it, from its own table."""
    worst: dict[str, PostureFinding] = {}
    for f in findings:
        if f.rule_id not in worst or f.severity > worst[f.rule_id].severity:
            worst[f.rule_id] = f
    relevant = [worst[r] for r in sorted(worst) if r in BEFORE_RULE_DATA]
    if not relevant:
        return None
    named = ", ".join(f"{f.rule_id} {BEFORE_RULE_DATA[f.rule_id]} ({f.severity.label})"
                      for f in relevant)  # fmt: skip
    points = min(25.0, sum(BEFORE_POINTS[f.severity] for f in relevant))
    return points, f"workload posture: {named}"


def scan_document(rule_ids: list[str]) -> dict[str, object]:
    """A scan result with one finding of each rule (its catalogue severity) on prod/web."""
    catalogue = builtin_catalogue()
    findings = []
    for rule_id in rule_ids:
        rule = catalogue.get(rule_id)
        assert rule is not None
        obj = {"kind": "Deployment", "namespace": "prod", "name": "web"}
        findings.append(
            {
                "rule_id": rule.id,
                "severity": rule.severity.label,
                "title": rule.title,
                "object": obj,
            }
        )
    return {"schema_version": "1.1", "findings": findings}


def test_the_rules_runtime_data_is_the_table_the_correlator_hard_coded() -> None:
    assert dict(runtime_impacts()) == BEFORE_RULE_DATA


@pytest.mark.parametrize(
    "rule_ids",
    [
        [],
        ["KS-0042"],
        *([rule_id] for rule_id in BEFORE_RULE_DATA),
        ["KS-0005", "KS-0018", "KS-0042"],
        ["KS-0022", "KS-0023", "KS-0030"],
        sorted(BEFORE_RULE_DATA),  # far above the cap
        ["KS-0001", "KS-0002", "KS-0003", "KS-0006", "KS-0010", "KS-0040"],
    ],
)
def test_scores_equal_those_before_the_rule_data(tmp_path: Path, rule_ids: list[str]) -> None:
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(scan_document(rule_ids)))
    findings = load_posture_file(path).of(web())
    ids, reason = posture_score(findings)
    assert ids == tuple(sorted(set(rule_ids)))
    before = score_before(list(findings))
    assert (None if reason is None else (reason.points, reason.reason)) == before


def test_a_real_scan_scores_as_before(scan_file: Path) -> None:
    posture = load_posture_file(scan_file)
    scored = [posture_score(findings) for findings in posture.workloads.values()]
    assert all(reason is not None for _, reason in scored)  # each has a runtime-relevant rule
    for findings, (_, reason) in zip(posture.workloads.values(), scored, strict=True):
        assert reason is not None
        assert (reason.points, reason.reason) == score_before(list(findings))


CUSTOM_RULE = """id: CUSTOM-0001
title: Pod mounts the Docker socket by name
severity: high
category: host-paths
kinds: [Pod]
runtime:
  impact: docker socket
validations:
  - expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, v.name != 'docker')"
    message: a volume is named docker
description: A volume named docker usually holds the host's container runtime socket.
remediation: Do not mount the container runtime socket into pods.
"""
CUSTOM_POD = """apiVersion: v1
kind: Pod
metadata: {name: builder, namespace: ci}
spec:
  containers: [{name: b, image: "docker:27"}]
  volumes: [{name: docker, hostPath: {path: /var/run/docker.sock}}]
"""


def test_custom_rules_may_have_a_runtime_impact(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "custom.yaml").write_text(CUSTOM_RULE)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(CUSTOM_POD)
    store_path = tmp_path / "ks.db"
    scan_json = tmp_path / "scan.json"
    args = ["scan", "--path", str(manifest), "--rules", str(rules), "--severity-threshold", "low"]
    assert main([*args, "--store", str(store_path), "--format", "json",
                 "--output", str(scan_json)]) == 1  # fmt: skip
    builder = Workload("default", "ci", "Pod", "builder")

    store = SQLiteStore(store_path)  # scan --store: the scan's own rules name the impact
    try:
        stored = store.load_posture()
    finally:
        store.close()
    assert stored is not None
    impacts = {f.rule_id: f.impact for f in stored.of(builder)}
    assert impacts["CUSTOM-0001"] == "docker socket"
    _, reason = posture_score(stored.of(builder))
    assert reason is not None
    assert "CUSTOM-0001 docker socket (high)" in reason.reason

    # monitor --posture FILE: the rules at static.rules_path name it; without them it has none.
    from_file = load_posture_file(scan_json, rules_path=str(rules))
    assert from_file.of(builder) == stored.of(builder)
    plain = {f.rule_id: f.impact for f in load_posture_file(scan_json).of(builder)}
    assert plain["CUSTOM-0001"] is None


@pytest.mark.integration  # a fresh process
def test_the_monitor_reads_the_rule_data_without_loading_the_scanner() -> None:
    code = (
        "import sys\n"
        "from kubesentinel.bridge import runtime_impacts\n"
        "import kubesentinel.runtime.correlate\n"
        "assert runtime_impacts()['KS-0001'] == 'privileged'\n"
        "print(sorted(m for m in sys.modules if m.startswith('kubesentinel.static')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['kubesentinel.static', 'kubesentinel.static.rulebundle']"


def test_stored_documents_keep_cluster_and_impacts() -> None:
    posture = load_posture_from({"KS-0001": "critical", "KS-0042": "medium"}, cluster="prod")
    document = json.loads(bridge.posture_document(posture))
    assert (document["version"], document["cluster"]) == (2, "prod")
    assert bridge.posture_from_document(bridge.posture_document(posture)) == posture


def load_posture_from(severities: dict[str, str], cluster: str) -> Posture:
    findings = tuple(
        PostureFinding(rule_id, Severity.parse(sev), rule_id, runtime_impacts().get(rule_id))
        for rule_id, sev in severities.items()
    )
    return Posture(workloads={bridge.posture_key(cluster, "prod", "Deployment", "web"): findings},
                   source="scan", cluster=cluster)  # fmt: skip


def test_an_empty_scan_gives_an_empty_posture(tmp_path: Path) -> None:
    document = {"schema_version": "1.3", "findings": [], "new_field": True}
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(document))
    posture = load_posture_file(str(path))
    assert dict(posture.workloads) == {}
    assert posture.source == str(path)


def _error_for(tmp_path: Path, content: str | None) -> RuntimeLayerError:
    path = tmp_path / "scan.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RuntimeLayerError) as info:
        load_posture_file(path)
    error = info.value
    assert error.file == str(path)
    assert error.hint == HINT
    assert error.code == "KS-E030"
    return error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "posture file not found"),
        ("{not json", "posture file is not JSON"),
        ("[1, 2]", "not a kubesentinel scan result"),
        ('{"findings": []}', "no schema_version"),
        ('{"schema_version": "2.0", "findings": []}', "schema_version 2.0; this version reads 1.x"),
        ('{"schema_version": "1.0"}', "no findings list"),
        ('{"schema_version": "1.0", "findings": [7]}', "findings[0] has no object"),
        (
            '{"schema_version": "1.0", "findings": [{"object": {"kind": "Pod", "name": "p"}}]}',
            "findings[0] lacks a string rule_id",
        ),
        (
            '{"schema_version": "1.0", "findings": [{"rule_id": "KS-1", "title": "t", '
            '"severity": "severe", "object": {"kind": "Pod", "namespace": null, "name": "p"}}]}',
            "findings[0]: unknown severity 'severe'",
        ),
    ],
)
def test_errors_name_the_file_and_hint_at_the_scan(
    tmp_path: Path, content: str | None, message: str
) -> None:
    assert message in _error_for(tmp_path, content).message


def test_a_directory_is_not_a_posture_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLayerError, match="cannot read posture file") as info:
        load_posture_file(tmp_path)
    assert info.value.hint == HINT
