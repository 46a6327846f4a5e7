"""Where a finding points: the field, or the deepest part of its path that exists.

A finding about a missing field (``securityContext.runAsNonRoot``) points at the line where the
fix goes, in YAML and JSON inputs, multi-document files and List items, and every format.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from kubesentinel.cli import main

ROOT = Path(__file__).resolve().parents[2]

# A ConfigMap first, so the Deployment's lines are not the file's first lines; a List second.
MULTI_DOC = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {a: b}
---
# the deployment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: nginx:1.25
          securityContext:
            readOnlyRootFilesystem: true
          volumeMounts:
            - name: logs
              mountPath: /var/log
        - name: bare
          image: nginx:1.25
      volumes:
        - name: logs
          hostPath: {path: /var/log}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: listed, namespace: shop}
    spec:
      containers:
        - name: solo
          image: nginx:1.25
"""

JSON_CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "backup", "namespace": "ops"},
    "spec": {
        "schedule": "0 3 * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "containers": [
                            {
                                "name": "dump",
                                "image": "postgres:16",
                                "securityContext": {"privileged": False},
                                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                            },
                            {"name": "bare", "image": "postgres:16"},
                        ],
                        "volumes": [{"name": "out", "hostPath": {"path": "/srv/out"}}],
                    }
                }
            }
        },
    },
}


def _line(text: str, needle: str, after: str = "") -> int:
    """1-based line of the first ``needle`` after the first ``after``."""
    start = text.index(after) if after else 0
    return text.count("\n", 0, text.index(needle, start)) + 1


def _scan(path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["scan", "--path", str(path), "--format", fmt, "--severity-threshold", "low"])
    assert code == 1
    return capsys.readouterr().out


def _json_findings(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    findings: list[dict[str, object]] = json.loads(_scan(path, "json", capsys))["findings"]
    return findings


def _assert_lines(findings: list[dict[str, object]], expected: dict[str, int]) -> None:
    """Each field-path pattern matches at least one finding, and all of them at its line."""
    for pattern, line in expected.items():
        lines = {f["line"] for f in findings if re.search(pattern, str(f["field_path"]))}
        assert lines == {line}, (pattern, lines)


def test_missing_fields_point_at_their_deepest_existing_parent_in_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MULTI_DOC)
    deployment = "kind: Deployment"
    _assert_lines(
        [f for f in _json_findings(manifest, capsys) if f["object"]["kind"] == "Deployment"],  # type: ignore[index]
        {
            # securityContext exists without runAsNonRoot: its line
            r"containers\[0\]\.securityContext\.runAsNonRoot$": _line(
                MULTI_DOC, "securityContext:", deployment
            ),
            # no securityContext at all: the container's "- name:" line
            r"containers\[1\]\.securityContext\.": _line(MULTI_DOC, "- name: bare"),
            r"containers\[1\]\.resources\.": _line(MULTI_DOC, "- name: bare"),
            # the mount exists without readOnly: the mount's line
            r"volumeMounts\[0\]\.readOnly$": _line(MULTI_DOC, "- name: logs"),
            # a pod-level field: the pod spec's line
            r"^spec\.template\.spec\.automountServiceAccountToken$": _line(
                MULTI_DOC, "spec:", "template:"
            ),
        },
    )


def test_list_items_point_into_the_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MULTI_DOC)
    listed = [f for f in _json_findings(manifest, capsys) if f["object"]["name"] == "listed"]  # type: ignore[index]
    _assert_lines(
        listed,
        {
            r"^spec\.containers\[0\]\.securityContext\.": _line(MULTI_DOC, "- name: solo"),
            r"^spec\.automountServiceAccountToken$": _line(MULTI_DOC, "spec:", "name: listed"),
        },
    )


def test_json_inputs_point_at_lines_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(JSON_CRONJOB, indent=2)
    manifest = tmp_path / "jobs.json"
    manifest.write_text(text)
    findings = _json_findings(manifest, capsys)
    _assert_lines(
        findings,
        {
            r"containers\[0\]\.securityContext\.allowPrivilegeEscalation$": _line(
                text, '"securityContext"'
            ),
            r"containers\[1\]\.securityContext\.": _line(text, '"name": "bare"') - 1,  # its "{"
            r"volumeMounts\[0\]\.readOnly$": _line(text, '"name": "out"') - 1,
        },
    )
    assert all(f["line"] > 1 for f in findings)  # none falls back to the object's first line


def test_the_examples_point_into_the_objects(capsys: pytest.CaptureFixture[str]) -> None:
    findings = _json_findings(ROOT / "examples" / "k8s-manifests" / "bad", capsys)
    by_path = {
        (Path(str(f["file"])).name, str(f["field_path"])): f["line"]
        for f in findings
        if str(f["field_path"]).endswith(("readOnly", "securityContext.runAsNonRoot"))
    }
    mount = "spec.template.spec.containers[0].volumeMounts[0].readOnly"
    assert by_path[("node-agent.yaml", mount)] == 26  # "- name: docker" of volumeMounts
    assert (
        by_path[
            ("node-agent.yaml", "spec.template.spec.containers[0].securityContext.runAsNonRoot")
        ]
        == 21
    )
    # batch-jobs.json: nothing on line 1 (the object's "{") any more
    assert {f["line"] for f in findings if str(f["file"]).endswith("batch-jobs.json")} >= {
        13,
        17,
        18,
    }
    assert not [
        f for f in findings if str(f["file"]).endswith("batch-jobs.json") and f["line"] == 1
    ]


_RULE = re.compile(r"KS-\d{4}")


def _table_lines(out: str) -> Counter[tuple[str, int]]:
    found = re.findall(r"\s(KS-\d{4})\S*\s+line (\d+)\s", out)
    return Counter((rule, int(line)) for rule, line in found)


def _sarif_lines(out: str) -> Counter[tuple[str, int]]:
    results = json.loads(out)["runs"][0]["results"]
    return Counter(
        (
            _RULE.findall(r["ruleId"])[0],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in results
    )


def _junit_lines(out: str) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    root = ET.fromstring(out)  # noqa: S314 - our own output, not untrusted XML
    for failure in root.iter("failure"):
        rule = _RULE.findall(failure.get("type", ""))[0]
        for line in re.findall(r"^line (\d+): ", failure.text or "", re.MULTILINE):
            counts[(rule, int(line))] += 1
    return counts


def _markdown_lines(out: str) -> Counter[tuple[str, int]]:
    rows = re.findall(r"^\| \w+ \| (KS-\d{4})[^|]* \| [^|]+ \| (\d+) \|", out, re.MULTILINE)
    return Counter((rule, int(line)) for rule, line in rows)


@pytest.mark.parametrize(
    ("fmt", "parse"),
    [
        ("table", _table_lines),
        ("sarif", _sarif_lines),
        ("junit", _junit_lines),
        ("markdown", _markdown_lines),
    ],
)
def test_every_format_shows_the_same_lines(
    fmt: str,
    parse: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MULTI_DOC)
    (tmp_path / "jobs.json").write_text(json.dumps(JSON_CRONJOB, indent=2))
    expected = Counter(
        (_RULE.findall(str(f["rule_id"]))[0], int(str(f["line"])))
        for f in _json_findings(tmp_path, capsys)
    )
    assert callable(parse)
    assert parse(_scan(tmp_path, fmt, capsys)) == expected
    # the missing-field findings above are among them, off the objects' first lines
    assert ("KS-0034", _line(MULTI_DOC, "- name: logs")) in expected
