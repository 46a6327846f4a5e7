"""``export.ExportSource`` over the PostgreSQL store, inside a REPEATABLE READ transaction the
caller holds (``PostgresStore.read_snapshot``): what ``sqlite_export`` is to SQLite.

Records are read with the queries ``vault verify`` hashes (``postgres_ledger``), the event id
turned back into its text as there, so what is exported is what verify checks. Write order is
segment, then evidence offset (the order ``PostgresLedger`` reads), and a checkpoint's rows
are in id order: a row moved by hand changes a rebuilt root, and the export says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import psycopg

from kubesentinel.runtime.store.postgres_schema import pg_id_text
from kubesentinel.vault.export import Record
from kubesentinel.vault.postgres_ledger import (
    _EVENT_ORDER,
    _SEALED_EVENTS,
    _SEALED_FACETS,
    _SEALED_INCIDENTS,
    _SEGMENT_COLUMNS,
    PostgresLedger,
    _id_list,
)
from kubesentinel.vault.retention_pg import SegmentRetentionRows
from kubesentinel.vault.verify import CheckpointRow, SegmentRow, VaultMeta

__all__ = ["PostgresExportSource"]

Connection = psycopg.Connection[tuple[Any, ...]]

_ID: Final = 1  # the event id's place in an event record


class PostgresExportSource:
    def __init__(self, db: Connection) -> None:
        self._db = db

    def meta(self) -> VaultMeta:
        return PostgresLedger(self._db).meta()

    def incident(self, incident_id: str) -> Record | None:
        row: Record | None = self._db.execute(
            f"{_SEALED_INCIDENTS} WHERE id = %s", (incident_id,)
        ).fetchone()
        return row

    def incidents_by_seq(self, seqs: Iterable[int]) -> list[Record]:
        return list[Record](
            self._db.execute(f"{_SEALED_INCIDENTS} WHERE seq = ANY(%s) ORDER BY seq", (list(seqs),))
        )

    def events_of_incident(self, seq: int) -> list[Record]:
        return self._events(f"{_SEALED_EVENTS} WHERE incident = %s{_EVENT_ORDER}", (seq,))

    def events_between(self, from_ns: int, to_ns: int, namespace: str | None) -> list[Record]:
        sql = f"{_SEALED_EVENTS} WHERE time_ns BETWEEN %s AND %s"
        params: tuple[Any, ...] = (from_ns, to_ns)
        if namespace is not None:
            sql += " AND facet IN (SELECT id FROM facets WHERE namespace = %s)"
            params = (*params, namespace)
        return self._events(sql + _EVENT_ORDER, params)

    def facets(self, ids: Iterable[int]) -> list[Record]:
        return list[Record](
            self._db.execute(f"{_SEALED_FACETS} WHERE id = ANY(%s) ORDER BY id", (list(ids),))
        )

    def segment(self, segment_id: int) -> SegmentRow | None:
        row = self._db.execute(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE id = %s",  # noqa: S608 - constant columns
            (segment_id,),
        ).fetchone()
        if row is None:
            return None
        return SegmentRow(
            id=row[0], written_ns=row[1], event_count=row[2], raw_bytes=row[3],
            sidecar_bytes=row[4], codec=row[5], sha256=row[6], data=bytes(row[7] or b""),
            incident_ids=_id_list(row[8]), incident_leaves=bytes(row[9]),
            record_count=row[10], root=bytes(row[11]), head=bytes(row[12]),
        )  # fmt: skip

    def segment_facets(self, segment_id: int) -> list[Record]:
        return list[Record](
            self._db.execute(f"{_SEALED_FACETS} WHERE segment = %s ORDER BY id", (segment_id,))
        )

    def segment_events(self, segment_id: int) -> list[Record]:
        return self._events(f"{_SEALED_EVENTS} WHERE segment = %s{_EVENT_ORDER}", (segment_id,))

    def links(self, first: int, last: int) -> list[tuple[int, bytes, int, bytes]]:
        rows = self._db.execute(
            "SELECT id, root, record_count, head FROM segments WHERE id BETWEEN %s AND %s "
            "ORDER BY id",
            (first, last),
        )
        return [(row[0], bytes(row[1]), row[2], bytes(row[3])) for row in rows]

    def head(self, segment_id: int) -> bytes | None:
        row = self._db.execute("SELECT head FROM segments WHERE id = %s", (segment_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def retention(self, segment_id: int) -> SegmentRetentionRows:
        return SegmentRetentionRows(self._db, segment_id)

    def covering_checkpoint(self, segment_id: int) -> CheckpointRow | None:
        row = self._db.execute(
            "SELECT id, segment_id, note FROM checkpoints WHERE segment_id >= %s "
            "ORDER BY id LIMIT 1",
            (segment_id,),
        ).fetchone()
        return None if row is None else CheckpointRow(int(row[0]), int(row[1]), str(row[2]))

    def _events(self, sql: str, params: tuple[Any, ...]) -> list[Record]:
        """Event records with the id as its record hashes it (text)."""
        rows: Sequence[tuple[Any, ...]] = self._db.execute(sql.encode(), params).fetchall()
        return [(*row[:_ID], pg_id_text(bytes(row[_ID])), *row[_ID + 1 :]) for row in rows]
