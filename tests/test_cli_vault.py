"""``kubesentinel vault prune|hold|release|stats|verify``: output and exit codes on real stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models import Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import SQLiteStore
from tests.runtime.test_sqlite_store import DB, event


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str]:
    """Events from 2025 (long expired by now) and one incident on DB."""
    path = tmp_path / "kubesentinel.db"
    noise = [event(f"n{k}", k, priority=Priority.INFORMATIONAL) for k in range(20)]
    signals = [event("s1", 5000, workload=DB, priority=Priority.CRITICAL),
               event("s2", 5001, workload=DB, priority=Priority.CRITICAL)]  # fmt: skip
    incidents = Correlator().add(signals, signals[-1].time_ns)
    with SQLiteStore(path) as s:
        s.write(noise, [])
        s.write(signals, incidents)
    return path, incidents[-1].id


def test_prune_dry_run_then_prune_then_verify(
    store: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    assert main(["vault", "prune", "--store", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 20 events" in out
    assert ["noise", "expired", "tier", "informational", "20"] in [
        line.split() for line in out.splitlines()
    ]
    assert main(["vault", "prune", "--store", str(path), "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["events_removed"] == 20
    assert figures["segments_evidence_removed"] == 1
    assert main(["vault", "verify", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "20 event records and 0 incidents removed lawfully" in out
    assert main(["vault", "stats", "--store", str(path), "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records_per_class"] == {"incident": 2}
    assert stats["records_removed"] == 20


def test_hold_release_and_their_errors(
    store: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, incident_id = store
    base = ["--store", str(path), "--incident-id"]
    assert main(["vault", "hold", *base, incident_id, "--reason", "ticket 9"]) == 0
    assert "held" in capsys.readouterr().out
    assert main(["vault", "hold", *base, "missing"]) == 2
    assert "no incident 'missing'" in capsys.readouterr().err
    assert main(["vault", "stats", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"incident_id {incident_id}, reason ticket 9" in out
    assert "hold 2" in out
    assert main(["vault", "release", *base, incident_id]) == 0
    assert main(["vault", "release", *base, incident_id]) == 2
    assert "is not held" in capsys.readouterr().err
    assert main(["vault", "verify", "--store", str(path)]) == 0


def test_prune_over_the_cap_exits_1(
    store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    config = tmp_path / "config.yaml"
    config.write_text("forensics:\n  max_size_mb: 1\n")
    (path.parent / "dead-letter.jsonl").write_bytes(b"x" * 2 * 1024 * 1024)
    assert main(["--config", str(config), "vault", "prune", "--store", str(path)]) == 1
    assert "over forensics.max_size_mb" in capsys.readouterr().err


def test_a_bad_policy_file_is_exit_2_naming_file_and_line(
    store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = store
    policy = tmp_path / "bad.yaml"
    policy.write_text("version: 1\ntiers:\n  loud: noise\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"forensics:\n  policies: [{policy}]\n")
    assert main(["--config", str(config), "vault", "prune", "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{policy}:3:" in err
    assert "KS-E003" in err


def test_no_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vault", "prune", "--store", str(tmp_path / "none.db")]) == 2
    assert "no incident store" in capsys.readouterr().err
