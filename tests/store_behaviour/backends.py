"""The two store backends as one test fixture: a SQLite file, and a PostgreSQL schema of its
own per test (dropped after). PostgreSQL unreachable: its tests skip saying why, or fail when
KUBESENTINEL_REQUIRE_SERVICES=1 (CI starts the server)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.runtime.store.open import open_store
from tests.runtime.services import REQUIRE_ENV, require_service

# The server the machine runs (trust authentication for local connections).
POSTGRES_URL = os.environ.get(
    "KUBESENTINEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class Backend:
    kind: str  # "sqlite" or "postgres"
    location: str  # what --store takes: a path or a URL
    key: Path  # the signing key every writer of this store uses
    schema: str | None = None

    def open(self, *, read_only: bool = False) -> VaultStore:
        return open_store(self.location, read_only=read_only, signing_key=self.key)

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL on the store's tables behind KubeSentinel's back (a tamperer's view)."""
        if self.kind == "sqlite":
            db = sqlite3.connect(self.location)
            try:
                with db:
                    return db.execute(statement, params).fetchall()
            finally:
                db.close()
        return postgres_execute(self.schema or "public", statement.replace("?", "%s"), params)


def postgres_connect() -> Any:
    import psycopg

    return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)


def postgres_execute(
    schema: str, statement: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    from psycopg import sql

    with postgres_connect() as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        cursor = conn.execute(statement.encode(), params)
        return cursor.fetchall() if cursor.description else []


def require_postgres() -> None:
    """Skip (or fail under REQUIRE_ENV=1) unless the test server takes connections."""
    parts = urlsplit(POSTGRES_URL)
    require_service(parts.hostname or "127.0.0.1", parts.port or 5432, "PostgreSQL")
    try:
        postgres_connect().close()
    except Exception as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} refuses the tests' connection ({exc})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL naming a new, empty schema of the test server; the schema is dropped after."""
    require_postgres()
    schema = f"ks_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        postgres_execute("public", f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    key = tmp_path / "keys" / "vault-signing-key.pem"
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "vault" / "kubesentinel.db"), key)
    url: str = request.getfixturevalue("postgres_url")
    return Backend("postgres", url, key, schema=url.rsplit("schema=", 1)[1])
