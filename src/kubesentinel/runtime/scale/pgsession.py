"""One autocommit connection to the PostgreSQL vault's schema, for the scale-out's working
tables beside the vault's (analyzer state, fencing tokens): made on first use, with its table
created if missing, and dropped after an error so the next use reconnects."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from kubesentinel.runtime.store.urls import parse_postgres_url


class SchemaSession:
    def __init__(self, location: str, create_table: str, application_name: str) -> None:
        target = parse_postgres_url(location)
        self._conninfo = target.conninfo
        self._schema = target.schema
        self._create = create_table
        self._application = application_name
        self.name = target.name
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10,
                                   application_name=self._application)  # fmt: skip
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            conn.execute(self._create)
            self._conn = conn
        return self._conn

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
