"""``export.ExportSource`` over the SQLite store, inside a read transaction the caller holds.

Records are read with the queries ``vault verify`` hashes (``sqlite_ledger``), so what is
exported is what verify checks. A segment's events and facets are found without an index on
their segment: rows are only appended, so their segment never decreases in rowid order, and
a bisection over rowids finds where a segment's rows start. Were that order broken (rows
moved by hand), the segment's rebuilt root would not match and the export would say so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from kubesentinel.vault.export import Record
from kubesentinel.vault.retention_sql import (
    HOLD_COLUMNS,
    ROLLUP_COLUMNS,
    TOMBSTONE_COLUMNS,
    has_tables,
)
from kubesentinel.vault.sqlite_ledger import (
    _SEALED_EVENTS,
    _SEALED_FACETS,
    _SEALED_INCIDENTS,
    _SEGMENT_COLUMNS,
    SQLiteLedger,
    _id_list,
)
from kubesentinel.vault.verify import CheckpointRow, SegmentRow, VaultMeta

__all__ = ["SQLiteExportSource"]

_CHUNK: Final = 500  # ids per IN (...): under SQLite's smallest parameter limit
# Tables whose rows are appended in the order of a column (the segment, or the segment a
# checkpoint signs), and that column: what ``_first_rowid`` bisects.
_ORDERED: Final = {"events": "segment", "facets": "segment", "checkpoints": "segment_id"}


class SQLiteExportSource:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def meta(self) -> VaultMeta:
        return SQLiteLedger(self._db).meta()

    def incident(self, incident_id: str) -> Record | None:
        row: Record | None = self._db.execute(
            f"{_SEALED_INCIDENTS} WHERE id = ?", (incident_id,)
        ).fetchone()
        return row

    def incidents_by_seq(self, seqs: Iterable[int]) -> list[Record]:
        return self._in(f"{_SEALED_INCIDENTS} WHERE seq IN", list(seqs), "seq")

    def events_of_incident(self, seq: int) -> list[Record]:
        return self._db.execute(
            f"{_SEALED_EVENTS} WHERE incident = ? ORDER BY rowid", (seq,)
        ).fetchall()

    def events_between(self, from_ns: int, to_ns: int, namespace: str | None) -> list[Record]:
        sql = f"{_SEALED_EVENTS} WHERE time_ns BETWEEN ? AND ?"
        params: list[Any] = [from_ns, to_ns]
        if namespace is not None:
            sql += " AND facet IN (SELECT id FROM facets WHERE namespace = ?)"
            params.append(namespace)
        return self._db.execute(f"{sql} ORDER BY rowid", params).fetchall()

    def facets(self, ids: Iterable[int]) -> list[Record]:
        return self._in(f"{_SEALED_FACETS} WHERE id IN", list(ids), "id")

    def segment(self, segment_id: int) -> SegmentRow | None:
        row = self._db.execute(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE id = ?",  # noqa: S608 - constant columns
            (segment_id,),
        ).fetchone()
        if row is None:
            return None
        return SegmentRow(
            id=row[0], written_ns=row[1], event_count=row[2], raw_bytes=row[3],
            sidecar_bytes=row[4], codec=row[5], sha256=row[6], data=bytes(row[7]),
            incident_ids=_id_list(row[8]), incident_leaves=bytes(row[9]),
            record_count=row[10], root=bytes(row[11]), head=bytes(row[12]),
        )  # fmt: skip

    def segment_facets(self, segment_id: int) -> list[Record]:
        return self._rows_of("facets", _SEALED_FACETS, segment_id)

    def segment_events(self, segment_id: int) -> list[Record]:
        return self._rows_of("events", _SEALED_EVENTS, segment_id)

    def links(self, first: int, last: int) -> list[tuple[int, bytes, int, bytes]]:
        rows = self._db.execute(
            "SELECT id, root, record_count, head FROM segments WHERE id BETWEEN ? AND ? "
            "ORDER BY id",
            (first, last),
        )
        return [(row[0], bytes(row[1]), row[2], bytes(row[3])) for row in rows]

    def head(self, segment_id: int) -> bytes | None:
        row = self._db.execute("SELECT head FROM segments WHERE id = ?", (segment_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def retention(self, segment_id: int) -> _SegmentRetention:
        return _SegmentRetention(self._db, segment_id)

    def covering_checkpoint(self, segment_id: int) -> CheckpointRow | None:
        start = self._first_rowid("checkpoints", segment_id)
        row = self._db.execute(
            "SELECT id, segment_id, note FROM checkpoints WHERE rowid >= ? ORDER BY rowid LIMIT 1",
            (start,),
        ).fetchone()
        return None if row is None else CheckpointRow(int(row[0]), int(row[1]), str(row[2]))

    def _rows_of(self, table: str, select: str, segment_id: int) -> list[Record]:
        """Every row the segment wrote to ``table`` (whatever segment it names now), in
        rowid order: the rows between where its segment's rows start and the next's."""
        start = self._first_rowid(table, segment_id)
        end = self._first_rowid(table, segment_id + 1)
        return self._db.execute(
            f"{select} WHERE rowid >= ? AND rowid < ? ORDER BY rowid", (start, end)
        ).fetchall()

    def _first_rowid(self, table: str, segment_id: int) -> int:
        """The smallest rowid r such that the rows from r on name ``segment_id`` or later."""
        column = _ORDERED[table]
        low, high = self._db.execute(
            f"SELECT coalesce(min(rowid), 0), coalesce(max(rowid), 0) + 1 FROM {table}"  # noqa: S608 - constant table
        ).fetchone()
        probe = (
            f"SELECT {column} >= ? FROM {table} WHERE rowid >= ? "  # noqa: S608 - constant names
            "ORDER BY rowid LIMIT 1"
        )
        while low < high:
            middle = (low + high) // 2
            row = self._db.execute(probe, (segment_id, middle)).fetchone()
            if row is None or row[0]:
                high = middle
            else:
                low = middle + 1
        return int(low)

    def _in(self, select: str, values: list[Any], order: str) -> list[Record]:
        rows: list[Record] = []
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows.extend(self._db.execute(f"{select} ({marks}) ORDER BY {order}", chunk))
        return rows


class _SegmentRetention:
    """Retention's rows (``verify_retention.RetentionRows``) of one segment: the tombstones,
    rollups and holds it sealed, and the tombstones of records removed from it."""

    def __init__(self, db: sqlite3.Connection, segment_id: int) -> None:
        self._db = db
        self._segment = segment_id
        self._present = has_tables(db)

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        if self._present:
            yield from self._db.execute(sql, (self._segment,))

    def tombstones(self) -> Iterator[Sequence[Any]]:
        return self._rows(
            f"SELECT {TOMBSTONE_COLUMNS}, entries FROM tombstones WHERE segment = ? ORDER BY id"  # noqa: S608
        )

    def removals(self) -> Iterator[Sequence[Any]]:
        return self._rows(
            "SELECT target, kind, evidence, entries, id FROM tombstones WHERE target = ? "
            "ORDER BY id"
        )

    def rollups(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE segment = ? ORDER BY id")  # noqa: S608

    def holds(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {HOLD_COLUMNS} FROM holds WHERE segment = ? ORDER BY id")  # noqa: S608
