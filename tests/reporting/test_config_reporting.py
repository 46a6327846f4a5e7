"""The reporting section of config.yaml: on_incident and formats are checked when loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesentinel.config import load_config
from kubesentinel.errors import ConfigError


def test_on_incident_is_off_by_default_and_read_as_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("reporting:\n  on_incident: true\n")
    assert load_config(None).reporting.on_incident is False
    assert load_config(str(path)).reporting.on_incident is True


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("reporting:\n  on_incident: 1\n", "reporting.on_incident must be"),
        ("reporting:\n  on_incident: yes-please\n", "reporting.on_incident must be"),
        ("reporting:\n  formats: []\n", "reporting.formats must list at least one format"),
        ("reporting:\n  formats: [pdf]\n", "unknown report format(s) ['pdf']"),
    ],
)
def test_bad_reporting_values_name_the_key_and_line(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert says in caught.value.message
    assert caught.value.line == 2


def test_the_shipped_config_yaml_loads_with_reports_off() -> None:
    config = load_config(str(Path(__file__).resolve().parents[2] / "config.yaml"))
    assert config.reporting.on_incident is False
