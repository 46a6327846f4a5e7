"""The vault's tables in the SQLite store: segment seals, checkpoints, the store's identity.

``runtime/store/sqlite.py`` owns the store's connection and transactions; this module owns
what makes its rows provable: the schema additions (and the upgrade that seals a store written
before them), sealing a write, signing checkpoints, and reading it all back for ``verify``.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

from kubesentinel.errors import StoreError
from kubesentinel.vault.ledger import GENESIS_HEAD, Seal, seal
from kubesentinel.vault.signer import Signer
from kubesentinel.vault.verify import CheckpointRow, SegmentRow, VaultMeta

__all__ = [
    "CHECKPOINT_INTERVAL_NS",
    "LEDGER_SCHEMA",
    "SQLiteLedger",
    "create_meta",
    "seal_existing",
    "upgrade_statements",
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
# Columns a version-3 store lacks, with values that read as "not sealed yet".
_UPGRADE_COLUMNS: Final = (
    "ALTER TABLE segments ADD COLUMN record_count INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE segments ADD COLUMN incident_ids TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE segments ADD COLUMN incident_leaves BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE segments ADD COLUMN root BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE segments ADD COLUMN head BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE incidents ADD COLUMN segment INTEGER",
)
_SEGMENT_RECORD_COLUMNS: Final = "id, written_ns, event_count, raw_bytes, codec, sha256"
_SEGMENT_COLUMNS: Final = (
    f"{_SEGMENT_RECORD_COLUMNS}, data, incident_ids, incident_leaves, record_count, root, head"
)
_INSERT_SEGMENT: Final = (
    f"INSERT INTO segments ({_SEGMENT_COLUMNS}) "  # noqa: S608 - constant column list
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (segment_id, written_ns, note) VALUES (?, ?, ?)"
)


def upgrade_statements() -> tuple[str, ...]:
    """Version 3 -> 4: the columns and tables of the vault (then ``seal_existing``)."""
    tables = tuple(s.strip() for s in LEDGER_SCHEMA.split(";") if s.strip())
    return (*_UPGRADE_COLUMNS, *tables)


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


def append_segment(
    db: sqlite3.Connection,
    segment: tuple[int, int, int, int, str, str],
    data: bytes,
    event_rows: Sequence[Sequence[Any]],
    incident_rows: Sequence[Sequence[Any]],
    *,
    previous_head: bytes,
) -> Seal:
    """Insert a segment row sealing ``event_rows`` and ``incident_rows`` (already written,
    each with the segment id last) after the segment whose head is ``previous_head``."""
    sealed = seal(previous_head, segment, event_rows, incident_rows)
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


def seal_existing(db: sqlite3.Connection, event_select: str, incident_select: str) -> None:
    """Seal every segment of a store written before the vault (schema 3), oldest first, and
    file every incident under one last segment written now: what the store holds from here on
    is provable; what was changed before the upgrade cannot be told."""
    previous = GENESIS_HEAD
    events = db.cursor().execute(f"{event_select} ORDER BY segment, offset")
    pending = events.fetchone()
    for segment in db.execute(
        f"SELECT {_SEGMENT_RECORD_COLUMNS} FROM segments ORDER BY id"  # noqa: S608
    ).fetchall():
        rows = []
        while pending is not None and pending[-1] == segment[0]:
            rows.append(pending)
            pending = events.fetchone()
        sealed = seal(previous, segment, rows, ())
        db.execute(
            "UPDATE segments SET record_count = ?, root = ?, head = ? WHERE id = ?",
            (sealed.record_count, sealed.root, sealed.head, segment[0]),
        )
        previous = sealed.head
    # Events of no segment cannot exist in a version-3 store; left over, they fail verify.
    last_id, _ = last_head(db)
    incidents = db.execute(incident_select).fetchall()
    if not incidents:
        return
    segment_id = last_id + 1
    db.execute("UPDATE incidents SET segment = ?", (segment_id,))
    rows = [(*row, segment_id) for row in incidents]
    from kubesentinel.runtime.store import codec  # the evidence codec, for an empty segment

    empty = (segment_id, time.time_ns(), 0, 0, codec.CODEC, _EMPTY_SHA256)
    append_segment(db, empty, codec.compress(b""), (), rows, previous_head=previous)


_EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class SQLiteLedger:
    """``LedgerReader`` over a store connection, inside a read transaction the caller holds."""

    def __init__(self, db: sqlite3.Connection, event_select: str, incident_select: str) -> None:
        self._db = db
        self._event_select = event_select
        self._incident_select = incident_select

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
        for row in cursor.execute(f"SELECT {_SEGMENT_COLUMNS} FROM segments ORDER BY id"):  # noqa: S608
            yield SegmentRow(
                id=row[0], written_ns=row[1], event_count=row[2], raw_bytes=row[3],
                codec=row[4], sha256=row[5], data=bytes(row[6]),
                incident_ids=_id_list(row[7]), incident_leaves=bytes(row[8]),
                record_count=row[9], root=bytes(row[10]), head=bytes(row[11]),
            )  # fmt: skip

    def event_rows(self) -> Iterator[Sequence[Any]]:
        # Write order is rowid order (rows are only appended); verify checks it holds.
        yield from self._db.cursor().execute(f"{self._event_select} ORDER BY rowid")

    def incident_rows(self) -> Iterator[Sequence[Any]]:
        yield from self._db.cursor().execute(self._incident_select)

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
