"""config.yaml: the shipped file equals the defaults; unknown keys and wrong types are errors."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.config import Config, load_config
from kubesentinel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_equals_the_built_in_defaults() -> None:
    shipped = load_config(str(ROOT / "config.yaml"))
    # The shipped paths, read from the file's directory, are the defaults read from there.
    defaults = Config()
    assert shipped.forensics.storage_path == str(ROOT / defaults.forensics.storage_path)
    assert shipped.ai.model_path == str(ROOT / defaults.ai.model_path)
    assert shipped.reporting.output_path == str(ROOT / defaults.reporting.output_path)
    assert (
        replace(
            shipped,
            source="<defaults>",
            ai=replace(shipped.ai, model_path=defaults.ai.model_path),
            forensics=replace(shipped.forensics, storage_path=defaults.forensics.storage_path),
            reporting=replace(shipped.reporting, output_path=defaults.reporting.output_path),
        )
        == defaults
    )


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("statc:\n  rules_path: x\n", 1, "unknown section 'statc'"),
        ("static:\n  pss_version: latest\n  threshold: low\n", 3, "unknown key static.threshold"),
        ("runtime:\n  workers: four\n", 2, "runtime.workers must be an integer"),
        ("runtime:\n  workers: true\n", 2, "runtime.workers must be an integer"),
        ("runtime:\n  buffer_size: 0\n", 2, "must be greater than 0"),
        ("ai:\n  threshold: 1.5\n", 2, "between 0 and 1"),
        ("reporting:\n  formats: [json, pdf]\n", 2, "unknown report format"),
        ("static:\n  pss_version: 1.x\n", 2, "PSS version"),
        ("static: [a, b]\n", 1, "must be a mapping"),
        ("static:\n  rules_path: [unclosed\n", 3, "malformed YAML"),
        ("forensics:\n  context_window_s: -1\n", 2, "context_window_s must be between 0"),
        ("forensics:\n  rollup_after_days: x\n", 2, "rollup_after_days must be an integer or null"),
        ("forensics:\n  prune_interval_s: -5\n", 2, "prune_interval_s must be 0 or more"),
        ("forensics:\n  policies: a.yaml\n", 2, "policies must be a list of strings"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert (info.value.file, info.value.line) == (str(path), line)
    assert fragment in info.value.message


def test_partial_config_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("static:\n  severity_threshold: high\nai:\n  threshold: 1\n")
    config = load_config(str(path))
    assert config.static.severity_threshold == "high"
    assert config.static.rules_path == ""
    assert config.ai.threshold == 1.0
    assert config.runtime == Config().runtime


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (
            "static:\n  severity_threshold: low\n  rules_path: ./configs/rulez\n",
            "static.rules_path",
            3,
        ),
        ("forensics:\n  policies:\n    - ./absent-policy.yaml\n", "forensics.policies", 2),
    ],
)
def test_a_missing_input_path_is_an_error_naming_key_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, line: int
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert (info.value.file, info.value.line) == (str(path), line)
    assert info.value.message.startswith(f"{key}: no such file or directory: {tmp_path}")
    # through the command line: exit 2, the key and the file on stderr, never a silent pass
    manifest = ROOT / "examples" / "k8s-manifests" / "good"
    assert main(["--config", str(path), "scan", "--path", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert key in err
    assert str(path) in err
    assert "Traceback" not in err


def test_relative_paths_are_read_from_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    (conf / "rules").mkdir(parents=True)
    (conf / "rules" / "ipc.yaml").write_text(
        "id: ACME-0001\ntitle: Host IPC forbidden here\nseverity: critical\ncategory: host\n"
        "description: Team policy.\nremediation: Remove hostIPC.\nkinds: [workloads]\n"
        "predicate: pod_flag_true\nparams: {field: hostIPC}\n"
    )
    (conf / "config.yaml").write_text(
        "static:\n  rules_path: rules\nforensics:\n  storage_path: ./vault\n"
        "reporting:\n  output_path: ~/reports\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../conf/config.yaml")
    assert Path(config.static.rules_path).resolve() == conf / "rules"
    assert Path(config.forensics.storage_path).resolve() == conf / "vault"
    assert config.reporting.output_path == str(Path.home() / "reports")  # absolute stays
    manifest = elsewhere / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostIPC: true, containers: []}\n"
    )
    assert main(["--config", "../conf/config.yaml", "scan", "--path", "pod.yaml"]) == 1
    assert "ACME-0001" in capsys.readouterr().out


def test_the_shipped_config_is_valid_and_scans_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: nothing may depend on the working directory
    examples = ROOT / "examples" / "k8s-manifests"
    config = str(ROOT / "config.yaml")
    assert main(["--config", config, "scan", "--path", str(examples / "good")]) == 0
    assert main(["--config", config, "scan", "--path", str(examples / "bad")]) == 1
    captured = capsys.readouterr()
    assert "KS-0001" in captured.out
    assert "error" not in captured.err.lower()


def test_tls_files_are_checked_when_the_monitor_starts_naming_key_and_file(
    tmp_path: Path,
) -> None:
    from kubesentinel.ai.scorer import open_scorer

    path = tmp_path / "config.yaml"
    path.write_text('ai:\n  endpoint: "localhost:50051"\n  tls_ca: certs/ca.pem\n')
    config = load_config(str(path))  # loads: the files exist where the monitor runs
    with pytest.raises(ConfigError) as info:
        open_scorer(config)
    assert info.value.file == str(path)
    assert info.value.message == f"ai.tls_ca: no such file: {tmp_path / 'certs' / 'ca.pem'}"


def test_docs_list_every_key_the_config_accepts() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    keys = [
        f"{section.name}.{key.name}"
        for section in fields(Config)
        if section.name != "source"
        for key in fields(section.default_factory())  # type: ignore[misc]
    ]
    assert len(keys) > 25
    missing = [key for key in keys if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not describe {missing}"
