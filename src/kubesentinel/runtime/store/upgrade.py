"""Schema 3 -> 4 in place: the vault's layout (facets, compact events, sidecars) and seals.

A store the monitor wrote before the vault is converted, not refused, in the caller's
transaction: every segment, oldest first, gets its events rewritten into the compact layout,
its evidence the sidecar of their origins and times received, and its seal; every incident a
sequence number and, filed under one last segment written now, its seal. What the store holds
from then on is provable; what was changed before the upgrade cannot be told
(``vault_meta.upgraded_from`` says the store was upgraded).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any, Final

import orjson

from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.facets import FACETS_SCHEMA, Facets
from kubesentinel.runtime.store.rows import ROLE_CODES, id_key
from kubesentinel.vault import sqlite_ledger
from kubesentinel.vault.ledger import GENESIS_HEAD

__all__ = ["to_version_4"]

_V3_EVENTS: Final = (
    "SELECT time_ns, id, incident_id, context, received_ns, origin, rule, priority, source, "
    "cluster, namespace, kind, name, pod, container_id, container_image, tactics, techniques, "
    "offset, length FROM events_v3 WHERE segment = ? ORDER BY offset, rowid"
)
_V3_INCIDENTS: Final = (
    "SELECT id, workload_key, cluster, namespace, kind, name, first_ns, last_ns, severity, "
    "risk_score, reasons, rules, tactics, techniques, event_count, event_id_count, posture, "
    "status, previous_id, context, seq FROM incidents ORDER BY seq"
)


def to_version_4(db: sqlite3.Connection, new_schema: str, *, upgraded_from: int) -> None:
    """Convert a version-3 store (``new_schema``: the tables of version 4) and seal it."""
    db.execute("DROP INDEX IF EXISTS events_incident")  # index names are global: the new
    db.execute("ALTER TABLE events RENAME TO events_v3")  # table's index takes the name
    db.execute("ALTER TABLE segments RENAME TO segments_v3")
    db.execute("ALTER TABLE incidents ADD COLUMN segment INTEGER")
    db.execute("ALTER TABLE incidents ADD COLUMN seq INTEGER")
    db.execute("UPDATE incidents SET seq = rowid")
    for statement in (new_schema + FACETS_SCHEMA + sqlite_ledger.LEDGER_SCHEMA).split(";"):
        if statement.strip():
            db.execute(statement)
    sqlite_ledger.create_meta(db, upgraded_from=upgraded_from)
    seqs = dict(db.execute("SELECT id, seq FROM incidents").fetchall())
    previous, last_id = GENESIS_HEAD, 0
    facets = Facets()
    for segment in db.execute(
        "SELECT id, written_ns, raw_bytes, codec, data FROM segments_v3 ORDER BY id"
    ).fetchall():
        previous = _convert_segment(db, segment, seqs, facets, previous)
        last_id = segment[0]
    incidents = [list(row) for row in db.execute(_V3_INCIDENTS).fetchall()]
    if incidents:
        segment_id = last_id + 1
        db.execute("UPDATE incidents SET segment = ?", (segment_id,))
        rows = [[*row[:20], segment_id, row[20]] for row in incidents]
        empty = (segment_id, time.time_ns(), 0, 0, 0, codec.CODEC, hashlib.sha256().hexdigest())
        sqlite_ledger.append_segment(
            db, empty, codec.compress(b""), (), (), rows, previous_head=previous
        )
    db.execute("DROP TABLE events_v3")
    db.execute("DROP TABLE segments_v3")


def _convert_segment(
    db: sqlite3.Connection,
    segment: tuple[Any, ...],
    seqs: dict[str, int],
    facets: Facets,
    previous: bytes,
) -> bytes:
    """One old segment in the new layout, sealed after ``previous``; its head."""
    segment_id, written_ns, size, name, data = segment
    evidence = codec.decompress(data, name, size)  # CodecError: the caller reports the store
    new_facets: list[tuple[Any, ...]] = []
    sealed = []
    side = []
    for row in db.execute(_V3_EVENTS, (segment_id,)).fetchall():
        time_ns, event_id, incident_id, role, received_ns, origin = row[:6]
        facet = facets.id_of(db, tuple(row[6:18]), segment_id, new_facets)
        offset, length = row[18], row[19]
        sealed.append((time_ns, event_id, seqs.get(incident_id), ROLE_CODES.get(role), facet,
                       segment_id, offset, length))  # fmt: skip
        side.append((offset, origin, received_ns))
    db.executemany(
        "INSERT INTO events (time_ns, id, incident, role, facet, segment, offset, length) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(r[0], id_key(r[1]), *r[2:]) for r in sealed],
    )
    blob = evidence + orjson.dumps(side)
    record = (segment_id, written_ns, len(sealed), len(evidence), len(blob) - len(evidence),
              codec.CODEC, hashlib.sha256(blob).hexdigest())  # fmt: skip
    sealed_segment = sqlite_ledger.append_segment(
        db, record, codec.compress(blob), new_facets, sealed, (), previous_head=previous
    )
    return sealed_segment.head
