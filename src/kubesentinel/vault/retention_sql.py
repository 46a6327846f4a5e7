"""Every SQL statement retention runs, for the SQLite store; ``retention_pg`` is the same for
PostgreSQL (``retention_backend.RetentionQueries`` is the contract both keep). The caller
holds the transaction (``SQLiteStore.write_transaction`` or ``read_snapshot``); nothing here
commits.

Tables (created by the first prune or hold, so stores of schema 4 need no migration):

- ``tombstones``: what retention removed from a segment (``tombstone``), entries as a blob;
- ``rollups``: counts of rolled-up noise per workload, rule and hour;
- ``holds``: legal holds placed and released, in order.

Each row names the retention segment that sealed it (``segment``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import orjson

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.store import codec
from kubesentinel.vault.incident_expiry import CLOSED, IncidentAge
from kubesentinel.vault.retention import FacetInfo, Window
from kubesentinel.vault.tombstone import retention_seal

# The functions are its public API: RetentionQueries (retention_backend) names them.
__all__ = [
    "RETENTION_SCHEMA",
    "SQLiteRetentionRows",
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

RETENTION_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tombstones (
    id INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    target INTEGER NOT NULL,
    kind TEXT NOT NULL,
    removed INTEGER NOT NULL,
    entries_sha256 TEXT NOT NULL,
    reasons TEXT NOT NULL,
    policy TEXT NOT NULL,
    evidence TEXT,
    written_ns INTEGER NOT NULL,
    entries BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_target ON tombstones (target, id);
CREATE TABLE IF NOT EXISTS rollups (
    id INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    hour_ns INTEGER NOT NULL,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    rule TEXT NOT NULL,
    class TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rollups_class ON rollups (class, last_ns);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    incident_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    written_ns INTEGER NOT NULL
);
"""
TABLES: Final = ("tombstones", "rollups", "holds")
# Each row as its record hashes it (tombstone.py), in the order verify seals them.
TOMBSTONE_COLUMNS: Final = (
    "id, segment, target, kind, removed, entries_sha256, reasons, policy, evidence, written_ns"
)
ROLLUP_COLUMNS: Final = (
    "id, segment, hour_ns, cluster, namespace, kind, name, rule, class, count, first_ns, last_ns"
)
HOLD_COLUMNS: Final = "id, segment, incident_id, action, reason, written_ns"


def ensure_schema(db: sqlite3.Connection) -> None:
    for statement in RETENTION_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def has_tables(db: sqlite3.Connection) -> bool:
    found = {
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)", TABLES
        )
    }
    return len(found) == len(TABLES)


# -- what classification reads ---------------------------------------------------------------


def facets(db: sqlite3.Connection) -> dict[int, FacetInfo]:
    return {
        int(row[0]): FacetInfo(row[1], Priority(row[2]), row[3], row[4], row[5], row[6], row[7])
        for row in db.execute(
            "SELECT id, rule, priority, source, cluster, namespace, kind, name FROM facets"
        )
    }


def held_incidents(db: sqlite3.Connection) -> dict[str, str]:
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


def has_incident(db: sqlite3.Connection, incident_id: str) -> bool:
    return db.execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone() is not None


def windows(
    db: sqlite3.Connection,
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


def incident_seqs(db: sqlite3.Connection, skip: Collection[str] = ()) -> frozenset[int]:
    """The seqs of the incidents stored (events name their incident by seq)."""
    return frozenset(
        int(seq)
        for incident_id, seq in db.execute("SELECT id, seq FROM incidents WHERE seq IS NOT NULL")
        if incident_id not in skip
    )


def incident_ages(db: sqlite3.Connection) -> list[IncidentAge]:
    """What incident expiry reads of every incident: its link, last signal, status, and when
    the segment that last wrote it was written."""
    return [
        IncidentAge(str(row[0]), row[1], int(row[2]), row[3] == CLOSED, int(row[4]))
        for row in db.execute(
            "SELECT i.id, i.previous_id, i.last_ns, i.status, coalesce(s.written_ns, 0) "
            "FROM incidents i LEFT JOIN segments s ON s.id = i.segment"
        )
    ]


def incident_records(db: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The incidents' rows as their records hash them (``ledger.incident_leaf``), by id."""
    from kubesentinel.vault.sqlite_ledger import SEALED_INCIDENTS_SQL

    return db.execute(
        f"{SEALED_INCIDENTS_SQL} WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",  # noqa: S608 - constant
        (orjson.dumps(list(ids)).decode(),),
    ).fetchall()


def sealed_incident_ids(db: sqlite3.Connection, segment_id: int) -> list[str]:
    """The ids of the incident states the segment sealed, in leaf order."""
    row = db.execute("SELECT incident_ids FROM segments WHERE id = ?", (segment_id,)).fetchone()
    found = orjson.loads(row[0]) if row is not None else []
    return [str(item) for item in found] if isinstance(found, list) else []


def delete_incidents(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    db.executemany("DELETE FROM incidents WHERE id = ?", ((i,) for i in ids))


def incident_mark(db: sqlite3.Connection) -> tuple[int, int]:
    """Changes when an incident is added (windows must then be read again)."""
    row = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM incidents").fetchone()
    return int(row[0]), int(row[1])


def event_rows(
    db: sqlite3.Connection, after_rowid: int, before_ns: int, limit: int
) -> list[tuple[Any, ...]]:
    """(rowid, then the event's record: time_ns, id text, incident, role, facet, segment,
    offset, length) of events after ``after_rowid`` older than ``before_ns``, in write order."""
    from kubesentinel.vault.sqlite_ledger import ID_TEXT_SQL

    sql = (
        f"SELECT rowid, time_ns, {ID_TEXT_SQL}, incident, role, facet, segment, offset, length "  # noqa: S608 - constant
        "FROM events WHERE rowid > ? AND time_ns < ? ORDER BY rowid LIMIT ?"
    )
    return db.execute(sql, (after_rowid, before_ns, limit)).fetchall()


def evidence(db: sqlite3.Connection, segment_id: int) -> bytes | None:
    """A segment's evidence bytes (checked against its sha256), None when unreadable."""
    row = db.execute(
        "SELECT raw_bytes, sidecar_bytes, codec, sha256, data FROM segments WHERE id = ?",
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
    db: sqlite3.Connection, class_name: str, before_ns: int, limit: int
) -> list[tuple[Any, ...]]:
    """Rollup rows (their record) of a class whose last count is older than ``before_ns``,
    oldest first."""
    if not has_tables(db):
        return []
    sql = (
        f"SELECT {ROLLUP_COLUMNS} FROM rollups WHERE class = ? AND last_ns < ? "  # noqa: S608
        "ORDER BY last_ns, id LIMIT ?"
    )
    return db.execute(sql, (class_name, before_ns, limit)).fetchall()


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the database file in use (free pages are reused by the next writes)."""
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(page_size) * (int(pages) - int(free))


def counts(db: sqlite3.Connection) -> tuple[int, int]:
    """(events, rollup rows) in the store."""
    events = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    rollups = int(db.execute("SELECT count(*) FROM rollups").fetchone()[0]) if has_tables(db) else 0
    return events, rollups


# -- what applying writes --------------------------------------------------------------------


def delete_events(db: sqlite3.Connection, rowids: Sequence[int]) -> None:
    db.executemany("DELETE FROM events WHERE rowid = ?", ((r,) for r in rowids))


def delete_rollups(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    db.executemany("DELETE FROM rollups WHERE id = ?", ((i,) for i in ids))


def segment_figures(db: sqlite3.Connection, segment_id: int) -> tuple[int, str]:
    """(events it was sealed with, its evidence sha256)."""
    row = db.execute(
        "SELECT event_count, sha256 FROM segments WHERE id = ?", (segment_id,)
    ).fetchone()
    return int(row[0]), str(row[1])


def segment_shape(db: sqlite3.Connection, segment_id: int) -> tuple[int, int]:
    """(its record count, the incident states it sealed): its events' leaves start at
    ``record_count - event_count - incidents`` (the segment record and its facets come
    first, its incidents after)."""
    row = db.execute(
        "SELECT record_count, json_array_length(incident_ids) FROM segments WHERE id = ?",
        (segment_id,),
    ).fetchone()
    return int(row[0]), int(row[1])


def event_offsets(
    db: sqlite3.Connection, segments: Mapping[int, tuple[int, Sequence[int]]]
) -> dict[int, list[int]]:
    """Evidence offsets of the stored events of each segment, in order; ``segments``: id ->
    (the events it sealed, the rowids of those of them being removed). There is no index by
    segment (it would cost bytes per event); a segment's events were inserted in one
    transaction, so their rowids are consecutive and bounded by any one of them."""
    found: dict[int, list[int]] = {}
    for segment_id, (event_count, rowids) in segments.items():
        if not rowids:
            continue
        low, high = min(rowids) - event_count, max(rowids) + event_count
        found[segment_id] = [
            int(row[0])
            for row in db.execute(
                "SELECT offset FROM events WHERE rowid BETWEEN ? AND ? AND segment = ? "
                "ORDER BY offset",
                (low, high, segment_id),
            )
        ]
    return found


def earlier_entries(db: sqlite3.Connection, segment_id: int) -> list[bytes]:
    """The entries blobs of the segment's earlier event tombstones."""
    if not has_tables(db):
        return []
    return [
        bytes(row[0])
        for row in db.execute(
            "SELECT entries FROM tombstones WHERE target = ? AND kind = 'event' ORDER BY id",
            (segment_id,),
        )
    ]


def removed_so_far(db: sqlite3.Connection, segment_id: int) -> int:
    """Events of the segment earlier tombstones removed."""
    if not has_tables(db):
        return 0
    row = db.execute(
        "SELECT coalesce(sum(removed), 0) FROM tombstones WHERE target = ? AND kind = 'event'",
        (segment_id,),
    ).fetchone()
    return int(row[0])


def drop_evidence(db: sqlite3.Connection, segment_ids: Iterable[int]) -> None:
    """The evidence bytes of segments none of whose events is left (tombstoned)."""
    db.executemany("UPDATE segments SET data = x'' WHERE id = ?", ((s,) for s in segment_ids))


def append_retention_segment(
    db: sqlite3.Connection,
    tombstones: Sequence[Sequence[Any]],
    rollups: Sequence[Sequence[Any]],
    holds: Sequence[Sequence[Any]],
    written_ns: int,
) -> int:
    """Insert the rows (each without its id and segment: ``TOMBSTONE_COLUMNS`` etc. from the
    third on; a tombstone's entries blob last) and the retention segment sealing them, chained
    after the last segment. Returns the segment's id."""
    from kubesentinel.vault.sqlite_ledger import last_head

    last_id, previous_head = last_head(db)
    segment_id = last_id + 1
    sealed_tombstones = []
    for row in tombstones:
        *fields, entries = row
        cursor = db.execute(
            f"INSERT INTO tombstones ({TOMBSTONE_COLUMNS}, entries) "  # noqa: S608 - constant
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (segment_id, *fields, entries),
        )
        sealed_tombstones.append((cursor.lastrowid, segment_id, *fields))
    sealed_rollups = []
    for row in rollups:
        cursor = db.execute(
            f"INSERT INTO rollups ({ROLLUP_COLUMNS}) "  # noqa: S608 - constant
            "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (segment_id, *row),
        )
        sealed_rollups.append((cursor.lastrowid, segment_id, *row))
    sealed_holds = []
    for row in holds:
        cursor = db.execute(
            f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?)",  # noqa: S608
            (segment_id, *row),
        )
        sealed_holds.append((cursor.lastrowid, segment_id, *row))
    seal = retention_seal(
        segment_id, written_ns, previous_head, sealed_tombstones, sealed_rollups, sealed_holds
    )
    db.execute(
        "INSERT INTO segments (id, written_ns, event_count, raw_bytes, sidecar_bytes, codec, "
        "sha256, data, incident_ids, incident_leaves, record_count, root, head) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, x'', '[]', x'', ?, ?, ?)",
        (*seal.record, seal.record_count, seal.root, seal.head),
    )
    return segment_id


# -- what verify and stats read --------------------------------------------------------------


class SQLiteRetentionRows:
    """Retention's rows for ``verify`` (``verify_retention.RetentionRows``), each query in the
    order verify walks it; empty for a store retention never ran on."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._present = has_tables(db)

    def _rows(self, sql: str) -> Iterator[Sequence[Any]]:
        if self._present:
            yield from self._db.cursor().execute(sql)

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


def stats(db: sqlite3.Connection) -> dict[str, Any]:
    """Retention's figures for ``vault stats``."""
    if not has_tables(db):
        return {"tombstones": 0, "records_removed": 0, "incidents_removed": 0,
                "rolled_up_events": 0, "rollup_rows": 0, "holds": []}  # fmt: skip
    tombstones, removed = db.execute(
        "SELECT count(*), coalesce(sum(removed), 0) FROM tombstones WHERE kind = 'event'"
    ).fetchone()
    rollup_rows, rolled = db.execute(
        "SELECT count(*), coalesce(sum(count), 0) FROM rollups"
    ).fetchone()
    other_tombstones, incidents_removed = db.execute(
        "SELECT count(*), coalesce(sum(CASE kind WHEN 'incident' THEN removed END), 0) "
        "FROM tombstones WHERE kind != 'event'"
    ).fetchone()
    held = held_incidents(db)
    return {
        "tombstones": int(tombstones) + int(other_tombstones),
        "records_removed": int(removed),
        "incidents_removed": int(incidents_removed),
        "rolled_up_events": int(rolled),
        "rollup_rows": int(rollup_rows),
        "holds": [{"incident_id": k, "reason": v} for k, v in sorted(held.items())],
    }


def reasons_json(reasons: dict[tuple[str, str, str], int]) -> str:
    """[[class, action, why, count], ...] sorted: what a tombstone says went and why."""
    return orjson.dumps([[*key, n] for key, n in sorted(reasons.items())]).decode()
