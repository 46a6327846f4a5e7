"""The PostgreSQL layout of a schema-4 store: the SQLite store's tables and columns, in
PostgreSQL types, and how an event id is kept in a ``bytea``.

Every column a vault record hashes has the same name, order and value as in SQLite (integers
as ``bigint``/``integer``, JSON as ``text``, never ``jsonb``, which would rewrite it), so
``vault/ledger.py`` hashes the rows of either backend alike and ``vault/verify.py`` checks
both. Ids that the writer assigns (segments, facets, incident seqs, checkpoints) are plain
``bigint`` keys assigned under the chain lock, so several writers never interleave them.
"""

from __future__ import annotations

from typing import Final

from kubesentinel.runtime.store.rows import id_key
from kubesentinel.runtime.store.rows import id_text as _key_text

__all__ = ["SCHEMA", "SCHEMA_VERSION", "pg_id", "pg_id_text"]

SCHEMA_VERSION: Final = 4

SCHEMA: Final = """
CREATE TABLE schema_version (version integer NOT NULL);
CREATE TABLE vault_meta (
    id integer PRIMARY KEY CHECK (id = 1),
    store_id text NOT NULL,
    origin text NOT NULL,
    public_key bytea,
    created_ns bigint NOT NULL,
    sealed_from_ns bigint NOT NULL,
    upgraded_from integer
);
CREATE TABLE segments (
    id bigint PRIMARY KEY,
    written_ns bigint NOT NULL,
    event_count bigint NOT NULL,
    raw_bytes bigint NOT NULL,
    sidecar_bytes bigint NOT NULL,
    codec text NOT NULL,
    sha256 text NOT NULL,
    data bytea NOT NULL,
    record_count bigint NOT NULL,
    incident_ids text NOT NULL,
    incident_leaves bytea NOT NULL,
    root bytea NOT NULL,
    head bytea NOT NULL
);
-- Zstandard already compressed the evidence: TOAST's own compression would only cost time.
ALTER TABLE segments ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE facets (
    id bigint PRIMARY KEY,
    segment bigint NOT NULL,
    rule text NOT NULL,
    priority integer NOT NULL,
    source text NOT NULL,
    cluster text NOT NULL,
    namespace text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    pod text,
    container_id text,
    container_image text,
    tactics text NOT NULL,
    techniques text NOT NULL
);
CREATE INDEX facets_workload ON facets (namespace, name, rule);
CREATE TABLE events (
    time_ns bigint NOT NULL,
    id bytea NOT NULL,
    incident bigint,
    role integer,
    facet bigint NOT NULL,
    segment bigint NOT NULL,
    "offset" bigint NOT NULL,
    length bigint NOT NULL,
    PRIMARY KEY (time_ns, id)
);
CREATE INDEX events_incident ON events (incident, segment, "offset") WHERE incident IS NOT NULL;
CREATE TABLE incidents (
    id text PRIMARY KEY,
    workload_key text NOT NULL,
    cluster text NOT NULL,
    namespace text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    first_ns bigint NOT NULL,
    last_ns bigint NOT NULL,
    severity text NOT NULL,
    risk_score double precision NOT NULL,
    reasons text NOT NULL,
    rules text NOT NULL,
    tactics text NOT NULL,
    techniques text NOT NULL,
    event_count bigint NOT NULL,
    event_id_count bigint NOT NULL,
    posture text NOT NULL,
    status text NOT NULL,
    previous_id text,
    context text NOT NULL,
    segment bigint,
    seq bigint UNIQUE
);
CREATE INDEX incidents_last ON incidents (last_ns);
CREATE INDEX incidents_previous ON incidents (previous_id);
CREATE INDEX incidents_namespace ON incidents (namespace, last_ns);
CREATE INDEX incidents_workload ON incidents (workload_key, last_ns);
CREATE TABLE posture (
    id integer PRIMARY KEY CHECK (id = 1),
    document text NOT NULL
);
CREATE TABLE checkpoints (
    id bigint PRIMARY KEY,
    segment_id bigint NOT NULL,
    written_ns bigint NOT NULL,
    note text NOT NULL
);
"""

# A bytea holds every id: the 16 bytes of a content id and "u" plus 16 bytes of a UUID, as
# ``rows.id_key`` gives them; any other id is its UTF-8 after 0xFF bytes (never in UTF-8): one,
# or two when that would make 16 bytes, so no text id reads back as a content id.
_TEXT_TAG: Final = b"\xff"


def pg_id(event_id: str) -> bytes:
    key = id_key(event_id)
    if isinstance(key, bytes):
        return key
    text = key.encode("utf-8", "surrogatepass")
    return _TEXT_TAG * (2 if len(text) == 15 else 1) + text


def pg_id_text(key: bytes) -> str:
    """The id ``pg_id`` stored; a damaged one as ``damaged id x<hex>`` (its record fails)."""
    if key[:1] == _TEXT_TAG and len(key) != 16:
        try:
            return key.lstrip(_TEXT_TAG).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return f"damaged id x{key.hex().upper()}"
    try:
        return _key_text(key)
    except ValueError:
        return f"damaged id x{key.hex().upper()}"
