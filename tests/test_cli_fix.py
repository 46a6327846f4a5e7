"""`kubesentinel fix` on the command line: diff, --write, exit codes, errors, config."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.config import load_config
from kubesentinel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "k8s-manifests"
POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
POD += "    image: busybox:1.36\n"


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    copy = tmp_path / "bad"
    shutil.copytree(EXAMPLES / "bad", copy)
    return copy


def test_the_diff_applies_with_patch_and_matches_write(
    bad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("patch") is None:
        pytest.skip("needs patch(1) to apply the diff")
    patched = tmp_path / "patched"
    shutil.copytree(bad, patched / "bad")
    monkeypatch.chdir(tmp_path)
    code = main(["fix", "--path", "bad"])
    out, err = capsys.readouterr()
    assert code == 1  # host namespaces, hostPath, RBAC... are left for a person
    assert out.startswith("--- a/bad/node-agent.yaml\n+++ b/bad/node-agent.yaml\n")
    assert "kubesentinel: left: bad/node-agent.yaml:16: KS-0002 [high] DaemonSet/node-agent" in err
    assert "kubesentinel: the diff fixes " in err
    subprocess.run(["patch", "-p1", "-s", "-d", str(patched)], input=out, text=True, check=True)
    assert main(["fix", "--path", "bad", "--write"]) == 1
    for name in ("node-agent.yaml", "web-frontend.yaml"):
        assert (patched / "bad" / name).read_text() == (bad / name).read_text()
        assert (bad / name).read_text() != (EXAMPLES / "bad" / name).read_text()


def test_write_keeps_the_mode_and_a_second_run_has_an_empty_diff(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = bad / "web-frontend.yaml"
    target.chmod(0o640)
    assert main(["fix", "--path", str(bad), "--write"]) == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert "allowPrivilegeEscalation: false" in target.read_text()
    assert not list(bad.glob(".*"))  # no temporary file left behind
    capsys.readouterr()
    assert main(["fix", "--path", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "fixes 0 findings in 0 files" in err


def test_exit_0_when_nothing_at_the_threshold_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    assert main(["fix", "--path", str(pod), "--severity-threshold", "critical"]) == 0
    assert "+    securityContext:" in capsys.readouterr().out


def test_malformed_yaml_exits_2_naming_the_file_and_the_rest_is_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "a-broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    good = tmp_path / "b-good.yaml"
    good.write_text(POD)
    assert main(["fix", "--path", str(tmp_path), "--write"]) == 2
    err = capsys.readouterr().err
    assert "kubesentinel: error KS-E0" in err
    assert f"{broken}:" in err
    assert "Traceback" not in err
    assert "allowPrivilegeEscalation: false" in good.read_text()
    assert broken.read_text().endswith("[unclosed\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fix"], "nothing to fix"),
        (["fix", "--path", "-"], "does not read stdin"),
        (["fix", "--path", "x.yaml", "--rule", "KS-0002"], "no fix for KS-0002"),
        (["fix", "--path", "/nonexistent/x.yaml"], "no such file or directory"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_threshold_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fix", "--path", "x", "--severity-threshold", "severe"])
    assert exit_info.value.code == 2
    assert "--severity-threshold" in capsys.readouterr().err


def test_rule_selects_what_is_fixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    main(["fix", "--path", str(pod), "--rule", "KS-0051", "--rule", "KS-0048"])
    out, err = capsys.readouterr()
    added = [line for line in out.splitlines() if line.startswith("+ ")]
    assert added == ["+    imagePullPolicy: Always", "+  automountServiceAccountToken: false"]
    assert "not selected (--rule)" in err


def test_fix_defaults_come_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "static:\n  fix_defaults:\n    requests: {cpu: 250m}\n    limits: {memory: 1Gi}\n"
    )
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    main(["--config", str(config), "fix", "--path", str(pod), "--rule", "KS-0040",
          "--rule", "KS-0043"])  # fmt: skip
    out = capsys.readouterr().out
    assert "+        cpu: 250m\n" in out
    assert "+        memory: 1Gi\n" in out
    assert "100m" not in out


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        ("  fix_defaults: {request: {cpu: 1}}\n", "unknown key static.fix_defaults.request", 2),
        ("  fix_defaults:\n    limits:\n      gpu: 1\n", "static.fix_defaults.limits.gpu", 4),
        ("  fix_defaults:\n    limits: {cpu: lots}\n", "must be a quantity", 3),
        ("  fix_defaults:\n    requests: {memory: 2Gi}\n", "memory request is above its limit", 2),
        ("  fix_defaults: [1]\n", "must be a mapping", 2),
    ],
)
def test_fix_defaults_errors_name_the_key_and_line(
    tmp_path: Path, body: str, message: str, line: int
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("static:\n" + body)
    with pytest.raises(ConfigError) as error:
        load_config(str(config))
    assert message in str(error.value)
    assert error.value.line == line


def test_shipped_config_sets_the_documented_defaults() -> None:
    defaults = load_config(str(ROOT / "config.yaml")).static.fix_defaults
    assert (defaults.requests_cpu, defaults.limits_memory) == ("100m", "512Mi")


def test_scan_start_up_does_not_import_ruamel() -> None:
    code = (
        "import sys\nfrom kubesentinel.cli import main\n"
        f"main(['scan', '--path', {str(EXAMPLES / 'good')!r}])\n"
        "assert not any(m.startswith('ruamel') for m in sys.modules), 'ruamel imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_what_is_left_reads_one_line_per_problem_as_scan_shows_it(
    bad: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bad.parent)
    assert main(["fix", "--path", "bad"]) == 1
    left = [line for line in capsys.readouterr().err.splitlines() if ": left: " in line]
    # The docker.sock mount is one problem: the socket rule names the path rules it implies.
    mount = [line for line in left if "node-agent.yaml:26:" in line]
    assert len(mount) == 1
    assert " KS-0036 (also KS-0005, KS-0015, KS-0035) [critical] " in mount[0]
    assert not [line for line in left if "node-agent.yaml:26: KS-0035 " in line]
