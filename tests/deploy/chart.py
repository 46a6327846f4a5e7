"""Rendering the deploy/ chart for the tests: with ``helm`` on PATH, else Helm's own engine
(helm-python-sdk, tests/static/helm_engine.py), else the test skips, or fails when
KUBESENTINEL_REQUIRE_SERVICES=1 (CI installs helm-python-sdk)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.runtime.services import REQUIRE_ENV
from tests.static import helm_engine

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "kubesentinel"
RULES_FILE = DEPLOY / "falco" / "kubesentinel-telemetry.yaml"

# Every optional feature on at once (the NATS source is a separate variant: it replaces the
# HTTP receiver).
ALL_FEATURES: dict[str, Any] = {
    "ingest": {"token": {"existingSecret": "kubesentinel-ingest-token"}},
    "vault": {"signingKey": {"existingSecret": "kubesentinel-signing-key"},
              "postgres": {"enabled": True}},
    "ai": {"enabled": True},
    "metrics": {"enabled": True},
    "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1/32"]}},
}  # fmt: skip
NATS = {"monitor": {"source": "nats", "nats": {"existingSecret": "kubesentinel-nats-url"}}}


def render_base_module() -> ModuleType:
    """deploy/render_base.py, the one place that knows how to run helm on the chart."""
    spec = importlib.util.spec_from_file_location("render_base", DEPLOY / "render_base.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def need_helm() -> None:
    if shutil.which("helm") is None and not helm_engine.available():
        reason = (
            "needs helm on PATH or Helm's engine from helm-python-sdk "
            "(.venv/bin/pip install 'helm-python-sdk==0.2.2'; .ci/run installs it)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)


def render(tmp_path: Path, *values: dict[str, Any], sets: tuple[str, ...] = ()) -> str:
    """The chart's manifest with these values files (as dicts, later ones win) and --set."""
    need_helm()
    args: list[str] = []
    for index, value in enumerate(values):
        path = tmp_path / f"values-{index}.yaml"
        path.write_text(yaml.safe_dump(value))
        args += ["--values", str(path)]
    for expression in sets:
        args += ["--set", expression]
    try:
        return str(render_base_module().render_chart(*args))
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"helm template failed: {exc.stderr}") from None


def objects(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]


def one(manifest: str, kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [
        obj
        for obj in objects(manifest)
        if obj["kind"] == kind and obj["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects named *{name_suffix}"
    return found[0]


def scan(path: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """Our scanner, as a user runs it, on ``path``: (exit code, JSON report)."""
    result = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "scan", "--path", str(path), "--format", "json",
         *options],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)
