"""The vault's tables in a PostgreSQL store: what ``sqlite_ledger`` is to the SQLite store.

``runtime/store/postgres.py`` owns the connection and its transactions (and holds the chain
lock, the ``vault_meta`` row, while it writes); this module seals a write, signs checkpoints
and reads everything back for ``verify``. Records are hashed by ``ledger`` from the same
values as in SQLite, so the same rows give the same leaves, roots and heads in both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Final

import orjson
import psycopg

from kubesentinel.errors import StoreError
from kubesentinel.runtime.store.postgres_schema import pg_id_text
from kubesentinel.vault.ledger import GENESIS_HEAD, Seal, seal
from kubesentinel.vault.signer import Signer
from kubesentinel.vault.verify import CheckpointRow, SegmentRow, VaultMeta
from kubesentinel.vault.verify_retention import RetentionRows

__all__ = [
    "PostgresLedger",
    "append_segment",
    "create_meta",
    "last_checkpoint",
    "last_head",
    "lock_chain",
    "sign_checkpoint",
]

Connection = psycopg.Connection[tuple[Any, ...]]

_SEGMENT_COLUMNS: Final = (
    "id, written_ns, event_count, raw_bytes, sidecar_bytes, codec, sha256, data, incident_ids, "
    "incident_leaves, record_count, root, head"
)
_INSERT_SEGMENT: Final = (
    f"INSERT INTO segments ({_SEGMENT_COLUMNS}) "  # noqa: S608 - constant column list
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_SEALED_EVENTS: Final = (
    'SELECT time_ns, id, incident, role, facet, segment, "offset", length FROM events'
)
# Write order: segments in order, each one's events in evidence order. A tie (a row copied in
# by hand) still reads the same way every time.
_EVENT_ORDER: Final = ' ORDER BY segment, "offset", time_ns, id'
_SEALED_FACETS: Final = (
    "SELECT id, segment, rule, priority, source, cluster, namespace, kind, name, pod, "
    "container_id, container_image, tactics, techniques FROM facets"
)
_SEALED_INCIDENTS: Final = (
    "SELECT id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, "
    "risk_score, reasons, rules, tactics, techniques, event_count, event_id_count, posture, "
    "status, previous_id, context, segment, seq FROM incidents"
)
SEALED_INCIDENTS_SQL: Final = _SEALED_INCIDENTS  # for retention's tombstones (retention_pg)
_TAMPER_HINT: Final = "run `kubesentinel vault verify`; keep a dump of the schema"
# Rows fetched per round trip by verify's server-side cursors: memory stays flat.
FETCH_ROWS: Final = 10_000


def create_meta(db: Connection) -> None:
    """The store's identity: a random id, and the origin its checkpoints name."""
    store_id = uuid.uuid4().hex
    now = time.time_ns()
    db.execute(
        "INSERT INTO vault_meta (id, store_id, origin, created_ns, sealed_from_ns) "
        "VALUES (1, %s, %s, %s, %s)",
        (store_id, f"kubesentinel.vault/{store_id}", now, now),
    )


def lock_chain(db: Connection) -> None:
    """Take the chain lock for the rest of the transaction: the one ``vault_meta`` row, locked
    FOR UPDATE. Every writer of the vault, in any process on any host, takes it before it
    numbers a segment, so two writers never fork the chain; readers never wait for it."""
    if db.execute("SELECT 1 FROM vault_meta WHERE id = 1 FOR UPDATE").fetchone() is None:
        raise StoreError("the store has no vault identity (vault_meta is empty)", hint=_TAMPER_HINT)


def last_head(db: Connection) -> tuple[int, bytes]:
    """(id, head) of the newest segment, (0, genesis) for none."""
    row = db.execute("SELECT id, head FROM segments ORDER BY id DESC LIMIT 1").fetchone()
    return (0, GENESIS_HEAD) if row is None else (int(row[0]), bytes(row[1]))


def append_segment(  # noqa: PLR0917 - the parts of one segment, in sealing order
    db: Connection,
    segment: tuple[int, int, int, int, int, str, str],
    data: bytes,
    facet_rows: Sequence[Sequence[Any]],
    event_rows: Sequence[Sequence[Any]],
    incident_rows: Sequence[Sequence[Any]],
    *,
    previous_head: bytes,
) -> Seal:
    """Insert a segment row sealing the facets, events and incident states a write stored
    (each as its record: ``ledger``) after the segment whose head is ``previous_head``."""
    sealed = seal(previous_head, segment, facet_rows, event_rows, incident_rows)
    db.execute(
        _INSERT_SEGMENT,
        (*segment, data, orjson.dumps(sealed.incident_ids).decode(), sealed.incident_leaves,
         sealed.record_count, sealed.root, sealed.head),
    )  # fmt: skip
    return sealed


def last_checkpoint(db: Connection) -> tuple[int, str, int] | None:
    """(segment id, note, written_ns) of the newest checkpoint."""
    row = db.execute(
        "SELECT segment_id, note, written_ns FROM checkpoints ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), int(row[2]))


def sign_checkpoint(db: Connection, signer: Signer, segment_id: int, head: bytes) -> None:
    """Sign the chain up to ``segment_id`` (its ``head``), linked to the last checkpoint, under
    the chain lock. The first checkpoint records the signer's public key; every monitor of the
    vault must sign with that key, another is refused."""
    origin, public_key = db.execute(
        "SELECT origin, public_key FROM vault_meta WHERE id = 1"
    ).fetchone() or (None, None)
    if origin is None:
        raise StoreError("the store has no vault identity (vault_meta is empty)", hint=_TAMPER_HINT)
    if public_key is None:
        db.execute("UPDATE vault_meta SET public_key = %s WHERE id = 1", (signer.public_key,))
    elif bytes(public_key) != signer.public_key:
        raise StoreError(
            f"the signing key {signer.path} is not the key this vault was sealed with",
            file=str(signer.path),
            hint="every monitor writing to one vault signs with the same key: point "
            "forensics.signing_key at it; a new key needs a new vault (schema)",
        )
    last = last_checkpoint(db)
    previous = None if last is None else signer.note_hash(last[1])
    since, base = (0, 0) if last is None else (last[0], _signed_records(last[1]))
    added = db.execute(
        "SELECT coalesce(sum(record_count), 0) FROM segments WHERE id > %s AND id <= %s",
        (since, segment_id),
    ).fetchone()
    records = base + int(added[0] if added else 0)
    note = signer.sign(str(origin), segment_id, head, records, previous)
    db.execute(
        "INSERT INTO checkpoints (id, segment_id, written_ns, note) "
        "SELECT coalesce(max(id), 0) + 1, %s, %s, %s FROM checkpoints",
        (segment_id, time.time_ns(), note),
    )


def _signed_records(note: str) -> int:
    """The ``records`` line of a checkpoint this vault signed."""
    for line in note.splitlines():
        if line.startswith("records "):
            return int(line.removeprefix("records "))
    raise StoreError("the last checkpoint has no records line: damaged", hint=_TAMPER_HINT)


class PostgresLedger:
    """``LedgerReader`` over a store connection, inside a REPEATABLE READ transaction the caller
    holds: every row from one snapshot, streamed through server-side cursors.

    ``segments`` and ``incidents`` narrow it to what one command read (``verify(only=...)``):
    the rows of those segments and incidents, every segment's seal but only their evidence.
    """

    def __init__(
        self,
        db: Connection,
        *,
        segments: Collection[int] | None = None,
        incidents: Collection[str] | None = None,
    ) -> None:
        self._db = db
        self._cursors = 0
        self._segments = None if segments is None else sorted(segments)
        self._incidents = None if incidents is None else sorted(incidents)

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        self._cursors += 1
        cursor = self._db.cursor(name=f"kubesentinel_verify_{self._cursors}")
        cursor.itersize = FETCH_ROWS
        try:
            cursor.execute(query.encode(), params or None)
            yield from cursor
        finally:
            cursor.close()

    def _in(self, column: str, chosen: list[Any] | None) -> tuple[str, tuple[Any, ...]]:
        if chosen is None:
            return "", ()
        return f" WHERE {column} = ANY(%s)", (chosen,)

    def meta(self) -> VaultMeta:
        row = self._db.execute(
            "SELECT store_id, origin, public_key, created_ns, sealed_from_ns, upgraded_from "
            "FROM vault_meta WHERE id = 1"
        ).fetchone()
        if row is None:
            raise ValueError("the store has no vault identity (vault_meta is empty)")
        return VaultMeta(row[0], row[1], bytes(row[2] or b""), row[3], row[4], row[5])

    def segments(self) -> Iterator[SegmentRow]:
        columns = _SEGMENT_COLUMNS
        params: tuple[Any, ...] = ()
        if self._segments is not None:  # the evidence of the segments asked about only
            columns = columns.replace(", data,", ", CASE WHEN id = ANY(%s) THEN data END,")
            params = (self._segments,)
        query = f"SELECT {columns} FROM segments ORDER BY id"  # noqa: S608 - constant text
        for row in self._rows(query, params):
            yield SegmentRow(
                id=row[0], written_ns=row[1], event_count=row[2], raw_bytes=row[3],
                sidecar_bytes=row[4], codec=row[5], sha256=row[6], data=bytes(row[7] or b""),
                incident_ids=_id_list(row[8]), incident_leaves=bytes(row[9]),
                record_count=row[10], root=bytes(row[11]), head=bytes(row[12]),
            )  # fmt: skip

    def event_rows(self) -> Iterator[Sequence[Any]]:
        # The record holds the id as text, as in SQLite (postgres_schema.pg_id_text).
        where, params = self._in("segment", self._segments)
        for row in self._rows(_SEALED_EVENTS + where + _EVENT_ORDER, params):
            yield (row[0], pg_id_text(bytes(row[1])), *row[2:])

    def facet_rows(self) -> Iterator[Sequence[Any]]:
        where, params = self._in("segment", self._segments)
        yield from self._rows(f"{_SEALED_FACETS}{where} ORDER BY id", params)

    def incident_rows(self) -> Iterator[Sequence[Any]]:
        where, params = self._in("id", self._incidents)
        yield from self._rows(f"{_SEALED_INCIDENTS}{where} ORDER BY seq", params)

    def retention(self) -> RetentionRows:
        """Tombstones, rollups and holds, streamed like every other table."""
        from kubesentinel.vault.retention_pg import PostgresRetentionRows, has_tables

        return PostgresRetentionRows(self._rows, has_tables(self._db))

    def checkpoints(self) -> Iterator[CheckpointRow]:
        for row in self._rows("SELECT id, segment_id, note FROM checkpoints ORDER BY id"):
            yield CheckpointRow(int(row[0]), int(row[1]), str(row[2]))


def _id_list(text: Any) -> list[str]:
    try:
        ids = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return ["<damaged>"]
    return [str(item) for item in ids] if isinstance(ids, list) else ["<damaged>"]
