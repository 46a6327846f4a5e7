"""config.yaml: the shipped file equals the defaults; unknown keys and wrong types are errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kubesentinel.config import Config, load_config
from kubesentinel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_equals_the_built_in_defaults() -> None:
    assert replace(load_config(str(ROOT / "config.yaml")), source="<defaults>") == Config()


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("statc:\n  rules_path: x\n", 1, "unknown section 'statc'"),
        ("static:\n  rules_path: x\n  threshold: low\n", 3, "unknown key static.threshold"),
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
    assert config.static.rules_path == "./configs/rules"
    assert config.ai.threshold == 1.0
    assert config.runtime == Config().runtime


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "absent.yaml"))
