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
from kubesentinel.models.incident import ContextCounts
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.interface import IncidentStore
from kubesentinel.runtime.store.sqlite import SCHEMA_VERSION, SQLiteStore, encode_write

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
                   "proc.args": ["-c", "id"], "proc.cmdline": f"bash -c {event_id}"},
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


def test_every_signal_is_listed_and_context_filed_with_its_reason(store: SQLiteStore) -> None:
    correlator = Correlator()
    signals = [event(f"e{n}", n / 100) for n in range(5_000)]
    repeats = [event(f"r{n}", 51 + n, fields={"proc.name": "bash", "proc.cmdline": "bash -c e0"})
               for n in range(3)]  # fmt: skip
    quiet = [event("q", 60, priority=Priority.DEBUG)]
    batches = [signals[:2048], signals[2048:4096], signals[4096:] + repeats + quiet]
    for batch in batches:
        store.write(batch, correlated(batch, correlator))
    stored = store.get_incident(correlator.expire(T0 + 10**6 * S)[0].id)
    assert stored is not None
    assert (stored.event_count, len(stored.event_ids)) == (5_000, 5_000)
    assert list(stored.event_ids) == [e.id for e in signals]
    assert stored.context == ContextCounts(low_priority=1, repeat=3)
    assert stored.context_ids == ("r0", "r1", "r2", "q")
    roles = [(s.event.id, s.context) for s in store.stored_events_of(stored.id, context_limit=2)]
    assert roles[:2] == [("e0", None), ("e1", None)]  # signals first, oldest first
    assert roles[5_000:] == [("r0", "repeat"), ("r1", "repeat")]
    assert len(store.events_of(stored.id)) == 5_004  # every event, oldest first
    assert store.events_of(stored.id)[-1].id == "q"


def test_the_incident_row_does_not_grow_with_its_events() -> None:
    small = correlated([event("a", 0)])
    big = correlated([event(f"e{n}", n / 1000) for n in range(5_000)])
    sizes = []
    for incidents in (small, big):
        encoded = encode_write([], incidents)
        assert encoded is not None
        sizes.append(len(encoded.incidents))
    assert sizes[1] - sizes[0] < 200  # ids are read back from the events table


def test_context_of_no_incident_is_stored_under_none(store: SQLiteStore) -> None:
    quiet = [event("i", 0, priority=Priority.INFORMATIONAL), event("d", 1, priority=Priority.DEBUG)]
    assert correlated(quiet) == []
    store.write(quiet, [])
    raw = sqlite3.connect(store.path)
    try:
        rows = raw.execute("SELECT id, incident, role FROM events ORDER BY rowid").fetchall()
    finally:
        raw.close()
    assert rows == [("i", None, None), ("d", None, None)]
    assert store.list_incidents() == []


def test_evidence_reference_of_each_event(store: SQLiteStore) -> None:
    first = [event("a", 0, raw=b'{"a": 1}'), event("b", 1, raw=b'{"bb": 22}')]
    correlator = Correlator()
    store.write(first, correlated(first, correlator))
    second = [event("c", 2, raw=b'{"c": 333}')]
    store.write(second, correlated(second, correlator))
    (incident,) = store.list_incidents()
    refs = [(s.event.id, s.evidence) for s in store.stored_events_of(incident.id)]
    assert refs == [("a", "segment 1 @ 0+8"), ("b", "segment 1 @ 8+10"), ("c", "segment 2 @ 0+10")]


def test_list_filters_and_count(store: SQLiteStore) -> None:
    ops = Workload("default", "ops", "Job", "backup")
    correlator = Correlator(gap_s=60)
    events = [
        event("w1", 0, priority=Priority.CRITICAL),  # web: high, closed by w2
        event("d1", 10, workload=DB),  # db: low (Notice), open
        event("o1", 20, workload=ops, priority=Priority.WARNING),  # ops: medium, open
        event("w2", 1000),  # web again: low, open
    ]
    store.write(events, correlated(events, correlator))

    def names(incidents: list[Incident]) -> list[tuple[str, str]]:
        return [(i.workload.name, i.severity.label) for i in incidents]

    assert names(store.list_incidents()) == [
        ("web", "low"), ("backup", "medium"), ("db", "low"), ("web", "high")
    ]  # fmt: skip
    assert names(store.list_incidents(min_severity=Severity.MEDIUM)) == [
        ("backup", "medium"), ("web", "high")
    ]  # fmt: skip
    assert names(store.list_incidents(status="closed")) == [("web", "high")]
    assert names(store.list_incidents(since_ns=T0 + 10 * S)) == [
        ("web", "low"), ("backup", "medium"), ("db", "low")
    ]  # fmt: skip
    assert names(store.list_incidents(since_ns=T0 + 10 * S, status="open", limit=1)) == [
        ("web", "low")
    ]  # fmt: skip
    assert store.count_incidents() == 4
    assert store.count_incidents(min_severity=Severity.HIGH) == 1
    assert store.count_incidents(since_ns=T0 + 11 * S, namespace="prod") == 1
    assert store.count_incidents(status="open", min_severity=Severity.CRITICAL) == 0


def test_linked_incidents_round_trip(store: SQLiteStore) -> None:
    correlator = Correlator(gap_s=300, max_duration_s=600)
    events = [event(f"e{n}", n * 200) for n in range(5)]  # 0..800 s: two incidents
    first, second = correlated(events, correlator)
    store.write(events, [first, second])
    stored = store.get_incident(second.id)
    assert stored == second
    assert stored is not None
    assert stored.previous_id == first.id
    assert store.next_of(first.id) == second.id
    assert store.next_of(second.id) is None


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


def test_split_workload_beside_a_plain_one(store: SQLiteStore) -> None:
    events = [event("a", 0), event("b", 5), event("x", 6, workload=DB), event("c", 1000)]
    old, other, new = correlated(events, Correlator(gap_s=60))
    store.write(events, [old, other, new])
    assert [e.id for e in store.events_of(old.id)] == ["a", "b"]
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
        ((size, sidecar_size, codec_name, digest, data),) = raw_db.execute(
            "SELECT raw_bytes, sidecar_bytes, codec, sha256, data FROM segments"
        ).fetchall()
    finally:
        raw_db.close()
    assert codec_name == "zstd"
    assert size == len(raw) + len(second.raw)
    blob = codec.decompress(data, codec_name, size + sidecar_size)
    assert blob[:size] == raw + second.raw  # the bytes as received, then the sidecar
    assert orjson.loads(blob[size:]) == [
        [0, events[0].origin, events[0].received_ns],
        [len(raw), events[1].origin, events[1].received_ns],
    ]
    assert digest == hashlib.sha256(blob).hexdigest()


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


# The version-2 schema exactly as KubeSentinel 0.1 created it (store/sqlite.py before v3).
V2_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    written_ns INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    codec TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    time_ns INTEGER NOT NULL,
    id TEXT NOT NULL,
    incident_id TEXT,
    received_ns INTEGER NOT NULL,
    rule TEXT NOT NULL,
    priority INTEGER NOT NULL,
    source TEXT NOT NULL,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    pod TEXT,
    container_id TEXT,
    container_image TEXT,
    tactics TEXT NOT NULL,
    techniques TEXT NOT NULL,
    origin TEXT NOT NULL,
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    UNIQUE (time_ns, id)
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    workload_key TEXT NOT NULL,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    severity TEXT NOT NULL,
    risk_score REAL NOT NULL,
    reasons TEXT NOT NULL,
    rules TEXT NOT NULL,
    tactics TEXT NOT NULL,
    techniques TEXT NOT NULL,
    event_count INTEGER NOT NULL,
    event_id_count INTEGER NOT NULL,
    posture TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_last ON incidents (last_ns);
CREATE INDEX IF NOT EXISTS incidents_namespace ON incidents (namespace, last_ns);
CREATE INDEX IF NOT EXISTS incidents_workload ON incidents (workload_key, last_ns);
CREATE TABLE IF NOT EXISTS posture (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL
);
"""
V2_EVENT = (
    "INSERT INTO events (time_ns, id, incident_id, received_ns, rule, priority, source, cluster, "
    "namespace, kind, name, pod, container_id, container_image, tactics, techniques, origin, "
    "segment, offset, length) VALUES (?, ?, ?, ?, ?, ?, 'syscall', 'default', 'prod', "
    "'Deployment', 'web', 'web-0', NULL, NULL, '[]', '[]', 'v2.jsonl', 1, ?, ?)"
)


def v2_store(path: Path) -> None:
    """A version-2 store as 0.1 wrote it: one incident of three events (past a 2-id cap)."""

    raw = [b'{"rule":"Terminal shell in container","output":"one"}', b'{"output":"two"}',
           b'{"output":"three"}']  # fmt: skip
    evidence = b"".join(raw)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(V2_SCHEMA)
    db.execute("INSERT INTO schema_version (version) VALUES (2)")
    db.execute(
        "INSERT INTO segments VALUES (1, 0, 3, ?, 'zstd', ?, ?)",
        (len(evidence), hashlib.sha256(evidence).hexdigest(), codec.compress(evidence)),
    )
    rules = [("Terminal shell in container", Priority.NOTICE), ("Read sensitive file", 3),
             ("Terminal shell in container", Priority.WARNING)]  # fmt: skip
    offset = 0
    for n, ((rule, priority), data) in enumerate(zip(rules, raw, strict=True)):
        db.execute(V2_EVENT, (T0 + n * S, f"v{n}", "inc2", T0, rule, priority, offset, len(data)))
        offset += len(data)
    db.execute(
        "INSERT INTO incidents VALUES ('inc2', 'default/prod/Deployment/web', 'default', 'prod', "
        "'Deployment', 'web', ?, ?, 'medium', 36.0, "
        '\'[{"points": 28.0, "reason": "highest Falco priority Warning"}]\', '
        '\'[{"rule": "Terminal shell in container", "count": 2}, '
        '{"rule": "Read sensitive file", "count": 1}]\', '
        "'[]', '[]', 3, 2, '[]', 'closed')",
        (T0, T0 + 2 * S),
    )
    db.commit()
    db.close()


def test_a_version_2_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v2_store(path)
    with SQLiteStore(path) as store:
        incident = store.get_incident("inc2")
        assert incident is not None
        assert list(incident.event_ids) == ["v0", "v1", "v2"]  # every event: no cap any more
        assert [(r.rule, r.count, r.priority) for r in incident.rules] == [
            ("Terminal shell in container", 2, Priority.WARNING),  # the highest of its events
            ("Read sensitive file", 1, Priority.WARNING),
        ]
        assert (incident.previous_id, incident.context, incident.context_ids) == (
            None, ContextCounts(), ()
        )  # fmt: skip
        assert (incident.status, incident.event_count, incident.risk_score) == ("closed", 3, 36.0)
        assert [e.output for e in store.events_of("inc2")] == ["one", "two", "three"]
        # The migrated store takes new writes like a new one.
        events = [event("new", 100)]
        store.write(events, correlated(events))
        assert len(store.list_incidents()) == 2
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        columns = {row[1] for row in raw.execute("PRAGMA table_info(incidents)")}
        assert {"previous_id", "context"} <= columns
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()
    with SQLiteStore(path) as again:  # opening a migrated store changes nothing
        assert again.get_incident("inc2") == incident


def test_a_version_2_store_that_cannot_be_written_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v2_store(path)
    with pytest.raises(
        StoreError, match=f"version 2 must be upgraded to version {SCHEMA_VERSION}"
    ) as caught:
        SQLiteStore(path, read_only=True)
    assert caught.value.hint is not None
    assert "write access" in caught.value.hint
    SQLiteStore(path).close()  # a writer migrates it; readers then read it
    with SQLiteStore(path, read_only=True) as reader:
        assert [i.id for i in reader.list_incidents()] == ["inc2"]


def test_a_new_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state" / "ks.db"
    with SQLiteStore(path) as store:
        events = [event("a", 0)]
        store.write(events, correlated(events))
        modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
    assert modes == {"ks.db": 0o600, "ks.db-wal": 0o600, "ks.db-shm": 0o600,
                     "vault-signing-key.pem": 0o600}  # fmt: skip
    assert path.parent.stat().st_mode & 0o777 == 0o700
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    SQLiteStore(existing / "ks.db").close()
    assert existing.stat().st_mode & 0o777 == 0o755  # not ours: left as it was
