"""Rule files and scans shared by the CEL tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubesentinel.errors import RuleError
from kubesentinel.models import Finding
from kubesentinel.static.catalogue import builtin_catalogue, load_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths

HEAD = """\
id: ACME-0001
title: Test rule
severity: high
category: custom
description: A test rule.
remediation: Fix it.
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: app
          image: nginx:latest
        - name: sidecar
          image: ghcr.io/example/proxy:1.2
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: dump
              image: postgres:16
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
"""


def rule_file(tmp_path: Path, body: str, head: str = HEAD, name: str = "rule.yaml") -> Path:
    path = tmp_path / name
    path.write_text(head + textwrap.dedent(body))
    return path


def scan(tmp_path: Path, rule: Path, manifest: str = DEPLOYMENT) -> list[Finding]:
    target = tmp_path / "manifests.yaml"
    target.write_text(manifest)
    catalogue = load_catalogue([rule])
    result = scan_paths([str(target)], catalogue, ScanOptions(workers=1))
    assert not result.errors
    return result.findings


def load_error(tmp_path: Path, body: str, head: str = HEAD) -> RuleError:
    path = rule_file(tmp_path, body, head)
    with pytest.raises(RuleError) as info:
        load_catalogue([path], builtin_catalogue().rules)
    assert info.value.file == str(path)
    assert info.value.exit_code == 2
    return info.value
