"""The vault's seals, the same on SQLite and PostgreSQL: a clean store verifies, each kind of
tampering is found and named alike by the one ``vault verify``, keys are pinned, and the
figures of ``vault stats`` agree."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from kubesentinel.errors import StoreError
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store import codec
from kubesentinel.vault.signer import NoteKey, Signer
from kubesentinel.vault.verify import VerifyReport
from tests.runtime.test_sqlite_store import DB, WEB, event
from tests.store_behaviour.backends import Backend

BATCHES = 4


@pytest.fixture
def sealed(backend: Backend) -> Backend:
    """``BATCHES`` writes of 5 events on two workloads, each signed by a checkpoint."""
    correlator = Correlator()
    with backend.open() as store:
        for n in range(BATCHES):
            events = [event(f"e{n}-{k}", n * 10 + k, workload=WEB if k % 2 else DB)
                      for k in range(5)]  # fmt: skip
            store.write(events, correlator.add(events, events[-1].time_ns))
            store.seal_tail()
    return backend


def verify(backend: Backend, key: NoteKey | None = None) -> VerifyReport:
    with backend.open(read_only=True) as store:
        return store.verify(key)


def first_problem(report: VerifyReport) -> str:
    assert not report.ok
    return str(report.problems[0])


def test_a_clean_store_verifies(sealed: Backend) -> None:
    report = verify(sealed)
    assert report.ok, report.problems
    assert (report.segments, report.events, report.incidents) == (BATCHES, 20, 2)
    assert report.checkpoints == BATCHES
    assert report.unsigned_segments == 0
    assert report.facets == 2
    assert report.records == BATCHES * (1 + 5 + 2) + 2


def _rewrite_evidence(backend: Backend) -> None:
    """An attacker who edits the alert bytes of segment 2 and fixes its sha256."""
    ((data, size, sidecar_size, name),) = backend.execute(
        "SELECT data, raw_bytes, sidecar_bytes, codec FROM segments WHERE id = 2"
    )
    blob = codec.decompress(bytes(data), name, size + sidecar_size)
    edited = blob[:size].replace(b"bash", b"bosh") + blob[size:]
    assert edited != blob
    backend.execute(
        "UPDATE segments SET data = ?, sha256 = ? WHERE id = 2",
        (codec.compress(edited), hashlib.sha256(edited).hexdigest()),
    )


Tamper = Callable[[Backend], object]
CASES: dict[str, tuple[Tamper, str]] = {
    "event row edited": (
        lambda b: b.execute(
            'UPDATE events SET role = 3 WHERE segment = 2 AND "offset" = '
            '(SELECT min("offset") FROM events WHERE segment = 2)'  # its first event
        ),
        "segment 2: its records do not match its Merkle root",
    ),
    "event row deleted": (
        lambda b: b.execute(
            'DELETE FROM events WHERE segment = 3 AND "offset" = '
            '(SELECT max("offset") FROM events WHERE segment = 3)'  # its last event
        ),
        "segment 3: holds 4 event rows, sealed with 5",
    ),
    "event row inserted": (
        lambda b: b.execute(
            "INSERT INTO events SELECT time_ns + 1, id, incident, role, facet, segment, "
            '"offset", length FROM events WHERE segment = 4 AND "offset" = '
            '(SELECT max("offset") FROM events WHERE segment = 4)'  # a copy of its last event
        ),
        "(segment 4): out of order within its segment",
    ),
    "incident edited": (
        lambda b: b.execute("UPDATE incidents SET risk_score = risk_score + 1 WHERE seq = 1"),
        "was changed after segment 4 wrote it",
    ),
    "incident deleted": (
        lambda b: b.execute("DELETE FROM incidents WHERE seq = 2"),
        "written by segment 4, is missing: deleted",
    ),
    "incident put back to an older state": (
        lambda b: b.execute("UPDATE incidents SET segment = 1"),
        "is not the state segment 4 last wrote",
    ),
    "facet edited (the rule of many events)": (
        lambda b: b.execute("UPDATE facets SET rule = 'nothing' WHERE id = 2"),
        "segment 1: its records do not match its Merkle root",
    ),
    "evidence edited and re-hashed": (
        _rewrite_evidence,
        "segment 2: its records do not match its Merkle root",
    ),
    "segment removed": (
        lambda b: b.execute("DELETE FROM segments WHERE id = 2"),
        "segment 2: missing: removed",
    ),
    "checkpoint forged": (
        lambda b: b.execute(
            "UPDATE checkpoints SET note = replace(note, 'kubesentinel', 'kubesentinex') "
            "WHERE id = 2"
        ),
        "checkpoint 2: not valid",
    ),
    "checkpoint removed": (
        lambda b: b.execute("DELETE FROM checkpoints WHERE id = 2"),
        "checkpoint 3: does not link to the checkpoint before it",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found_and_named(sealed: Backend, case: str) -> None:
    change, expected = CASES[case]
    change(sealed)
    report = verify(sealed)
    assert expected in first_problem(report), report.problems


def test_a_swapped_key_is_found_with_the_pinned_key(sealed: Backend) -> None:
    """An attacker with write access re-signs every checkpoint with a key of their own."""
    with sealed.open(read_only=True) as store:
        pinned = store.public_key()
    assert pinned is not None
    forger = Signer(sealed.key.parent / "forger.pem")
    ((origin,),) = sealed.execute("SELECT origin FROM vault_meta")
    sealed.execute("UPDATE vault_meta SET public_key = ?", (forger.public_key,))
    previous = None
    for checkpoint_id, segment_id, old in sealed.execute(
        "SELECT id, segment_id, note FROM checkpoints ORDER BY id"
    ):
        ((head,),) = sealed.execute("SELECT head FROM segments WHERE id = ?", (segment_id,))
        records = int(old.split("\nrecords ")[1].split("\n")[0])
        note = forger.sign(origin, segment_id, bytes(head), records, previous)
        sealed.execute("UPDATE checkpoints SET note = ? WHERE id = ?", (note, checkpoint_id))
        previous = forger.note_hash(note)
    assert verify(sealed).ok  # the store's own (replaced) key agrees with itself...
    report = verify(sealed, NoteKey(pinned))  # ...the pinned one does not
    assert "checkpoint 1: not valid" in first_problem(report)


def test_writing_with_another_key_is_refused(sealed: Backend) -> None:
    from kubesentinel.runtime.store.open import open_store

    store = open_store(sealed.location, signing_key=sealed.key.parent / "other.pem")
    with pytest.raises(StoreError, match=r"is not the key this (store|vault) was sealed with"):
        store.write([event("late", 99)], [])
    store.close()  # nothing was committed: nothing to sign
    assert verify(sealed).ok


def test_redeliveries_are_sealed_as_stored(backend: Backend) -> None:
    with backend.open() as store:
        store.write([event("a", 0), event("b", 1)], [])
        store.write([event("a", 0), event("c", 2), event("c", 2)], [])
    report = verify(backend)
    assert report.ok, report.problems
    assert report.events == 3


def test_stats(sealed: Backend) -> None:
    with sealed.open(read_only=True) as store:
        stats = store.vault_stats()
        assert stats["path"] == store.name
    assert (stats["segments"], stats["events"], stats["incidents"]) == (BATCHES, 20, 2)
    assert stats["records"] == BATCHES * (1 + 5 + 2) + 2
    assert stats["checkpoints"] == BATCHES
    assert stats["last_checkpoint_segment"] == BATCHES
    assert stats["size_bytes"] > 0
    assert stats["evidence_raw_bytes"] > stats["evidence_stored_bytes"] > 0
    assert stats["oldest_event"] < stats["newest_event"]
