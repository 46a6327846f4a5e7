"""The incident store on embedded SQLite (stdlib ``sqlite3``): WAL, one transaction per batch.

Tables:

- ``schema_version`` (one row);
- ``segments``: the evidence. Each write keeps the alerts' bytes as received, concatenated and
  compressed with Zstandard (about 50 to 1 on Falco JSON), with the sha256 of the uncompressed
  bytes, which a read checks: altered or corrupt evidence is reported, never returned;
- ``events``: one small row per event (id, incident, why it is context of it, time, rule,
  workload, MITRE mapping...) pointing at its bytes (segment, offset, length). An event is
  unique by (time_ns, id): a redelivery is ignored, and keys that grow with time keep the
  insert at the end of the index (a unique index on the random id alone cost more per event:
  docs/performance.md);
- ``incidents``: one row per incident, upserted as its state changes;
- ``posture``: one row, the last static scan as JSON.

Lists and mappings are stored as JSON, never pickled. An incident's ``event_ids`` are not
copied into its row: they are read back from the events table (its events with no context
reason, in write order), so upserting a busy incident costs the same whatever its size; each
event of a write is filed under its incident from the ids the incident states of the same
write added (``Incident.added_ids``, ``added_context``).

Schema version 3 (this one) added ``events.context`` and ``incidents.previous_id`` and
``incidents.context``, and a priority to each rule count; the writer migrates a version-2
store in place when it opens it (``_MIGRATE_2_TO_3``, one transaction). A new store file is
created with mode 0600 (SQLite gives its -wal and -shm files the same), in a directory created
with mode 0700.

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
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from kubesentinel.errors import StoreError
from kubesentinel.models import (
    Event,
    Incident,
    Priority,
    Severity,
)
from kubesentinel.models.incident import EventIds
from kubesentinel.models.posture import Posture
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.decode import event_from as _event_from
from kubesentinel.runtime.store.decode import incident_from as _incident_from
from kubesentinel.runtime.store.facets import FACETS_SCHEMA, Facets
from kubesentinel.runtime.store.interface import StoredEvent
from kubesentinel.runtime.store.rows import (
    EncodedWrite,
    encode_write,
    id_key,
    id_text,
    read_sidecar,
    role_name,
)
from kubesentinel.runtime.store.upgrade import to_version_4
from kubesentinel.vault import sqlite_ledger
from kubesentinel.vault.signer import NoteKey, Signer, default_key_path
from kubesentinel.vault.verify import CheckpointKey, VerifyReport

__all__ = ["SCHEMA_VERSION", "EncodedWrite", "MigrationNeeded", "SQLiteStore", "encode_write"]

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    written_ns INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    sidecar_bytes INTEGER NOT NULL DEFAULT 0,
    codec TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL,
    record_count INTEGER NOT NULL DEFAULT 0,
    incident_ids TEXT NOT NULL DEFAULT '[]',
    incident_leaves BLOB NOT NULL DEFAULT x'',
    root BLOB NOT NULL DEFAULT x'',
    head BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS events (
    time_ns INTEGER NOT NULL,
    id NOT NULL,
    incident INTEGER,
    role INTEGER,
    facet INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    UNIQUE (time_ns, id)
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident) WHERE incident IS NOT NULL;
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
    status TEXT NOT NULL,
    previous_id TEXT,
    context TEXT NOT NULL DEFAULT '{}',
    segment INTEGER,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS incidents_last ON incidents (last_ns);
CREATE INDEX IF NOT EXISTS incidents_previous ON incidents (previous_id);
CREATE INDEX IF NOT EXISTS incidents_namespace ON incidents (namespace, last_ns);
CREATE INDEX IF NOT EXISTS incidents_workload ON incidents (workload_key, last_ns);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_seq ON incidents (seq);
CREATE TABLE IF NOT EXISTS posture (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL
);
"""
# Version 2 -> 3, in one transaction with the rules' priorities (``_rule_priorities``). Rows of
# version 2 read as: every event a signal, no link, no context ('{}': all counts 0).
_MIGRATE_2_TO_3 = (
    "ALTER TABLE events ADD COLUMN context TEXT",
    "ALTER TABLE incidents ADD COLUMN previous_id TEXT",
    "ALTER TABLE incidents ADD COLUMN context TEXT NOT NULL DEFAULT '{}'",
    "CREATE INDEX IF NOT EXISTS incidents_previous ON incidents (previous_id)",
)

# An events row as stored, and as its vault record (with the id as text): see rows.py.
EVENT_COLUMNS = "time_ns, id, incident, role, facet, segment, offset, length"
# S608: every statement here is built from constant column lists, never from input.
_INSERT_EVENT = (
    f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
    "ON CONFLICT (time_ns, id) DO NOTHING"  # a redelivery
)
# An event to read: its row, its incident's id, its facet (positions in _event_from).
_SELECT_EVENTS = (
    "SELECT e.time_ns, e.id, i.id, e.role, f.rule, f.priority, f.source, f.cluster, "
    "f.namespace, f.kind, f.name, f.pod, f.container_id, f.container_image, f.tactics, "
    "f.techniques, e.segment, e.offset, e.length FROM events e "
    "JOIN facets f ON f.id = e.facet LEFT JOIN incidents i ON i.seq = e.incident"
)
_BY_INCIDENT = " WHERE e.incident = (SELECT seq FROM incidents WHERE id = ?)"
# The segments sealing what ``incidents show`` reads: its events, their facets, its state.
_INCIDENT_SEGMENTS = (
    f"SELECT e.segment FROM events e{_BY_INCIDENT} UNION "  # noqa: S608 - constant text
    f"SELECT f.segment FROM events e JOIN facets f ON f.id = e.facet{_BY_INCIDENT} UNION "
    "SELECT segment FROM incidents WHERE id = ?"
)
_INCIDENT_COLUMNS = (
    "id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, risk_score, "
    "reasons, rules, tactics, techniques, event_count, event_id_count, posture, status, "
    "previous_id, context"
)
# previous_id and seq never change: leaving them out of the update keeps their indexes
# untouched. The segment is the write that sealed this state (vault/ledger.py).
_UPSERT_INCIDENT = (
    f"INSERT INTO incidents ({_INCIDENT_COLUMNS}, segment, seq) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET first_ns = excluded.first_ns, last_ns = excluded.last_ns, "
    "severity = excluded.severity, risk_score = excluded.risk_score, "
    "reasons = excluded.reasons, rules = excluded.rules, tactics = excluded.tactics, "
    "techniques = excluded.techniques, event_count = excluded.event_count, "
    "event_id_count = excluded.event_id_count, posture = excluded.posture, "
    "status = excluded.status, context = excluded.context, segment = excluded.segment"
)
# The incident, then its seq (events name their incident by it).
_SELECT_INCIDENTS = f"SELECT {_INCIDENT_COLUMNS}, seq FROM incidents"  # noqa: S608
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


# What reading a damaged row raises (bad JSON, a missing key, a wrong type, a bad enum value).
_DAMAGE = (ValueError, KeyError, TypeError, IndexError, AttributeError)


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class MigrationNeeded(StoreError):
    """A read-only open of a store in an older schema that a writer would upgrade."""


class SQLiteStore:
    """An ``IncidentStore`` in one SQLite file; safe to share between threads (one lock).

    ``read_only`` opens an existing store without ever writing to it (no migration either: a
    version-2 store must first be opened by a writer).
    """

    def __init__(
        self, path: str | Path, *, read_only: bool = False, signing_key: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.signing_key = Path(signing_key) if signing_key else default_key_path(self.path)
        self._lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        self._signer: Signer | None = None
        self._facets = Facets()
        self._sealed = False  # wrote or sealed segments: close signs a checkpoint over them
        self._signed_ns = 0  # monotonic time of the last checkpoint this store signed
        try:
            if read_only:
                target, uri = self.path.resolve().as_uri() + "?mode=ro", True
            else:
                _create_private(self.path)
                target, uri = str(self.path), False
            self._db = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
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
        except (sqlite3.DatabaseError, *_DAMAGE) as exc:
            self._db.close()
            raise StoreError(
                f"not a KubeSentinel store, or the file is corrupt: {_what(exc)}",
                file=str(self.path),
                hint="move the file aside; the monitor creates a new store on its next start",
            ) from exc

    @property
    def name(self) -> str:
        """How messages name the store: its path."""
        return str(self.path)

    @property
    def location(self) -> str:
        """What ``store.open.open_store`` takes to open it again (a writer process does)."""
        return str(self.path)

    def _open(self) -> None:
        """Check the schema with plain reads, so a reader opens while the monitor writes."""
        db = self._db
        if not self.read_only:
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        # No checkpoint on the write path: a writing store runs them from its own thread (see
        # _Checkpointer), so a commit never waits for WAL pages to be copied into the file.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("PRAGMA cache_size = -16384")  # 16 MiB page cache
        version = self._schema_version()
        if version is None:
            if self.read_only:
                raise StoreError(
                    "the store is empty", file=str(self.path), hint="run `kubesentinel monitor`"
                )
            with self._transaction():
                if self._schema_version() is None:  # nobody created it meanwhile
                    schema = _SCHEMA + FACETS_SCHEMA + sqlite_ledger.LEDGER_SCHEMA
                    for statement in schema.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                    sqlite_ledger.create_meta(db)
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this KubeSentinel reads "
                f"({SCHEMA_VERSION})",
                file=str(self.path),
                hint="upgrade kubesentinel, or point forensics.storage_path at a new file",
            )
        elif version in (2, 3):  # the earlier versions that migrate
            self._upgrade(version)
        elif version < SCHEMA_VERSION:
            # Version 1 (0.1.0 development builds) kept no evidence bytes to migrate from.
            raise StoreError(
                f"store schema version {version} was written by an earlier KubeSentinel; this "
                f"one reads version {SCHEMA_VERSION}",
                file=str(self.path),
                hint="move the file aside (it stays readable by the version that wrote it); "
                "the monitor then starts a new store",
            )

    def _upgrade(self, version: int) -> None:
        """Version 2 or 3 -> 4 in place, in one transaction (another process may just have
        done it): 2 -> 3 adds incident links and context, 3 -> 4 the vault's seals."""
        message = (
            f"store schema version {version} must be upgraded to version {SCHEMA_VERSION}, "
            "which needs write access to it"
        )
        hint = (
            "open it once with write access (`kubesentinel monitor` or `kubesentinel incidents "
            "list` as its owner); it is upgraded in place"
        )
        if self.read_only:
            raise MigrationNeeded(message, file=str(self.path), hint=hint)
        db = self._db
        try:
            with self._transaction():
                if self._schema_version() != version:  # another process migrated it meanwhile
                    return
                if version == 2:
                    for statement in _MIGRATE_2_TO_3:
                        db.execute(statement)
                    db.executemany(
                        "UPDATE incidents SET rules = ? WHERE id = ?", _rule_priorities(db)
                    )
                to_version_4(db, _SCHEMA, upgraded_from=version)
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
                self._sealed = True  # sign a checkpoint on close
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY:
                raise StoreError(f"{message}: {exc}", file=str(self.path), hint=hint) from exc
            raise
        except codec.CodecError as exc:  # old evidence that cannot be read cannot be sealed
            raise StoreError(
                f"cannot upgrade the store: an evidence segment cannot be read ({exc})",
                file=str(self.path),
                hint=_TAMPER_HINT,
            ) from exc

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
    def _snapshot(self) -> Iterator[None]:
        """A read transaction: an incident row and its events' rows from one committed state."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.in_transaction:
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
            except _DAMAGE as exc:  # a row that is not what this version wrote
                raise StoreError(
                    f"cannot {action}: the store holds damaged data ({_what(exc)})",
                    file=str(self.path),
                    hint=_TAMPER_HINT,
                ) from exc

    # -- for the vault's retention (vault/prune.py, vault/hold.py) ----------------------------

    @contextmanager
    def write_transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction (committed on leaving, rolled back on
        an error); SQLite errors become a StoreError saying ``cannot {action}``."""
        if self.read_only:
            raise StoreError(f"cannot {action}: the store is open read-only", file=str(self.path))
        with self._guard(action) as db, self._transaction():
            yield db

    @contextmanager
    def read_snapshot(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection inside one read transaction: one committed state."""
        with self._guard(action) as db, self._snapshot():
            yield db

    # -- writing -----------------------------------------------------------------------------

    def write(self, events: Sequence[Event], incidents: Sequence[Incident]) -> None:
        """Events (duplicates ignored), their bytes, and incident states (upserted), in one
        transaction: ``apply(encode_write(events, incidents))``."""
        encoded = encode_write(events, incidents)
        if encoded is not None:
            self.apply(encoded)

    def apply(self, encoded: EncodedWrite) -> None:
        """Commit a write that ``encode_write`` prepared, maybe in another process, as one
        sealed segment (vault/ledger.py); sign a checkpoint when the last is a minute old."""
        rows = orjson.loads(encoded.events)
        incident_rows = orjson.loads(encoded.incidents)
        if not rows and not incident_rows:
            return
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)
        # The evidence, then the sidecar (origin, time received) of every alert of the write.
        evidence = encoded.evidence
        blob = evidence + encoded.sidecar
        digest = hashlib.sha256(blob).hexdigest()
        data = codec.compress(blob)
        facets = orjson.loads(encoded.facets) if rows else []
        try:
            with self._guard("write to the store") as db, self._transaction():
                self._file(
                    db, rows, facets, incident_rows, (len(evidence), len(blob), digest, data)
                )
        except BaseException:
            self._facets.rolled_back()
            raise
        self._facets.committed()
        self._sealed = True  # committed: closing signs a checkpoint over it

    def _file(
        self,
        db: sqlite3.Connection,
        rows: list[list[Any]],
        facets: list[list[Any]],
        incident_rows: list[list[Any]],
        segment_data: tuple[int, int, str, bytes],
    ) -> None:
        """Inside the write's transaction: rows, incident states, the sealed segment."""
        raw_bytes, blob_bytes, digest, data = segment_data
        last_id, previous_head = sqlite_ledger.last_head(db)
        segment_id = last_id + 1
        seqs = _incident_seqs(db, incident_rows)
        for row in incident_rows:
            row.append(segment_id)
            row.append(seqs[row[0]])
        new_facets: list[tuple[Any, ...]] = []
        facet_ids = [self._facets.id_of(db, tuple(f), segment_id, new_facets) for f in facets]
        seq_of = seqs.__getitem__
        # Each event's record: its row as stored, the id as text (rows.py has the layout).
        sealed = [
            (time_ns, event_id, None if owner is None else seq_of(owner), role,
             facet_ids[facet], segment_id, offset, length)
            for time_ns, event_id, owner, role, facet, offset, length in rows
        ]  # fmt: skip
        stored = [(r[0], id_key(r[1]), *r[2:]) for r in sealed]
        before = db.total_changes
        db.executemany(_INSERT_EVENT, stored)
        if db.total_changes - before != len(stored):  # redeliveries were not inserted
            sealed = _inserted(db, sealed, stored, segment_id)
        if incident_rows:
            db.executemany(_UPSERT_INCIDENT, incident_rows)
        segment = (segment_id, time.time_ns(), len(sealed), raw_bytes, blob_bytes - raw_bytes,
                   codec.CODEC, digest)  # fmt: skip
        head = sqlite_ledger.append_segment(
            db, segment, data, new_facets, sealed, incident_rows, previous_head=previous_head
        ).head
        if time.monotonic_ns() - self._signed_ns >= sqlite_ledger.CHECKPOINT_INTERVAL_NS:
            self._sign(db, segment_id, head)

    def _sign(self, db: sqlite3.Connection, segment_id: int, head: bytes) -> None:
        """A checkpoint signing the chain up to ``segment_id``, linked to the one before."""
        if self._signer is None:
            self._signer = Signer(self.signing_key)
        sqlite_ledger.sign_checkpoint(db, self._signer, segment_id, head)
        self._signed_ns = time.monotonic_ns()

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
        self,
        *,
        limit: int | None = None,
        namespace: str | None = None,
        since_ns: int | None = None,
        min_severity: Severity | None = None,
        status: str | None = None,
    ) -> list[Incident]:
        """Newest first (by last signal time, then id); the filters as ``count_incidents``."""
        where, params = _where(namespace, since_ns, min_severity, status)
        sql = f"{_SELECT_INCIDENTS}{where} ORDER BY last_ns DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        with self._guard("read incidents") as db, self._snapshot():
            rows = db.execute(sql, params).fetchall()
            return [_incident_from(row, self._event_ids(db, row[20])) for row in rows]

    def count_incidents(
        self,
        *,
        namespace: str | None = None,
        since_ns: int | None = None,
        min_severity: Severity | None = None,
        status: str | None = None,
    ) -> int:
        """How many incidents match: in ``namespace``, with a signal at or after ``since_ns``,
        of ``min_severity`` or above, with that ``status``."""
        where, params = _where(namespace, since_ns, min_severity, status)
        with self._guard("count incidents") as db:
            count: int = db.execute(f"SELECT count(*) FROM incidents{where}", params).fetchone()[0]  # noqa: S608 (placeholders only)
            return count

    def get_incident(self, incident_id: str) -> Incident | None:
        sql = _SELECT_INCIDENTS + " WHERE id = ?"
        with self._guard("read an incident") as db, self._snapshot():
            row = db.execute(sql, (incident_id,)).fetchone()
            if row is None:
                return None
            return _incident_from(row, self._event_ids(db, row[20]))

    def next_of(self, incident_id: str) -> str | None:
        """The id of the incident that continues this one (``previous_id`` = it), if any."""
        with self._guard("read an incident") as db:
            row = db.execute(
                "SELECT id FROM incidents WHERE previous_id = ? ORDER BY first_ns, id LIMIT 1",
                (incident_id,),
            ).fetchone()
            return None if row is None else str(row[0])

    def events_of(self, incident_id: str) -> list[Event]:
        """Every stored event of the incident, signals and context, oldest first, rebuilt from
        its evidence bytes; a segment whose bytes no longer match their digest raises."""
        sql = _SELECT_EVENTS + _BY_INCIDENT + " ORDER BY e.time_ns, e.rowid"
        return [stored.event for stored in self._stored([(sql, (incident_id,))])]

    def stored_events_of(
        self, incident_id: str, *, context_limit: int | None = None
    ) -> list[StoredEvent]:
        """The incident's signals, oldest first, then its context events (the first
        ``context_limit`` of them, all when None), each with where its evidence is; the
        evidence is checked as by ``events_of``."""
        signals = _SELECT_EVENTS + _BY_INCIDENT + " AND e.role IS NULL"
        context = _SELECT_EVENTS + _BY_INCIDENT + " AND e.role IS NOT NULL"
        limit = -1 if context_limit is None else max(context_limit, 0)  # -1: no limit
        return self._stored([
            (f"{signals} ORDER BY e.time_ns, e.rowid", (incident_id,)),
            (f"{context} ORDER BY e.time_ns, e.rowid LIMIT ?", (incident_id, limit)),
        ])  # fmt: skip

    def _stored(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[StoredEvent]:
        """The events the queries select, in their order, from one committed state."""
        with self._guard("read events") as db, self._snapshot():
            rows = [row for sql, params in queries for row in db.execute(sql, params)]
            segments: dict[int, tuple[bytes, dict[int, tuple[str, int]]]] = {}
            stored = []
            for row in rows:
                segment_id, offset, length = row[16], row[17], row[18]
                segment = segments.get(segment_id)
                if segment is None:
                    segment = segments[segment_id] = self._segment(db, segment_id)
                evidence, sidecar = segment
                origin, received_ns = sidecar.get(offset, ("", 0))
                event = _event_from(row, evidence[offset : offset + length], origin, received_ns)
                stored.append(
                    StoredEvent(event, row[2], role_name(row[3]), segment_id, offset, length)
                )
            return stored

    def _segment(
        self, db: sqlite3.Connection, segment_id: int
    ) -> tuple[bytes, dict[int, tuple[str, int]]]:
        """A segment's evidence and sidecar, once its bytes match their sha256."""
        row = db.execute(
            "SELECT raw_bytes, sidecar_bytes, codec, sha256, data FROM segments WHERE id = ?",
            (segment_id,),
        ).fetchone()
        where = f"evidence segment {segment_id}"
        if row is None:
            raise StoreError(f"{where} is missing", file=str(self.path), hint=_TAMPER_HINT)
        size, sidecar_size, name, digest, data = row
        try:
            blob = codec.decompress(data, name, size + sidecar_size)
        except codec.CodecError as exc:
            raise StoreError(
                f"{where} cannot be read: {exc}", file=str(self.path), hint=_TAMPER_HINT
            ) from None
        if hashlib.sha256(blob).hexdigest() != digest:
            raise StoreError(
                f"{where} does not match its sha256: altered or corrupt",
                file=str(self.path),
                hint=_TAMPER_HINT,
            )
        try:
            sidecar = read_sidecar(blob[size:])
        except ValueError as exc:
            raise StoreError(f"{where}: {exc}", file=str(self.path), hint=_TAMPER_HINT) from None
        return blob[:size], sidecar

    def load_posture(self) -> Posture | None:
        from kubesentinel.bridge import posture_from_document

        with self._guard("load the posture") as db:
            row = db.execute("SELECT document FROM posture WHERE id = 1").fetchone()
            return None if row is None else posture_from_document(row[0])

    @staticmethod
    def _event_ids(db: sqlite3.Connection, seq: int | None) -> EventIds:
        sql = "SELECT id FROM events WHERE incident = ? AND role IS NULL ORDER BY rowid"
        return EventIds(id_text(row[0]) for row in db.execute(sql, (seq,)))

    def seal_tail(self) -> None:
        """Sign a checkpoint over segments written since the last one, if any."""
        with self._guard("sign a checkpoint") as db, self._transaction():
            segment_id, head = sqlite_ledger.last_head(db)
            last = sqlite_ledger.last_checkpoint(db)
            if segment_id and (last is None or last[0] < segment_id):
                self._sign(db, segment_id, head)

    def verify(self, key: CheckpointKey | None = None) -> VerifyReport:
        """Check every seal of the store (``vault verify``) from one committed state, with
        ``key`` (a pinned public key) or else the key the store names."""
        from kubesentinel.vault.verify import verify

        with self._guard("verify the store") as db, self._snapshot():
            ledger = sqlite_ledger.SQLiteLedger(db)
            if key is None:
                key = NoteKey(ledger.meta().public_key)
            return verify(ledger, key)

    def verify_incident(self, incident_id: str, key: CheckpointKey | None = None) -> VerifyReport:
        """Check what ``incidents show`` reads: the incident's state, the segments holding its
        events and their facets (every record of them, against their sealed roots), and the
        chain and checkpoints over the whole store."""
        with self._guard("verify the incident") as db, self._snapshot():
            segments = {row[0] for row in db.execute(_INCIDENT_SEGMENTS, (incident_id,) * 3)}
            return _verify_read(db, key, segments, [incident_id])

    def verify_incident_states(
        self, incident_ids: Collection[str], key: CheckpointKey | None = None
    ) -> VerifyReport:
        """Check what ``incidents list`` shows: each incident row against the state its last
        segment sealed, and the chain and checkpoints (one small row per segment; no event is
        read)."""
        with self._guard("verify the incidents") as db, self._snapshot():
            return _verify_read(db, key, (), incident_ids)

    @contextmanager
    def reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection inside one read transaction, errors as StoreError naming
        ``action``: for the vault's readers (``vault export``) that run their own queries."""
        with self._guard(action) as db, self._snapshot():
            yield db

    def public_key(self) -> bytes | None:
        """The raw Ed25519 public key the store's checkpoints are signed with, if any yet."""
        with self._guard("read the vault identity") as db:
            row = db.execute("SELECT public_key FROM vault_meta WHERE id = 1").fetchone()
            return None if row is None or row[0] is None else bytes(row[0])

    def vault_stats(self) -> dict[str, Any]:
        """Figures for ``vault stats``: size, records, evidence compression, checkpoints."""
        with self._guard("read the store's figures") as db, self._snapshot():
            segments, records, raw, stored = db.execute(
                "SELECT count(*), coalesce(sum(record_count), 0), coalesce(sum(raw_bytes), 0), "
                "coalesce(sum(length(data)), 0) FROM segments"
            ).fetchone()
            events, oldest, newest = db.execute(
                "SELECT count(*), min(time_ns), max(time_ns) FROM events"
            ).fetchone()
            incidents = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
            checkpoints = db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
            last = db.execute(
                "SELECT segment_id, written_ns FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
        size = sum(_file_size(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal"))
        return {
            "path": str(self.path),
            "size_bytes": size,
            "segments": segments,
            "records": records,
            "events": events,
            "incidents": incidents,
            "oldest_event": _iso(oldest),
            "newest_event": _iso(newest),
            "evidence_raw_bytes": raw,
            "evidence_stored_bytes": stored,
            "compression_ratio": round(raw / stored, 1) if stored else None,
            "bytes_per_event": round(size / events) if events else None,
            "checkpoints": checkpoints,
            "last_checkpoint_segment": None if last is None else last[0],
            "last_checkpoint_at": None if last is None else _iso(last[1]),
        }

    def close(self) -> None:
        if not self.read_only and self._sealed:
            self.seal_tail()  # a checkpoint covers everything this store wrote
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self.read_only:
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


def _where(
    namespace: str | None, since_ns: int | None, min_severity: Severity | None, status: str | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (placeholders only) and its parameters for the incident filters."""
    clauses: list[str] = []
    params: list[Any] = []
    if namespace is not None:
        clauses.append("namespace = ?")
        params.append(namespace)
    if since_ns is not None:
        clauses.append("last_ns >= ?")
        params.append(since_ns)
    if min_severity is not None:
        labels = [s.label for s in Severity if s >= min_severity]
        clauses.append(f"severity IN ({', '.join('?' * len(labels))})")
        params.extend(labels)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _rule_priorities(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(rules JSON with each rule's highest priority among its events, incident id) for every
    incident of a version-2 store; a rule none of whose events is left reads as Debug."""
    highest: dict[tuple[str, str], int] = {
        (incident, rule): priority
        for incident, rule, priority in db.execute(
            "SELECT incident_id, rule, max(priority) FROM events "
            "WHERE incident_id IS NOT NULL GROUP BY incident_id, rule"
        )
    }
    updates = []
    for incident_id, rules_json in db.execute("SELECT id, rules FROM incidents").fetchall():
        rules = json.loads(rules_json)
        for rule in rules:
            value = highest.get((incident_id, rule["rule"]), Priority.DEBUG)
            rule["priority"] = Priority(value).label
        updates.append((json.dumps(rules), incident_id))
    return updates


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _iso(time_ns: int | None) -> str | None:
    """RFC 3339 UTC with nanoseconds, as the incident commands print times."""
    if time_ns is None:
        return None
    from kubesentinel.runtime.incident_view import iso_time

    return iso_time(time_ns)


def _inserted(
    db: sqlite3.Connection,
    sealed: list[tuple[Any, ...]],
    stored: list[tuple[Any, ...]],
    segment_id: int,
) -> list[tuple[Any, ...]]:
    """The records of a write's rows that were inserted (not redeliveries), in order: a row
    was if the stored event of its (time, id) is it (this segment, its offset)."""
    select = "SELECT segment, offset FROM events WHERE time_ns = ? AND id = ?"
    return [
        record for record, row in zip(sealed, stored, strict=True)
        if db.execute(select, (row[0], row[1])).fetchone() == (segment_id, row[6])
    ]  # fmt: skip


def _incident_seqs(db: sqlite3.Connection, incident_rows: list[list[Any]]) -> dict[str, int]:
    """id -> seq for the incidents of a write: the stored one, or the next free for a new one."""
    seqs: dict[str, int] = {}
    following = None
    for row in incident_rows:
        found = db.execute("SELECT seq FROM incidents WHERE id = ?", (row[0],)).fetchone()
        if found is not None and found[0] is not None:
            seqs[row[0]] = int(found[0])
            continue
        if following is None:
            following = int(db.execute("SELECT coalesce(max(seq), 0) FROM incidents").fetchone()[0])
        following += 1
        seqs[row[0]] = following
    return seqs


def _create_private(path: Path) -> None:
    """Create the store's directory (mode 0700) and empty file (mode 0600) if missing: events
    hold command lines and secrets' paths. Existing ones are left as they are."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _verify_read(
    db: sqlite3.Connection,
    key: CheckpointKey | None,
    segments: Collection[int],
    incident_ids: Collection[str],
) -> VerifyReport:
    """What a reading command read, checked: these segments' records and these incidents'
    states, with the chain and checkpoints (verify's ``only``)."""
    from kubesentinel.vault.verify import verify

    ledger = sqlite_ledger.SQLiteLedger(db, segments=segments, incidents=incident_ids)
    if key is None:
        key = NoteKey(ledger.meta().public_key)
    return verify(ledger, key, only=segments)
