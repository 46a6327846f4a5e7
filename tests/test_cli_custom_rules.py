"""The shipped CEL rules (examples/custom-rules) through the command line, in every format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubesentinel.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = "examples/k8s-manifests/bad"
EXPECTED = {
    # (rule, file, line, kind, name, message)
    ("ACME-0001", f"{BAD}/batch-jobs.json", 1, "CronJob", "db-backup",
     "images outside the approved registries: postgres:16"),
    ("ACME-0003", f"{BAD}/batch-jobs.json", 1, "CronJob", "db-backup",
     "containers without a memory limit: backup"),
    ("ACME-0001", f"{BAD}/node-agent.yaml", 2, "DaemonSet", "node-agent",
     "images outside the approved registries: example/node-agent:latest"),
    ("ACME-0002", f"{BAD}/node-agent.yaml", 2, "DaemonSet", "node-agent",
     "unpinned image(s): example/node-agent:latest"),
    ("ACME-0003", f"{BAD}/node-agent.yaml", 2, "DaemonSet", "node-agent",
     "containers without a memory limit: agent"),
    ("ACME-0001", f"{BAD}/web-frontend.yaml", 2, "Deployment", "web-frontend",
     "images outside the approved registries: nginx"),
    ("ACME-0002", f"{BAD}/web-frontend.yaml", 2, "Deployment", "web-frontend",
     "unpinned image(s): nginx"),
    ("ACME-0003", f"{BAD}/web-frontend.yaml", 2, "Deployment", "web-frontend",
     "containers without a memory limit: web"),
    # metadata.namespace is absent: the "metadata:" line
    ("ACME-0004", f"{BAD}/web-frontend.yaml", 4, "Deployment", "web-frontend",
     "metadata.namespace is unset or default"),
    ("ACME-0004", f"{BAD}/web-frontend.yaml", 36, "Service", "web-frontend",
     "metadata.namespace is unset or default"),
    ("ACME-0005", f"{BAD}/web-frontend.yaml", 39, "Service", "web-frontend",
     "Service of type NodePort has no exposure approval"),
}  # fmt: skip


def scan_examples(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["scan", "--rules", "examples/custom-rules", "--path", "examples/k8s-manifests",
                 *extra])  # fmt: skip
    return code, capsys.readouterr().out


def test_the_example_rules_fire_on_the_bad_examples_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out = scan_examples(capsys, "--format", "json")
    assert code == 1
    found = {
        (f["rule_id"], f["file"], f["line"], f["object"]["kind"], f["object"]["name"],
         f["message"])
        for f in json.loads(out)["findings"]
        if f["rule_id"].startswith("ACME-")
    }  # fmt: skip
    assert found == EXPECTED
    assert main(["scan", "--rules", "examples/custom-rules", "--path",
                 "examples/k8s-manifests/good"]) == 0  # fmt: skip
    assert "no findings at or above medium" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["table", "sarif", "junit", "markdown"])
def test_cel_findings_appear_in_every_format(
    fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out = scan_examples(capsys, "--format", fmt, "--no-color")
    assert code == 1
    assert "Service of type NodePort has no exposure approval" in out
    if fmt == "sarif":
        run = json.loads(out)["runs"][0]
        rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
        assert {f"ACME-000{n}" for n in range(1, 6)} <= rules
        (result,) = [r for r in run["results"] if r["ruleId"] == "ACME-0005"]
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 39


def test_rules_list_and_explain_show_user_cel_rules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["rules", "list", "--rules", "examples/custom-rules"]) == 0
    assert "ACME-0003  medium    Container without a memory limit" in capsys.readouterr().out
    assert main(["rules", "list", "--rules", "examples/custom-rules", "--format", "json"]) == 0
    (rule,) = [r for r in json.loads(capsys.readouterr().out) if r["id"] == "ACME-0004"]
    assert rule["source_file"] == "examples/custom-rules/placement.yaml"
    assert rule["cel"] == [
        "must hold: has(object.metadata.namespace) && object.metadata.namespace != 'default'"
    ]
    assert main(["rules", "explain", "acme-0001", "--rules", "examples/custom-rules"]) == 0
    out = capsys.readouterr().out
    assert "CEL rule from examples/custom-rules/images.yaml:" in out
    assert "  variables.allowed = ['ghcr.io/example/', 'registry.example.com/']" in out


def test_rules_path_from_config_loads_cel_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    config = tmp_path / "c.yaml"
    config.write_text(f"static:\n  rules_path: {ROOT / 'examples' / 'custom-rules'}\n")
    assert main(["--config", str(config), "scan", "--path", f"{BAD}/web-frontend.yaml"]) == 1
    assert "ACME-0005" in capsys.readouterr().out


def test_a_broken_cel_rule_exits_2_naming_file_line_and_cel_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = tmp_path / "broken.yaml"
    rule.write_text(
        "id: ACME-0009\ntitle: t\nseverity: low\ncategory: c\ndescription: d.\n"
        "remediation: Fix it.\nkinds: [Pod]\nvalidations:\n"
        "  - expression: \"object.spec.containers.all(c, c.image.startsWith('a')\"\n"
    )
    manifest = tmp_path / "p.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    assert main(["scan", "--path", str(manifest), "--rules", str(rule)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"kubesentinel: error KS-E020: {rule}:9: CEL error in validations[0].expression "
        "(expression line 1, column 54): Syntax error: missing ')' at '<EOF>'"
    )


def test_a_scan_without_cel_rules_never_imports_the_cel_runtime() -> None:
    probe = (
        "import sys; from kubesentinel.cli import main; "
        "main(['scan', '--path', 'examples/k8s-manifests', '-o', '/dev/null']); "
        "print('cel_expr_python' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    assert out.strip() == "False"
