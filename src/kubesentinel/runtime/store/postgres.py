"""The incident store in PostgreSQL (psycopg 3), for a vault shared by several monitors.

The same store as ``sqlite.py``, schema 4, in one PostgreSQL schema (``postgres_schema``),
created on first use: a write is one transaction that files the events, upserts the incident
states and appends the segment sealing them (``vault/postgres_ledger.py``), and the monitor
acknowledges only after its COMMIT. Several monitors may write at once: each write first takes
the chain lock (the ``vault_meta`` row, FOR UPDATE), so segments are numbered, facets and
incidents given ids, and heads chained one write after another; readers never wait for it.

Values are stored as SQLite stores them, so the records hash alike and ``vault verify`` is
the same code for both. One difference: PostgreSQL text cannot hold a NUL character, so a NUL
in an alert's names (rule, pod, ...) is stored as the six characters ``\\u0000``, before the
write is sealed; the evidence bytes keep it as received.

Reads (``incidents list``/``show``, ``vault verify``) run in REPEATABLE READ transactions, one
snapshot each. A broken connection is opened again by the next call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Incident, Severity
from kubesentinel.models.incident import EventIds
from kubesentinel.models.posture import Posture
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.decode import event_from, incident_from
from kubesentinel.runtime.store.interface import Fenced, StoredEvent, WriteFence
from kubesentinel.runtime.store.postgres_schema import SCHEMA, SCHEMA_VERSION, pg_id, pg_id_text
from kubesentinel.runtime.store.rows import EncodedWrite, encode_write, read_sidecar, role_name
from kubesentinel.runtime.store.urls import PostgresTarget, parse_postgres_url
from kubesentinel.vault import postgres_ledger as ledger
from kubesentinel.vault.signer import NoteKey, Signer
from kubesentinel.vault.verify import CheckpointKey, VerifyReport

__all__ = ["PostgresStore"]

Connection = psycopg.Connection[tuple[Any, ...]]

CONNECT_TIMEOUT_S: Final = 10
# A writer waits this long for the chain lock (another monitor's write takes milliseconds);
# past it the write fails and the monitor retries, rather than hang.
LOCK_TIMEOUT: Final = "30s"
CHECKPOINT_INTERVAL_NS: Final = 60 * 1_000_000_000
_HINT: Final = (
    "check forensics.storage_url (server, database, role and password) and the role's "
    "privileges on the schema (docs/vault.md, PostgreSQL)"
)
_TAMPER_HINT: Final = (
    "the store was changed outside KubeSentinel; run `kubesentinel vault verify` and keep a "
    "dump of the schema for investigation"
)
_DAMAGE: Final = (ValueError, KeyError, TypeError, IndexError, AttributeError)

_INSERT_EVENTS: Final = (
    'INSERT INTO events (time_ns, id, incident, role, facet, segment, "offset", length) '
    "SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bigint[], %b::integer[], "
    "%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[]) "
    'ON CONFLICT (time_ns, id) DO NOTHING RETURNING "offset"'  # a redelivery is not inserted
)
_INCIDENT_COLUMNS: Final = (
    "id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, risk_score, "
    "reasons, rules, tactics, techniques, event_count, event_id_count, posture, status, "
    "previous_id, context"
)
_UPSERT_INCIDENT: Final = (
    f"INSERT INTO incidents ({_INCIDENT_COLUMNS}, segment, seq) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * 22)}) "
    "ON CONFLICT (id) DO UPDATE SET first_ns = excluded.first_ns, last_ns = excluded.last_ns, "
    "severity = excluded.severity, risk_score = excluded.risk_score, "
    "reasons = excluded.reasons, rules = excluded.rules, tactics = excluded.tactics, "
    "techniques = excluded.techniques, event_count = excluded.event_count, "
    "event_id_count = excluded.event_id_count, posture = excluded.posture, "
    "status = excluded.status, context = excluded.context, segment = excluded.segment"
)
_SELECT_INCIDENTS: Final = f"SELECT {_INCIDENT_COLUMNS}, seq FROM incidents"  # noqa: S608
_SELECT_EVENTS: Final = (
    "SELECT e.time_ns, e.id, i.id, e.role, f.rule, f.priority, f.source, f.cluster, "
    "f.namespace, f.kind, f.name, f.pod, f.container_id, f.container_image, f.tactics, "
    'f.techniques, e.segment, e."offset", e.length FROM events e '
    "JOIN facets f ON f.id = e.facet LEFT JOIN incidents i ON i.seq = e.incident "
    "WHERE e.incident = (SELECT seq FROM incidents WHERE id = %s)"
)
# The segments sealing what ``incidents show`` reads: its events, their facets, its state.
_INCIDENT_SEGMENTS: Final = (
    "WITH mine AS (SELECT e.segment, e.facet FROM events e "
    "WHERE e.incident = (SELECT seq FROM incidents WHERE id = %s)) "
    "SELECT segment FROM mine UNION "
    "SELECT f.segment FROM facets f WHERE f.id IN (SELECT facet FROM mine) UNION "
    "SELECT segment FROM incidents WHERE id = %s"
)
_FACET_LOOKUP: Final = (
    "SELECT id FROM facets WHERE rule = %s AND priority = %s AND source = %s AND cluster = %s "
    "AND namespace = %s AND kind = %s AND name = %s AND pod IS NOT DISTINCT FROM %s "
    "AND container_id IS NOT DISTINCT FROM %s AND container_image IS NOT DISTINCT FROM %s "
    "AND tactics = %s AND techniques = %s ORDER BY id LIMIT 1"
)
_INSERT_FACETS: Final = (
    "INSERT INTO facets (id, segment, rule, priority, source, cluster, namespace, kind, name, "
    "pod, container_id, container_image, tactics, techniques) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_MAX_CACHED_FACETS: Final = 65_536


class PostgresStore:
    """An ``IncidentStore`` in a PostgreSQL schema; safe to share between threads (one lock).

    ``url`` is ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&...]``; the
    store is named by ``name``, the URL without its password. ``read_only`` never writes (not
    even the schema: an empty one is an error). ``signing_key`` is where the checkpoint key is
    read, or created on the first write.
    """

    def __init__(
        self, url: str, *, read_only: bool = False, signing_key: str | Path | None = None
    ) -> None:
        try:
            self._target: PostgresTarget = parse_postgres_url(url)
        except ValueError as exc:
            raise StoreError(str(exc), hint=_HINT) from None
        self.name = self._target.name
        self.schema = self._target.schema
        self.read_only = read_only
        self.signing_key = Path(signing_key) if signing_key else None
        self._lock = threading.Lock()
        self._signer: Signer | None = None
        self._facets: dict[tuple[Any, ...], int] = {}
        self._facets_added: list[tuple[Any, ...]] = []  # cached by the write in progress
        self._sealed = False  # wrote segments: close signs a checkpoint over them
        self._signed = False  # signed once (the first write checks the vault's key at once)
        self._conn: Connection | None = None
        # Scale-out workers: every write is checked against newer owners of its partitions.
        self.fence: WriteFence | None = None
        self._idle_limit_ms = 0  # idle_in_transaction_session_timeout; 0: PostgreSQL's default
        with self._lock:
            self._connect()

    @property
    def location(self) -> str:
        """The URL as given (it may hold a password): for a writer process to open its own."""
        return self._target.conninfo + (
            ("&" if "?" in self._target.conninfo else "?") + f"schema={self.schema}"
        )

    # -- connection and schema -----------------------------------------------------------------

    def _connect(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn: Connection = psycopg.connect(
                self._target.conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="kubesentinel",
            )
        except psycopg.Error as exc:
            raise self._error("cannot connect to the store", exc) from None
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            if self._idle_limit_ms:
                conn.execute(_idle_limit(self._idle_limit_ms))
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
            self._open_schema(conn)
        except psycopg.Error as exc:
            conn.close()
            raise self._error("cannot open the store", exc) from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _open_schema(self, conn: Connection) -> None:
        version = _schema_version(conn, self.schema)
        if version is None:
            if self.read_only:
                raise StoreError(
                    f"the store is empty (no schema {self.schema!r} with a KubeSentinel store)",
                    file=self.name,
                    hint="run `kubesentinel monitor` with this URL first",
                )
            self._create_schema(conn)
        elif version != SCHEMA_VERSION:
            newer = version > SCHEMA_VERSION
            raise StoreError(
                f"store schema version {version} is {'newer' if newer else 'older'} than this "
                f"KubeSentinel reads ({SCHEMA_VERSION})",
                file=self.name,
                hint="upgrade kubesentinel" if newer else "use a new schema (?schema=NAME)",
            )

    def _create_schema(self, conn: Connection) -> None:
        """The schema and its tables, once: monitors starting together take turns (an advisory
        lock named after the schema), and the second finds the tables made."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ks:{self.schema}",))
            if _schema_version(conn, self.schema) is not None:
                return
            if not _schema_exists(conn, self.schema):  # CREATE needs the database's privilege
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
            ledger.create_meta(conn)

    def limit_idle_transactions(self, seconds: float) -> None:
        """Have the server end this store's session when a transaction of it waits longer
        than ``seconds`` between statements: a scale-out worker paused inside a write (GC,
        SIGSTOP, CPU starvation) must not hold the chain lock and its partitions' fence rows
        after its lease is gone. Its write then fails and is retried, and is fenced."""
        self._idle_limit_ms = max(1, round(seconds * 1000))
        with self._lock:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute(_idle_limit(self._idle_limit_ms))

    def _error(self, action: str, exc: BaseException) -> StoreError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = self._password()
        if password:
            detail = detail.replace(password, "***")
        return StoreError(f"{action}: {detail}", file=self.name, hint=_HINT)

    def _password(self) -> str | None:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(self._target.conninfo).password
        return unquote(password) if password else None

    @contextmanager
    def _guard(self, action: str) -> Iterator[Connection]:
        with self._lock:
            conn = self._connect()
            try:
                yield conn
            except psycopg.Error as exc:
                raise self._error(f"cannot {action}", exc) from exc
            except _DAMAGE as exc:  # a row that is not what this version wrote
                raise StoreError(
                    f"cannot {action}: the store holds damaged data ({type(exc).__name__}: {exc})"[
                        :300
                    ],
                    file=self.name,
                    hint=_TAMPER_HINT,
                ) from exc

    @contextmanager
    def _snapshot(self, conn: Connection) -> Iterator[None]:
        """A read transaction over one snapshot: an incident and its events agree."""
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    @contextmanager
    def write_transaction(self, action: str) -> Iterator[Connection]:
        """The connection inside one write transaction holding the chain lock, as a monitor's
        write does: retention's deletions, tombstones and seals never interleave with another
        writer's segment, on any host. Committed on leaving, rolled back on an error."""
        if self.read_only:
            raise StoreError(f"cannot {action}: the store is open read-only", file=self.name)
        with self._guard(action) as conn, conn.transaction():
            ledger.lock_chain(conn)
            yield conn

    @contextmanager
    def read_snapshot(self, action: str) -> Iterator[Connection]:
        """The connection inside one REPEATABLE READ, read-only transaction: one snapshot."""
        with self._guard(action) as conn, self._snapshot(conn):
            yield conn

    # -- writing -----------------------------------------------------------------------------

    def write(self, events: Sequence[Event], incidents: Sequence[Incident]) -> None:
        """Events (duplicates ignored), their bytes, and incident states (upserted), in one
        transaction: ``apply(encode_write(events, incidents))``."""
        fence = self.fence
        while True:
            encoded = encode_write(events, incidents)
            if encoded is None:
                return
            if fence is None:
                self.apply(encoded)
                return
            scope = fence.scope(events, incidents)
            try:
                self.apply(encoded, check=partial(fence.check, scope=scope))
                return
            except Fenced as exc:  # each round drops at least one partition
                events, incidents = fence.without(exc, events, incidents)

    def apply(
        self, encoded: EncodedWrite, check: Callable[[Connection], None] | None = None
    ) -> None:
        """Commit a write that ``encode_write`` prepared as one sealed segment; returns once
        committed. Signs a checkpoint after this store's first write and when the vault's last
        is a minute old. ``check`` runs first inside the write's transaction (a scale-out
        worker's fence: it raises ``Fenced`` and nothing is written)."""
        if self.read_only:
            raise StoreError("the store was opened read-only", file=self.name)
        rows = orjson.loads(encoded.events)
        incident_rows = orjson.loads(_no_nul(encoded.incidents))
        if not rows and not incident_rows:
            return
        evidence = encoded.evidence
        blob = evidence + encoded.sidecar
        digest = hashlib.sha256(blob).hexdigest()
        data = codec.compress(blob)
        facets = orjson.loads(_no_nul(encoded.facets)) if rows else []
        try:
            with self._guard("write to the store") as conn, conn.transaction():
                if check is not None:  # before the chain lock: a claim never waits for it
                    check(conn)
                self._file(
                    conn, rows, facets, incident_rows, (len(evidence), len(blob), digest, data)
                )
        except BaseException:
            for facet in self._facets_added:
                self._facets.pop(facet, None)
            self._facets_added.clear()
            raise
        self._facets_added.clear()
        self._sealed = True

    def _file(
        self,
        conn: Connection,
        rows: list[list[Any]],
        facets: list[list[Any]],
        incident_rows: list[list[Any]],
        segment_data: tuple[int, int, str, bytes],
    ) -> None:
        """Inside the write's transaction, under the chain lock: rows, incident states, the
        sealed segment, and a checkpoint when one is due."""
        ledger.lock_chain(conn)
        last_id, previous_head = ledger.last_head(conn)
        segment_id = last_id + 1
        seqs = _incident_seqs(conn, incident_rows)
        for row in incident_rows:
            row.append(segment_id)
            row.append(seqs[row[0]])
        new_facets: list[tuple[Any, ...]] = []
        facet_ids = self._facet_ids(conn, [tuple(f) for f in facets], segment_id, new_facets)
        seq_of = seqs.__getitem__
        sealed = [
            (time_ns, event_id, None if owner is None else seq_of(owner), role,
             facet_ids[facet], segment_id, offset, length)
            for time_ns, event_id, owner, role, facet, offset, length in rows
        ]  # fmt: skip
        if sealed:
            columns = list(zip(*sealed, strict=True))
            columns[1] = tuple(pg_id(event_id) for event_id in columns[1])
            inserted = {row[0] for row in conn.execute(_INSERT_EVENTS, [list(c) for c in columns])}
            if len(inserted) != len(sealed):  # redeliveries: seal what was inserted
                sealed = [record for record in sealed if record[6] in inserted]
        if incident_rows:
            with conn.cursor() as cursor:
                cursor.executemany(_UPSERT_INCIDENT, incident_rows)
        raw_bytes, blob_bytes, digest, data = segment_data
        segment = (segment_id, time.time_ns(), len(sealed), raw_bytes, blob_bytes - raw_bytes,
                   codec.CODEC, digest)  # fmt: skip
        head = ledger.append_segment(
            conn, segment, data, new_facets, sealed, incident_rows, previous_head=previous_head
        ).head
        last = ledger.last_checkpoint(conn)
        stale = last is None or time.time_ns() - last[2] >= CHECKPOINT_INTERVAL_NS
        if not self._signed or stale:
            self._sign(conn, segment_id, head)

    def _facet_ids(
        self,
        conn: Connection,
        facets: list[tuple[Any, ...]],
        segment_id: int,
        new: list[tuple[Any, ...]],
    ) -> list[int]:
        """Each facet's row id: cached, found, or inserted with the next id (under the chain
        lock, so ids rise with segments, as verify reads them)."""
        ids = []
        following: int | None = None
        for facet in facets:
            known = self._facets.get(facet)
            if known is None:
                row = conn.execute(_FACET_LOOKUP, facet).fetchone()
                if row is not None:
                    known = int(row[0])
                else:
                    if following is None:
                        found = conn.execute("SELECT coalesce(max(id), 0) FROM facets").fetchone()
                        following = int(found[0]) if found else 0
                    following += 1
                    known = following
                    new.append((known, segment_id, *facet))
                if len(self._facets) >= _MAX_CACHED_FACETS:
                    self._facets.clear()
                self._facets[facet] = known
                self._facets_added.append(facet)
            ids.append(known)
        if new:
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT_FACETS, new)
        return ids

    def _sign(self, conn: Connection, segment_id: int, head: bytes) -> None:
        if self._signer is None:
            if self.signing_key is None:
                raise StoreError(
                    "no signing key for a PostgreSQL store",
                    file=self.name,
                    hint="set forensics.signing_key (every monitor of the vault uses the same)",
                )
            self._signer = Signer(self.signing_key)
        ledger.sign_checkpoint(conn, self._signer, segment_id, head)
        self._signed = True

    def save_posture(self, posture: Posture) -> None:
        from kubesentinel.bridge import posture_document

        document = posture_document(posture)
        with self._guard("save the posture") as conn, conn.transaction():
            conn.execute(
                "INSERT INTO posture (id, document) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                (document,),
            )

    def seal_tail(self) -> None:
        """Sign a checkpoint over segments written since the vault's last one, if any."""
        with self._guard("sign a checkpoint") as conn, conn.transaction():
            ledger.lock_chain(conn)
            segment_id, head = ledger.last_head(conn)
            last = ledger.last_checkpoint(conn)
            if segment_id and (last is None or last[0] < segment_id):
                self._sign(conn, segment_id, head)

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
        query = f"{_SELECT_INCIDENTS}{where} ORDER BY last_ns DESC, id"
        if limit is not None:
            query += " LIMIT %s"
            params.append(max(limit, 0))
        with self._guard("read incidents") as conn, self._snapshot(conn):
            rows = conn.execute(query.encode(), params).fetchall()
            return [incident_from(row, _event_ids(conn, row[20])) for row in rows]

    def count_incidents(
        self,
        *,
        namespace: str | None = None,
        since_ns: int | None = None,
        min_severity: Severity | None = None,
        status: str | None = None,
    ) -> int:
        where, params = _where(namespace, since_ns, min_severity, status)
        with self._guard("count incidents") as conn:
            query = f"SELECT count(*) FROM incidents{where}"  # noqa: S608 (placeholders only)
            row = conn.execute(query.encode(), params).fetchone()
            return int(row[0]) if row else 0

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._guard("read an incident") as conn, self._snapshot(conn):
            row = conn.execute(_SELECT_INCIDENTS + " WHERE id = %s", (incident_id,)).fetchone()
            return None if row is None else incident_from(row, _event_ids(conn, row[20]))

    def next_of(self, incident_id: str) -> str | None:
        """The id of the incident that continues this one, if any."""
        with self._guard("read an incident") as conn:
            row = conn.execute(
                "SELECT id FROM incidents WHERE previous_id = %s ORDER BY first_ns, id LIMIT 1",
                (incident_id,),
            ).fetchone()
            return None if row is None else str(row[0])

    def events_of(self, incident_id: str) -> list[Event]:
        """Every stored event of the incident, oldest first, rebuilt from its evidence."""
        query = _SELECT_EVENTS + ' ORDER BY e.time_ns, e.segment, e."offset"'
        return [stored.event for stored in self._stored([(query, (incident_id,))])]

    def stored_events_of(
        self, incident_id: str, *, context_limit: int | None = None
    ) -> list[StoredEvent]:
        """The incident's signals, oldest first, then its context events (the first
        ``context_limit``, all when None), each with where its evidence is."""
        order = ' ORDER BY e.time_ns, e.segment, e."offset"'
        signals = _SELECT_EVENTS + " AND e.role IS NULL" + order
        context = _SELECT_EVENTS + " AND e.role IS NOT NULL" + order
        params: tuple[Any, ...] = (incident_id,)
        if context_limit is not None:
            context += " LIMIT %s"
            params = (incident_id, max(context_limit, 0))
        return self._stored([(signals, (incident_id,)), (context, params)])

    def _stored(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[StoredEvent]:
        with self._guard("read events") as conn, self._snapshot(conn):
            rows = [row for query, params in queries for row in conn.execute(query, params)]
            segments: dict[int, tuple[bytes, dict[int, tuple[str, int]]]] = {}
            stored = []
            for row in rows:
                segment_id, offset, length = row[16], row[17], row[18]
                segment = segments.get(segment_id)
                if segment is None:
                    segment = segments[segment_id] = self._segment(conn, segment_id)
                evidence, sidecar = segment
                origin, received_ns = sidecar.get(offset, ("", 0))
                values = (row[0], pg_id_text(bytes(row[1])), *row[2:])
                event = event_from(values, evidence[offset : offset + length], origin, received_ns)
                stored.append(
                    StoredEvent(event, row[2], role_name(row[3]), segment_id, offset, length)
                )
            return stored

    def _segment(
        self, conn: Connection, segment_id: int
    ) -> tuple[bytes, dict[int, tuple[str, int]]]:
        """A segment's evidence and sidecar, once its bytes match their sha256."""
        row = conn.execute(
            "SELECT raw_bytes, sidecar_bytes, codec, sha256, data FROM segments WHERE id = %s",
            (segment_id,),
        ).fetchone()
        where = f"evidence segment {segment_id}"
        if row is None:
            raise StoreError(f"{where} is missing", file=self.name, hint=_TAMPER_HINT)
        size, sidecar_size, name, digest, data = row
        try:
            blob = codec.decompress(bytes(data), name, size + sidecar_size)
        except codec.CodecError as exc:
            raise StoreError(
                f"{where} cannot be read: {exc}", file=self.name, hint=_TAMPER_HINT
            ) from None
        if hashlib.sha256(blob).hexdigest() != digest:
            raise StoreError(
                f"{where} does not match its sha256: altered or corrupt",
                file=self.name,
                hint=_TAMPER_HINT,
            )
        try:
            sidecar = read_sidecar(blob[size:])
        except ValueError as exc:
            raise StoreError(f"{where}: {exc}", file=self.name, hint=_TAMPER_HINT) from None
        return blob[:size], sidecar

    def load_posture(self) -> Posture | None:
        from kubesentinel.bridge import posture_from_document

        with self._guard("load the posture") as conn:
            row = conn.execute("SELECT document FROM posture WHERE id = 1").fetchone()
            return None if row is None else posture_from_document(row[0])

    def verify(self, key: CheckpointKey | None = None) -> VerifyReport:
        """Check every seal of the store (``vault verify``) from one snapshot, with ``key`` (a
        pinned public key) or else the key the store names."""
        from kubesentinel.vault.verify import verify

        with self._guard("verify the store") as conn, self._snapshot(conn):
            reader = ledger.PostgresLedger(conn)
            if key is None:
                key = NoteKey(reader.meta().public_key)
            return verify(reader, key)

    def verify_incident(self, incident_id: str, key: CheckpointKey | None = None) -> VerifyReport:
        """Check what ``incidents show`` reads: the incident's state, the segments holding its
        events and their facets (every record of them), and the chain and checkpoints."""
        with self._guard("verify the incident") as conn, self._snapshot(conn):
            rows = conn.execute(_INCIDENT_SEGMENTS, (incident_id, incident_id))
            segments = {int(row[0]) for row in rows if row[0] is not None}
            return _verify_read(conn, key, segments, [incident_id])

    def verify_incident_states(
        self, incident_ids: Collection[str], key: CheckpointKey | None = None
    ) -> VerifyReport:
        """Check what ``incidents list`` shows: each incident row against the state its last
        segment sealed, and the chain and checkpoints (no event is read)."""
        with self._guard("verify the incidents") as conn, self._snapshot(conn):
            return _verify_read(conn, key, (), incident_ids)

    def public_key(self) -> bytes | None:
        with self._guard("read the vault identity") as conn:
            row = conn.execute("SELECT public_key FROM vault_meta WHERE id = 1").fetchone()
            return None if row is None or row[0] is None else bytes(row[0])

    def vault_stats(self) -> dict[str, Any]:
        """Figures for ``vault stats``, as the SQLite store gives them; the size is the
        schema's tables with their indexes and TOAST."""
        with self._guard("read the store's figures") as conn, self._snapshot(conn):
            segments, records, raw, stored = _one(
                conn,
                "SELECT count(*), coalesce(sum(record_count), 0), coalesce(sum(raw_bytes), 0), "
                "coalesce(sum(octet_length(data)), 0) FROM segments",
            )
            events, oldest, newest = _one(
                conn, "SELECT count(*), min(time_ns), max(time_ns) FROM events"
            )
            (incidents,) = _one(conn, "SELECT count(*) FROM incidents")
            (checkpoints,) = _one(conn, "SELECT count(*) FROM checkpoints")
            last = conn.execute(
                "SELECT segment_id, written_ns FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
            (size,) = _one(
                conn,
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            )
        raw, stored, size = int(raw), int(stored), int(size)
        return {
            "path": self.name,
            "size_bytes": size,
            "segments": segments,
            "records": int(records),
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
        """Sign a checkpoint over what this store wrote, and disconnect."""
        try:
            if not self.read_only and self._sealed:
                self.seal_tail()
        finally:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.name!r})"


def _idle_limit(ms: int) -> sql.Composed:
    return sql.SQL("SET idle_in_transaction_session_timeout = {}").format(sql.Literal(ms))


def _schema_version(conn: Connection, schema: str) -> int | None:
    """The store's version; None when the schema or its version table does not exist yet.
    Read from pg_tables, not to_regclass: a name lookup may answer from a cache that has not
    yet seen another monitor's schema, committed while this one waited for the lock."""
    tables = {
        str(row[0])
        for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    }
    if not tables:
        return None
    if "schema_version" not in tables:
        raise StoreError(
            f"schema {schema!r} holds tables but no KubeSentinel store",
            hint="name another schema in the URL (?schema=NAME)",
        )
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _schema_exists(conn: Connection, schema: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return found is not None


def _one(conn: Connection, query: str) -> tuple[Any, ...]:
    row = conn.execute(query.encode()).fetchone()
    if row is None:
        raise ValueError(f"no row from {query!r}")
    return row


def _event_ids(conn: Connection, seq: int | None) -> EventIds:
    rows = conn.execute(
        'SELECT id FROM events WHERE incident = %s AND role IS NULL ORDER BY segment, "offset"',
        (seq,),
    )
    return EventIds(pg_id_text(bytes(row[0])) for row in rows)


def _incident_seqs(conn: Connection, incident_rows: list[list[Any]]) -> dict[str, int]:
    """id -> seq for the incidents of a write: the stored one, or the next free for a new one
    (under the chain lock, so two writers never take the same)."""
    if not incident_rows:
        return {}
    ids = [row[0] for row in incident_rows]
    seqs: dict[str, int] = {
        str(found[0]): int(found[1])
        for found in conn.execute(
            "SELECT id, seq FROM incidents WHERE id = ANY(%s) AND seq IS NOT NULL", (ids,)
        )
    }
    following: int | None = None
    for incident_id in ids:
        if incident_id in seqs:
            continue
        if following is None:
            found = conn.execute("SELECT coalesce(max(seq), 0) FROM incidents").fetchone()
            following = int(found[0]) if found else 0
        following += 1
        seqs[incident_id] = following
    return seqs


def _where(
    namespace: str | None, since_ns: int | None, min_severity: Severity | None, status: str | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if namespace is not None:
        clauses.append("namespace = %s")
        params.append(namespace)
    if since_ns is not None:
        clauses.append("last_ns >= %s")
        params.append(since_ns)
    if min_severity is not None:
        clauses.append("severity = ANY(%s)")
        params.append([s.label for s in Severity if s >= min_severity])
    if status is not None:
        clauses.append("status = %s")
        params.append(status)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


_NUL: Final = b"\\u0000"


def _no_nul(rows: bytes) -> bytes:
    """JSON rows with every NUL character in a string written as the text ``\\u0000``, which
    PostgreSQL text can hold (it refuses NUL)."""
    if _NUL not in rows:
        return rows
    return orjson.dumps(_escape_nul(orjson.loads(rows)))


def _escape_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, list):
        return [_escape_nul(item) for item in value]
    return value


def _iso(time_ns: int | None) -> str | None:
    if time_ns is None:
        return None
    from kubesentinel.runtime.incident_view import iso_time

    return iso_time(time_ns)


def _verify_read(
    conn: Connection,
    key: CheckpointKey | None,
    segments: Collection[int],
    incident_ids: Collection[str],
) -> VerifyReport:
    """What a reading command read, checked: these segments' records and these incidents'
    states, with the chain and checkpoints (verify's ``only``)."""
    from kubesentinel.vault.verify import verify

    reader = ledger.PostgresLedger(conn, segments=segments, incidents=incident_ids)
    if key is None:
        key = NoteKey(reader.meta().public_key)
    return verify(reader, key, only=segments)
