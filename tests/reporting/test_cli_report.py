"""`kubesentinel report`: outputs, file modes, the config's formats, exit codes and messages."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from kubesentinel.cli import main
from tests.reporting.conftest import Store, incident_of

PERIOD = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T01:00:00Z")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def copy_of(store: Store, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copyfile(store.path, copy)
    return copy


def tamper(path: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, params)
    db.commit()
    db.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_one_format_goes_to_stdout_or_the_file_given(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = incident_of(sim.path, "storefront")
    code, out, err = run(capsys, "--incident-id", incident_id, "--store", str(sim.path),
                         "--format", "markdown")  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith(f"# Incident report {incident_id}\n")
    code, out, _ = run(capsys, "--incident-id", incident_id, "--store", str(sim.path), "-f",
                       "json", "--output", "-")  # fmt: skip
    assert json.loads(out)["incident_id"] == incident_id
    target = tmp_path / "web.html"
    code, out, _ = run(capsys, "--incident-id", incident_id, "--store", str(sim.path), "-f",
                       "html", "-o", str(target))  # fmt: skip
    assert (code, out) == (0, f"{target}\n")
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert mode(target) == 0o600


def test_without_format_the_config_chooses_formats_and_directory(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    config = tmp_path / "config.yaml"
    config.write_text(f'reporting:\n  formats: ["json", "html", "markdown"]\n'
                      f'  output_path: "{reports}"\n')  # fmt: skip
    incident_id = incident_of(sim.path, "node-agent", "critical")
    code, out, err = run(capsys, "--incident-id", incident_id, "--store", str(sim.path),
                         "--config", str(config))  # fmt: skip
    names = [f"incident-{incident_id}.{ext}" for ext in ("json", "html", "md")]
    assert (code, err) == (0, "")
    assert out.splitlines() == [str(reports / name) for name in names]
    assert mode(reports) == 0o700
    assert all(mode(reports / name) == 0o600 for name in names)
    code, out, _ = run(capsys, *PERIOD, "--store", str(sim.path), "--config", str(config))
    assert code == 0
    assert [Path(line).name for line in out.splitlines()] == [
        f"period-2026-01-01T000000Z-2026-01-01T010000Z.{ext}" for ext in ("json", "html", "md")
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--incident-id", "nope"), "KS-E070: no incident 'nope' in "),
        (("--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z"),
         "KS-E070: no incident in "),
        (("--from", "2026-01-01T01:00:00Z", "--to", "2026-01-01T00:00:00Z"),
         "KS-E001: --from is later than --to"),
        (("--incident-id", "x", "--namespace", "shop"),
         "KS-E001: --to and --namespace go with --from"),
    ],
)  # fmt: skip
def test_nothing_to_report_is_one_line_and_exit_2(
    sim: Store, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = run(capsys, *args, "--store", str(sim.path))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert says in err


def test_an_unwritable_output_is_exit_2(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    incident_id = incident_of(sim.path, "storefront")
    code, _, err = run(capsys, "--incident-id", incident_id, "--store", str(sim.path),
                       "-f", "json", "-o", str(blocker / "r.json"))  # fmt: skip
    assert code == 2
    assert err.startswith(f"kubesentinel: error KS-E070: {blocker / 'r.json'}: cannot write")


def test_an_unreadable_store_or_damaged_evidence_is_exit_2(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 64)
    code, _, err = run(capsys, "--incident-id", "x", "--store", str(junk))
    assert code == 2
    assert "not a KubeSentinel store, or the file is corrupt" in err
    assert "Traceback" not in err

    copy = copy_of(sim, tmp_path)
    incident_id = incident_of(copy, "node-agent", "critical")
    tamper(copy, "UPDATE segments SET data = x'00'")  # every event's bytes unreadable
    code, out, err = run(capsys, "--incident-id", incident_id, "--store", str(copy), "-f", "json")
    assert (code, out) == (2, "")
    assert err.startswith(f"kubesentinel: error KS-E070: {copy}: cannot read the evidence")
    assert err.count("\n") == 1


def test_evidence_failing_verification_is_reported_with_a_banner_and_exit_1(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = copy_of(sim, tmp_path)
    incident_id = incident_of(copy, "node-agent", "critical")
    tamper(copy, "UPDATE incidents SET risk_score = 1.0 WHERE id = ?", incident_id)
    outputs = {}
    for fmt in ("markdown", "html", "json"):
        code, out, err = run(capsys, "--incident-id", incident_id, "--store", str(copy), "-f", fmt)
        assert code == 1
        assert err.startswith("kubesentinel: TAMPERING: The evidence behind this report FAILS")
        assert f"incident {incident_id}: was changed after segment" in err
        outputs[fmt] = out
    lines = outputs["markdown"].split("\n")
    assert lines[2] == "> [!CAUTION]"  # at the top, before the summary
    assert lines[3].startswith("> **Evidence integrity: FAILED.** The evidence behind this")
    assert 'id="integrity"' in outputs["html"].split('<section id="summary">')[0]
    document = json.loads(outputs["json"])
    assert document["integrity_problem"].startswith("The evidence behind this report FAILS")
    assert document["evidence"]["verified"] is False
    code, out, err = run(capsys, *PERIOD, "--store", str(copy), "-f", "markdown")
    assert code == 1
    assert "**Evidence integrity: FAILED.**" in out
    assert "TAMPERING" in err
