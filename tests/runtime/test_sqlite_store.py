"""SQLiteStore on real SQLite files: round trips, WAL, redelivery, upserts, bad files, readers."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Incident, Priority, Severity, Workload
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.interface import IncidentStore
from kubesentinel.runtime.store.sqlite import SCHEMA_VERSION, SQLiteStore

S = 1_000_000_000
T0 = 1_739_178_940 * S
WEB = Workload("default", "prod", "Deployment", "web")
DB = Workload("default", "data", "StatefulSet", "db")


def event(event_id: str, at_s: float, workload: Workload = WEB, **changes: object) -> Event:
    time_ns = T0 + int(at_s * S)
    values: dict[str, object] = {
        "id": event_id,
        "time_ns": time_ns,
        "received_ns": time_ns + 5000,
        "rule": "Terminal shell in container",
        "priority": Priority.NOTICE,
        "source": "syscall",
        "hostname": "node-1",
        "workload": workload,
        "pod": f"{workload.name}-0",
        "container_id": "3ad7b26ded6d",
        "container_image": "nginx:1.27",
        "tactics": ("execution",),
        "techniques": ("T1059",),
        "tags": ("container", "mitre_execution", "shell", "T1059"),
        "output": "A shell was spawned (user=root shell=bash)",
        "fields": {"proc.name": "bash", "proc.aname[2]": None, "evt.time": time_ns,
                   "proc.args": ["-c", "id"]},
        "origin": f"alerts.jsonl:{event_id}",
    }  # fmt: skip
    values.update(changes)
    return Event(**values)  # type: ignore[arg-type]


def correlated(events: list[Event], correlator: Correlator | None = None) -> list[Incident]:
    return (correlator or Correlator()).add(events, events[-1].time_ns)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "state" / "incidents.db")
    yield opened
    opened.close()


def test_implements_the_protocol(store: SQLiteStore) -> None:
    contract: IncidentStore = store
    assert contract is store


def test_round_trip_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    events = [
        event("a", 0),
        event("b", 1, pod=None, container_id=None, container_image=None, fields={}),
        event("c", 2, workload=DB, priority=Priority.CRITICAL, tactics=(), techniques=(), tags=()),
    ]
    incidents = correlated(events)
    with SQLiteStore(path) as store:
        store.write(events, incidents)
    with SQLiteStore(path) as store:
        assert store.get_incident(incidents[0].id) == incidents[0]
        assert store.get_incident(incidents[1].id) == incidents[1]
        assert store.events_of(incidents[0].id) == events[:2]
        assert store.events_of(incidents[1].id) == events[2:]
        assert store.get_incident("missing") is None
        assert store.events_of("missing") == []


def test_wal_mode_and_schema_version(store: SQLiteStore) -> None:
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert {
            "events_incident",
            "incidents_last",
            "incidents_namespace",
        } <= indexes
    finally:
        raw.close()
    # synchronous is per connection: read it on the store's own.
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_duplicate_events_are_ignored(store: SQLiteStore) -> None:
    events = [event("a", 0), event("b", 1)]
    incidents = correlated(events)
    store.write(events, incidents)
    store.write(events, incidents)  # a redelivered batch
    store.write([event("a", 0), event("a", 0)], [])  # and a duplicate inside one batch
    assert [e.id for e in store.events_of(incidents[0].id)] == ["a", "b"]
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (2,)
    finally:
        raw.close()


def test_incident_state_is_upserted(store: SQLiteStore) -> None:
    correlator = Correlator(window_s=60)
    first_batch = [event("a", 0), event("b", 1)]
    opened = correlated(first_batch, correlator)
    store.write(first_batch, opened)
    second_batch = [event("c", 2, priority=Priority.CRITICAL, rule="Drop and execute new binary")]
    grown = correlated(second_batch, correlator)
    store.write(second_batch, grown)
    closed = correlator.expire(T0 + 1000 * S)
    store.write([], closed)
    assert len(store.list_incidents()) == 1
    stored = store.get_incident(opened[0].id)
    assert stored == closed[0]
    assert stored is not None
    assert (stored.status, stored.event_count, stored.severity) == ("closed", 3, Severity.HIGH)
    assert stored.event_ids == ("a", "b", "c")


def test_list_newest_first_with_namespace_and_limit(store: SQLiteStore) -> None:
    correlator = Correlator()
    events = [event("w1", 10), event("d1", 20, workload=DB), event("o1", 5, workload=Workload(
        "default", "ops", "Job", "backup"))]  # fmt: skip
    store.write(events, correlated(events, correlator))
    listed = store.list_incidents()
    assert [i.workload.name for i in listed] == ["db", "web", "backup"]
    assert [i.workload.name for i in store.list_incidents(limit=2)] == ["db", "web"]
    assert [i.workload.name for i in store.list_incidents(namespace="prod")] == ["web"]
    assert store.list_incidents(namespace="nowhere") == []
    assert store.list_incidents(limit=0) == []


def test_events_map_to_the_right_incident_when_a_workload_splits(store: SQLiteStore) -> None:
    events = [event("a", 0), event("b", 10), event("c", 1000), event("d", 1001)]
    old, new = correlated(events, Correlator(window_s=60))
    store.write(events, [old, new])
    assert [e.id for e in store.events_of(old.id)] == ["a", "b"]
    assert [e.id for e in store.events_of(new.id)] == ["c", "d"]


def test_events_past_the_id_cap_still_map_to_their_incident(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesentinel.runtime import correlate

    monkeypatch.setattr(correlate, "MAX_EVENT_IDS", 3)
    events = [event(f"e{n}", n) for n in range(8)]
    incident = correlated(events)[0]
    store.write(events, [incident])
    assert len(store.events_of(incident.id)) == 8
    stored = store.get_incident(incident.id)
    assert stored is not None
    assert (stored.event_ids, stored.event_count) == (("e0", "e1", "e2"), 8)


def test_posture_round_trip(store: SQLiteStore) -> None:
    assert store.load_posture() is None
    posture = Posture(
        workloads={
            "prod/prod/Deployment/web": (
                PostureFinding("KS-0001", Severity.CRITICAL, "Privileged container", "privileged"),
                PostureFinding("KS-0042", Severity.MEDIUM, "Memory request missing"),
            ),
            "prod/default/Pod/debug": (),
        },
        source="scan.json",
        cluster="prod",
    )
    store.save_posture(posture)
    assert store.load_posture() == posture
    store.save_posture(Posture(source="again"))
    assert store.load_posture() == Posture(source="again")


def test_a_posture_stored_before_clusters_reads_as_cluster_default(store: SQLiteStore) -> None:
    """Version 1 documents had no cluster, "namespace/Kind/name" keys and no impacts."""
    old = {
        "source": "scan",
        "workloads": {
            "prod/Deployment/web": [
                {"rule_id": "KS-0001", "severity": "critical", "title": "Privileged container"},
                {"rule_id": "KS-0042", "severity": "medium", "title": "Memory request missing"},
            ]
        },
    }
    with sqlite3.connect(store.path) as db:
        db.execute("INSERT INTO posture (id, document) VALUES (1, ?)", (json.dumps(old),))
    posture = store.load_posture()
    assert posture is not None
    assert posture.cluster == "default"
    web = posture.of(Workload("default", "prod", "Deployment", "web"))
    assert [(f.rule_id, f.impact) for f in web] == [("KS-0001", "privileged"), ("KS-0042", None)]
    assert posture.of(Workload("prod", "prod", "Deployment", "web")) == ()


def test_lone_surrogates_are_kept_exactly_in_evidence_and_escaped_in_columns(
    store: SQLiteStore,
) -> None:
    bad = event("a", 0, output="name=\ud800x", fields={"fd.name": "\udcff"}, pod="p\ud801")
    incidents = correlated([bad])
    store.write([bad], incidents)
    (stored,) = store.events_of(incidents[0].id)
    assert stored.output == "name=\ud800x"  # the evidence: JSON escapes keep it exact
    assert stored.fields == {"fd.name": "\udcff"}
    assert stored.pod == "p\\ud801"  # a column: SQLite text must be UTF-8


def test_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    path.write_bytes(b"this is not sqlite at all\n" * 200)
    with pytest.raises(StoreError) as caught:
        SQLiteStore(path)
    assert caught.value.file == str(path)
    assert "corrupt" in caught.value.message
    assert caught.value.code == "KS-E033"


def test_foreign_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE things (x)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="not a KubeSentinel store"):
        SQLiteStore(path)


def test_newer_schema_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="newer") as caught:
        SQLiteStore(path)
    assert caught.value.file == str(path)
    assert caught.value.hint is not None


def test_unwritable_location_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the store"):
        SQLiteStore(blocker / "incidents.db")


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "incidents.db")
    store.close()
    with pytest.raises(StoreError, match="cannot read incidents"):
        store.list_incidents()


def test_reader_sees_committed_state_while_a_write_is_open(store: SQLiteStore) -> None:
    events = [event("a", 0)]
    store.write(events, correlated(events))
    writer = sqlite3.connect(store.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE incidents SET status = 'closed'")
        writer.execute("DELETE FROM events")
        with SQLiteStore(store.path) as reader:  # opening needs no write lock once created
            (incident,) = reader.list_incidents()
            assert incident.status == "open"
            assert [e.id for e in reader.events_of(incident.id)] == ["a"]
        writer.execute("ROLLBACK")
    finally:
        writer.close()


def test_concurrent_reader_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    writer = SQLiteStore(path)
    reader = SQLiteStore(path)
    correlator = Correlator()
    batches = [[event(f"e{b}-{n}", b * 10 + n / 10) for n in range(50)] for b in range(40)]
    failures: list[BaseException] = []

    def write_all() -> None:
        try:
            for batch in batches:
                writer.write(batch, correlator.add(batch, batch[-1].time_ns))
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=write_all)
    thread.start()
    seen = [0]
    while thread.is_alive():
        for incident in reader.list_incidents():
            assert incident.event_count >= seen[-1]  # never a half-written batch going back
            assert incident.event_count % 50 == 0  # each batch is one transaction
            seen.append(incident.event_count)
    thread.join()
    assert failures == []
    (final,) = reader.list_incidents()
    assert final.event_count == 2000
    assert len(reader.events_of(final.id)) == 2000
    writer.close()
    reader.close()


def test_write_is_one_transaction(store: SQLiteStore) -> None:
    good = [event("a", 0)]
    store.write(good, correlated(good))
    broken = [event("b", 1), event("c", 2, rule=None)]  # NOT NULL fails on the second row
    with pytest.raises(StoreError, match="cannot write to the store"):
        store.write(broken, correlated(broken))
    (incident,) = store.list_incidents()
    assert [e.id for e in store.events_of(incident.id)] == ["a"]
    assert incident.event_count == 1
    store.write([], [])  # nothing to do, and the store still works
    store.write([event("d", 3)], [])
    assert store.events_of(incident.id) == good  # an event without an incident has no owner


def test_split_workload_beside_a_plain_one_with_few_ids(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesentinel.runtime import correlate

    monkeypatch.setattr(correlate, "MAX_EVENT_IDS", 1)
    events = [event("a", 0), event("b", 5), event("x", 6, workload=DB), event("c", 1000)]
    old, other, new = correlated(events, Correlator(window_s=60))
    store.write(events, [old, other, new])
    assert [e.id for e in store.events_of(old.id)] == ["a", "b"]  # "b" past the cap: by time
    assert [e.id for e in store.events_of(other.id)] == ["x"]
    assert [e.id for e in store.events_of(new.id)] == ["c"]


def test_locked_new_store_raises_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesentinel.runtime.store import sqlite

    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "incidents.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="cannot open the store: database is locked"):
            SQLiteStore(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_evidence_is_the_bytes_as_received(store: SQLiteStore) -> None:
    raw = b'{"rule":"Terminal shell in container","priority":"Notice","time":"x","output":"o"}'
    events = [event("a", 0, raw=raw), event("b", 1)]
    incidents = correlated(events)
    store.write(events, incidents)
    first, second = store.events_of(incidents[0].id)
    assert first.raw == raw
    assert (first.output, first.fields) == ("o", {})  # read back from the evidence
    assert second == events[1]
    assert orjson.loads(second.raw)["output_fields"] == events[1].fields  # built in code
    raw_db = sqlite3.connect(store.path)
    try:
        ((size, codec_name, digest),) = raw_db.execute(
            "SELECT raw_bytes, codec, sha256 FROM segments"
        ).fetchall()
    finally:
        raw_db.close()
    assert codec_name == "zstd"
    assert size == len(raw) + len(second.raw)
    assert digest == hashlib.sha256(raw + second.raw).hexdigest()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("UPDATE segments SET sha256 = 'ab' || substr(sha256, 3)", "does not match its sha256"),
        ("UPDATE segments SET data = x'28b52ffd00'", "cannot be read"),
        ("UPDATE segments SET raw_bytes = raw_bytes - 1", "cannot be read"),
        ("UPDATE segments SET codec = 'rot13'", "unknown codec"),
        ("DELETE FROM segments", "is missing"),
    ],
)
def test_altered_evidence_is_reported_not_returned(
    store: SQLiteStore, change: str, message: str
) -> None:
    events = [event("a", 0)]
    incidents = correlated(events)
    store.write(events, incidents)
    raw_db = sqlite3.connect(store.path)
    raw_db.execute(change)
    raw_db.commit()
    raw_db.close()
    with pytest.raises(StoreError, match=message) as caught:
        store.events_of(incidents[0].id)
    assert caught.value.hint is not None
    assert "outside KubeSentinel" in caught.value.hint


def test_older_schema_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = 1")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="earlier KubeSentinel") as caught:
        SQLiteStore(path)
    assert caught.value.hint is not None
    assert "move the file aside" in caught.value.hint


def test_events_are_unique_by_time_and_id(store: SQLiteStore) -> None:
    """A redelivery repeats both; the same id at another time is another alert's content."""
    events = [event("a", 0), event("a", 0), event("a", 5)]
    store.write(events, correlated(events))
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (2,)
    finally:
        raw.close()
