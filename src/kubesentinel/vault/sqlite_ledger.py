"""The vault's tables in the SQLite store: segment seals, checkpoints, the store's identity.

``runtime/store/sqlite.py`` owns the store's connection and transactions; this module owns
what makes its rows provable: the schema additions (and the upgrade that seals a store written
before them), sealing a write, signing checkpoints, and reading it all back for ``verify``.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Final

import orjson

from kubesentinel.errors import StoreError
from kubesentinel.vault.ledger import GENESIS_HEAD, Seal, seal
from kubesentinel.vault.signer import Signer
from kubesentinel.vault.verify import CheckpointRow, SegmentRow, VaultMeta
from kubesentinel.vault.verify_retention import RetentionRows

__all__ = [
    "CHECKPOINT_INTERVAL_NS",
    "ID_TEXT_SQL",
    "LEDGER_SCHEMA",
    "SQLiteLedger",
    "create_meta",
]

# A checkpoint is signed after a write when the last is this old, and when the store closes:
# a crash leaves at most this much of the chain unsigned (still chained, see docs).
CHECKPOINT_INTERVAL_NS: Final = 60 * 1_000_000_000

LEDGER_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS vault_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    store_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    public_key BLOB,
    created_ns INTEGER NOT NULL,
    sealed_from_ns INTEGER NOT NULL,
    upgraded_from INTEGER
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    written_ns INTEGER NOT NULL,
    note TEXT NOT NULL
);
"""
_SEGMENT_RECORD_COLUMNS: Final = (
    "id, written_ns, event_count, raw_bytes, sidecar_bytes, codec, sha256"
)
_SEGMENT_COLUMNS: Final = (
    f"{_SEGMENT_RECORD_COLUMNS}, data, incident_ids, incident_leaves, record_count, root, head"
)
_INSERT_SEGMENT: Final = (
    f"INSERT INTO segments ({_SEGMENT_COLUMNS}) "  # noqa: S608 - constant column list
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What verify reads: every column a record hashes, in the order it hashes them.
# The id as its record hashes it, converted by SQLite (rows.id_text's rules, tested to agree):
# 16 bytes are a hex id, "u" and 16 bytes a UUID; a damaged one is marked and fails its record.
_ID_TEXT: Final = """CASE
    WHEN typeof(id) != 'blob' THEN id
    WHEN length(id) = 16 THEN lower(hex(id))
    WHEN length(id) = 17 AND substr(id, 1, 1) = x'75' THEN lower(
        substr(hex(id), 3, 8) || '-' || substr(hex(id), 11, 4) || '-' || substr(hex(id), 15, 4)
        || '-' || substr(hex(id), 19, 4) || '-' || substr(hex(id), 23, 12))
    ELSE 'damaged id x' || hex(id) END"""
ID_TEXT_SQL: Final = _ID_TEXT  # for retention's reads of event records (retention_sql)
_SEALED_EVENTS: Final = (
    f"SELECT time_ns, {_ID_TEXT}, incident, role, facet, segment, offset, length FROM events"  # noqa: S608
)
_SEALED_FACETS: Final = (
    "SELECT id, segment, rule, priority, source, cluster, namespace, kind, name, pod, "
    "container_id, container_image, tactics, techniques FROM facets"
)
_SEALED_INCIDENTS: Final = (
    "SELECT id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, "
    "risk_score, reasons, rules, tactics, techniques, event_count, event_id_count, posture, "
    "status, previous_id, context, segment, seq FROM incidents"
)
SEALED_INCIDENTS_SQL: Final = _SEALED_INCIDENTS  # for retention's tombstones (retention_sql)
_INSERT_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (segment_id, written_ns, note) VALUES (?, ?, ?)"
)


def create_meta(db: sqlite3.Connection, *, upgraded_from: int | None = None) -> None:
    """The store's identity: a random id, and the origin its checkpoints name."""
    store_id = uuid.uuid4().hex
    now = time.time_ns()
    db.execute(
        "INSERT INTO vault_meta (id, store_id, origin, created_ns, sealed_from_ns, "
        "upgraded_from) VALUES (1, ?, ?, ?, ?, ?)",
        (store_id, f"kubesentinel.vault/{store_id}", now, now, upgraded_from),
    )


def last_head(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(id, head) of the newest segment, (0, genesis) for none."""
    row = db.execute("SELECT id, head FROM segments ORDER BY id DESC LIMIT 1").fetchone()
    return (0, GENESIS_HEAD) if row is None else (int(row[0]), bytes(row[1]))


def append_segment(  # noqa: PLR0917 - the parts of one segment, in sealing order
    db: sqlite3.Connection,
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


def add_checkpoint(db: sqlite3.Connection, segment_id: int, note: str) -> None:
    db.execute(_INSERT_CHECKPOINT, (segment_id, time.time_ns(), note))


def sign_checkpoint(db: sqlite3.Connection, signer: Signer, segment_id: int, head: bytes) -> None:
    """Sign the chain up to ``segment_id`` (its ``head``), linked to the last checkpoint. The
    first checkpoint records the signer's public key; another key is refused afterwards."""
    origin, public_key = db.execute(
        "SELECT origin, public_key FROM vault_meta WHERE id = 1"
    ).fetchone()
    if public_key is None:
        db.execute("UPDATE vault_meta SET public_key = ? WHERE id = 1", (signer.public_key,))
    elif bytes(public_key) != signer.public_key:
        raise StoreError(
            f"the signing key {signer.path} is not the key this store was sealed with",
            file=str(signer.path),
            hint="point forensics.signing_key at the store's key; a new key needs a new store",
        )
    last = last_checkpoint(db)
    previous = None if last is None else signer.note_hash(last[1])
    records = records_up_to(db, segment_id, last)
    add_checkpoint(db, segment_id, signer.sign(origin, segment_id, head, records, previous))


def records_up_to(db: sqlite3.Connection, segment_id: int, last: tuple[int, str] | None) -> int:
    """Records in segments 1..``segment_id``: the last checkpoint's count plus the segments
    after it, so signing costs the same however large the store has grown."""
    since, base = 0, 0
    if last is not None:
        since, base = last[0], _signed_records(last[1])
    added = db.execute(
        "SELECT coalesce(sum(record_count), 0) FROM segments WHERE id > ? AND id <= ?",
        (since, segment_id),
    ).fetchone()[0]
    return base + int(added)


def _signed_records(note: str) -> int:
    """The ``records`` line of a checkpoint this store signed."""
    for line in note.splitlines():
        if line.startswith("records "):
            return int(line.removeprefix("records "))
    raise StoreError("the last checkpoint has no records line: damaged", hint=_TAMPER_HINT)


_TAMPER_HINT: Final = "run `kubesentinel vault verify`; keep a copy of the file"


def last_checkpoint(db: sqlite3.Connection) -> tuple[int, str] | None:
    """(segment id, note) of the newest checkpoint."""
    row = db.execute("SELECT segment_id, note FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


class SQLiteLedger:
    """``LedgerReader`` over a store connection, inside a read transaction the caller holds.

    ``segments`` and ``incidents`` narrow it to what one command read (``verify(only=...)``):
    the rows of those segments and incidents, every segment's seal but only their evidence.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        segments: Collection[int] | None = None,
        incidents: Collection[str] | None = None,
    ) -> None:
        self._db = db
        self._segments = None if segments is None else orjson.dumps(sorted(segments)).decode()
        self._incidents = None if incidents is None else orjson.dumps(sorted(incidents)).decode()

    def _in(self, column: str, chosen: str | None) -> tuple[str, tuple[str, ...]]:
        if chosen is None:
            return "", ()
        return f" WHERE {column} IN (SELECT value FROM json_each(?))", (chosen,)  # noqa: S608

    def meta(self) -> VaultMeta:
        row = self._db.execute(
            "SELECT store_id, origin, public_key, created_ns, sealed_from_ns, upgraded_from "
            "FROM vault_meta WHERE id = 1"
        ).fetchone()
        if row is None:
            raise ValueError("the store has no vault identity (vault_meta is empty)")
        return VaultMeta(row[0], row[1], bytes(row[2] or b""), row[3], row[4], row[5])

    def segments(self) -> Iterator[SegmentRow]:
        cursor = self._db.cursor()
        columns = _SEGMENT_COLUMNS
        params: tuple[str, ...] = ()
        if self._segments is not None:  # the evidence of the segments asked about only
            columns = _SEGMENT_COLUMNS.replace(
                ", data,",
                ", CASE WHEN id IN (SELECT value FROM json_each(?)) THEN data ELSE x'' END,",
            )
            params = (self._segments,)
        for row in cursor.execute(f"SELECT {columns} FROM segments ORDER BY id", params):  # noqa: S608
            yield SegmentRow(
                id=row[0], written_ns=row[1], event_count=row[2], raw_bytes=row[3],
                sidecar_bytes=row[4], codec=row[5], sha256=row[6], data=bytes(row[7]),
                incident_ids=_id_list(row[8]), incident_leaves=bytes(row[9]),
                record_count=row[10], root=bytes(row[11]), head=bytes(row[12]),
            )  # fmt: skip

    def event_rows(self) -> Iterator[Sequence[Any]]:
        # Write order is rowid order (rows are only appended); verify checks it holds.
        where, params = self._in("segment", self._segments)
        yield from self._db.cursor().execute(f"{_SEALED_EVENTS}{where} ORDER BY rowid", params)

    def facet_rows(self) -> Iterator[Sequence[Any]]:
        where, params = self._in("segment", self._segments)
        yield from self._db.cursor().execute(f"{_SEALED_FACETS}{where} ORDER BY id", params)

    def incident_rows(self) -> Iterator[Sequence[Any]]:
        where, params = self._in("id", self._incidents)
        yield from self._db.cursor().execute(f"{_SEALED_INCIDENTS}{where}", params)

    def retention(self) -> RetentionRows:
        from kubesentinel.vault.retention_sql import SQLiteRetentionRows

        return SQLiteRetentionRows(self._db)

    def checkpoints(self) -> Iterator[CheckpointRow]:
        cursor = self._db.cursor()
        for row in cursor.execute("SELECT id, segment_id, note FROM checkpoints ORDER BY id"):
            yield CheckpointRow(int(row[0]), int(row[1]), str(row[2]))


def _id_list(text: Any) -> list[str]:
    try:
        ids = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return ["<damaged>"]
    return [str(item) for item in ids] if isinstance(ids, list) else ["<damaged>"]
