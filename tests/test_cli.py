"""The command line: exit codes, outputs, stdin, rules list/explain, config errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubesentinel.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "k8s-manifests"
HOST_PID_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostPID: true\n  containers: []\n"
)


def test_examples_have_findings_and_the_hardened_example_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["scan", "--path", str(EXAMPLES / "bad")]) == 1
    capsys.readouterr()
    assert main(["scan", "--path", str(EXAMPLES / "good")]) == 0
    assert "no findings at or above medium" in capsys.readouterr().out


def test_threshold_flag_overrides_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "p.yaml"
    manifest.write_text(HOST_PID_POD)  # KS-0002 is high
    assert main(["scan", "--path", str(manifest), "--severity-threshold", "critical"]) == 0
    config = tmp_path / "c.yaml"
    config.write_text("static:\n  severity_threshold: critical\n")
    assert main(["--config", str(config), "scan", "--path", str(manifest)]) == 0
    assert (
        main(
            [
                "--config",
                str(config),
                "scan",
                "--path",
                str(manifest),
                "--severity-threshold",
                "low",
            ]
        )
        == 1
    )
    capsys.readouterr()


def test_stdin_and_output_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(HOST_PID_POD.encode())))
    out = tmp_path / "report.json"
    assert main(["scan", "--path", "-", "--format", "json", "--output", str(out)]) == 1
    report = json.loads(out.read_text())
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "KS-0002"]
    assert (finding["file"], finding["line"]) == ("<stdin>", 5)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan"]) == 2  # neither --path nor --cluster
    with pytest.raises(SystemExit) as info:
        main(["scan", "--path", ".", "--severity-threshold", "urgent"])
    assert info.value.code == 2
    assert "urgent" in capsys.readouterr().err


def test_bad_config_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("static:\n  severity_threshold: medium\nruntime:\n  bufer_size: 10\n")
    assert main(["--config", str(config), "scan", "--path", str(EXAMPLES)]) == 2
    assert f"{config}:4: unknown key runtime.bufer_size" in capsys.readouterr().err


def test_rules_list_json_carries_pss_and_peer_references(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "list", "--format", "json"]) == 0
    rules = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    privileged = rules["KS-0001"]
    assert privileged["references"]["pss"] == ["baseline:privileged-containers"]
    assert {"CKV_K8S_16", "C-0057", "KSV017", "privileged-container"} <= set(
        privileged["references"]["peers"]
    )
    assert privileged["severity"] == "critical"
    assert privileged["runtime_impact"] == "privileged"
    assert rules["KS-0042"]["runtime_impact"] is None


def test_rules_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "ks-0001"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("KS-0001: Privileged container")
    assert "Remediation:" in text
    assert "Runtime impact: privileged" in text
    assert main(["rules", "explain", "KS-9999"]) == 2
    assert "no rule 'KS-9999'" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("command", [["kubesentinel"], [sys.executable, "-m", "kubesentinel"]])
def test_installed_entry_points(command: list[str], tmp_path: Path) -> None:
    manifest = tmp_path / "p.yaml"
    manifest.write_text(HOST_PID_POD)
    exe = Path(sys.executable).parent / "kubesentinel"
    argv = [str(exe)] if command == ["kubesentinel"] else command
    done = subprocess.run(
        [*argv, "scan", "--path", str(manifest)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "KS-0002" in done.stdout
    assert "\x1b[" not in done.stdout  # not a terminal: no colours


@pytest.mark.integration
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_scan_process_writes_everything_before_it_exits(encoding: str, tmp_path: Path) -> None:
    """The console script ends a scan with os._exit: stdout, stderr and --output must be
    complete by then, whatever the output encoding, with the right exit code."""
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{}\n  labels: {{a: b}}\n  labels: {{}}\n"
    pods = "---\n".join(
        pod.format(i) + "spec:\n  hostPID: true\n  containers: []\n" for i in range(300)
    )
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(pods)
    (tmp_path / "clean.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    scan = [sys.executable, "-m", "kubesentinel", "scan", "-f", "json"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*scan, *args], capture_output=True, text=True, check=False, env=env, timeout=60
        )

    done = run("--path", str(manifest))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["objects"] == 300
    assert {f["object"]["name"] for f in report["findings"]} == {f"p{i}" for i in range(300)}
    assert done.stderr.count("duplicate key 'labels'") == 300
    out = tmp_path / "report.json"
    assert run("--path", str(manifest), "--output", str(out)).returncode == 1
    assert json.loads(out.read_text()) == report
    assert run("--path", str(tmp_path / "clean.yaml")).returncode == 0
    missing = run("--path", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2
    assert "no such file or directory" in missing.stderr


def test_user_rules_from_flag_and_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ACME-0001.yaml").write_text(
        "id: ACME-0001\ntitle: Host IPC forbidden here\nseverity: critical\ncategory: host\n"
        "description: Team policy.\nremediation: Remove hostIPC.\nkinds: [workloads]\n"
        "predicate: pod_flag_true\nparams: {field: hostIPC}\n"
    )
    manifest = tmp_path / "p.yaml"
    manifest.write_text(HOST_PID_POD.replace("hostPID", "hostIPC"))
    assert main(["scan", "--path", str(manifest), "--rules", str(rules), "-f", "json"]) == 1
    ids = {f["rule_id"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert {"ACME-0001", "KS-0003"} <= ids
    config = tmp_path / "c.yaml"
    config.write_text(f"static:\n  rules_path: {rules}\n")
    assert main(["--config", str(config), "rules", "explain", "ACME-0001"]) == 0
    assert "Host IPC forbidden here" in capsys.readouterr().out
    (rules / "broken.yaml").write_text("id: ACME-0002\ntitle: x\n")
    assert main(["scan", "--path", str(manifest), "--rules", str(rules)]) == 2
    assert f"{rules / 'broken.yaml'}:1: missing key 'severity'" in capsys.readouterr().err


def test_config_is_accepted_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "p.yaml"
    manifest.write_text(HOST_PID_POD)  # KS-0002 is high
    config = tmp_path / "c.yaml"
    config.write_text("static:\n  severity_threshold: critical\n")
    assert main(["--config", str(config), "scan", "--path", str(manifest)]) == 0
    assert main(["scan", "--config", str(config), "--path", str(manifest)]) == 0
    assert main(["rules", "list", "--config", str(config)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("columns", [50, 120])
def test_help_wraps_to_the_terminal_width_as_argparse_does(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser looks the width up once; its help must equal argparse's own formatting."""
    import argparse

    from kubesentinel import cli

    monkeypatch.setenv("COLUMNS", str(columns))
    cli._help_width.cache_clear()
    try:
        parser = cli._parser()
        scan = next(
            a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        ).choices["scan"]
        ours = scan.format_help()
        scan.formatter_class = argparse.HelpFormatter
        assert ours == scan.format_help()
        assert (ours.index("[--path PATH]") > ours.index("\n")) == (columns == 50)  # wrapped
    finally:
        cli._help_width.cache_clear()


@pytest.mark.integration
def test_ctrl_c_stops_a_parallel_scan_cleanly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, helpers included: the scan says it was
    interrupted and exits 130, without a traceback and without leaving a helper behind."""
    from kubesentinel.static.parallel import PARALLEL_MIN_BYTES

    pod = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{}}}\nspec:\n  containers: []\n"
    big = "---\n".join(pod.format(i) for i in range(3000))
    for n in range(40):
        (tmp_path / f"f{n:02}.yaml").write_text(big)
    assert 40 * len(big) > 4 * PARALLEL_MIN_BYTES  # a few seconds of work for both processes
    child = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", "scan", "--path", str(tmp_path), "-f", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    time.sleep(1.0)  # imports done, helper forked, parsing under way
    os.killpg(child.pid, signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)  # nobody left in the group


HYGIENE_ONLY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      serviceAccountName: api
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 20000
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: api
          image: registry.example.com/shop/api
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
"""


def test_hygiene_alone_does_not_fail_the_default_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "api.yaml"
    manifest.write_text(HYGIENE_ONLY)
    assert main(["scan", "--path", str(manifest)]) == 0  # default threshold: medium
    assert "no findings at or above medium" in capsys.readouterr().out
    assert main(["scan", "--path", str(manifest), "--severity-threshold", "low", "-f", "json"]) == 1
    low = {f["rule_id"] for f in json.loads(capsys.readouterr().out)["findings"]}
    # Probes, requests and limits, an untagged image (latest) and its pull policy: all low.
    hygiene = {"KS-0040", "KS-0041", "KS-0042", "KS-0043", "KS-0044", "KS-0045", "KS-0046"}
    assert hygiene <= low
