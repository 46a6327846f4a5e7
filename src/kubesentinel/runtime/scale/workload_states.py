"""The analyzer's per-workload state in the PostgreSQL vault's schema, for moved partitions.

Table ``scale_workload_state`` (workload key, its state as JSON from
``ai.workload_state.export_workload``, when it was saved), beside the vault's tables but not
part of its sealed chain: it is working state, not evidence. Written when a worker releases a
partition and every ``SAVE_INTERVAL_S`` for the partitions it holds; read when one claims a
partition. A worker killed outright loses what it learned since its last save.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

from kubesentinel.errors import StoreError
from kubesentinel.runtime.store.urls import parse_postgres_url

SAVE_INTERVAL_S: Final = 60.0
_CREATE: Final = (
    "CREATE TABLE IF NOT EXISTS scale_workload_state "
    "(workload text PRIMARY KEY, state jsonb NOT NULL, saved_ns bigint NOT NULL)"
)
_UPSERT: Final = (
    "INSERT INTO scale_workload_state (workload, state, saved_ns) VALUES (%s, %s, %s) "
    "ON CONFLICT (workload) DO UPDATE SET state = excluded.state, saved_ns = excluded.saved_ns"
)


class WorkloadStates:
    """Saved per-workload analyzer state in the schema of the vault at ``location``."""

    def __init__(self, location: str) -> None:
        target = parse_postgres_url(location)
        self._conninfo = target.conninfo
        self._schema = target.schema
        self.name = target.name
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def save(self, states: Mapping[str, dict[str, Any]]) -> None:
        if not states:
            return
        now = time.time_ns()
        rows = [(key, orjson.dumps(state).decode(), now) for key, state in states.items()]
        try:
            with self._connect().cursor() as cur:
                cur.executemany(_UPSERT, rows)
        except psycopg.Error as exc:
            self._drop()
            raise StoreError(f"cannot save analyzer state to {self.name}: {exc}") from None

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            rows = (
                self._connect()
                .execute("SELECT workload, state FROM scale_workload_state")
                .fetchall()
            )
        except psycopg.Error as exc:
            self._drop()
            raise StoreError(f"cannot read analyzer state from {self.name}: {exc}") from None
        return {str(key): dict(state) for key, state in rows}

    def close(self) -> None:
        self._drop()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10,
                                   application_name="kubesentinel-scale")  # fmt: skip
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            conn.execute(_CREATE)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
