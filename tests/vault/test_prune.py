"""Retention on SQLite alone: what only a file store has (private files, a writer process
sharing it, the monitor's schedule) and `incidents show` after a prune. What retention keeps
and removes, on both backends, is in tests/store_behaviour/test_retention.py."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from kubesentinel.models import Event, Incident, Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.policy import Policy, load_policy
from kubesentinel.vault.prune import PruneOptions, PruneReport, prune
from kubesentinel.vault.retention import DAY_NS
from kubesentinel.vault.schedule import PruneSchedule
from kubesentinel.vault.verify import VerifyReport
from tests.runtime.test_sqlite_store import DB, T0, event

DEFAULT = load_policy([])  # noise: rolled up after 7 days, kept 90; default: 90; severe: 365


def write(path: Path, events: list[Event], incidents: list[Incident] | None = None) -> None:
    with SQLiteStore(path) as store:
        for start in range(0, len(events), 500):  # several segments
            store.write(events[start : start + 500], [])
        if incidents:
            store.write([], incidents)


def run(path: Path, days: float, policy: Policy = DEFAULT, **options: object) -> PruneReport:
    with SQLiteStore(path) as store:
        return prune(store, PruneOptions(policy, T0 + int(days * DAY_NS), **options))  # type: ignore[arg-type]


def verify(path: Path) -> VerifyReport:
    with SQLiteStore(path, read_only=True) as store:
        return store.verify()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def ids(path: Path) -> set[str]:
    with SQLiteStore(path, read_only=True) as store:
        db_rows = rows(path, "SELECT id FROM events")
    del store
    from kubesentinel.runtime.store.rows import id_text

    return {id_text(row[0]) for row in db_rows}  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "vault" / "kubesentinel.db"


def noise(name: str, at_s: float, **changes: object) -> Event:
    return event(name, at_s, priority=Priority.INFORMATIONAL, **changes)


def incident_store(path: Path) -> Incident:
    """Noise on WEB and DB from t=0 to 3000 s; an incident on WEB at 2000 s (window 900 s
    before, 300 after in the default policy)."""
    events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    events += [noise(f"d{t}", t, workload=DB) for t in range(0, 3000, 100)]
    events.sort(key=lambda e: e.time_ns)
    signals = [event("sig1", 2000.5, priority=Priority.CRITICAL),
               event("sig2", 2001.5, priority=Priority.CRITICAL)]  # fmt: skip
    incidents = Correlator().add(signals, signals[-1].time_ns)
    assert incidents
    with SQLiteStore(path) as store:
        store.write(events, [])
        store.write(signals, incidents)
    return incidents[-1]


def test_incidents_show_checks_its_segments_after_a_prune(path: Path) -> None:
    incident = incident_store(path)
    run(path, days=100)  # segment 1 loses most of its events; segment 3 holds the tombstones
    with SQLiteStore(path, read_only=True) as store:
        report = store.verify_incident(incident.id)
    assert report.ok, report.problems
    assert (report.checked_segments, report.tombstones) == (1, 1)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE events SET role = 3 WHERE segment = 2")
    db.close()
    with SQLiteStore(path, read_only=True) as store:
        report = store.verify_incident(incident.id)
    assert [str(p) for p in report.problems] == [
        "segment 2: its records do not match its Merkle root: a record of it was changed, "
        "added or removed"
    ]


def test_incidents_show_checks_a_segment_retention_thinned(path: Path) -> None:
    noise_events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    signals = [event("sig1", 2000.5, priority=Priority.CRITICAL)]
    (incident,) = Correlator().add(signals, signals[-1].time_ns)
    with SQLiteStore(path) as store:
        store.write(noise_events + signals, [incident])  # one segment for all
    assert run(path, days=100).removed
    with SQLiteStore(path, read_only=True) as store:
        report = store.verify_incident(incident.id)
    assert report.ok, report.problems
    assert report.checked_segments == 1
    assert report.removed_records > 0  # its root was recomputed with tombstoned leaves


def test_emptied_segments_lose_their_evidence_and_files_stay_private(path: Path) -> None:
    write(path, [noise(f"n{k}", k) for k in range(1200)])  # three segments of evidence
    report = run(path, days=100)
    assert len(report.evidence_dropped) == 3
    assert rows(path, "SELECT count(*) FROM segments WHERE length(data) > 0") == [(0,)]
    assert verify(path).ok
    for file in path.parent.iterdir():
        if file.suffix in {".db", ".pem"}:
            assert os.stat(file).st_mode & 0o777 == 0o600, file


def test_prune_and_the_writer_share_the_store(path: Path) -> None:
    """A prune in progress delays the monitor's writes (SQLite's busy wait), never loses one."""
    write(path, [noise(f"old{k}", k) for k in range(6000)])
    written: list[str] = []
    done = threading.Event()

    def writer() -> None:
        with SQLiteStore(path) as store:
            n = 0
            while not done.is_set() or n < 20:
                batch = [noise(f"new{n}-{k}", 30 * DAY_NS / 1e9 + n * 10 + k) for k in range(20)]
                store.write(batch, [])
                written.extend(e.id for e in batch)
                n += 1
                time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with SQLiteStore(path) as store:
            report = prune(store, PruneOptions(DEFAULT, T0 + 31 * DAY_NS, batch=500))
    finally:
        done.set()
        thread.join(timeout=60)
    assert report.events_removed == 6000
    assert ids(path) == set(written)
    final = verify(path)
    assert final.ok, final.problems


def test_the_monitor_schedule_prunes_soon_after_start(path: Path) -> None:
    write(path, [noise(f"n{k}", k) for k in range(10)])
    metrics = Metrics()
    schedule = PruneSchedule(path, None, DEFAULT, 3600, max_bytes=None, dead_letter=None,
                             metrics=metrics, clock=lambda: T0 + 100 * DAY_NS,
                             first_run_s=0.01)  # fmt: skip
    schedule.start()
    try:
        deadline = time.monotonic() + 30
        while schedule.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        schedule.stop()
    assert schedule.runs == 1
    assert metrics.snapshot()["vault_removed"] == 10
    assert metrics.snapshot()["vault_over_cap"] == 0
