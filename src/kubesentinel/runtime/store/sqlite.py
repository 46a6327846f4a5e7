"""The incident store on embedded SQLite (stdlib ``sqlite3``): WAL, one transaction per batch.

Tables: ``schema_version`` (one row), ``events`` (one row per event, with the id of its
incident), ``incidents`` (one row per incident, upserted as its state changes) and ``posture``
(one row, the last static scan as JSON). Lists and mappings are stored as JSON text, never
pickled. An incident's ``event_ids`` are not copied into its row: they are read back from the
events table (its first ``event_id_count`` events in write order), so upserting a busy incident
costs the same whatever its size.

WAL lets readers (``kubesentinel incidents list``) run while the monitor writes;
``synchronous=NORMAL`` syncs at checkpoints only, which in WAL mode keeps the database
consistent after a crash and can lose at most the last commits on power loss.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Incident, Priority, RiskReason, RuleCount, Severity
from kubesentinel.models.event import Workload
from kubesentinel.models.posture import Posture, PostureFinding

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    incident_id TEXT,
    time_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    rule TEXT NOT NULL,
    priority INTEGER NOT NULL,
    source TEXT NOT NULL,
    hostname TEXT NOT NULL,
    workload_key TEXT NOT NULL,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    pod TEXT,
    container_id TEXT,
    container_image TEXT,
    tactics TEXT NOT NULL,
    techniques TEXT NOT NULL,
    tags TEXT NOT NULL,
    output TEXT NOT NULL,
    fields TEXT NOT NULL,
    origin TEXT NOT NULL
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
    "id, incident_id, time_ns, received_ns, rule, priority, source, hostname, workload_key, "
    "cluster, namespace, kind, name, pod, container_id, container_image, tactics, techniques, "
    "tags, output, fields, origin"
)
# S608: every statement below is built from these constant column lists, never from input.
_INSERT_EVENT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"  # a redelivery; unlike OR IGNORE, a NULL still fails loudly
)
_SELECT_EVENTS = f"SELECT {_EVENT_COLUMNS} FROM events"  # noqa: S608
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
_JSON_CACHE_LIMIT = 4096
CHECKPOINT_INTERVAL_S = 0.25
# Built once: json.dumps(..., default=str) builds a new encoder per call, ~40% slower per event.
# default=str keeps a stray non-JSON value (bytes from a plugin) from failing the batch.
_FIELDS_ENCODER = json.JSONEncoder(default=str)


def _dumps_fields(fields: Any) -> str:
    try:
        return orjson.dumps(fields, default=str).decode()
    except TypeError:  # integers beyond 64 bits
        return _FIELDS_ENCODER.encode(fields)


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        self._json_cache: dict[tuple[str, ...], str] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
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
        """Events (duplicate ids ignored) and incident states (upserted), in one transaction.

        Each event is stored with the id of the incident of its workload in the same call: the
        one that lists its id, which is the only one unless a workload's incident closed and a
        new one opened within the batch (events past the per-incident id cap map that way too).
        """
        if not events and not incidents:
            return
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)
        latest = {incident.id: incident for incident in incidents}  # last state wins
        event_rows = self._event_rows(events, _Owners(latest.values()))
        incident_rows = [_incident_row(incident) for incident in latest.values()]
        with self._guard("write to the store") as db, self._transaction():
            _executemany(db, _INSERT_EVENT, event_rows)
            _executemany(db, _UPSERT_INCIDENT, incident_rows)

    def _event_rows(self, events: Sequence[Event], owners: _Owners) -> list[tuple[Any, ...]]:
        as_json = self._tuple_json
        dumps = _dumps_fields
        single = owners.single
        split = owners.split_owner if owners.split else None
        rows = []
        for e in events:
            w = e.workload
            key = w.key
            owner = single.get(key) if split is None else split(e, key)
            rows.append(
                (e.id, owner, e.time_ns, e.received_ns, e.rule, int(e.priority), e.source,
                 e.hostname, key, w.cluster, w.namespace, w.kind, w.name, e.pod,
                 e.container_id, e.container_image, as_json(e.tactics), as_json(e.techniques),
                 as_json(e.tags), e.output, dumps(e.fields), e.origin)
            )  # fmt: skip
        return rows

    def _tuple_json(self, values: tuple[str, ...]) -> str:
        """Tags and MITRE tuples repeat with their rule: encode each distinct one once."""
        cache = self._json_cache
        text = cache.get(values)
        if text is None:
            if len(cache) >= _JSON_CACHE_LIMIT:
                cache.clear()
            text = cache[values] = json.dumps(values)
        return text

    def save_posture(self, posture: Posture) -> None:
        document = json.dumps(
            {
                "source": posture.source,
                "workloads": {
                    key: [
                        {"rule_id": f.rule_id, "severity": f.severity.label, "title": f.title}
                        for f in findings
                    ]
                    for key, findings in posture.workloads.items()
                },
            }
        )
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
        """Every stored event of the incident (beyond the id cap too), oldest first."""
        sql = _SELECT_EVENTS + " WHERE incident_id = ? ORDER BY time_ns, rowid"
        with self._guard("read events") as db:
            return [_event_from(row) for row in db.execute(sql, (incident_id,))]

    def load_posture(self) -> Posture | None:
        with self._guard("load the posture") as db:
            row = db.execute("SELECT document FROM posture WHERE id = 1").fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        workloads = {
            key: tuple(
                PostureFinding(f["rule_id"], Severity.parse(f["severity"]), f["title"])
                for f in findings
            )
            for key, findings in data["workloads"].items()
        }
        return Posture(workloads=workloads, source=data["source"])

    @staticmethod
    def _event_ids(db: sqlite3.Connection, incident_id: str, count: int) -> tuple[str, ...]:
        sql = "SELECT id FROM events WHERE incident_id = ? ORDER BY rowid LIMIT ?"
        return tuple(row[0] for row in db.execute(sql, (incident_id, count)))

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # leave a compact file
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


def _event_from(row: Sequence[Any]) -> Event:
    return Event(
        id=row[0],
        time_ns=row[2],
        received_ns=row[3],
        rule=row[4],
        priority=Priority(row[5]),
        source=row[6],
        hostname=row[7],
        workload=Workload(cluster=row[9], namespace=row[10], kind=row[11], name=row[12]),
        pod=row[13],
        container_id=row[14],
        container_image=row[15],
        tactics=tuple(json.loads(row[16])),
        techniques=tuple(json.loads(row[17])),
        tags=tuple(json.loads(row[18])),
        output=row[19],
        fields=json.loads(row[20]),
        origin=row[21],
    )


def _executemany(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    try:
        db.executemany(sql, rows)
    except UnicodeEncodeError:  # a lone surrogate, from a \ud800 escape in an alert
        db.executemany(sql, [_utf8_safe(row) for row in rows])  # redone rows: same values


def _utf8_safe(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Text SQLite can store: lone surrogates become backslash escapes."""
    return tuple(
        v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
        for v in row
    )
