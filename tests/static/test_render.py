"""Helm charts and Kustomize directories: rendering with the real tools, findings on the sources.

kubectl is installed here, so Kustomize runs for real. The helm binary is not (no Debian, PyPI
or npm package ships it for Linux): tests that run ``helm template`` use it when it is on PATH,
else a ``helm template`` command built on Helm's own engine (tests/static/helm_engine.py, with
helm-python-sdk: Helm v4's library renders the chart), else they skip. The missing-binary path
runs for real with a PATH that lacks helm, and the ``# Source:`` mapping is also tested on
output in helm's documented format.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models import Finding
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.context import ScanContext
from kubesentinel.static.engine import ScanOptions, evaluate, scan_paths
from kubesentinel.static.inputs import RenderTarget, discover
from kubesentinel.static.reader import ReadBatch
from kubesentinel.static.render import RenderOptions, read_helm_output
from tests.static import helm_engine

DATA = Path(__file__).parent / "data" / "render"
CHART = DATA / "helm" / "web"
OVERLAY = DATA / "kustomize" / "overlays" / "prod"
BASE = DATA / "kustomize" / "base"
MB = 1024 * 1024

needs_kustomize = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("kustomize") is None,
    reason="needs kubectl or kustomize on PATH",
)


@pytest.fixture
def helm_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ "binary" when a real helm is on PATH, "engine" when the Helm-engine command stands in."""
    if shutil.which("helm") is not None:
        return "binary"
    if not helm_engine.available():
        pytest.skip(
            "needs helm on PATH, or Helm's engine from helm-python-sdk "
            "(.venv/bin/pip install helm-python-sdk; .ci/run installs it)"
        )
    bin_dir = tmp_path / "helm-bin"
    bin_dir.mkdir()
    helm_engine.install_on_path(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return "engine"


# `helm template web` output, in the format helm 3 documents: each document opens with
# "---" and a "# Source: CHART/PATH" comment, in install order (Service before Deployment).
HELM_OUTPUT = """\
---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: release-name-web
spec:
  type: NodePort
  ports:
    - port: 80
      targetPort: 80
  selector:
    app: web
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: release-name-web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      hostNetwork: true
      containers:
        - name: web
          image: "nginx:1.25"
          securityContext:
            privileged: true
          ports:
            - containerPort: 80
"""


def _by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule_id: f for f in findings}


def _empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_helm_source_comments_put_findings_on_template_lines() -> None:
    catalogue = builtin_catalogue()
    batch = ReadBatch()
    read_helm_output(HELM_OUTPUT.encode(), CHART, MB, lambda _kind: True, batch)
    assert not batch.errors
    by_kind = {o.kind: o for o in batch.objects}
    assert by_kind["Deployment"].source.file == str(CHART / "templates" / "deployment.yaml")
    assert by_kind["Deployment"].source.line == 1  # "apiVersion: apps/v1" in the template
    assert by_kind["Service"].source.file == str(CHART / "templates" / "service.yaml")
    findings = evaluate(batch.objects, catalogue, ScanContext.build(batch.objects))
    found = _by_rule(findings)
    # Written verbatim in the template: its own line.
    assert (found["KS-0004"].file, found["KS-0004"].line) == (
        str(CHART / "templates" / "deployment.yaml"),
        17,
    )
    # `image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"`: that templated line.
    assert found["KS-0047"].field_path.endswith(".image")
    assert found["KS-0047"].line == 20
    # Produced by `toYaml .Values.securityContext`: the key the action sits under.
    assert found["KS-0001"].line == 21
    assert found["KS-0001"].field_path.endswith("securityContext.privileged")
    # `type: {{ .Values.service.type }}`: the one templated line of that key.
    assert (found["KS-0056"].file, found["KS-0056"].line) == (
        str(CHART / "templates" / "service.yaml"),
        6,
    )


def test_helm_misspelt_field_warning_points_at_the_template() -> None:
    image, typo = '          image: "nginx:1.25"\n', "          imagePullPolic: Always\n"
    text = HELM_OUTPUT.replace(image, typo)
    batch = ReadBatch()
    read_helm_output(text.encode(), CHART, MB, lambda _kind: True, batch)
    (warning,) = [w for w in batch.warnings if w.code == "KS-W002"]
    assert "imagePullPolic" in warning.message
    # Not in the template: the container item holding it, `- name: {{ .Chart.Name }}`.
    assert (warning.file, warning.line) == (str(CHART / "templates" / "deployment.yaml"), 19)


def test_helm_output_without_source_comments_keeps_the_rendered_name() -> None:
    batch = ReadBatch()
    text = b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
    read_helm_output(text, CHART, MB, lambda _kind: True, batch)
    assert batch.objects[0].source.file == f"{CHART} (helm template)"
    assert batch.objects[0].source.line == 1


def test_helm_source_outside_the_chart_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "outside.yaml"
    secret.write_text("apiVersion: v1\nkind: Pod\n")
    chart = tmp_path / "chart"
    chart.mkdir()
    text = (
        "---\n# Source: chart/../outside.yaml\napiVersion: v1\nkind: Pod\n"
        "metadata: {name: p}\nspec: {containers: []}\n"
    )
    batch = ReadBatch()
    read_helm_output(text.encode(), chart, MB, lambda _kind: True, batch)
    assert batch.objects[0].source.line == 1  # no template read, so no line matched


def test_helm_chart_without_helm_binary_is_exit_2_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_path(tmp_path, monkeypatch)
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: true\n  containers: []\n"
    )
    assert main(["scan", "--path", str(CHART), "--path", str(plain)]) == 2
    captured = capsys.readouterr()
    assert "KS-E017" in captured.err
    assert f"{CHART}: Helm chart: the helm binary is not on PATH" in captured.err
    assert "install helm 3: https://helm.sh/docs/intro/install/" in captured.err
    assert "KS-0002" in captured.out  # the plain manifest beside it was still scanned


def test_kustomize_directory_without_kubectl_or_kustomize_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_path(tmp_path, monkeypatch)
    assert main(["scan", "--path", str(OVERLAY)]) == 2
    err = capsys.readouterr().err
    assert "KS-E017" in err
    assert "neither kubectl nor kustomize is on PATH" in err
    assert "install kubectl (https://kubernetes.io/docs/tasks/tools/)" in err


@needs_kustomize
def test_kustomize_overlay_built_with_real_kubectl_points_findings_at_base_files() -> None:
    result = scan_paths([str(OVERLAY)], builtin_catalogue(), ScanOptions())
    assert not result.errors
    deployment = [f for f in result.findings if f.obj.kind == "Deployment"]
    assert {f.obj.name for f in deployment} == {"prod-web"}
    assert {f.obj.namespace for f in deployment} == {"prod"}
    found = _by_rule(deployment)
    base_file = (BASE / "deployment.yaml").resolve()
    assert (Path(found["KS-0001"].file).resolve(), found["KS-0001"].line) == (base_file, 12)
    # hostNetwork comes from the overlay's patch: the pod template's `spec:` in the base file.
    assert (Path(found["KS-0004"].file).resolve(), found["KS-0004"].line) == (base_file, 7)
    # Shown relative to the working directory when below it, like files found by walking.
    if not os.path.relpath(base_file).startswith(".."):
        assert found["KS-0001"].file == os.path.relpath(base_file)
    service = [f for f in result.findings if f.obj.kind == "Service"]
    assert {Path(f.file).resolve() for f in service} == {(BASE / "service.yaml").resolve()}


@needs_kustomize
def test_kustomize_origin_annotation_is_removed_before_rules_run() -> None:
    from kubesentinel.static.render import render_all

    target = RenderTarget("kustomize", OVERLAY, "kustomization.yaml")
    batch = render_all([target], builtin_catalogue().target_kinds, RenderOptions(), MB)
    assert not batch.errors
    for obj in batch.objects:
        annotations = obj.body.get("metadata", {}).get("annotations") or {}
        assert "config.kubernetes.io/origin" not in annotations, obj.ref
    generated = [o for o in batch.objects if o.kind == "ConfigMap"]
    assert generated[0].name.startswith("prod-settings-")
    # A generated object has no resource file: it points at the kustomization that made it.
    assert generated[0].source.file.endswith("kustomization.yaml")


@needs_kustomize
def test_kustomize_build_failure_quotes_the_tools_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n- missing.yaml\n")
    assert main(["scan", "--path", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "KS-E019" in err
    assert "missing.yaml" in err  # kustomize's own message, not a generic failure


def test_directories_with_chart_or_kustomization_are_render_targets(tmp_path: Path) -> None:
    found = list(discover([str(DATA)]))
    assert found == [
        RenderTarget("helm", DATA / "helm" / "web", "Chart.yaml"),
        RenderTarget("kustomize", DATA / "kustomize" / "base", "kustomization.yaml"),
        RenderTarget("kustomize", OVERLAY, "kustomization.yaml"),
    ]
    # Naming the marker file itself means its directory.
    assert list(discover([str(CHART / "Chart.yaml")])) == [
        RenderTarget("helm", CHART, "Chart.yaml")
    ]


def test_helm_set_needs_key_equals_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--path", str(CHART), "--helm-set", "novalue"]) == 2
    assert "--helm-set 'novalue' is not KEY=VALUE" in capsys.readouterr().err


def test_scan_needs_a_path_or_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan"]) == 2
    assert "nothing to scan" in capsys.readouterr().err


def test_helm_chart_rendered_by_helm_points_findings_at_templates(helm_on_path: str) -> None:
    options = ScanOptions(render=RenderOptions(set_values=("securityContext.privileged=false",)))
    result = scan_paths([str(CHART)], builtin_catalogue(), options)
    assert not result.errors
    found = _by_rule(result.findings)
    assert "KS-0001" not in found  # --set reached helm
    assert (found["KS-0004"].file, found["KS-0004"].line) == (
        str(CHART / "templates" / "deployment.yaml"),
        17,
    )


def test_helm_failure_quotes_helms_error(
    helm_on_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "bad"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bad\nversion: 0.1.0\n")
    (chart / "templates" / "x.yaml").write_text("kind: {{ .Values.missing.field }}\n")
    assert main(["scan", "--path", str(chart)]) == 2
    err = capsys.readouterr().err
    assert "KS-E019" in err
    assert "helm template" in err


def test_helm_range_loop_documents_all_map_to_the_one_template(tmp_path: Path) -> None:
    chart = tmp_path / "accounts"
    (chart / "templates").mkdir(parents=True)
    (chart / "templates" / "sa.yaml").write_text(
        "{{- range .Values.accounts }}\n---\napiVersion: v1\nkind: ServiceAccount\n"
        "metadata:\n  name: {{ . }}\nautomountServiceAccountToken: true\n{{- end }}\n"
    )
    document = (
        "---\n# Source: accounts/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\n"
        "metadata:\n  name: {name}\nautomountServiceAccountToken: true\n"
    )
    text = document.replace("{name}", "alpha") + document.replace("{name}", "beta")
    batch = ReadBatch()
    read_helm_output(text.encode(), chart, MB, lambda _kind: True, batch)
    assert [o.name for o in batch.objects] == ["alpha", "beta"]
    for obj in batch.objects:
        assert obj.source.file == str(chart / "templates" / "sa.yaml")
        assert obj.source.line == 3
        assert obj.body.key_lines["automountServiceAccountToken"] == 7  # type: ignore[attr-defined]
        assert obj.body["metadata"].key_lines["name"] == 6  # `name: {{ . }}`, for both
    assert batch.objects[0].source.doc_index != batch.objects[1].source.doc_index
