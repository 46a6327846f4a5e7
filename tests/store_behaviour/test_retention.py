"""Retention, the same on SQLite and PostgreSQL: what goes and what stays, exact rollups, the
size cap's eviction order, holds never evicted, the dead letter against the cap, incidents
expiring at their class's age unless held, compact tombstones, and that ``vault verify``
passes after a lawful prune or expiry but not after any other deletion or edit."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kubesentinel.models import Event, Incident, Priority
from kubesentinel.models.event import Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.store.postgres_schema import pg_id_text
from kubesentinel.runtime.store.rows import id_text
from kubesentinel.vault.hold import place_hold, release_hold
from kubesentinel.vault.policy import Policy, load_policy
from kubesentinel.vault.prune import PruneOptions, PruneReport, prune
from kubesentinel.vault.retention import DAY_NS, HOUR_NS
from kubesentinel.vault.retention_stats import retention_stats
from kubesentinel.vault.schedule import PruneSchedule
from kubesentinel.vault.tombstone import ENTRY_BYTES, Run, unpack_entries
from kubesentinel.vault.verify import VerifyReport
from tests.runtime.test_sqlite_store import DB, T0, WEB, event
from tests.store_behaviour.backends import Backend

DEFAULT = load_policy([])  # noise: rolled up after 7 days, kept 90; default: 90; severe: 365


def write(backend: Backend, events: list[Event], incidents: list[Incident] | None = None) -> None:
    with backend.open() as store:
        for start in range(0, len(events), 500):  # several segments
            store.write(events[start : start + 500], [])
        if incidents:
            store.write([], incidents)


def run(backend: Backend, days: float, policy: Policy = DEFAULT, **options: object) -> PruneReport:
    with backend.open() as store:
        return prune(store, PruneOptions(policy, T0 + int(days * DAY_NS), **options))  # type: ignore[arg-type]


def verify(backend: Backend) -> VerifyReport:
    with backend.open(read_only=True) as store:
        return store.verify()


def ids(backend: Backend) -> set[str]:
    """The ids of the events stored, as the record holds them."""
    rows = backend.execute("SELECT id FROM events")
    if backend.kind == "sqlite":  # a text id, or the bytes of a content id or UUID
        return {id_text(row[0]) for row in rows}
    return {pg_id_text(bytes(row[0])) for row in rows}


def noise(name: str, at_s: float, **changes: object) -> Event:
    return event(name, at_s, priority=Priority.INFORMATIONAL, **changes)


def test_rollup_counts_are_exact(backend: Backend) -> None:
    expected: Counter[tuple[int, str, str]] = Counter()
    events = []
    for hour in range(3):
        for workload in (WEB, DB):
            for rule, n in (("Read proc", 3 + hour), ("List dir", 1 + hour * 2)):
                for k in range(n):
                    at = hour * 3600 + k * 7 + (50 if workload is DB else 0)
                    events.append(noise(f"{hour}-{workload.name}-{rule}-{k}", at, workload=workload,
                                        rule=rule))  # fmt: skip
                    hour_ns = (T0 + at * 1_000_000_000) // HOUR_NS * HOUR_NS
                    expected[hour_ns, workload.name, rule] += 1
    events.sort(key=lambda e: e.time_ns)
    write(backend, events)
    report = run(backend, days=8)
    assert report.rolled_up_events == len(events) == report.events_removed
    assert report.removed == Counter({("noise", "rolled_up", "tier informational"): len(events)})
    stored = backend.execute("SELECT hour_ns, name, rule, count, class FROM rollups")
    assert Counter({(h, n, r): c for h, n, r, c, _ in stored}) == expected
    assert {row[4] for row in stored} == {"noise"}
    assert backend.execute("SELECT count(*) FROM events") == [(0,)]
    assert verify(backend).ok
    again = run(backend, days=8)  # nothing left to roll up: no segment written
    assert (again.events_removed, again.retention_segments) == (0, [])
    late = run(backend, days=91)  # the counts go at the class's keep_days, tombstoned
    assert late.rollups_removed == len(expected)
    assert backend.execute("SELECT count(*) FROM rollups") == [(0,)]
    report_after = verify(backend)
    assert report_after.ok, report_after.problems


def test_each_class_expires_at_its_age(backend: Backend) -> None:
    write(backend, [event("notice", 0), event("crit", 1, priority=Priority.CRITICAL),
                    event("warn", 2, priority=Priority.WARNING)])  # fmt: skip
    assert run(backend, days=89.9).events_removed == 0
    report = run(backend, days=181)
    assert report.removed == Counter({("default", "expired", "tier notice"): 1,
                                      ("elevated", "expired", "tier warning"): 1})  # fmt: skip
    assert ids(backend) == {"crit"}
    assert verify(backend).ok


def incident_store(backend: Backend) -> Incident:
    """Noise on WEB and DB from t=0 to 3000 s; an incident on WEB at 2000 s (window 900 s
    before, 300 after in the default policy)."""
    events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    events += [noise(f"d{t}", t, workload=DB) for t in range(0, 3000, 100)]
    events.sort(key=lambda e: e.time_ns)
    signals = [event("sig1", 2000.5, priority=Priority.CRITICAL),
               event("sig2", 2001.5, priority=Priority.CRITICAL)]  # fmt: skip
    incidents = Correlator().add(signals, signals[-1].time_ns)
    assert incidents
    with backend.open() as store:
        store.write(events, [])
        store.write(signals, incidents)
    return incidents[-1]


WINDOW = {f"w{t}" for t in range(1200, 2400, 100)}  # 2000.5 - 900 = 1100.5 ... 2001.5 + 300


def test_incident_evidence_and_its_context_window_stay(backend: Backend) -> None:
    incident = incident_store(backend)
    report = run(backend, days=100)
    assert ids(backend) == WINDOW | {"sig1", "sig2"}
    assert report.removed[("noise", "expired", "tier informational")] == 60 - len(WINDOW)
    assert verify(backend).ok
    with backend.open(read_only=True) as store:
        shown = store.verify_incident(incident.id)
    assert shown.ok, shown.problems
    assert shown.tombstones == 1


def test_a_held_incident_is_never_evicted_and_the_cap_alert_is_raised(backend: Backend) -> None:
    incident = incident_store(backend)
    with backend.open() as store:
        assert place_hold(store, incident.id, "case 7", T0).changed
        assert not place_hold(store, incident.id, "again", T0).changed
    metrics = Metrics()
    schedule = PruneSchedule(backend.location, backend.key, DEFAULT, 3600, max_bytes=1,
                             dead_letter=None, metrics=metrics,
                             clock=lambda: T0 + DAY_NS)  # fmt: skip
    try:
        report = schedule.run_once()
    finally:
        schedule.stop()
    assert report.over_cap
    assert {c for c, _, _ in report.removed} == {"noise"}
    assert ids(backend) == WINDOW | {"sig1", "sig2"}
    snapshot = metrics.snapshot()
    assert snapshot["vault_over_cap"] == 1
    assert snapshot["vault_removed"] == report.events_removed > 0
    with backend.open(read_only=True) as store:
        figures = retention_stats(store, DEFAULT)
    assert figures["records_per_class"] == {"hold": len(ids(backend))}
    assert figures["holds"] == [{"incident_id": incident.id, "reason": "case 7"}]
    assert figures["tombstones"] > 0
    with backend.open() as store:
        assert release_hold(store, incident.id, T0).changed
        assert not release_hold(store, incident.id, T0).changed
        figures = retention_stats(store, DEFAULT)
    assert figures["records_per_class"] == {"incident": len(ids(backend))}
    assert figures["holds"] == []
    final = verify(backend)
    assert final.ok, final.problems


def test_the_cap_evicts_the_lowest_rank_first_oldest_first(
    backend: Backend, tmp_path: Path
) -> None:
    policy_file = tmp_path / "cap.yaml"
    policy_file.write_text(
        "classes:\n  low: {keep_days: 3650, evict_rank: 5}\n  mid: {keep_days: 3650, "
        "evict_rank: 10}\ntiers: {debug: low, informational: mid}\n"
    )
    policy = load_policy([policy_file])
    events = []
    for k in range(3000):
        events.append(event(f"low{k:05}", k, priority=Priority.DEBUG))
        events.append(event(f"mid{k:05}", k + 0.5, priority=Priority.INFORMATIONAL))
    write(backend, events)
    size = run(backend, days=1, policy=policy, dry_run=True).size_before  # what the cap counts
    cap = size * 9 // 10  # a tombstone keeps 40 bytes of each event: see docs
    report = run(backend, days=1, policy=policy, max_bytes=cap)
    assert not report.over_cap
    assert report.size_after <= cap
    kept = ids(backend)
    low = sorted(i for i in kept if i.startswith("low"))
    gone_low = 3000 - len(low)
    assert gone_low > 0
    assert low == [f"low{k:05}" for k in range(gone_low, 3000)]  # the oldest went first
    mids = [i for i in kept if i.startswith("mid")]
    assert len(mids) == 3000 or not low  # a mid event goes only once every low one has
    assert {a for _, a, _ in report.removed} == {"evicted"}
    assert verify(backend).ok


def test_the_dead_letter_counts_against_the_cap(backend: Backend, tmp_path: Path) -> None:
    write(backend, [noise(f"n{k}", k) for k in range(50)])
    dead = tmp_path / "dead-letter.jsonl"
    dead.write_bytes(b"x" * 4_000_000)
    report = run(backend, days=1, max_bytes=3_000_000, dead_letter=[dead])
    assert report.over_cap  # the dead letter alone is over: every event went, to no avail
    assert ids(backend) == set()
    assert run(backend, days=1, max_bytes=5_000_000, dead_letter=[dead]).over_cap is False
    assert verify(backend).ok


def _contents(backend: Backend) -> list[list[tuple[object, ...]]]:
    tables = ("segments", "events", "facets", "incidents", "checkpoints")
    return [sorted(backend.execute(f"SELECT * FROM {table}"), key=repr) for table in tables]  # noqa: S608


def test_a_dry_run_changes_nothing_and_says_the_same(backend: Backend) -> None:
    incident_store(backend)
    before = _contents(backend)
    dry = run(backend, days=100, dry_run=True)
    assert _contents(backend) == before
    real = run(backend, days=100)
    assert dry.removed == real.removed
    assert (dry.tombstones, dry.segments_touched) == (real.tombstones, real.segments_touched)
    assert dry.retention_segments == []


def test_emptied_segments_lose_their_evidence(backend: Backend) -> None:
    write(backend, [noise(f"n{k}", k) for k in range(1200)])  # three segments of evidence
    report = run(backend, days=100)
    assert len(report.evidence_dropped) == 3
    assert backend.execute("SELECT count(*) FROM segments WHERE length(data) > 0") == [(0,)]
    assert report.size_after < report.size_before
    assert verify(backend).ok


@pytest.fixture
def pruned(backend: Backend) -> Backend:
    """Rolled up and expired records, some events left (severe), tombstones and rollups."""
    events = [noise(f"n{k}", k * 60) for k in range(600)]
    events += [event(f"c{k}", k * 60 + 1, priority=Priority.CRITICAL) for k in range(600)]
    events.sort(key=lambda e: e.time_ns)
    write(backend, events)
    run(backend, days=8)
    assert backend.execute("SELECT count(*) FROM rollups")[0][0] > 0
    report = verify(backend)
    assert report.ok, report.problems
    assert report.tombstones > 0
    return backend


def _forge_entries(backend: Backend) -> None:
    ((blob,),) = backend.execute("SELECT entries FROM tombstones ORDER BY id LIMIT 1")
    forged = bytes(blob)[:-1] + bytes([bytes(blob)[-1] ^ 1])
    backend.execute(
        "UPDATE tombstones SET entries = ?, entries_sha256 = ? WHERE id = "
        "(SELECT min(id) FROM tombstones)",
        (forged, hashlib.sha256(forged).hexdigest()),
    )


_FIRST_EVENT = (
    'segment = (SELECT min(segment) FROM events) AND "offset" = (SELECT min("offset") '
    "FROM events WHERE segment = (SELECT min(segment) FROM events))"
)
_LAST_EVENT = (
    'segment = (SELECT max(segment) FROM events) AND "offset" = (SELECT max("offset") '
    "FROM events WHERE segment = (SELECT max(segment) FROM events))"
)
Tamper = Callable[[Backend], object]
TAMPERS: dict[str, tuple[Tamper, str]] = {
    "an event deleted without a tombstone": (
        lambda b: b.execute(f"DELETE FROM events WHERE {_FIRST_EVENT}"),  # noqa: S608
        "tombstoned, sealed with",
    ),
    "a remaining event edited": (
        lambda b: b.execute(f"UPDATE events SET time_ns = time_ns + 1 WHERE {_LAST_EVENT}"),  # noqa: S608
        "do not match its Merkle root",
    ),
    "a tombstone's reasons edited": (
        lambda b: b.execute("UPDATE tombstones SET reasons = '[]'"),
        "do not match its Merkle root",
    ),
    "a tombstone's entries edited": (
        lambda b: b.execute("UPDATE tombstones SET entries = ?", (b"\x00",)),
        "entries do not match their sha256",
    ),
    "a tombstone's entries forged with a new sha256": (_forge_entries, "Merkle root"),
    "a tombstone deleted": (
        lambda b: b.execute("DELETE FROM tombstones WHERE id = (SELECT max(id) FROM tombstones)"),
        "sealed with",
    ),
    "a rollup count edited": (
        lambda b: b.execute("UPDATE rollups SET count = count + 1"),
        "do not match its Merkle root",
    ),
    "a rollup deleted": (
        lambda b: b.execute("DELETE FROM rollups WHERE id = (SELECT min(id) FROM rollups)"),
        "do not match its Merkle root",
    ),
    "a tombstone inserted for a record never removed": (
        lambda b: b.execute(
            "INSERT INTO tombstones (id, segment, target, kind, removed, entries_sha256, "
            "reasons, policy, evidence, written_ns, entries) SELECT (SELECT max(id) + 1 FROM "
            "tombstones), segment, target, kind, removed, entries_sha256, reasons, policy, "
            "evidence, written_ns, entries FROM tombstones WHERE id = (SELECT min(id) FROM "
            "tombstones)"
        ),
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_verify_passes_a_lawful_prune_and_catches_everything_else(
    pruned: Backend, case: str
) -> None:
    change, fragment = TAMPERS[case]
    change(pruned)
    report = verify(pruned)
    assert not report.ok, case
    assert any(fragment in str(problem) for problem in report.problems), report.problems


# -- incident expiry ---------------------------------------------------------------------------

NEVER = 1 << 62  # a time after every signal: the correlator closes what is open


def critical(name: str, at_s: float, workload: Workload = WEB) -> Event:
    return event(name, at_s, workload, priority=Priority.CRITICAL)


def closed_incident(backend: Backend, *signals: Event) -> list[Incident]:
    """Noise on WEB and DB from 0 to 3000 s, then the signals' incidents written as the
    monitor writes them (open, then closed when it stops). Returns their closed states."""
    events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    events += [noise(f"d{t}", t, workload=DB) for t in range(0, 3000, 100)]
    events.sort(key=lambda e: e.time_ns)
    correlator = Correlator()
    opened = correlator.add(list(signals), signals[-1].time_ns)
    closed = correlator.expire(NEVER)
    with backend.open() as store:
        store.write(events, [])
        store.write(list(signals), opened)
        store.write([], closed)
    assert closed
    assert all(i.status == "closed" for i in closed)
    return closed


def incident_ids(backend: Backend) -> set[str]:
    return {str(row[0]) for row in backend.execute("SELECT id FROM incidents")}


def days_after(incident: Incident, days: float) -> float:
    """``run``'s days (from T0) at which the incident's last signal is this old."""
    return (incident.last_ns - T0) / DAY_NS + days


EXPIRED = ("incident", "incident_expired", "last signal over 365 days ago")


def test_an_incident_and_its_evidence_expire_at_the_class_age(backend: Backend) -> None:
    (incident,) = closed_incident(backend, critical("sig1", 2000.5), critical("sig2", 2001.5))
    kept = run(backend, days_after(incident, 364.99))
    assert kept.incidents_removed == 0
    assert incident_ids(backend) == {incident.id}
    assert {"sig1", "sig2", "w1200", "w2300"} <= ids(backend)  # signals and context window
    assert not any(i.startswith("d") for i in ids(backend))  # DB's noise went long ago
    dry = run(backend, days_after(incident, 365.01), dry_run=True)
    assert incident_ids(backend) == {incident.id}
    report = run(backend, days_after(incident, 365.01))
    assert (dry.incidents_removed, dry.removed) == (1, report.removed)
    assert report.incidents_removed == 1
    assert report.removed[EXPIRED] == 1
    assert report.removed[("severe", "expired", "tier critical")] == 2
    assert (incident_ids(backend), ids(backend)) == (set(), set())  # its evidence went too
    checked = verify(backend)
    assert checked.ok, checked.problems
    assert (checked.removed_incidents, checked.incidents) == (1, 0)
    with backend.open(read_only=True) as store:
        assert retention_stats(store, DEFAULT)["incidents_removed"] == 1


def test_a_held_incident_outlives_its_age_and_expires_after_release(backend: Backend) -> None:
    (incident,) = closed_incident(backend, critical("sig1", 2000.5), critical("sig2", 2001.5))
    with backend.open() as store:
        assert place_hold(store, incident.id, "case 7", T0).changed
    late = days_after(incident, 400)
    assert run(backend, late).incidents_removed == 0
    assert incident_ids(backend) == {incident.id}
    assert {"sig1", "sig2", "w1200"} <= ids(backend)
    with backend.open() as store:
        assert release_hold(store, incident.id, T0).changed
    report = run(backend, late)
    assert (report.incidents_removed, report.removed[EXPIRED]) == (1, 1)
    assert (incident_ids(backend), ids(backend)) == (set(), set())
    checked = verify(backend)
    assert checked.ok, checked.problems
    assert checked.removed_incidents == 1


def test_verify_accepts_an_expiry_and_reports_an_incident_deleted_without_one(
    backend: Backend,
) -> None:
    (old,) = closed_incident(backend, critical("sig1", 2000.5))
    (stored,) = backend.execute("SELECT * FROM incidents")  # to put back later
    later = [critical("late1", 400 * 86_400, workload=DB)]  # a year on: kept when old expires
    correlator = Correlator()
    with backend.open() as store:
        store.write(later, correlator.add(later, later[-1].time_ns))
        store.write([], correlator.expire(NEVER))
    (young,) = incident_ids(backend) - {old.id}
    assert run(backend, days_after(old, 366)).incidents_removed == 1
    assert incident_ids(backend) == {young}
    checked = verify(backend)
    assert checked.ok, checked.problems
    assert checked.removed_incidents == 1
    backend.execute("DELETE FROM incidents WHERE id = ?", (young,))
    problems = [str(p) for p in verify(backend).problems]
    assert any(f"incident {young}" in p and "is missing: deleted" in p for p in problems)
    assert not any(old.id in p for p in problems), problems  # its expiry is still lawful
    marks = ", ".join("?" * len(stored))
    backend.execute(f"INSERT INTO incidents VALUES ({marks})", stored)  # noqa: S608 - marks
    problems = [str(p) for p in verify(backend).problems]
    assert any(f"incident {old.id}" in p and "put back" in p for p in problems), problems


# -- compact tombstones ------------------------------------------------------------------------


def event_tombstones(backend: Backend) -> list[tuple[int, int, bytes]]:
    """(id, events removed, entries) of each event tombstone."""
    found = backend.execute(
        "SELECT id, removed, entries FROM tombstones WHERE kind = 'event' ORDER BY id"
    )
    return [(int(r[0]), int(r[1]), bytes(r[2])) for r in found]  # type: ignore[call-overload]


def test_a_segment_emptied_at_once_keeps_a_few_subtree_hashes(backend: Backend) -> None:
    with backend.open() as store:
        store.write([noise(f"n{k}", k) for k in range(2000)], [])
    run(backend, days=100)
    ((_, removed, blob),) = event_tombstones(backend)
    assert removed == 2000
    (entry,) = unpack_entries(blob)
    assert isinstance(entry, Run)
    assert entry.count == 2000
    assert len(blob) < 500 < removed * ENTRY_BYTES
    checked = verify(backend)
    assert checked.ok, checked.problems
    assert checked.removed_records == 2000


def test_runs_between_kept_events_then_the_rest(backend: Backend) -> None:
    # Ten noise events, then a critical one, over and over, in one segment: the noise goes
    # first as runs between the kept criticals (their places read back from the store).
    events = [critical(f"c{k}", k * 11) if k % 11 == 10 else noise(f"n{k}", k * 11)
              for k in range(300)]  # fmt: skip
    with backend.open() as store:
        store.write(events, [])
    run(backend, days=100)
    ((_, removed, blob),) = event_tombstones(backend)
    assert removed == 300 - 27
    assert sum(isinstance(part, Run) for part in unpack_entries(blob)) >= 20
    assert ids(backend) == {f"c{k}" for k in range(10, 300, 11)}
    checked = verify(backend)
    assert checked.ok, checked.problems
    run(backend, days=400)  # the criticals go too, single ones between the earlier runs
    assert ids(backend) == set()
    assert len(event_tombstones(backend)) == 2
    checked = verify(backend)
    assert checked.ok, checked.problems
    assert checked.removed_records == 300


def test_a_tampered_subtree_hash_is_caught(backend: Backend) -> None:
    with backend.open() as store:
        store.write([noise(f"n{k}", k) for k in range(600)], [])
        store.write([critical("keep", 700)], [])
    run(backend, days=100)
    ((tombstone_id, _, blob),) = event_tombstones(backend)
    changed = blob[:-1] + bytes([blob[-1] ^ 1])  # the last subtree hash of the run
    backend.execute("UPDATE tombstones SET entries = ? WHERE id = ?", (changed, tombstone_id))
    problems = [str(p) for p in verify(backend).problems]
    assert any("entries do not match their sha256" in p for p in problems), problems
    backend.execute(
        "UPDATE tombstones SET entries_sha256 = ? WHERE id = ?",
        (hashlib.sha256(changed).hexdigest(), tombstone_id),
    )
    problems = [str(p) for p in verify(backend).problems]
    assert "segment 1: its records do not match its Merkle root" in problems[0], problems
    assert any("segment 3: its records do not match" in p for p in problems), problems
