"""Event records are hashed in bulk on a fast path (the writer and verify hash one per event):
it must give exactly the record hashes of the general path, and ids converted by SQLite for
verify must be exactly the ids the store was given."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.runtime.store.rows import id_key, id_text
from kubesentinel.vault.ledger import event_leaf, event_leaves
from kubesentinel.vault.sqlite_ledger import SQLiteLedger

_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits takes the slow path
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
_rows = st.lists(st.tuples(*[_values] * 8), max_size=20)


@given(_rows)
def test_bulk_leaves_are_the_record_hashes(rows: list[tuple[Any, ...]]) -> None:
    assert event_leaves(rows) == [event_leaf(row) for row in rows]


def test_a_value_json_cannot_say_is_refused_not_hashed_as_null() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        event_leaves([(1, "a", float("inf"))])


_ids = st.one_of(
    st.uuids().map(str),
    st.binary(min_size=16, max_size=16).map(bytes.hex),
    st.text(max_size=40),
    st.binary(min_size=16, max_size=16).map(lambda b: b.hex().upper()),
    st.uuids().map(lambda u: str(u).upper()),
)


@given(st.lists(_ids, min_size=1, max_size=20, unique=True))
def test_verify_reads_back_every_id_as_given(ids: list[str]) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE events (time_ns, id, incident, role, facet, segment, offset, length)")
    db.executemany(
        "INSERT INTO events VALUES (?, ?, NULL, NULL, 1, 1, ?, 1)",
        [(n, id_key(event_id), n) for n, event_id in enumerate(ids)],
    )
    read = [row[1] for row in SQLiteLedger(db).event_rows()]
    assert read == ids
    assert [id_text(id_key(event_id)) for event_id in ids] == ids


def test_a_damaged_stored_id_reads_as_damaged() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE events (time_ns, id, incident, role, facet, segment, offset, length)")
    db.execute("INSERT INTO events VALUES (1, x'0102', NULL, NULL, 1, 1, 0, 1)")
    db.execute(
        "INSERT INTO events VALUES (2, ?, NULL, NULL, 1, 1, 1, 1)", (b"x" + uuid.uuid4().bytes,)
    )
    read = [row[1] for row in SQLiteLedger(db).event_rows()]
    assert all(text.startswith("damaged id x") for text in read)
