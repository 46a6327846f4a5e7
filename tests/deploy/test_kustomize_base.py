"""deploy/kustomize/base: rendered from the chart's defaults by `make deploy-manifests`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.chart import DEPLOY, need_helm, objects, render_base_module, scan

BASE = DEPLOY / "kustomize" / "base"


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("needs kubectl on PATH (Kustomize is built into it)")
    return kubectl


def test_the_committed_base_equals_a_fresh_render(tmp_path: Path) -> None:
    need_helm()
    render_base_module().write_base(tmp_path)
    fresh = {path.name: path.read_text() for path in tmp_path.glob("*.yaml")}
    committed = {path.name: path.read_text() for path in BASE.glob("*.yaml")}
    assert sorted(committed) == sorted(fresh), "stale: run `make deploy-manifests`"
    # Compared as YAML, so another helm version's spacing does not count, a changed value does.
    for name, text in fresh.items():
        assert yaml.safe_load(committed[name]) == yaml.safe_load(text), (
            f"{name} is stale: run `make deploy-manifests`"
        )


def test_kubectl_kustomize_builds_the_base() -> None:
    built = subprocess.run(
        [_kubectl(), "kustomize", str(BASE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    built_objects = objects(built)
    files = [path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml"]
    assert len(built_objects) == len(files)
    for obj in built_objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
    namespaces = {obj["metadata"].get("namespace") for obj in built_objects}
    assert namespaces == {"kubesentinel", "falco", None}  # None: the cluster-wide RBAC


def test_kubectl_apply_dry_run_accepts_the_base() -> None:
    """Client-side dry-run still asks an API server for its resource types (discovery), so it
    runs only where kubectl reaches one; without, the test says so and skips."""
    result = subprocess.run(
        [_kubectl(), "apply", "--dry-run=client", "--validate=false", "-k", str(BASE)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if result.returncode != 0 and any(
        sign in result.stderr
        for sign in ("connection refused", "couldn't get current server API group list",
                     "no configuration has been provided", "Unable to connect to the server")
    ):  # fmt: skip
        pytest.skip(f"kubectl apply --dry-run=client needs a reachable API server here: "
                    f"{result.stderr.strip().splitlines()[-1]}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(dry run)") == len(list(BASE.glob("*.yaml"))) - 1


def test_the_base_scans_clean_under_pss_restricted() -> None:
    _kubectl()  # the scanner builds the Kustomize directory with kubectl kustomize
    code, report = scan(BASE, "--framework", "pss-restricted", "--severity-threshold", "low")
    assert report["findings"] == []
    assert report["warnings"] == []
    assert code == 0
    assert report["summary"]["objects"] == len(list(BASE.glob("*.yaml"))) - 1
