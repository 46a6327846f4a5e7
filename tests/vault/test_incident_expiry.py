"""Incidents expire with their evidence at the incident class's age, holds keep them, and
``vault verify`` tells a lawful expiry (tombstoned) from a deletion; compact tombstones."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.errors import UsageError
from kubesentinel.models import Event, Incident, Priority
from kubesentinel.models.event import Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.hold import place_hold, release_hold
from kubesentinel.vault.incident_expiry import IncidentAge, expired_chains
from kubesentinel.vault.tombstone import ENTRY_BYTES, Run, unpack_entries
from tests.runtime.test_sqlite_store import DB, T0, WEB, event
from tests.vault.test_prune import ids, noise, rows, run, verify

END = 1 << 62
S = 1_000_000_000
DAY_S = 86_400


def closed_incidents(path: Path, signals: list[Event], **correlator: float) -> list[Incident]:
    """Noise on WEB and DB from 0 to 3000 s, the signals' incidents, written as the monitor
    writes them (open, then closed when it stops). Returns the closed states."""
    events = sorted(
        [noise(f"w{t}", t) for t in range(0, 3000, 100)]
        + [noise(f"d{t}", t, workload=DB) for t in range(0, 3000, 100)],
        key=lambda e: e.time_ns,
    )
    corr = Correlator(**correlator)  # type: ignore[arg-type]
    opened = corr.add(signals, signals[-1].time_ns)
    closed = corr.expire(END)
    with SQLiteStore(path) as store:
        store.write(events, [])
        store.write(signals, opened)
        store.write([], closed)
    final = list({i.id: i for i in [*opened, *closed]}.values())  # each one's last state
    assert all(i.status == "closed" for i in final)
    return final


def critical(name: str, at_s: float, workload: Workload = WEB) -> Event:
    return event(name, at_s, workload, priority=Priority.CRITICAL)


@pytest.fixture
def one(path: Path) -> Incident:
    """One closed incident on WEB, signals at 2000.5 and 2001.5 s."""
    (incident,) = closed_incidents(path, [critical("sig1", 2000.5), critical("sig2", 2001.5)])
    return incident


def incident_ids(path: Path) -> set[str]:
    return {str(row[0]) for row in rows(path, "SELECT id FROM incidents")}


def days_after_last_signal(incident: Incident, days: float) -> float:
    """``run``'s days (from T0) at which the incident's last signal is this old."""
    return (incident.last_ns - T0) / (DAY_S * S) + days


def test_an_incident_and_its_evidence_expire_at_the_class_age(path: Path, one: Incident) -> None:
    kept = run(path, days_after_last_signal(one, 364.99))
    assert kept.incidents_removed == 0
    assert incident_ids(path) == {one.id}
    assert {"sig1", "sig2", "w1200", "w2300"} <= ids(path)  # signals and context window
    assert not any(i.startswith("d") for i in ids(path))  # DB's noise went long ago
    report = run(path, days_after_last_signal(one, 365.01))
    assert report.incidents_removed == 1
    assert report.removed[("incident", "incident_expired", "last signal over 365 days ago")] == 1
    assert incident_ids(path) == set()
    assert ids(path) == set()  # the evidence went with it: severe and noise are past 365
    assert report.removed[("severe", "expired", "tier critical")] == 2
    checked = verify(path)
    assert checked.ok, checked.problems
    assert (checked.removed_incidents, checked.incidents) == (1, 0)


def test_a_policy_without_incident_keep_days_keeps_incidents(path: Path, tmp_path: Path) -> None:
    from kubesentinel.vault.policy import load_policy

    closed_incidents(path, [critical("sig1", 2000.5)])
    policy_file = tmp_path / "forever.yaml"
    policy_file.write_text("classes:\n  incident:\n    keep_days: null\n")
    report = run(path, 4000, policy=load_policy([policy_file]))
    assert (report.incidents_removed, len(incident_ids(path))) == (0, 1)
    assert "sig1" in ids(path)


def test_evidence_of_a_longer_class_outlives_its_incident(path: Path, tmp_path: Path) -> None:
    from kubesentinel.vault.policy import load_policy

    (incident,) = closed_incidents(path, [critical("sig1", 2000.5)])
    policy_file = tmp_path / "audit.yaml"
    policy_file.write_text(
        "classes:\n  incident: {keep_days: 30}\n  audit: {keep_days: 730, evict_rank: 50}\n"
        "rules:\n  - {name: signals, class: audit, match: {incident: [signal]}}\n"
    )
    report = run(path, days_after_last_signal(incident, 100), policy=load_policy([policy_file]))
    assert report.incidents_removed == 1
    assert ids(path) == {"sig1"}  # its class now: audit, by its link to an incident
    assert verify(path).ok


def test_a_held_incident_outlives_its_age_and_expires_after_release(
    path: Path, one: Incident
) -> None:
    with SQLiteStore(path) as store:
        assert place_hold(store, one.id, "case 7", T0).changed
    late = days_after_last_signal(one, 400)
    assert run(path, late).incidents_removed == 0
    assert incident_ids(path) == {one.id}
    assert {"sig1", "sig2", "w1200"} <= ids(path)
    with SQLiteStore(path) as store:
        assert release_hold(store, one.id, T0).changed
    assert run(path, late).incidents_removed == 1
    assert (incident_ids(path), ids(path)) == (set(), set())
    assert verify(path).ok
    with SQLiteStore(path) as store, pytest.raises(UsageError, match="no incident"):
        place_hold(store, one.id, "too late", T0)


def test_an_incident_left_open_is_kept_while_recently_written(path: Path) -> None:
    signals = [critical("sig1", 2000.5)]
    incidents = Correlator().add(signals, signals[-1].time_ns)
    with SQLiteStore(path) as store:
        store.write(signals, incidents)  # open: a monitor may still extend it
    assert run(path, 400).incidents_removed == 0
    assert len(incident_ids(path)) == 1


def test_a_chain_of_linked_incidents_expires_as_one(path: Path) -> None:
    signals = [critical(f"s{t}", t) for t in (1000, 1030, 1070, 1100)]
    chain = closed_incidents(path, signals, max_duration_s=60)
    first, second = sorted(chain, key=lambda i: i.first_ns)
    assert second.previous_id == first.id
    # The first is past its age, the second not yet: both are kept.
    between = days_after_last_signal(first, 365) + 10 / DAY_S
    assert run(path, between).incidents_removed == 0
    assert incident_ids(path) == {first.id, second.id}
    # A hold on the newer one keeps the older one too.
    late = days_after_last_signal(second, 400)
    with SQLiteStore(path) as store:
        place_hold(store, second.id, "", T0)
    assert run(path, late).incidents_removed == 0
    with SQLiteStore(path) as store:
        release_hold(store, second.id, T0)
    report = run(path, late)
    assert report.incidents_removed == 2
    assert incident_ids(path) == set()
    assert verify(path).ok


def test_chains_are_found_from_previous_ids() -> None:
    def age(name: str, last: int, previous: str | None = None, **kw: bool) -> IncidentAge:
        return IncidentAge(name, previous, last, kw.get("closed", True), 0)

    left_open = IncidentAge("f", None, 5, closed=False, written_ns=100)
    incidents = [age("a", 1), age("b", 2, "a"), age("c", 9, "b"), age("d", 3),
                 age("e", 4, "gone"), left_open]  # fmt: skip
    assert expired_chains(incidents, (), 10) == [["d"], ["e"], ["a", "b", "c"]]
    assert expired_chains(incidents, ("a",), 10) == [["d"], ["e"]]  # a hold keeps its chain
    assert expired_chains(incidents, (), 5) == [["d"], ["e"]]
    # f was left open: it goes once it was last written as long ago as its age.
    assert expired_chains(incidents, (), 101) == [["d"], ["e"], ["f"], ["a", "b", "c"]]


def test_the_dry_run_counts_expired_incidents_and_their_evidence(path: Path, one: Incident) -> None:
    late = days_after_last_signal(one, 366)
    dry = run(path, late, dry_run=True)
    assert incident_ids(path) == {one.id}
    real = run(path, late)
    assert (dry.incidents_removed, dry.events_removed) == (1, real.events_removed)
    assert dry.removed == real.removed


def _set_incident_tombstone(db: sqlite3.Connection, blob: bytes) -> None:
    db.execute(
        "UPDATE tombstones SET entries = ?, entries_sha256 = ? WHERE kind = 'incident'",
        (blob, hashlib.sha256(blob).hexdigest()),
    )


def _incident_tombstone(path: Path) -> bytes:
    (row,) = rows(path, "SELECT entries FROM tombstones WHERE kind = 'incident'")
    assert isinstance(row[0], bytes)
    return row[0]


def _copy(source: Path, target: Path) -> None:
    """A whole database, WAL included, through SQLite's backup API."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def test_verify_tells_a_lawful_expiry_from_tampering(path: Path) -> None:
    (old,) = closed_incidents(path, [critical("sig1", 2000.5)])
    (row,) = rows(path, "SELECT * FROM incidents")  # to put back later
    # A second incident, a year later: kept when the first expires.
    later = [critical("late1", 400 * DAY_S, workload=DB)]
    corr = Correlator()
    with SQLiteStore(path) as store:
        store.write(later, corr.add(later, later[-1].time_ns))
        store.write([], corr.expire(END))
    (young,) = incident_ids(path) - {old.id}
    assert run(path, days_after_last_signal(old, 366)).incidents_removed == 1
    assert incident_ids(path) == {young}
    assert verify(path).ok
    pristine = path.with_name("pristine.db")
    _copy(path, pristine)

    def tampered(
        change: str | None = None, params: Sequence[object] = (), blob: bytes | None = None
    ) -> list[str]:
        _copy(pristine, path)
        db = sqlite3.connect(path)
        with db:
            if change is not None:
                db.execute(change, params)
            if blob is not None:
                _set_incident_tombstone(db, blob)
        db.close()
        return [str(p) for p in verify(path).problems]

    assert tampered() == []
    problems = tampered("DELETE FROM incidents WHERE id = ?", (young,))
    assert any(f"incident {young}" in p and "is missing: deleted" in p for p in problems)
    problems = tampered("DELETE FROM tombstones WHERE kind = 'incident'")
    assert any(f"incident {old.id}" in p and "is missing: deleted" in p for p in problems)
    assert any("do not match its Merkle root" in p for p in problems)
    problems = tampered("UPDATE tombstones SET reasons = '[]' WHERE kind = 'incident'")
    assert any("do not match its Merkle root" in p for p in problems)
    blob = _incident_tombstone(path)
    forged = blob[:-1] + bytes([blob[-1] ^ 1])  # another leaf, its sha256 fixed
    problems = tampered(blob=forged)
    assert any("with a record segment" in p and "did not seal" in p for p in problems)
    assert any("do not match its Merkle root" in p for p in problems)
    marks = ", ".join("?" * len(row))
    problems = tampered(f"INSERT INTO incidents VALUES ({marks})", row)  # noqa: S608 - marks
    assert any(f"incident {old.id}" in p and "put back" in p for p in problems)


def test_an_incident_edited_before_it_expires_is_not_laundered(path: Path, one: Incident) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE incidents SET risk_score = 1.0")
    db.close()
    assert not verify(path).ok
    run(path, days_after_last_signal(one, 366))
    problems = [str(p) for p in verify(path).problems]
    assert any("did not seal: altered" in p for p in problems), problems


def test_incidents_show_and_list_after_expiry(
    path: Path, one: Incident, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(path)]
    assert main(["incidents", "show", one.id, *store]) == 0
    capsys.readouterr()
    assert main(["vault", "prune", *store, "--format", "json"]) == 0  # now: 2026 or later
    figures = json.loads(capsys.readouterr().out)
    assert figures["incidents_removed"] == 1
    assert main(["incidents", "show", one.id, *store]) == 2
    assert f"no incident {one.id!r}" in capsys.readouterr().err
    assert main(["incidents", "list", *store, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["vault", "stats", *store, "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["incidents"], stats["incidents_removed"], stats["events"]) == (0, 1, 0)
    assert stats["records_removed"] == 62  # 60 noise events and 2 signals
    assert main(["vault", "verify", *store]) == 0
    assert "62 event records and 1 incidents removed lawfully" in capsys.readouterr().out


# -- compact tombstones ------------------------------------------------------------------------


def _entries(path: Path) -> list[tuple[int, int, bytes]]:
    found = rows(path, "SELECT id, removed, entries FROM tombstones WHERE kind = 'event'")
    return [(int(r[0]), int(r[1]), bytes(r[2])) for r in found]  # type: ignore[call-overload]


def test_a_segment_emptied_at_once_keeps_a_few_subtree_hashes(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.write([noise(f"n{k}", k) for k in range(2000)], [])
    run(path, 100)
    ((_, removed, blob),) = _entries(path)
    assert removed == 2000
    (entry,) = unpack_entries(blob)
    assert isinstance(entry, Run)
    assert entry.count == 2000
    assert len(blob) < 500 < removed * ENTRY_BYTES
    assert verify(path).ok


def test_runs_between_kept_events_then_the_rest(path: Path) -> None:
    events = []
    for k in range(300):  # ten noise events, then a critical one, over and over
        events.append(critical(f"c{k}", k * 11) if k % 11 == 10 else noise(f"n{k}", k * 11))
    with SQLiteStore(path) as store:
        store.write(events, [])
    run(path, 100)
    (first,) = _entries(path)
    parts = list(unpack_entries(first[2]))
    assert sum(isinstance(p, Run) for p in parts) >= 20
    assert verify(path).ok
    run(path, 400)  # the criticals go too, single ones between the earlier runs
    assert ids(path) == set()
    assert len(_entries(path)) == 2
    checked = verify(path)
    assert checked.ok, checked.problems
    assert checked.removed_records == 300


def test_a_tampered_subtree_hash_is_caught(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.write([noise(f"n{k}", k) for k in range(600)], [])
        store.write([critical("keep", 700)], [])
    run(path, 100)
    ((tombstone_id, _, blob),) = _entries(path)
    changed = blob[:-1] + bytes([blob[-1] ^ 1])  # the last subtree hash of the run
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE tombstones SET entries = ? WHERE id = ?", (changed, tombstone_id))
    problems = [str(p) for p in verify(path).problems]
    assert any("entries do not match their sha256" in p for p in problems), problems
    with db:
        db.execute("UPDATE tombstones SET entries_sha256 = ? WHERE id = ?",
                   (hashlib.sha256(changed).hexdigest(), tombstone_id))  # fmt: skip
    db.close()
    problems = [str(p) for p in verify(path).problems]
    assert "segment 1: its records do not match its Merkle root" in problems[0], problems
    assert any("segment 3: its records do not match" in p for p in problems), problems


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "vault" / "kubesentinel.db"
