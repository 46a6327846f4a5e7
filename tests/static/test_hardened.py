"""False positives are bugs: hardened workloads raise nothing at the default threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesentinel.models import Severity
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths

ROOT = Path(__file__).resolve().parents[2]
HARDENED = [
    ROOT / "examples" / "k8s-manifests" / "good" / "payments-api.yaml",
    Path(__file__).parent / "data" / "hardened" / "minimal-pod.yaml",
    Path(__file__).parent / "data" / "hardened" / "batch.yaml",
]


@pytest.mark.parametrize("manifest", HARDENED, ids=lambda p: p.name)
def test_hardened_workload_has_no_finding_at_medium_or_above(manifest: Path) -> None:
    result = scan_paths([str(manifest)], builtin_catalogue(), ScanOptions())
    assert result.errors == []
    loud = [
        f"{f.rule_id} {f.obj.kind}/{f.obj.name}: {f.message}"
        for f in result.at_or_above(Severity.MEDIUM)
    ]
    assert loud == []


def test_the_fully_hardened_example_has_no_finding_at_all() -> None:
    result = scan_paths([str(HARDENED[0])], builtin_catalogue(), ScanOptions())
    assert [f"{f.rule_id}: {f.message}" for f in result.findings] == []
