"""Retention on real SQLite stores: what goes, what stays, the rollups, the size cap, holds,
and that ``vault verify`` passes after a lawful prune but not after any other deletion."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kubesentinel.models import Event, Incident, Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.hold import place_hold, release_hold
from kubesentinel.vault.policy import Policy, load_policy
from kubesentinel.vault.prune import PruneOptions, PruneReport, prune
from kubesentinel.vault.retention import DAY_NS, HOUR_NS
from kubesentinel.vault.retention_stats import retention_stats
from kubesentinel.vault.schedule import PruneSchedule
from kubesentinel.vault.verify import VerifyReport
from tests.runtime.test_sqlite_store import DB, T0, WEB, event

Tamper = Callable[[sqlite3.Connection], None]
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


def test_rollup_counts_are_exact(path: Path) -> None:
    expected: Counter[tuple[int, str, str]] = Counter()
    events = []
    for hour in range(3):
        for workload in (WEB, DB):
            for rule, n in (("Read proc", 3 + hour), ("List dir", 1 + hour * 2)):
                for k in range(n):
                    at = hour * 3600 + k * 7 + (50 if workload is DB else 0)
                    events.append(noise(f"{hour}-{workload.name}-{rule}-{k}", at, workload=workload,
                                        rule=rule))  # fmt: skip
                    hour_ns = (T0 + at * 1_000_000_000) // HOUR_NS * HOUR_NS
                    expected[hour_ns, workload.name, rule] += 1
    events.sort(key=lambda e: e.time_ns)
    write(path, events)
    report = run(path, days=8)
    assert report.rolled_up_events == len(events) == report.events_removed
    assert report.removed == Counter({("noise", "rolled_up", "tier informational"): len(events)})
    stored = rows(path, "SELECT hour_ns, name, rule, count, class FROM rollups")
    assert Counter({(h, n, r): c for h, n, r, c, _ in stored}) == expected
    assert {row[4] for row in stored} == {"noise"}
    assert rows(path, "SELECT count(*) FROM events") == [(0,)]
    assert verify(path).ok
    # Nothing is left to roll up: a second run removes nothing and writes no segment.
    again = run(path, days=8)
    assert (again.events_removed, again.retention_segments) == (0, [])
    # The counts themselves go at the class's keep_days (90), with a tombstone each.
    late = run(path, days=91)
    assert late.rollups_removed == len(expected)
    assert rows(path, "SELECT count(*) FROM rollups") == [(0,)]
    report_after = verify(path)
    assert report_after.ok, report_after.problems


def test_each_class_expires_at_its_age(path: Path) -> None:
    write(path, [event("notice", 0), event("crit", 1, priority=Priority.CRITICAL),
                 event("warn", 2, priority=Priority.WARNING)])  # fmt: skip
    assert run(path, days=89.9).events_removed == 0
    report = run(path, days=181)
    assert report.removed == Counter({("default", "expired", "tier notice"): 1,
                                      ("elevated", "expired", "tier warning"): 1})  # fmt: skip
    assert ids(path) == {"crit"}
    assert verify(path).ok


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


def test_incident_evidence_and_its_context_window_stay(path: Path) -> None:
    incident_store(path)
    report = run(path, days=100)
    kept = ids(path)
    window = {f"w{t}" for t in range(1200, 2400, 100)}  # 2000.5 - 900 = 1100.5 ... 2001.5 + 300
    assert kept == window | {"sig1", "sig2"}
    assert report.removed[("noise", "expired", "tier informational")] == 60 - len(window)
    assert verify(path).ok


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


def test_a_held_incident_is_never_evicted_and_the_cap_alert_is_raised(path: Path) -> None:
    incident = incident_store(path)
    with SQLiteStore(path) as store:
        assert place_hold(store, incident.id, "case 7", T0).changed
        assert not place_hold(store, incident.id, "again", T0).changed
    metrics = Metrics()
    schedule = PruneSchedule(path, None, DEFAULT, 3600, max_bytes=1, dead_letter=None,
                             metrics=metrics, clock=lambda: T0 + DAY_NS)  # fmt: skip
    try:
        report = schedule.run_once()
    finally:
        schedule.stop()
    assert report.over_cap
    assert {c for c, _, _ in report.removed} == {"noise"}
    assert ids(path) == {f"w{t}" for t in range(1200, 2400, 100)} | {"sig1", "sig2"}
    snapshot = metrics.snapshot()
    assert snapshot["vault_over_cap"] == 1
    assert snapshot["vault_removed"] == report.events_removed > 0
    with SQLiteStore(path, read_only=True) as store:
        figures = retention_stats(store, DEFAULT)
    assert figures["records_per_class"] == {"hold": len(ids(path))}
    assert figures["holds"] == [{"incident_id": incident.id, "reason": "case 7"}]
    with SQLiteStore(path) as store:
        assert release_hold(store, incident.id, T0).changed
        assert retention_stats(store, DEFAULT)["records_per_class"] == {"incident": len(ids(path))}
    assert verify(path).ok


def test_the_cap_evicts_the_lowest_rank_first_oldest_first(path: Path, tmp_path: Path) -> None:
    policy_file = tmp_path / "cap.yaml"
    policy_file.write_text(
        "classes:\n  low: {keep_days: 3650, evict_rank: 5}\n  mid: {keep_days: 3650, "
        "evict_rank: 10}\ntiers: {debug: low, informational: mid}\n"
    )
    policy = load_policy([policy_file])
    events = []
    for k in range(3000):
        events.append(event(f"low{k:05}", k, priority=Priority.DEBUG))
        events.append(event(f"mid{k:05}", k + 0.5, priority=Priority.INFORMATIONAL))
    write(path, events)
    with SQLiteStore(path) as store:
        size = store.vault_stats()["size_bytes"]
    cap = size * 9 // 10  # a tombstone keeps 40 bytes of each event: see docs
    report = run(path, days=1, policy=policy, max_bytes=cap)
    assert not report.over_cap
    assert report.size_after <= cap
    kept = ids(path)
    low = sorted(i for i in kept if i.startswith("low"))
    gone_low = 3000 - len(low)
    assert gone_low > 0
    assert low == [f"low{k:05}" for k in range(gone_low, 3000)]  # the oldest went first
    mids = [i for i in kept if i.startswith("mid")]
    assert len(mids) == 3000 or not low  # a mid event goes only once every low one has
    assert {a for _, a, _ in report.removed} == {"evicted"}
    assert verify(path).ok


def test_the_dead_letter_counts_against_the_cap(path: Path, tmp_path: Path) -> None:
    write(path, [noise(f"n{k}", k) for k in range(50)])
    dead = tmp_path / "dead-letter.jsonl"
    dead.write_bytes(b"x" * 4_000_000)
    report = run(path, days=1, max_bytes=3_000_000, dead_letter=[dead])
    assert report.over_cap  # the dead letter alone is over: every event went, to no avail
    assert ids(path) == set()
    assert run(path, days=1, max_bytes=5_000_000, dead_letter=[dead]).over_cap is False


def test_a_dry_run_changes_nothing_and_says_the_same(path: Path) -> None:
    incident_store(path)

    def dump() -> list[str]:
        db = sqlite3.connect(path)
        try:
            return list(db.iterdump())
        finally:
            db.close()

    before = dump()
    dry = run(path, days=100, dry_run=True)
    assert dump() == before
    real = run(path, days=100)
    assert dry.removed == real.removed
    assert (dry.tombstones, dry.segments_touched) == (real.tombstones, real.segments_touched)
    assert dry.retention_segments == []


def test_emptied_segments_lose_their_evidence_and_files_stay_private(path: Path) -> None:
    write(path, [noise(f"n{k}", k) for k in range(1200)])  # three segments of evidence
    report = run(path, days=100)
    assert len(report.evidence_dropped) == 3
    assert rows(path, "SELECT count(*) FROM segments WHERE length(data) > 0") == [(0,)]
    assert verify(path).ok
    for file in path.parent.iterdir():
        if file.suffix in {".db", ".pem"}:
            assert os.stat(file).st_mode & 0o777 == 0o600, file


@pytest.fixture
def pruned(path: Path) -> Path:
    """Rolled up and expired records, some events left (severe), tombstones and rollups."""
    events = [noise(f"n{k}", k * 60) for k in range(600)]
    events += [event(f"c{k}", k * 60 + 1, priority=Priority.CRITICAL) for k in range(600)]
    events.sort(key=lambda e: e.time_ns)
    write(path, events)
    run(path, days=8)
    assert rows(path, "SELECT count(*) FROM rollups")[0][0] > 0
    assert verify(path).ok
    return path


def _forge_entries(db: sqlite3.Connection) -> None:
    import hashlib

    blob = bytes(db.execute("SELECT entries FROM tombstones ORDER BY id LIMIT 1").fetchone()[0])
    forged = blob[:-1] + bytes([blob[-1] ^ 1])
    db.execute(
        "UPDATE tombstones SET entries = ?, entries_sha256 = ? WHERE id = "
        "(SELECT min(id) FROM tombstones)",
        (forged, hashlib.sha256(forged).hexdigest()),
    )


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "an event deleted without a tombstone": (
        lambda db: db.execute("DELETE FROM events WHERE rowid = (SELECT min(rowid) FROM events)"),
        "tombstoned, sealed with",
    ),
    "a remaining event edited": (
        lambda db: db.execute(
            "UPDATE events SET time_ns = time_ns + 1 WHERE rowid = (SELECT max(rowid) FROM events)"
        ),
        "do not match its Merkle root",
    ),
    "a tombstone's reasons edited": (
        lambda db: db.execute("UPDATE tombstones SET reasons = '[]'"),
        "do not match its Merkle root",
    ),
    "a tombstone's entries edited": (
        lambda db: db.execute("UPDATE tombstones SET entries = x'00'"),
        "entries do not match their sha256",
    ),
    "a tombstone's entries forged with a new sha256": (_forge_entries, "Merkle root"),
    "a tombstone deleted": (
        lambda db: db.execute("DELETE FROM tombstones WHERE id = (SELECT max(id) FROM tombstones)"),
        "sealed with",
    ),
    "a rollup count edited": (
        lambda db: db.execute("UPDATE rollups SET count = count + 1"),
        "do not match its Merkle root",
    ),
    "a rollup deleted": (
        lambda db: db.execute("DELETE FROM rollups WHERE id = (SELECT min(id) FROM rollups)"),
        "do not match its Merkle root",
    ),
    "a tombstone inserted for a record never removed": (
        lambda db: db.execute(
            "INSERT INTO tombstones (segment, target, kind, removed, entries_sha256, reasons, "
            "policy, evidence, written_ns, entries) SELECT segment, target, kind, removed, "
            "entries_sha256, reasons, policy, evidence, written_ns, entries FROM tombstones "
            "WHERE id = (SELECT min(id) FROM tombstones)"
        ),
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_verify_passes_a_lawful_prune_and_catches_everything_else(pruned: Path, case: str) -> None:
    change, fragment = TAMPERS[case]
    db = sqlite3.connect(pruned)
    with db:
        change(db)
    db.close()
    report = verify(pruned)
    assert not report.ok, case
    assert any(fragment in str(problem) for problem in report.problems), report.problems


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
