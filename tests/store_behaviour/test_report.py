"""`kubesentinel report` on either backend: the evidence manifest through each backend's
sealed-record reader, the period report, and tampering reported with a banner (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from kubesentinel.cli import main
from tests.reporting.conftest import SCHEMA
from tests.store_behaviour.backends import Backend


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--seed", "3", "--hours", "0.25"]) == 0
    return out / "falco.jsonl"


def test_reports_on_either_backend(
    backend: Backend, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"forensics:\n  signing_key: {backend.key}\n")
    common = ["--config", str(config), "--store", backend.location]
    code, _, err = run(capsys, "monitor", "--source", str(stream), "--until-eof", *common)
    assert code == 0, err
    code, out, _ = run(capsys, "incidents", "list", "-f", "json", "--limit", "0", *common)
    incidents = json.loads(out)
    top = max(incidents, key=lambda i: (i["event_count"], i["risk_score"]))
    code, out, err = run(capsys, "incidents", "show", top["id"], "-f", "json", "--all", *common)
    events = json.loads(out)["events"]

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    code, out, err = run(capsys, "report", "--incident-id", top["id"], "-f", "json", *common)
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert list(validator.iter_errors(document)) == []
    evidence = document["evidence"]
    assert evidence["verified"] is True
    assert evidence["record_count"] == len(events)
    assert {r["event_id"] for r in evidence["records"]} <= {e["id"] for e in events}
    assert all(s["checkpoint"] is not None for s in evidence["segments"])
    assert document["timeline"]["events"] == len(events)

    code, out, err = run(capsys, "report", "--from", "2026-01-01T00:00:00Z", "--to",
                         "2026-01-01T01:00:00Z", "-f", "json", *common)  # fmt: skip
    assert (code, err) == (0, "")
    period = json.loads(out)
    assert period["incidents"] == len(incidents)
    assert list(validator.iter_errors(period)) == []

    backend.execute("UPDATE incidents SET risk_score = risk_score + 1 WHERE id = ?", (top["id"],))
    code, out, err = run(capsys, "report", "--incident-id", top["id"], "-f", "json", *common)
    assert code == 1
    assert "was changed after segment" in err
    assert json.loads(out)["integrity_problem"].startswith("The evidence behind this report")
