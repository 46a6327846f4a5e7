"""Which SQL retention runs on a store: ``retention_sql`` (SQLite) or ``retention_pg``
(PostgreSQL), two modules keeping one contract, ``RetentionQueries``.

Retention's logic (``prune``, ``hold``, ``retention_stats``) is written once against this
contract and a store's transactions (``VaultStore.write_transaction``/``read_snapshot``); only
the statements differ. A function added to one module must be added to the other, to both
modules' ``__all__`` (mypy matches a module to a protocol by its exported names) and here:
mypy then checks both modules against the contract.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.incident_expiry import IncidentAge
from kubesentinel.vault.retention import FacetInfo, Window

__all__ = ["RetentionQueries", "queries_for"]


class RetentionQueries(Protocol):
    """The functions of ``retention_sql`` and ``retention_pg`` retention calls; ``db`` is the
    connection a store transaction yields. Docstrings are in ``retention_sql``."""

    def ensure_schema(self, db: Any) -> None: ...

    def facets(self, db: Any) -> dict[int, FacetInfo]: ...

    def held_incidents(self, db: Any) -> dict[str, str]: ...

    def has_incident(self, db: Any, incident_id: str) -> bool: ...

    def windows(
        self,
        db: Any,
        before_s: int,
        after_s: int,
        held: Iterable[str],
        skip: Collection[str] = (),
    ) -> tuple[list[Window], frozenset[int]]: ...

    def incident_seqs(self, db: Any, skip: Collection[str] = ()) -> frozenset[int]: ...

    def incident_mark(self, db: Any) -> tuple[int, int]: ...

    # incident expiry (``incident_expiry``, prune's step 0)

    def incident_ages(self, db: Any) -> list[IncidentAge]: ...

    def incident_records(self, db: Any, ids: Sequence[str]) -> list[tuple[Any, ...]]: ...

    def sealed_incident_ids(self, db: Any, segment_id: int) -> list[str]: ...

    def delete_incidents(self, db: Any, ids: Sequence[str]) -> None: ...

    def event_rows(
        self, db: Any, after_rowid: Any, before_ns: int, limit: int
    ) -> list[tuple[Any, ...]]: ...

    def evidence(self, db: Any, segment_id: int) -> bytes | None: ...

    def rollups_of_class(
        self, db: Any, class_name: str, before_ns: int, limit: int
    ) -> list[tuple[Any, ...]]: ...

    def used_bytes(self, db: Any) -> int: ...

    def counts(self, db: Any) -> tuple[int, int]: ...

    def delete_events(self, db: Any, rowids: Sequence[Any]) -> None: ...

    def delete_rollups(self, db: Any, ids: Sequence[int]) -> None: ...

    def segment_figures(self, db: Any, segment_id: int) -> tuple[int, str]: ...

    def removed_so_far(self, db: Any, segment_id: int) -> int: ...

    # compact tombstones (prune's ``_compacted``)

    def segment_shape(self, db: Any, segment_id: int) -> tuple[int, int]: ...

    def event_offsets(
        self, db: Any, segments: Mapping[int, tuple[int, Sequence[Any]]]
    ) -> dict[int, list[int]]: ...

    def earlier_entries(self, db: Any, segment_id: int) -> list[bytes]: ...

    def drop_evidence(self, db: Any, segment_ids: Iterable[int]) -> None: ...

    def append_retention_segment(
        self,
        db: Any,
        tombstones: Sequence[Sequence[Any]],
        rollups: Sequence[Sequence[Any]],
        holds: Sequence[Sequence[Any]],
        written_ns: int,
    ) -> int: ...

    def stats(self, db: Any) -> dict[str, Any]: ...

    def reasons_json(self, reasons: dict[tuple[str, str, str], int]) -> str: ...


def queries_for(store: VaultStore) -> RetentionQueries:
    """The retention SQL of the store's backend (psycopg is imported for PostgreSQL only)."""
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from kubesentinel.vault import retention_sql

        return retention_sql
    from kubesentinel.vault import retention_pg

    return retention_pg
