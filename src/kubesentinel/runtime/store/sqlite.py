"""The incident store on embedded SQLite (stdlib ``sqlite3``): WAL, one transaction per batch.

Tables:

- ``schema_version`` (one row);
- ``segments``: the evidence. Each write keeps the alerts' bytes as received, concatenated and
  compressed with Zstandard (about 50 to 1 on Falco JSON), with the sha256 of the uncompressed
  bytes, which a read checks: altered or corrupt evidence is reported, never returned;
- ``events``: one small row per event (id, incident, time, rule, workload, MITRE mapping...)
  pointing at its bytes (segment, offset, length). An event is unique by (time_ns, id): a
  redelivery is ignored, and keys that grow with time keep the insert at the end of the index
  (a unique index on the random id alone cost 5 to 8 us per event, measured);
- ``incidents``: one row per incident, upserted as its state changes;
- ``posture``: one row, the last static scan as JSON.

Lists and mappings are stored as JSON, never pickled. An incident's ``event_ids`` are not
copied into its row: they are read back from the events table (its first ``event_id_count``
events in write order), so upserting a busy incident costs the same whatever its size.

A write has two halves: ``encode_write`` turns events and incidents into bytes (JSON rows and
the evidence) and ``apply`` commits them. The monitor runs ``apply`` in a writer process of
its own (``store.writer``) so SQLite, compression and checkpoints use the second core.

WAL lets readers (``kubesentinel incidents list``) run while the monitor writes;
``synchronous=NORMAL`` syncs at checkpoints only, which in WAL mode keeps the database
consistent after a crash and can lose at most the last commits on power loss.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from kubesentinel.errors import EventError, StoreError
from kubesentinel.models import (
    Event,
    FalcoAlert,
    Incident,
    Priority,
    RiskReason,
    RuleCount,
    Severity,
)
from kubesentinel.models.event import Workload
from kubesentinel.models.posture import Posture
from kubesentinel.runtime.evidence import falco_document
from kubesentinel.runtime.parse import decode_json
from kubesentinel.runtime.store import codec

SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
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

_EVENT_COLUMNS = (
    "time_ns, id, incident_id, received_ns, rule, priority, source, cluster, namespace, kind, "
    "name, pod, container_id, container_image, tactics, techniques, origin, offset, length"
)
# S608: every statement here is built from constant column lists, never from input.
_INSERT_EVENT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, segment) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (time_ns, id) DO NOTHING"  # a redelivery
)
_SELECT_EVENTS = f"SELECT {_EVENT_COLUMNS}, segment FROM events"  # noqa: S608
_INSERT_SEGMENT = (
    "INSERT INTO segments (written_ns, event_count, raw_bytes, codec, sha256, data) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INCIDENT_COLUMNS = (
    "id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, risk_score, "
    "reasons, rules, tactics, techniques, event_count, event_id_count, posture, status"
)
_UPSERT_INCIDENT = (
    f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET first_ns = excluded.first_ns, last_ns = excluded.last_ns, "
    "severity = excluded.severity, risk_score = excluded.risk_score, "
    "reasons = excluded.reasons, rules = excluded.rules, tactics = excluded.tactics, "
    "techniques = excluded.techniques, event_count = excluded.event_count, "
    "event_id_count = excluded.event_id_count, posture = excluded.posture, "
    "status = excluded.status"
)
_SELECT_INCIDENTS = f"SELECT {_INCIDENT_COLUMNS} FROM incidents"  # noqa: S608
_HINT = "check the path (forensics.storage_path), its permissions and free space"
_TAMPER_HINT = (
    "the store was changed outside KubeSentinel or the disk is failing; keep a copy of the "
    "file for investigation"
)
CHECKPOINT_INTERVAL_S = 0.25


class _Checkpointer:
    """Copies committed WAL pages into the database file from a thread of its own.

    PASSIVE checkpoints never block the writer; sqlite3 releases the GIL while copying. The WAL
    restarts from its beginning whenever a checkpoint has caught up, which bounds its size.
    """

    def __init__(self, path: Path, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._path = path
        self._interval = interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error:
            return  # the writer reports problems with the file
        try:
            while not self._done.wait(self._interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    continue  # busy or transient: the next round catches up
        finally:
            db.close()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


class SQLiteStore:
    """An ``IncidentStore`` in one SQLite file; safe to share between threads (one lock)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Open (or create) the store; ``readonly`` opens an existing one for reading only:
        it never writes, not even a checkpoint, so it works on a full disk or a read-only copy."""
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        try:
            if readonly:
                self._db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store: {exc}", file=str(path), hint=_HINT) from exc
        try:
            self._open()
        except StoreError:
            self._db.close()
            raise
        except sqlite3.OperationalError as exc:  # locked, read-only, I/O error
            self._db.close()
            raise StoreError(f"cannot open the store: {exc}", file=str(path), hint=_HINT) from exc
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"not a KubeSentinel store, or the file is corrupt: {exc}",
                file=str(self.path),
                hint="move the file aside; the monitor creates a new store on its next start",
            ) from exc

    def _open(self) -> None:
        """Check the schema with plain reads, so a reader opens while the monitor writes."""
        db = self._db
        if self.readonly:
            if self._schema_version() != SCHEMA_VERSION:
                raise StoreError(
                    f"store schema version {self._schema_version()} is not the version this "
                    f"KubeSentinel reads ({SCHEMA_VERSION})",
                    file=str(self.path),
                    hint="open it once with `kubesentinel monitor` (it migrates older stores), "
                    "or use the KubeSentinel version that wrote it",
                )
            return
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        # No checkpoint on the write path: a writing store runs them from its own thread (see
        # _Checkpointer), so a commit never waits for WAL pages to be copied into the file.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("PRAGMA cache_size = -16384")  # 16 MiB page cache
        version = self._schema_version()
        if version is None:
            with self._transaction():
                if self._schema_version() is None:  # nobody created it meanwhile
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this KubeSentinel reads "
                f"({SCHEMA_VERSION})",
                file=str(self.path),
                hint="upgrade kubesentinel, or point forensics.storage_path at a new file",
            )
        elif version < SCHEMA_VERSION:
            # Version 1 (0.1.0 development builds) kept no evidence bytes to migrate from.
            raise StoreError(
                f"store schema version {version} was written by an earlier KubeSentinel; this "
                f"one reads version {SCHEMA_VERSION}",
                file=str(self.path),
                hint="move the file aside (it stays readable by the version that wrote it); "
                "the monitor then starts a new store",
            )

    def _schema_version(self) -> int | None:
        """None for a new (empty) file; StoreError for a database that is not ours."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return None
        if "schema_version" not in tables:
            raise StoreError(
                "not a KubeSentinel store (no schema_version table)",
                file=str(self.path),
                hint="point forensics.storage_path at a new file",
            )
        version: int | None = self._db.execute(
            "SELECT max(version) FROM schema_version"
        ).fetchone()[0]
        return version

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front, so a busy store waits, not fails."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite may already have rolled back (disk full)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot {action}: {exc}", file=str(self.path), hint=_HINT
                ) from exc

    # -- writing -----------------------------------------------------------------------------

    def write(self, events: Sequence[Event], incidents: Sequence[Incident]) -> None:
        """Events (duplicates ignored), their bytes, and incident states (upserted), in one
        transaction: ``apply(encode_write(events, incidents))``."""
        encoded = encode_write(events, incidents)
        if encoded is not None:
            self.apply(encoded)

    def apply(self, encoded: EncodedWrite) -> None:
        """Commit a write that ``encode_write`` prepared, maybe in another process."""
        event_rows = orjson.loads(encoded.events)
        incident_rows = orjson.loads(encoded.incidents)
        if not event_rows and not incident_rows:
            return
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)
        evidence = encoded.evidence
        segment = (
            (time.time_ns(), len(event_rows), len(evidence), codec.CODEC,
             hashlib.sha256(evidence).hexdigest(), codec.compress(evidence))
            if event_rows else None
        )  # fmt: skip
        with self._guard("write to the store") as db, self._transaction():
            if segment is not None:
                segment_id = db.execute(_INSERT_SEGMENT, segment).lastrowid
                for row in event_rows:
                    row.append(segment_id)
                db.executemany(_INSERT_EVENT, event_rows)
            if incident_rows:
                db.executemany(_UPSERT_INCIDENT, incident_rows)

    def save_posture(self, posture: Posture) -> None:
        from kubesentinel.bridge import posture_document  # the document's format lives there

        document = posture_document(posture)
        with self._guard("save the posture") as db, self._transaction():
            db.execute(
                "INSERT INTO posture (id, document) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                (document,),
            )

    # -- reading -----------------------------------------------------------------------------

    def list_incidents(
        self, *, limit: int | None = None, namespace: str | None = None
    ) -> list[Incident]:
        """Newest first (by last event time, then id)."""
        sql = _SELECT_INCIDENTS
        params: list[Any] = []
        if namespace is not None:
            sql += " WHERE namespace = ?"
            params.append(namespace)
        sql += " ORDER BY last_ns DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        with self._guard("read incidents") as db:
            rows = db.execute(sql, params).fetchall()
            return [_incident_from(row, self._event_ids(db, row[0], row[15])) for row in rows]

    def get_incident(self, incident_id: str) -> Incident | None:
        sql = _SELECT_INCIDENTS + " WHERE id = ?"
        with self._guard("read an incident") as db:
            row = db.execute(sql, (incident_id,)).fetchone()
            if row is None:
                return None
            return _incident_from(row, self._event_ids(db, row[0], row[15]))

    def events_of(self, incident_id: str) -> list[Event]:
        """Every stored event of the incident (beyond the id cap too), oldest first, rebuilt
        from its evidence bytes; a segment whose bytes no longer match their digest raises."""
        sql = _SELECT_EVENTS + " WHERE incident_id = ? ORDER BY time_ns, rowid"
        with self._guard("read events") as db:
            rows = db.execute(sql, (incident_id,)).fetchall()
            segments: dict[int, bytes] = {}
            events = []
            for row in rows:
                segment = segments.get(row[19])
                if segment is None:
                    segment = segments[row[19]] = self._segment(db, row[19])
                events.append(_event_from(row, segment[row[17] : row[17] + row[18]]))
            return events

    def _segment(self, db: sqlite3.Connection, segment_id: int) -> bytes:
        row = db.execute(
            "SELECT raw_bytes, codec, sha256, data FROM segments WHERE id = ?", (segment_id,)
        ).fetchone()
        where = f"evidence segment {segment_id}"
        if row is None:
            raise StoreError(f"{where} is missing", file=str(self.path), hint=_TAMPER_HINT)
        size, name, digest, data = row
        try:
            evidence = codec.decompress(data, name, size)
        except codec.CodecError as exc:
            raise StoreError(
                f"{where} cannot be read: {exc}", file=str(self.path), hint=_TAMPER_HINT
            ) from None
        if hashlib.sha256(evidence).hexdigest() != digest:
            raise StoreError(
                f"{where} does not match its sha256: altered or corrupt",
                file=str(self.path),
                hint=_TAMPER_HINT,
            )
        return evidence

    def load_posture(self) -> Posture | None:
        with self._guard("load the posture") as db:
            row = db.execute("SELECT document FROM posture WHERE id = 1").fetchone()
        if row is None:
            return None
        from kubesentinel.bridge import posture_from_document

        return posture_from_document(row[0])

    @staticmethod
    def _event_ids(db: sqlite3.Connection, incident_id: str, count: int) -> tuple[str, ...]:
        sql = "SELECT id FROM events WHERE incident_id = ? ORDER BY rowid LIMIT ?"
        return tuple(row[0] for row in db.execute(sql, (incident_id, count)))

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self.readonly:
            with self._lock:
                self._db.close()
            return
        with self._lock:
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # leave a compact file
            except sqlite3.Error as exc:  # a full disk: the commits stay readable in the WAL
                raise StoreError(
                    f"cannot checkpoint the store on close: {exc}", file=str(self.path), hint=_HINT
                ) from exc
            finally:
                self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Owners:
    """Which incident each event of a write belongs to, from the incidents of the same write.

    A workload with one incident in the write owns all its events (past the id cap too). A
    workload whose incident closed and reopened within the batch has several: each event goes
    to the one listing its id, else to the one whose time span holds it, else the newest.
    """

    def __init__(self, incidents: Iterable[Incident]) -> None:
        by_workload: dict[str, list[Incident]] = {}
        for incident in incidents:
            by_workload.setdefault(incident.workload.key, []).append(incident)
        self.single = {key: group[0].id for key, group in by_workload.items() if len(group) == 1}
        self.split = {key: group for key, group in by_workload.items() if len(group) > 1}
        self._listed = {
            event_id: incident.id
            for group in self.split.values()
            for incident in group
            for event_id in incident.event_ids
        }

    def split_owner(self, event: Event, key: str) -> str | None:
        group = self.split.get(key)
        if group is None:
            return self.single.get(key)
        listed = self._listed.get(event.id)
        if listed is not None:
            return listed
        spans = [i for i in group if i.first_ns <= event.time_ns <= i.last_ns]
        return (spans or group)[-1].id


@dataclass(frozen=True, slots=True)
class EncodedWrite:
    """One write as bytes, ready to cross to a writer process: JSON arrays of event rows and
    incident rows, and the events' bytes as received, concatenated (rows point into them)."""

    events: bytes
    evidence: bytes
    incidents: bytes


def encode_write(events: Sequence[Event], incidents: Sequence[Incident]) -> EncodedWrite | None:
    """The rows of a write, or None when there is nothing to write.

    Each event is stored with the id of the incident of its workload in the same call: the
    one that lists its id, which is the only one unless a workload's incident closed and a
    new one opened within the batch (events past the per-incident id cap map that way too).
    """
    if not events and not incidents:
        return None
    latest = {incident.id: incident for incident in incidents}  # last state wins
    event_rows, evidence = _event_rows(events, _Owners(latest.values()))
    incident_rows = _json_array([_incident_row(incident) for incident in latest.values()])
    return EncodedWrite(event_rows, evidence, incident_rows)


def _event_rows(events: Sequence[Event], owners: _Owners) -> tuple[bytes, bytes]:
    single = owners.single
    split = owners.split_owner if owners.split else None
    as_json = _tuple_json
    rows = []
    chunks = []
    offset = 0
    for e in events:
        w = e.workload
        owner = single.get(w.key) if split is None else split(e, w.key)
        raw = e.raw or _document(e)
        size = len(raw)
        chunks.append(raw)
        rows.append(
            (e.time_ns, e.id, owner, e.received_ns, e.rule, e.priority, e.source, w.cluster,
             w.namespace, w.kind, w.name, e.pod, e.container_id, e.container_image,
             as_json(e.tactics), as_json(e.techniques), e.origin, offset, size)
        )  # fmt: skip
        offset += size
    return _json_array(rows), b"".join(chunks)


_JSON_CACHE_LIMIT = 4096
_json_cache: dict[tuple[str, ...], str] = {}


def _tuple_json(values: tuple[str, ...]) -> str:
    """MITRE tuples repeat with their rule: encode each distinct one once."""
    text = _json_cache.get(values)
    if text is None:
        if len(_json_cache) >= _JSON_CACHE_LIMIT:
            _json_cache.clear()
        text = _json_cache[values] = json.dumps(values)
    return text


def _document(event: Event) -> bytes:
    """Evidence for an event built in code (no bytes as received): its Falco JSON."""
    alert = FalcoAlert(
        event.time_ns, event.rule, event.priority, event.source, event.output, event.hostname,
        event.tags, event.fields, None, event.origin,
    )  # fmt: skip
    return falco_document(alert)


def _json_array(rows: list[tuple[Any, ...]]) -> bytes:
    try:
        return orjson.dumps(rows)
    except TypeError:  # a lone surrogate (a \ud800 escape in an alert) or a huge integer
        return orjson.dumps([_utf8_safe(row) for row in rows], default=str)


def _utf8_safe(value: Any) -> Any:
    """Text SQLite can store: lone surrogates become backslash escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, tuple):
        return [_utf8_safe(item) for item in value]
    return value


def _incident_row(incident: Incident) -> tuple[Any, ...]:
    w = incident.workload
    return (
        incident.id, w.key, w.cluster, w.namespace, w.kind, w.name, incident.first_ns,
        incident.last_ns, incident.severity.label, incident.risk_score,
        json.dumps([{"points": r.points, "reason": r.reason} for r in incident.reasons]),
        json.dumps([{"rule": r.rule, "count": r.count} for r in incident.rules]),
        json.dumps(incident.tactics), json.dumps(incident.techniques), incident.event_count,
        len(incident.event_ids), json.dumps(incident.posture), incident.status,
    )  # fmt: skip


def _incident_from(row: Sequence[Any], event_ids: tuple[str, ...]) -> Incident:
    return Incident(
        id=row[0],
        workload=Workload(cluster=row[2], namespace=row[3], kind=row[4], name=row[5]),
        first_ns=row[6],
        last_ns=row[7],
        severity=Severity.parse(row[8]),
        risk_score=row[9],
        reasons=tuple(RiskReason(r["points"], r["reason"]) for r in json.loads(row[10])),
        rules=tuple(RuleCount(r["rule"], r["count"]) for r in json.loads(row[11])),
        tactics=tuple(json.loads(row[12])),
        techniques=tuple(json.loads(row[13])),
        event_count=row[14],
        event_ids=event_ids,
        posture=tuple(json.loads(row[16])),
        status=row[17],
    )


def _event_from(row: Sequence[Any], raw: bytes) -> Event:
    """An event from its row and its bytes as received (output, hostname, tags and fields)."""
    try:
        alert = decode_json(raw)
    except EventError:
        alert = None
    if type(alert) is not dict:
        alert = {}
    fields = alert.get("output_fields")
    if type(fields) is not dict:
        fields = {}
    hostname = alert.get("hostname")
    if type(hostname) is not str:
        hostname = fields.get("evt.hostname")
    tags = alert.get("tags")
    output = alert.get("output")
    return Event(
        id=row[1],
        time_ns=row[0],
        received_ns=row[3],
        rule=row[4],
        priority=Priority(row[5]),
        source=row[6],
        hostname=hostname if type(hostname) is str else "",
        workload=Workload(cluster=row[7], namespace=row[8], kind=row[9], name=row[10]),
        pod=row[11],
        container_id=row[12],
        container_image=row[13],
        tactics=tuple(json.loads(row[14])),
        techniques=tuple(json.loads(row[15])),
        tags=tuple(tag for tag in tags if type(tag) is str) if type(tags) is list else (),
        output=output if type(output) is str else "",
        fields=fields,
        origin=row[16],
        raw=raw,
    )
