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

from kubesentinel.errors import StoreError
from kubesentinel.runtime.scale.pgsession import SchemaSession

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
        self._session = SchemaSession(location, _CREATE, "kubesentinel-scale")
        self.name = self._session.name

    def save(self, states: Mapping[str, dict[str, Any]]) -> None:
        if not states:
            return
        now = time.time_ns()
        rows = [(key, orjson.dumps(state).decode(), now) for key, state in states.items()]
        try:
            with self._session.connect().cursor() as cur:
                cur.executemany(_UPSERT, rows)
        except psycopg.Error as exc:
            self._session.drop()
            raise StoreError(f"cannot save analyzer state to {self.name}: {exc}") from None

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            rows = (
                self._session.connect()
                .execute("SELECT workload, state FROM scale_workload_state")
                .fetchall()
            )
        except psycopg.Error as exc:
            self._session.drop()
            raise StoreError(f"cannot read analyzer state from {self.name}: {exc}") from None
        return {str(key): dict(state) for key, state in rows}

    def close(self) -> None:
        self._session.drop()
