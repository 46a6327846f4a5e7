"""Loading the static posture from the JSON that `kubesentinel scan` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kubesentinel.runtime.posture as posture_module
from kubesentinel.cli import main
from kubesentinel.errors import RuntimeLayerError
from kubesentinel.models.posture import PostureFinding
from kubesentinel.models.severity import Severity
from kubesentinel.runtime.posture import WORKLOAD_KINDS, load_posture_file

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
    assert sorted(posture_module.__all__) == ["WORKLOAD_KINDS", "load_posture_file"]
    assert {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
            "ReplicationController"} == WORKLOAD_KINDS  # fmt: skip


def test_posture_from_a_real_scan(scan_file: Path) -> None:
    scan = json.loads(scan_file.read_text())
    posture = load_posture_file(scan_file)
    assert posture.source == str(scan_file)
    assert sorted(posture.workloads) == [
        "default/Pod/debug",
        "prod/CronJob/backup",
        "prod/Deployment/web",
    ]

    web = posture.of("prod", "Deployment", "web")
    web_rules = [f.rule_id for f in web]
    assert "KS-0001" in web_rules  # privileged
    assert len(web_rules) == len(set(web_rules))  # two privileged containers: counted once
    expected = {
        f["rule_id"]
        for f in scan["findings"]
        if f["object"] == {"api_version": "apps/v1", "kind": "Deployment", "namespace": "prod",
                           "name": "web"}
    }  # fmt: skip
    assert set(web_rules) == expected
    privileged = next(f for f in web if f.rule_id == "KS-0001")
    assert privileged == PostureFinding("KS-0001", Severity.CRITICAL, privileged.title)
    assert privileged.title
    # Highest severity first, then rule id.
    assert [(-f.severity, f.rule_id) for f in web] == sorted((-f.severity, f.rule_id) for f in web)

    assert "KS-0002" in [f.rule_id for f in posture.of("default", "Pod", "debug")]  # hostPID
    assert "KS-0005" in [f.rule_id for f in posture.of("prod", "CronJob", "backup")]  # hostPath
    # Non-workload objects (the Service, the ClusterRole) had findings but do not count.
    kinds = {f["object"]["kind"] for f in scan["findings"]}
    assert {"Service", "ClusterRole"} & kinds
    assert posture.of("prod", "Service", "web") == ()
    assert posture.of("", "ClusterRole", "everything") == ()


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
