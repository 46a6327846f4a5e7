"""The CI integration kit: the GitHub Action's scripts run as the runner runs them, and the
pre-commit hook's entry runs as pre-commit runs it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = "examples/k8s-manifests"
BIN = Path(sys.executable).parent  # where the kubesentinel console script is installed
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
# The keys pre-commit reads from a hook manifest (pre-commit.com, "Creating new hooks").
HOOK_KEYS = {
    "id", "name", "entry", "language", "files", "exclude", "types", "types_or",
    "exclude_types", "always_run", "fail_fast", "verbose", "pass_filenames", "require_serial",
    "description", "language_version", "minimum_pre_commit_version", "args", "stages", "alias",
}  # fmt: skip


def _action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    return data


class Runner:
    """Runs a composite action's ``run:`` steps as GitHub's runner does: ``bash --noprofile
    --norc -eo pipefail`` on the script, expressions evaluated into the step's env, step
    outputs read back from $GITHUB_OUTPUT. ``python -m pip`` is recorded, not run (the package
    under test is installed already)."""

    def __init__(self, tmp: Path, inputs: dict[str, str]) -> None:
        action = _action()
        self.inputs = {
            name: str(spec.get("default", "")) for name, spec in action["inputs"].items()
        }
        self.inputs.update(inputs)
        self.outputs: dict[str, dict[str, str]] = {}
        self.tmp = tmp
        self.pip_log = tmp / "pip.log"
        shims = tmp / "shims"
        shims.mkdir(parents=True)
        python = shims / "python"
        log = shlex.quote(str(self.pip_log))
        python.write_text(
            "#!/bin/bash\n"
            f'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$@" >> {log}; exit 0; fi\n'
            f'exec {shlex.quote(sys.executable)} "$@"\n'
        )
        python.chmod(0o755)
        self.path = os.pathsep.join([str(shims), str(BIN), os.environ.get("PATH", "")])

    def evaluate(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("inputs."):
                return self.inputs[expression.removeprefix("inputs.")]
            if expression == "github.action_path":
                return str(ROOT)
            step, output = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression).groups()  # type: ignore[union-attr]
            return self.outputs.get(step, {}).get(output, "")

        return _EXPRESSION.sub(value, text)

    def run(self, step: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs must reach scripts through env, not the text"
        script = self.tmp / "step.sh"
        script.write_text(step["run"])
        output = self.tmp / "github_output"
        output.write_text("")
        env = {"PATH": self.path, "HOME": str(self.tmp), "GITHUB_OUTPUT": str(output)}
        env.update({k: self.evaluate(str(v)) for k, v in step.get("env", {}).items()})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if "id" in step:
            pairs = (line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            self.outputs[step["id"]] = dict(pairs)
        return done

    def run_all(self) -> list[subprocess.CompletedProcess[str]]:
        results = []
        for step in _action()["runs"]["steps"]:
            if "run" in step:
                results.append(self.run(step))
        return results


def test_action_declares_the_inputs_and_a_composite_run() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    assert {"path", "format", "severity-threshold", "version"} <= set(action["inputs"])
    uses = [step["uses"] for step in action["runs"]["steps"] if "uses" in step]
    assert uses == ["actions/setup-python@v5", "github/codeql-action/upload-sarif@v3"]


def test_sarif_is_uploaded_even_when_the_scan_fails() -> None:
    (upload,) = [s for s in _action()["runs"]["steps"] if "upload-sarif" in s.get("uses", "")]
    assert upload["if"].startswith("always()")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    steps = _action()["runs"]["steps"]
    scan = next(i for i, s in enumerate(steps) if s.get("id") == "scan")
    assert scan < steps.index(upload) < len(steps) - 1  # upload, then fail with the code


def test_action_scan_writes_sarif_and_propagates_exit_code_1(tmp_path: Path) -> None:
    sarif = tmp_path / "out.sarif"
    runner = Runner(tmp_path, {"path": f"{EXAMPLES}/bad {EXAMPLES}/good",
                               "sarif-file": str(sarif)})  # fmt: skip
    install, scan, fail = runner.run_all()
    assert install.returncode == 0
    assert runner.pip_log.read_text().split() == [
        "-m", "pip", "install", "--disable-pip-version-check", str(ROOT)
    ]  # fmt: skip
    assert scan.returncode == 0, scan.stderr  # the step itself never fails: upload comes next
    assert "web-frontend.yaml" in scan.stdout  # the table for the log
    report = json.loads(sarif.read_text())
    assert report["version"] == "2.1.0"
    assert {r["ruleId"] for r in report["runs"][0]["results"]} >= {"KS-0002", "KS-0065"}
    assert runner.outputs["scan"] == {"exit-code": "1"}
    assert fail.returncode == 1


def test_action_exit_code_0_on_clean_manifests_and_2_on_bad_input(tmp_path: Path) -> None:
    clean = Runner(tmp_path / "a", {"path": f"{EXAMPLES}/good", "format": "sarif",
                                    "sarif-file": str(tmp_path / "a.sarif")})  # fmt: skip
    _, scan, fail = clean.run_all()
    assert scan.stdout.count("SARIF report") == 1  # format sarif: one scan, no log table
    assert json.loads((tmp_path / "a.sarif").read_text())["runs"][0]["results"] == []
    assert fail.returncode == 0
    broken = Runner(tmp_path / "b", {"path": "no/such/dir", "sarif-file": str(tmp_path / "b.sarif"),
                                     "version": "0.1.0"})  # fmt: skip
    _, scan, fail = broken.run_all()
    assert "kubesentinel==0.1.0" in broken.pip_log.read_text()
    assert "no such file or directory" in scan.stderr
    assert broken.outputs["scan"] == {"exit-code": "2"}
    assert fail.returncode == 2


def test_example_workflow_uses_the_action_and_is_not_a_workflow_of_this_repo() -> None:
    path = ROOT / "docs" / "examples" / "github-workflow.yml"
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan"]["steps"]
    action = next(s for s in steps if "kubesentinel" in s.get("uses", ""))
    assert set(action["with"]) <= set(_action()["inputs"])
    assert not (ROOT / ".github" / "workflows" / path.name).exists()


def test_pre_commit_hook_manifest_is_valid() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list)
    (hook,) = hooks
    assert set(hook) <= HOOK_KEYS
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "kubesentinel-scan"
    assert hook["entry"] == "kubesentinel scan"
    assert hook["language"] == "python"  # pre-commit pip-installs this repository
    assert set(hook["types_or"]) == {"yaml", "json"}
    assert hook["pass_filenames"] is True
    assert hook["require_serial"] is True


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([f"{EXAMPLES}/good/payments-api.yaml"], 0),
        ([f"{EXAMPLES}/good/payments-api.yaml", f"{EXAMPLES}/bad/batch-jobs.json"], 1),
    ],
)
def test_pre_commit_entry_runs_on_the_files_it_is_given(files: list[str], code: int) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    # As pre-commit runs it: the entry's words, the hook's args, then the file names.
    argv = [*shlex.split(hook["entry"]), *hook.get("args", []), *files]
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == code, done.stderr
    if code:
        assert "batch-jobs.json" in done.stdout
