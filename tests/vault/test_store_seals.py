"""The store's seals on real SQLite files: a clean store verifies, and every kind of tampering
the vault promises to detect is named (record changed, deleted, inserted, reordered; segment
removed; evidence re-hashed; incident rolled back; checkpoint forged or removed; key swapped)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kubesentinel.errors import StoreError
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.signer import NoteKey, Signer
from kubesentinel.vault.verify import VerifyReport
from tests.runtime.test_sqlite_store import DB, WEB, event

Tamper = Callable[[sqlite3.Connection], None]


def build(path: Path, batches: int = 4) -> None:
    """A store of ``batches`` writes, each sealed and signed (one checkpoint per write)."""
    correlator = Correlator()
    with SQLiteStore(path) as store:
        for n in range(batches):
            events = [event(f"e{n}-{k}", n * 10 + k, workload=WEB if k % 2 else DB)
                      for k in range(5)]  # fmt: skip
            store.write(events, correlator.add(events, events[-1].time_ns))
            store.seal_tail()


def verify(path: Path, key: NoteKey | None = None) -> VerifyReport:
    with SQLiteStore(path, read_only=True) as store:
        return store.verify(key)


def tamper(path: Path, change: Tamper) -> None:
    raw = sqlite3.connect(path)
    with raw:
        change(raw)
    raw.close()


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    path = tmp_path / "vault" / "kubesentinel.db"
    build(path)
    return path


def test_a_clean_store_verifies(sealed: Path) -> None:
    report = verify(sealed)
    assert report.ok, report.problems
    assert report.segments == 4
    assert report.events == 20
    assert report.incidents == 2
    assert report.checkpoints == 4
    assert report.unsigned_segments == 0
    assert report.facets == 2  # one rule, two workloads
    # segment record + 5 events + the incidents each write upserted, + the facets
    assert report.records == 4 * (1 + 5 + 2) + 2


def test_closing_signs_the_tail_and_the_key_is_private(tmp_path: Path) -> None:
    path = tmp_path / "kubesentinel.db"
    with SQLiteStore(path) as store:
        events = [event("a", 0), event("b", 1)]
        store.write(events, Correlator().add(events, events[-1].time_ns))
        key_path = store.signing_key
    report = verify(path)
    assert report.ok
    assert report.checkpoints == 1
    assert report.unsigned_segments == 0
    assert os.stat(key_path).st_mode & 0o777 == 0o600


def _first(report: VerifyReport) -> str:
    assert not report.ok
    return str(report.problems[0])


CASES: dict[str, tuple[Tamper, str]] = {
    "event field changed": (
        lambda db: db.execute("UPDATE events SET role = 3 WHERE id = 'e1-2'"),
        "segment 2: its records do not match its Merkle root",
    ),
    "facet changed (the rule of many events)": (
        lambda db: db.execute("UPDATE facets SET rule = 'nothing' WHERE id = 2"),
        "segment 1: its records do not match its Merkle root",
    ),
    "facet deleted": (
        lambda db: db.execute("DELETE FROM facets WHERE id = 1"),
        "segment 1: its records do not match its Merkle root",
    ),
    "event deleted": (
        lambda db: db.execute("DELETE FROM events WHERE id = 'e2-0'"),
        "segment 3: holds 4 event rows, sealed with 5",
    ),
    "event inserted": (
        lambda db: db.execute(
            "INSERT INTO events SELECT time_ns + 1, 'forged', incident, role, facet, segment, "
            "offset, length FROM events WHERE id = 'e3-4'"
        ),
        "event forged (segment 4)",
    ),
    "events reordered": (
        lambda db: _swap_places(db, "e0-0", "e0-1"),
        "event e0-1 (segment 1): out of order within its segment",
    ),
    "event moved to the end": (
        lambda db: db.executescript(
            "CREATE TEMP TABLE moved AS SELECT * FROM events WHERE id = 'e0-2';"
            "DELETE FROM events WHERE id = 'e0-2';"
            "INSERT INTO events SELECT * FROM moved;"
        ),
        "segment 1: holds 4 event rows, sealed with 5",
    ),
    "incident score changed": (
        lambda db: db.execute("UPDATE incidents SET risk_score = 1.0"),
        "was changed after segment",
    ),
    "incident rolled back to an older state": (
        lambda db: db.execute("UPDATE incidents SET segment = 1"),
        "is not the state segment 4 last wrote",
    ),
    "incident deleted": (
        lambda db: db.execute("DELETE FROM incidents WHERE workload_key LIKE '%web%'"),
        "is missing: deleted",
    ),
    "evidence edited and re-hashed": (
        lambda db: _rewrite_evidence(db, 2),
        "segment 2: its records do not match its Merkle root",
    ),
    "evidence edited": (
        lambda db: db.execute(
            "UPDATE segments SET data = ? WHERE id = 3", (codec.compress(b"x" * 10),)
        ),
        "segment 3: its evidence",
    ),
    "segment removed": (
        lambda db: db.execute("DELETE FROM segments WHERE id = 2"),
        "segment 2: missing: removed",
    ),
    "checkpoint forged": (
        lambda db: db.execute(
            "UPDATE checkpoints SET note = replace(note, 'kubesentinel', 'kubesentinex') "
            "WHERE id = 2"
        ),
        "checkpoint 2: not valid",
    ),
    "event column given a blob": (
        lambda db: db.execute("UPDATE events SET role = x'00ff' WHERE id = 'e1-1'"),
        "event e1-1 (segment 2): holds a value no writer stores",
    ),
    "event moved to no segment": (
        lambda db: db.execute("UPDATE events SET segment = 'x' WHERE id = 'e1-1'"),
        "event e1-1 (segment x): found among segment 2's events",
    ),
    "event offset made text": (
        lambda db: db.execute("UPDATE events SET offset = 'x' WHERE id = 'e2-1'"),
        "event e2-1 (segment 3): its offset or length is not a number",
    ),
    "facet column given a blob": (
        lambda db: db.execute("UPDATE facets SET rule = x'00ff' WHERE id = 2"),
        "facet 2: holds a value no writer stores",
    ),
    "checkpoint removed": (
        lambda db: db.execute("DELETE FROM checkpoints WHERE id = 2"),
        "checkpoint 3: does not link to the checkpoint before it",
    ),
}


def _swap_places(db: sqlite3.Connection, first: str, second: str) -> None:
    """Swap where two events' bytes are (offset, length): each row now shows the other's."""
    select = "SELECT offset, length FROM events WHERE id = ?"
    places = {event_id: db.execute(select, (event_id,)).fetchone() for event_id in (first, second)}
    for event_id, other in ((first, second), (second, first)):
        db.execute("UPDATE events SET offset = ?, length = ? WHERE id = ?",
                   (*places[other], event_id))  # fmt: skip


def _rewrite_evidence(db: sqlite3.Connection, segment_id: int) -> None:
    """An attacker who edits the alert bytes and fixes the stored sha256 and size."""
    data, size, sidecar_size, name = db.execute(
        "SELECT data, raw_bytes, sidecar_bytes, codec FROM segments WHERE id = ?", (segment_id,)
    ).fetchone()
    blob = codec.decompress(data, name, size + sidecar_size)
    edited = blob[:size].replace(b"bash", b"bosh") + blob[size:]
    assert edited != blob
    db.execute(
        "UPDATE segments SET data = ?, sha256 = ? WHERE id = ?",
        (codec.compress(edited), hashlib.sha256(edited).hexdigest(), segment_id),
    )


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found_and_named(sealed: Path, case: str) -> None:
    change, expected = CASES[case]
    assert verify(sealed).ok
    tamper(sealed, change)
    assert expected in _first(verify(sealed)), verify(sealed).problems


def test_a_swapped_key_is_found_with_the_pinned_key(sealed: Path, tmp_path: Path) -> None:
    """An attacker with the file re-signs every checkpoint with a key of their own."""
    with SQLiteStore(sealed, read_only=True) as store:
        pinned_key = store.public_key()
    assert pinned_key is not None
    forger = Signer(tmp_path / "forger.key")
    raw = sqlite3.connect(sealed)
    with raw:
        origin = raw.execute("SELECT origin FROM vault_meta").fetchone()[0]
        raw.execute("UPDATE vault_meta SET public_key = ?", (forger.public_key,))
        previous = None
        for checkpoint_id, segment_id, old in raw.execute(
            "SELECT id, segment_id, note FROM checkpoints ORDER BY id"
        ).fetchall():
            head = raw.execute("SELECT head FROM segments WHERE id = ?", (segment_id,)).fetchone()
            records = int(old.split("\nrecords ")[1].split("\n")[0])
            note = forger.sign(origin, segment_id, bytes(head[0]), records, previous)
            raw.execute("UPDATE checkpoints SET note = ? WHERE id = ?", (note, checkpoint_id))
            previous = forger.note_hash(note)
    raw.close()
    assert verify(sealed).ok  # the store's own (replaced) key agrees with itself...
    report = verify(sealed, NoteKey(pinned_key))  # ...the pinned one does not
    assert "checkpoint 1: not valid" in _first(report)


def test_writing_with_another_key_is_refused(sealed: Path, tmp_path: Path) -> None:
    store = SQLiteStore(sealed, signing_key=tmp_path / "other.key")
    with pytest.raises(StoreError, match="not the key this store was sealed with"):
        store.write([event("late", 99)], [])
    store.close()  # nothing was committed: nothing to sign
    assert verify(sealed).ok


def test_redeliveries_are_sealed_as_stored(tmp_path: Path) -> None:
    """A batch repeating stored events (NATS redelivery) seals only the rows it inserted."""
    path = tmp_path / "kubesentinel.db"
    with SQLiteStore(path) as store:
        store.write([event("a", 0), event("b", 1)], [])
        store.write([event("a", 0), event("c", 2), event("c", 2)], [])
    report = verify(path)
    assert report.ok, report.problems
    assert report.events == 3
