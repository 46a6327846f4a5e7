"""Every SQL statement retention runs, for the PostgreSQL store: ``retention_sql``'s functions,
same names and meanings, in PostgreSQL's dialect (``retention_backend.RetentionQueries`` is
the contract both keep). The caller holds the transaction (``PostgresStore.write_transaction``,
which has taken the chain lock, or ``read_snapshot``); nothing here commits.

Differences from SQLite, each for a reason:

- an event has no rowid: its key is its primary key ``(time_ns, id)``, and events are walked in
  that order (the index the table has), so "oldest first" is by event time;
- ids of tombstones, rollups and holds are assigned as ``max(id) + 1`` under the chain lock, as
  every other id of the PostgreSQL vault, so concurrent monitors never interleave them;
- the size the cap counts is what live rows fill (``used_bytes``): PostgreSQL keeps a deleted
  row's space until VACUUM and then reuses it without shrinking the files, as SQLite reuses its
  free pages;
- a segment's event offsets (``event_offsets``, for compact tombstones) are read by the
  segment column, not bounded by rowids: one scan of the events table per transaction, for
  every segment that keeps some of its events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import orjson
import psycopg

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.postgres_schema import pg_id_text
from kubesentinel.vault.incident_expiry import CLOSED, IncidentAge
from kubesentinel.vault.postgres_ledger import SEALED_INCIDENTS_SQL, last_head, lock_chain
from kubesentinel.vault.retention import FacetInfo, Window
from kubesentinel.vault.retention_sql import (
    HOLD_COLUMNS,
    ROLLUP_COLUMNS,
    TABLES,
    TOMBSTONE_COLUMNS,
    reasons_json,
)
from kubesentinel.vault.tombstone import retention_seal

__all__ = [
    "RETENTION_SCHEMA",
    "PostgresRetentionRows",
    "SegmentRetentionRows",
    "append_retention_segment",
    "counts",
    "delete_events",
    "delete_incidents",
    "delete_rollups",
    "drop_evidence",
    "earlier_entries",
    "ensure_schema",
    "event_offsets",
    "event_rows",
    "evidence",
    "facets",
    "has_incident",
    "held_incidents",
    "incident_ages",
    "incident_mark",
    "incident_records",
    "incident_seqs",
    "reasons_json",
    "removed_so_far",
    "rollups_of_class",
    "sealed_incident_ids",
    "segment_figures",
    "segment_shape",
    "stats",
    "used_bytes",
    "windows",
]

Connection = psycopg.Connection[tuple[Any, ...]]

RETENTION_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tombstones (
    id bigint PRIMARY KEY,
    segment bigint NOT NULL,
    target bigint NOT NULL,
    kind text NOT NULL,
    removed bigint NOT NULL,
    entries_sha256 text NOT NULL,
    reasons text NOT NULL,
    policy text NOT NULL,
    evidence text,
    written_ns bigint NOT NULL,
    entries bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_target ON tombstones (target, id);
CREATE TABLE IF NOT EXISTS rollups (
    id bigint PRIMARY KEY,
    segment bigint NOT NULL,
    hour_ns bigint NOT NULL,
    cluster text NOT NULL,
    namespace text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    rule text NOT NULL,
    class text NOT NULL,
    count bigint NOT NULL,
    first_ns bigint NOT NULL,
    last_ns bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS rollups_class ON rollups (class, last_ns);
CREATE TABLE IF NOT EXISTS holds (
    id bigint PRIMARY KEY,
    segment bigint NOT NULL,
    incident_id text NOT NULL,
    action text NOT NULL,
    reason text NOT NULL,
    written_ns bigint NOT NULL
);
"""
_EVENT_COLUMNS: Final = 'time_ns, id, incident, role, facet, segment, "offset", length'
# What live rows of each table fill, in bytes: the row as stored, its large values at their
# stored (TOAST) size without reading them. Tables not named count whole (a few pages each).
_LIVE_BYTES: Final = {
    "events": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM events t",
    "facets": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM facets t",
    "incidents": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM incidents t",
    "checkpoints": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM checkpoints t",
    "segments": (
        "SELECT coalesce(sum(pg_column_size(data) + pg_column_size(incident_leaves) "
        "+ pg_column_size(incident_ids) + pg_column_size(ROW(id, written_ns, event_count, "
        "raw_bytes, sidecar_bytes, codec, sha256, record_count, root, head))), 0) FROM segments"
    ),
    "tombstones": (
        "SELECT coalesce(sum(pg_column_size(entries) + pg_column_size(ROW(id, segment, target, "
        "kind, removed, entries_sha256, reasons, policy, evidence, written_ns))), 0) "
        "FROM tombstones"
    ),
    "rollups": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM rollups t",
    "holds": "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM holds t",
}


def ensure_schema(db: Connection) -> None:
    """The retention tables, once (under the chain lock the write transaction holds, so two
    monitors never create them at once)."""
    if has_tables(db):
        return
    for statement in RETENTION_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement.encode())


def has_tables(db: Connection) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename = ANY(%s)",
        (list(TABLES),),
    ).fetchone()
    return row is not None and int(row[0]) == len(TABLES)


# -- what classification reads ---------------------------------------------------------------


def facets(db: Connection) -> dict[int, FacetInfo]:
    return {
        int(row[0]): FacetInfo(row[1], Priority(row[2]), row[3], row[4], row[5], row[6], row[7])
        for row in db.execute(
            "SELECT id, rule, priority, source, cluster, namespace, kind, name FROM facets"
        )
    }


def held_incidents(db: Connection) -> dict[str, str]:
    """incident id -> reason, for incidents whose last hold action is ``hold``."""
    if not has_tables(db):
        return {}
    held: dict[str, str] = {}
    for incident_id, action, reason in db.execute(
        "SELECT incident_id, action, reason FROM holds ORDER BY id"
    ):
        if action == "hold":
            held[incident_id] = reason
        else:
            held.pop(incident_id, None)
    return held


def has_incident(db: Connection, incident_id: str) -> bool:
    found = db.execute("SELECT 1 FROM incidents WHERE id = %s", (incident_id,)).fetchone()
    return found is not None


def windows(
    db: Connection,
    before_s: int,
    after_s: int,
    held: Iterable[str],
    skip: Collection[str] = (),
) -> tuple[list[Window], frozenset[int]]:
    """Every incident's evidence window, and the seqs of the held ones; ``skip``: incidents
    to leave out (a dry run's expired ones)."""
    held_ids = set(held)
    found: list[Window] = []
    held_seqs: set[int] = set()
    before, after = before_s * 1_000_000_000, after_s * 1_000_000_000
    for incident_id, seq, cluster, namespace, kind, name, first, last in db.execute(
        "SELECT id, seq, cluster, namespace, kind, name, first_ns, last_ns FROM incidents"
    ):
        if incident_id in skip:
            continue
        is_held = incident_id in held_ids
        if is_held and seq is not None:
            held_seqs.add(int(seq))
        found.append(
            Window((cluster, namespace, kind, name), first - before, last + after, is_held)
        )
    return found, frozenset(held_seqs)


def incident_seqs(db: Connection, skip: Collection[str] = ()) -> frozenset[int]:
    """The seqs of the incidents stored (events name their incident by seq)."""
    return frozenset(
        int(seq)
        for incident_id, seq in db.execute("SELECT id, seq FROM incidents WHERE seq IS NOT NULL")
        if incident_id not in skip
    )


def incident_ages(db: Connection) -> list[IncidentAge]:
    """What incident expiry reads of every incident: its link, last signal, status, and when
    the segment that last wrote it was written."""
    return [
        IncidentAge(str(row[0]), row[1], int(row[2]), row[3] == CLOSED, int(row[4]))
        for row in db.execute(
            "SELECT i.id, i.previous_id, i.last_ns, i.status, coalesce(s.written_ns, 0) "
            "FROM incidents i LEFT JOIN segments s ON s.id = i.segment"
        )
    ]


def incident_records(db: Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The incidents' rows as their records hash them (``ledger.incident_leaf``), by id (in
    byte order, as SQLite sorts them)."""
    return db.execute(
        f'{SEALED_INCIDENTS_SQL} WHERE id = ANY(%s) ORDER BY id COLLATE "C"'.encode(),
        (list(ids),),
    ).fetchall()


def sealed_incident_ids(db: Connection, segment_id: int) -> list[str]:
    """The ids of the incident states the segment sealed, in leaf order."""
    row = db.execute("SELECT incident_ids FROM segments WHERE id = %s", (segment_id,)).fetchone()
    found = _json_list(row[0]) if row is not None else []
    return [str(item) for item in found] if found is not None else []


def delete_incidents(db: Connection, ids: Sequence[str]) -> None:
    if ids:
        db.execute("DELETE FROM incidents WHERE id = ANY(%s)", (list(ids),))


def _json_list(text: Any) -> list[Any] | None:
    """A JSON array stored as text; None when it is not one (a damaged row)."""
    try:
        found = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return found if isinstance(found, list) else None


def incident_mark(db: Connection) -> tuple[int, int]:
    """Changes when an incident is added (windows must then be read again)."""
    row = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM incidents").fetchone()
    assert row is not None  # an aggregate always gives a row
    return int(row[0]), int(row[1])


def event_rows(
    db: Connection, after_rowid: Any, before_ns: int, limit: int
) -> list[tuple[Any, ...]]:
    """(key, then the event's record: time_ns, id text, incident, role, facet, segment, offset,
    length) of events after the key ``after_rowid`` (0: from the first) older than
    ``before_ns``, in key order. The key is the primary key ``(time_ns, id bytes)``."""
    if isinstance(after_rowid, tuple):
        rows = db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE time_ns < %s "  # noqa: S608 - constant
            "AND (time_ns, id) > (%s, %s) ORDER BY time_ns, id LIMIT %s",
            (before_ns, after_rowid[0], after_rowid[1], limit),
        )
    else:
        rows = db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE time_ns < %s "  # noqa: S608 - constant
            "ORDER BY time_ns, id LIMIT %s",
            (before_ns, limit),
        )
    found = []
    for row in rows:
        key = bytes(row[1])
        found.append(((row[0], key), row[0], pg_id_text(key), *row[2:]))
    return found


def evidence(db: Connection, segment_id: int) -> bytes | None:
    """A segment's evidence bytes (checked against its sha256), None when unreadable."""
    row = db.execute(
        "SELECT raw_bytes, sidecar_bytes, codec, sha256, data FROM segments WHERE id = %s",
        (segment_id,),
    ).fetchone()
    if row is None:
        return None
    size, sidecar, name, digest, data = row
    try:
        blob = codec.decompress(bytes(data), name, size + sidecar)
    except codec.CodecError:
        return None
    return blob[:size] if hashlib.sha256(blob).hexdigest() == digest else None


def rollups_of_class(
    db: Connection, class_name: str, before_ns: int, limit: int
) -> list[tuple[Any, ...]]:
    """Rollup rows (their record) of a class whose last count is older than ``before_ns``,
    oldest first."""
    if not has_tables(db):
        return []
    return db.execute(
        f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE class = %s AND last_ns < %s "  # noqa: S608
        "ORDER BY last_ns, id LIMIT %s",
        (class_name, before_ns, limit),
    ).fetchall()


def used_bytes(db: Connection) -> int:
    """Bytes of the vault's tables in use: each table with its indexes and TOAST, times the
    share of its storage that live rows fill (indexes are taken to be as full as their table).
    Space of deleted rows, which PostgreSQL reuses after VACUUM without shrinking its files,
    is not counted, as SQLite's free pages are not."""
    total = 0
    for table, whole, storage in db.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid), pg_table_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    ).fetchall():
        query = _LIVE_BYTES.get(str(table))
        if query is None or not storage:
            total += int(whole)
            continue
        row = db.execute(query.encode()).fetchone()
        live = int(row[0]) if row else 0
        total += min(int(whole), int(whole) * live // int(storage))
    return total


def counts(db: Connection) -> tuple[int, int]:
    """(events, rollup rows) in the store."""
    events = db.execute("SELECT count(*) FROM events").fetchone()
    rollups = db.execute("SELECT count(*) FROM rollups").fetchone() if has_tables(db) else (0,)
    return int(events[0] if events else 0), int(rollups[0] if rollups else 0)


# -- what applying writes --------------------------------------------------------------------


def delete_events(db: Connection, rowids: Sequence[Any]) -> None:
    """Delete events by their keys (``event_rows``' first column)."""
    if rowids:
        db.execute(
            "DELETE FROM events WHERE (time_ns, id) IN "
            "(SELECT * FROM unnest(%s::bigint[], %s::bytea[]))",
            ([key[0] for key in rowids], [key[1] for key in rowids]),
        )


def delete_rollups(db: Connection, ids: Sequence[int]) -> None:
    if ids:
        db.execute("DELETE FROM rollups WHERE id = ANY(%s)", (list(ids),))


def segment_figures(db: Connection, segment_id: int) -> tuple[int, str]:
    """(events it was sealed with, its evidence sha256)."""
    row = db.execute(
        "SELECT event_count, sha256 FROM segments WHERE id = %s", (segment_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"segment {segment_id} is missing")
    return int(row[0]), str(row[1])


def segment_shape(db: Connection, segment_id: int) -> tuple[int, int]:
    """(its record count, the incident states it sealed): its events' leaves start at
    ``record_count - event_count - incidents`` (the segment record and its facets come
    first, its incidents after). ValueError when the segment or its incident list is
    damaged: counted in Python, so a damaged row never aborts the transaction."""
    row = db.execute(
        "SELECT record_count, incident_ids FROM segments WHERE id = %s", (segment_id,)
    ).fetchone()
    ids = _json_list(row[1]) if row is not None else None
    if row is None or ids is None:
        raise ValueError(f"segment {segment_id} is missing or its incident list is damaged")
    return int(row[0]), len(ids)


def event_offsets(
    db: Connection, segments: Mapping[int, tuple[int, Sequence[Any]]]
) -> dict[int, list[int]]:
    """Evidence offsets of the stored events of each segment, in order (``segments``: id ->
    (events sealed, keys of those being removed), which only SQLite's rowid bounds need).
    Events have no rowid here and no index by segment (it would cost bytes per event): the
    segment column is matched in one scan of the events table for all the segments at once
    (a hash join), so a transaction pays one scan, not one per segment."""
    if not segments:
        return {}
    found: dict[int, list[int]] = {segment_id: [] for segment_id in segments}
    for segment_id, offset in db.execute(
        'SELECT e.segment, e."offset" FROM events e '
        "JOIN unnest(%s::bigint[]) AS wanted(id) ON e.segment = wanted.id "
        'ORDER BY e.segment, e."offset"',
        (list(segments),),
    ):
        found[int(segment_id)].append(int(offset))
    return found


def earlier_entries(db: Connection, segment_id: int) -> list[bytes]:
    """The entries blobs of the segment's earlier event tombstones."""
    if not has_tables(db):
        return []
    return [
        bytes(row[0])
        for row in db.execute(
            "SELECT entries FROM tombstones WHERE target = %s AND kind = 'event' ORDER BY id",
            (segment_id,),
        )
    ]


def removed_so_far(db: Connection, segment_id: int) -> int:
    """Events of the segment earlier tombstones removed."""
    if not has_tables(db):
        return 0
    row = db.execute(
        "SELECT coalesce(sum(removed), 0) FROM tombstones WHERE target = %s AND kind = 'event'",
        (segment_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def drop_evidence(db: Connection, segment_ids: Iterable[int]) -> None:
    """The evidence bytes of segments none of whose events is left (tombstoned)."""
    chosen = list(segment_ids)
    if chosen:
        db.execute("UPDATE segments SET data = ''::bytea WHERE id = ANY(%s)", (chosen,))


def _next_id(db: Connection, table: str) -> int:
    row = db.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}".encode()).fetchone()  # noqa: S608 - constant table
    return int(row[0]) if row else 1


def append_retention_segment(
    db: Connection,
    tombstones: Sequence[Sequence[Any]],
    rollups: Sequence[Sequence[Any]],
    holds: Sequence[Sequence[Any]],
    written_ns: int,
) -> int:
    """Insert the rows (each without its id and segment: ``TOMBSTONE_COLUMNS`` etc. from the
    third on; a tombstone's entries blob last) and the retention segment sealing them, chained
    after the last segment, under the chain lock. Returns the segment's id."""
    lock_chain(db)  # the write transaction holds it already; taken here so no caller forgets
    last_id, previous_head = last_head(db)
    segment_id = last_id + 1
    first = _next_id(db, "tombstones")
    sealed_tombstones = [(first + n, segment_id, *row[:-1]) for n, row in enumerate(tombstones)]
    first = _next_id(db, "rollups")
    sealed_rollups = [(first + n, segment_id, *row) for n, row in enumerate(rollups)]
    first = _next_id(db, "holds")
    sealed_holds = [(first + n, segment_id, *row) for n, row in enumerate(holds)]
    entries = [row[-1] for row in tombstones]
    with db.cursor() as cursor:
        if sealed_tombstones:
            cursor.executemany(
                f"INSERT INTO tombstones ({TOMBSTONE_COLUMNS}, entries) "  # noqa: S608 - constant
                f"VALUES ({', '.join(['%s'] * 11)})",
                [(*row, blob) for row, blob in zip(sealed_tombstones, entries, strict=True)],
            )
        if sealed_rollups:
            cursor.executemany(
                f"INSERT INTO rollups ({ROLLUP_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",  # noqa: S608
                sealed_rollups,
            )
        if sealed_holds:
            cursor.executemany(
                f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES ({', '.join(['%s'] * 6)})",  # noqa: S608
                sealed_holds,
            )
    seal = retention_seal(
        segment_id, written_ns, previous_head, sealed_tombstones, sealed_rollups, sealed_holds
    )
    db.execute(
        "INSERT INTO segments (id, written_ns, event_count, raw_bytes, sidecar_bytes, codec, "
        "sha256, data, incident_ids, incident_leaves, record_count, root, head) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, ''::bytea, '[]', ''::bytea, %s, %s, %s)",
        (*seal.record, seal.record_count, seal.root, seal.head),
    )
    return segment_id


# -- what verify, export and stats read ------------------------------------------------------

Rows = Callable[[str, tuple[Any, ...]], Iterator[Sequence[Any]]]


class PostgresRetentionRows:
    """Retention's rows for ``verify`` (``verify_retention.RetentionRows``), each query in the
    order verify walks it, through ``rows`` (the ledger's server-side cursors); empty for a
    vault retention never ran on."""

    def __init__(self, rows: Rows, present: bool) -> None:
        self._query = rows
        self._present = present

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        if self._present:
            yield from self._query(sql, ())

    def tombstones(self) -> Iterator[Sequence[Any]]:
        """Every tombstone (its record, then its entries blob), by sealing segment and id."""
        return self._rows(
            f"SELECT {TOMBSTONE_COLUMNS}, entries FROM tombstones ORDER BY segment, id"  # noqa: S608
        )

    def removals(self) -> Iterator[Sequence[Any]]:
        """(target, kind, evidence, entries, id) of every tombstone, by target and id."""
        return self._rows(
            "SELECT target, kind, evidence, entries, id FROM tombstones ORDER BY target, id"
        )

    def rollups(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {ROLLUP_COLUMNS} FROM rollups ORDER BY segment, id")  # noqa: S608

    def holds(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {HOLD_COLUMNS} FROM holds ORDER BY segment, id")  # noqa: S608


class SegmentRetentionRows:
    """Retention's rows (``verify_retention.RetentionRows``) of one segment, for ``vault
    export``: the tombstones, rollups and holds it sealed, and the tombstones of records
    removed from it."""

    def __init__(self, db: Connection, segment_id: int) -> None:
        self._db = db
        self._segment = segment_id
        self._present = has_tables(db)

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        if self._present:
            yield from self._db.execute(sql.encode(), (self._segment,)).fetchall()

    def tombstones(self) -> Iterator[Sequence[Any]]:
        return self._rows(
            f"SELECT {TOMBSTONE_COLUMNS}, entries FROM tombstones WHERE segment = %s ORDER BY id"  # noqa: S608
        )

    def removals(self) -> Iterator[Sequence[Any]]:
        return self._rows(
            "SELECT target, kind, evidence, entries, id FROM tombstones WHERE target = %s "
            "ORDER BY id"
        )

    def rollups(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE segment = %s ORDER BY id")  # noqa: S608

    def holds(self) -> Iterator[Sequence[Any]]:
        return self._rows(f"SELECT {HOLD_COLUMNS} FROM holds WHERE segment = %s ORDER BY id")  # noqa: S608


def stats(db: Connection) -> dict[str, Any]:
    """Retention's figures for ``vault stats``."""
    if not has_tables(db):
        return {"tombstones": 0, "records_removed": 0, "incidents_removed": 0,
                "rolled_up_events": 0, "rollup_rows": 0, "holds": []}  # fmt: skip
    tombstones, removed, incidents_removed = db.execute(
        "SELECT count(*), coalesce(sum(removed) FILTER (WHERE kind = 'event'), 0), "
        "coalesce(sum(removed) FILTER (WHERE kind = 'incident'), 0) FROM tombstones"
    ).fetchone() or (0, 0, 0)
    rollup_rows, rolled = db.execute(
        "SELECT count(*), coalesce(sum(count), 0) FROM rollups"
    ).fetchone() or (0, 0)
    held = held_incidents(db)
    return {
        "tombstones": int(tombstones),
        "records_removed": int(removed),
        "incidents_removed": int(incidents_removed),
        "rolled_up_events": int(rolled),
        "rollup_rows": int(rollup_rows),
        "holds": [{"incident_id": k, "reason": v} for k, v in sorted(held.items())],
    }
