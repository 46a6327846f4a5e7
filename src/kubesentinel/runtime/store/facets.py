"""The ``facets`` table: what many events share (rule, workload, container...), kept once.

A writer maps each event's facet to its row id through a cache; a facet first seen is
inserted with the segment that first uses it (the vault seals it there). Ids inserted by a
write that then rolls back are forgotten, so the cache never names a row that is not there.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

__all__ = ["FACETS_SCHEMA", "FACET_COLUMNS", "Facets"]

FACET_COLUMNS: Final = (
    "rule, priority, source, cluster, namespace, kind, name, pod, container_id, "
    "container_image, tactics, techniques"
)
FACETS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS facets (
    id INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    rule TEXT NOT NULL,
    priority INTEGER NOT NULL,
    source TEXT NOT NULL,
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    pod TEXT,
    container_id TEXT,
    container_image TEXT,
    tactics TEXT NOT NULL,
    techniques TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facets_workload ON facets (namespace, name, rule);
"""
# IS, not =: pod, container and image may be NULL, and NULL = NULL is not true.
_LOOKUP: Final = (
    "SELECT id FROM facets WHERE rule IS ? AND priority IS ? AND source IS ? AND cluster IS ? "
    "AND namespace IS ? AND kind IS ? AND name IS ? AND pod IS ? AND container_id IS ? "
    "AND container_image IS ? AND tactics IS ? AND techniques IS ? ORDER BY id LIMIT 1"
)
_INSERT: Final = (
    f"INSERT INTO facets (segment, {FACET_COLUMNS}) "  # noqa: S608 - constant column list
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
MAX_CACHED: Final = 65_536  # facets are per container and rule: far fewer in practice

Facet = tuple[Any, ...]


class Facets:
    def __init__(self) -> None:
        self._ids: dict[Facet, int] = {}
        self._added: list[Facet] = []  # cached by the write in progress

    def id_of(
        self, db: sqlite3.Connection, facet: Facet, segment_id: int, new: list[tuple[Any, ...]]
    ) -> int:
        """The facet's row id, inserting it (and appending its row to ``new``) if unknown."""
        known = self._ids.get(facet)
        if known is not None:
            return known
        row = db.execute(_LOOKUP, facet).fetchone()
        if row is not None:
            facet_id = int(row[0])
        else:
            facet_id = int(db.execute(_INSERT, (segment_id, *facet)).lastrowid or 0)
            new.append((facet_id, segment_id, *facet))
        if len(self._ids) >= MAX_CACHED:
            self._ids.clear()
        self._ids[facet] = facet_id
        self._added.append(facet)
        return facet_id

    def committed(self) -> None:
        self._added.clear()

    def rolled_back(self) -> None:
        for facet in self._added:
            self._ids.pop(facet, None)
        self._added.clear()
