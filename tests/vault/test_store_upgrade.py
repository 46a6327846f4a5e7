"""A store written before the vault (schema 3, and 2 through 3) is sealed in place, not refused:
its incidents read as before, it verifies, and tampering after the upgrade is found."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kubesentinel.errors import StoreError
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.runtime.test_sqlite_store import event, v2_store

# What KubeSentinel's store did from schema 2 to 3 (runtime/store/sqlite.py, schema 3).
TO_3 = (
    "ALTER TABLE events ADD COLUMN context TEXT",
    "ALTER TABLE incidents ADD COLUMN previous_id TEXT",
    "ALTER TABLE incidents ADD COLUMN context TEXT NOT NULL DEFAULT '{}'",
    "CREATE INDEX IF NOT EXISTS incidents_previous ON incidents (previous_id)",
    "UPDATE schema_version SET version = 3",
)


def v3_store(path: Path) -> None:
    v2_store(path)
    raw = sqlite3.connect(path)
    with raw:
        for statement in TO_3:
            raw.execute(statement)
    raw.close()


@pytest.mark.parametrize("make", [v2_store, v3_store], ids=["from-2", "from-3"])
def test_an_older_store_is_sealed_in_place(tmp_path: Path, make: object) -> None:
    path = tmp_path / "old.db"
    make(path)  # type: ignore[operator]
    with SQLiteStore(path) as store:
        before = store.get_incident("inc2")
        assert before is not None
        assert len(before.event_ids) == 3
        events = [event("new", 100)]
        store.write(events, Correlator().add(events, events[-1].time_ns))
    with SQLiteStore(path, read_only=True) as reader:
        assert reader.get_incident("inc2") == before
        report = reader.verify()
    assert report.ok, report.problems
    # the old segment, one filing the old incident, and the new write
    assert (report.segments, report.events, report.incidents) == (3, 4, 2)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert raw.execute("SELECT upgraded_from FROM vault_meta").fetchone()[0] in (2, 3)
        with raw:  # tampering with what was there before the upgrade is now found
            raw.execute("UPDATE events SET role = 3 WHERE id = 'v1'")
    finally:
        raw.close()
    with SQLiteStore(path, read_only=True) as reader:
        report = reader.verify()
    assert not report.ok
    assert "segment 1: its records do not match its Merkle root" in str(report.problems[0])


def test_a_reader_asks_for_a_writer_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v3_store(path)
    with pytest.raises(StoreError, match=f"version 3 must be upgraded to version {SCHEMA_VERSION}"):
        SQLiteStore(path, read_only=True)
