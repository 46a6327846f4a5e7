"""reporting.on_incident: the real monitor writes a report when an incident opens or escalates."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema
import pytest

from kubesentinel.cli import main
from kubesentinel.runtime.store.open import open_store
from tests.reporting.conftest import SCHEMA, scanned_posture


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stream")
    assert main(["simulate", "--out", str(directory), "--seed", "2", "--hours", "0.5"]) == 0
    return directory / "falco.jsonl"


def monitor(tmp_path: Path, stream: Path, config: str, *extra: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    db = tmp_path / "ks.db"
    code = main(["monitor", "--config", str(path), "--source", f"file://{stream}", "--until-eof",
                 "--store", str(db), "--no-k8s-lookup", "--posture",
                 str(scanned_posture(tmp_path)), *extra])  # fmt: skip
    assert code == 0
    return db


@pytest.mark.parametrize("workers", ["1", "2"])  # inline commits, and the writer process
def test_every_incident_gets_a_report_in_its_final_severity(
    tmp_path: Path, stream: Path, workers: str
) -> None:
    reports = tmp_path / "reports"
    db = monitor(tmp_path, stream, f'reporting:\n  formats: ["json"]\n  output_path: "{reports}"'
                 "\n  on_incident: true\n", "--workers", workers)  # fmt: skip
    store = open_store(str(db), read_only=True)
    try:
        incidents = {i.id: i for i in store.list_incidents()}
        stored = sum(len(store.stored_events_of(i)) for i in incidents)
    finally:
        store.close()
    assert stored > 0
    written = sorted(reports.iterdir())
    assert [p.name for p in written] == sorted(f"incident-{i}.json" for i in incidents)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        document = json.loads(path.read_text())
        assert list(validator.iter_errors(document)) == []
        incident = incidents[document["incident_id"]]
        assert document["summary"]["severity"] == incident.severity.label
        assert document["integrity_problem"] is None


def test_reports_are_off_by_default_and_a_failing_one_never_stops_the_monitor(
    tmp_path: Path, stream: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "off").mkdir()
    db = monitor(tmp_path / "off", stream, f'reporting:\n  output_path: "{tmp_path / "r"}"\n')
    assert not (tmp_path / "r").exists()
    store = open_store(str(db), read_only=True)
    try:
        expected = store.count_incidents()
    finally:
        store.close()

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    (tmp_path / "on").mkdir()
    capsys.readouterr()
    db = monitor(tmp_path / "on", stream, f'reporting:\n  output_path: "{blocker}"\n'
                 "  on_incident: true\n")  # fmt: skip
    err = capsys.readouterr().err
    store = open_store(str(db), read_only=True)
    try:
        assert store.count_incidents() == expected  # nothing lost
    finally:
        store.close()
    assert err.count("failed: ") >= expected  # each incident at least once (escalations again)
    assert "cannot create the report directory" in err
    assert "Traceback" not in err
