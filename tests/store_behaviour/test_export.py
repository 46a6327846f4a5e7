"""`vault export` and `vault verify --bundle` on either backend: a bundle of an incident or a
time range verifies offline, after a lawful prune too; the same writes prove the same
evidence from SQLite and PostgreSQL; a tampered store is not exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models import Incident, Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.vault.prune import PruneOptions, prune
from kubesentinel.vault.retention import DAY_NS
from kubesentinel.vault.signer import public_pem
from tests.runtime.test_sqlite_store import DB, T0, event
from tests.store_behaviour.backends import Backend
from tests.store_behaviour.test_retention import DEFAULT, noise


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def build(backend: Backend) -> Incident:
    """Noise on two workloads over 50 minutes, then an incident, each write signed."""
    events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    events += [noise(f"d{t}", t, workload=DB) for t in range(0, 3000, 100)]
    events.sort(key=lambda e: e.time_ns)
    signals = [event("sig1", 2000.5, priority=Priority.CRITICAL),
               event("sig2", 2001.5, priority=Priority.CRITICAL)]  # fmt: skip
    (incident,) = Correlator().add(signals, signals[-1].time_ns)
    with backend.open() as store:
        store.write(events[:30], [])
        store.write(events[30:], [])
        store.write(signals, [incident])
        store.seal_tail()
    return incident


def pinned(backend: Backend, tmp_path: Path) -> Path:
    with backend.open(read_only=True) as store:
        raw = store.public_key()
    assert raw is not None
    path = tmp_path / "pinned.pem"
    path.write_text(public_pem(raw))
    return path


def bundle_of(
    capsys: pytest.CaptureFixture[str], backend: Backend, out: Path, *selection: str
) -> dict[str, object]:
    """Export, then verify the bundle offline against the pinned key: its JSON report."""
    code, text, err = run(capsys, "vault", "export", "--store", backend.location, "--output",
                          str(out), *selection)  # fmt: skip
    assert code == 0, (text, err)
    key = pinned(backend, out.parent)
    code, text, err = run(capsys, "vault", "verify", "--bundle", str(out), "--public-key",
                          str(key), "--format", "json")  # fmt: skip
    assert code == 0, (text, err)
    report: dict[str, object] = json.loads(text)
    assert report["ok"]
    assert report["key_pinned"]
    return report


def test_an_incident_round_trips(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident = build(backend)
    report = bundle_of(capsys, backend, tmp_path / "inc.bundle", "--incident-id", incident.id)
    assert (report["events"], report["incidents"]) == (2, 1)


def test_a_time_range_round_trips_after_a_lawful_prune(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident = build(backend)
    with backend.open() as store:
        assert prune(store, PruneOptions(DEFAULT, T0 + 100 * DAY_NS)).events_removed > 0
    start = (T0 + 1000 * 1_000_000_000) // 1_000_000_000
    report = bundle_of(capsys, backend, tmp_path / "range.bundle", "--from",
                       f"{_iso(start)}", "--to", f"{_iso(start + 2000)}")  # fmt: skip
    # What is left in the range: the incident's context window on its workload, the signals.
    assert report["events"] == 12 + 2
    assert report["incidents"] == 1
    inc = bundle_of(capsys, backend, tmp_path / "inc.bundle", "--incident-id", incident.id)
    assert inc["events"] == 2


def _iso(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_both_backends_prove_the_same_evidence(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same writes give the same records: the bundles hold the same event, facet and
    incident records at the same leaves, and the same alert bytes (only the segment records
    differ, by the time each write was made)."""
    proven = []
    for backend in (
        Backend("sqlite", str(tmp_path / "s" / "kubesentinel.db"), tmp_path / "s" / "key.pem"),
        Backend("postgres", postgres_url, tmp_path / "p" / "key.pem"),
    ):
        incident = build(backend)
        report = bundle_of(capsys, backend, tmp_path / f"{backend.kind}.bundle", "--incident-id",
                           incident.id)  # fmt: skip
        assert report["events"] == 2
        text = (tmp_path / f"{backend.kind}.bundle").read_text()
        lines = [json.loads(line) for line in text.splitlines()]
        proven.append(sorted(
            (line["type"], json.dumps(line["record"]), line["index"], line.get("raw"))
            for line in lines if line.get("type") in {"event", "facet", "incident"}
        ))  # fmt: skip
    assert proven[0] == proven[1]
    assert len(proven[0]) == 2 + 1 + 1


def test_a_tampered_store_is_not_exported(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident = build(backend)
    backend.execute("UPDATE events SET role = 3 WHERE role IS NULL AND incident IS NOT NULL")
    out = tmp_path / "inc.bundle"
    code, text, _ = run(capsys, "vault", "export", "--store", backend.location, "--output",
                        str(out), "--incident-id", incident.id)  # fmt: skip
    assert code == 1
    assert "its records do not match its Merkle root" in text
    assert not out.exists()
