"""The store's behaviour, the same on SQLite and PostgreSQL: events and incidents written and
read back, redeliveries, upserts, filters, context, links, posture, evidence as received."""

from __future__ import annotations

import pytest

from kubesentinel.errors import StoreError
from kubesentinel.models import Priority, Severity, Workload
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.interface import VaultStore
from tests.runtime.test_sqlite_store import DB, T0, WEB, correlated, event
from tests.store_behaviour.backends import Backend


def test_a_store_of_either_backend_is_a_vault_store(backend: Backend) -> None:
    with backend.open() as store:
        assert isinstance(store, VaultStore)
        assert backend.location.split("?")[0].split("/")[-1] in store.name


def test_round_trip_after_reopening(backend: Backend) -> None:
    events = [event("a", 0), event("b", 1, workload=DB), event("c", 2)]
    incidents = correlated(events)
    with backend.open() as store:
        store.write(events, incidents)
    with backend.open(read_only=True) as store:
        listed = store.list_incidents()
        assert {i.id for i in listed} == {i.id for i in incidents}
        web = next(i for i in listed if i.workload == WEB)
        assert list(web.event_ids) == ["a", "c"]
        assert [e.id for e in store.events_of(web.id)] == ["a", "c"]
        again = store.get_incident(web.id)
        assert again is not None
        assert again.rules == web.rules
        assert again.severity == web.severity
        assert store.get_incident("no-such-incident") is None


def test_events_keep_every_field_and_their_bytes_as_received(backend: Backend) -> None:
    raw = b'{"rule":"Terminal shell in container","output":"as sent","priority":"Notice"}'
    sent = event("3f2a9c1e-8d7b-4a6f-9e0d-1c2b3a4f5e6d", 0, raw=raw, origin="http:10.0.0.9")
    hexid = event("0123456789abcdef0123456789abcdef", 1)
    text = event("x" * 15, 2)  # a text id as long as a content id's bytes
    incidents = correlated([sent, hexid, text])
    with backend.open() as store:
        store.write([sent, hexid, text], incidents)
        (incident,) = incidents
        stored = store.stored_events_of(incident.id)
    assert [s.event.id for s in stored] == [sent.id, hexid.id, text.id]
    first = stored[0].event
    assert first.raw == raw
    assert first.output == "as sent"
    assert first.origin == "http:10.0.0.9"
    assert first.received_ns == sent.received_ns
    assert (first.rule, first.priority, first.workload, first.pod, first.tactics) == (
        sent.rule, sent.priority, sent.workload, sent.pod, sent.tactics,
    )  # fmt: skip
    assert stored[1].event.fields["proc.cmdline"] == "bash -c " + hexid.id
    assert stored[0].evidence == f"segment 1 @ 0+{len(raw)}"


def test_redelivered_events_are_stored_once(backend: Backend) -> None:
    events = [event("a", 0), event("b", 1)]
    with backend.open() as store:
        store.write(events, correlated(events))
        store.write([event("b", 1), event("c", 2)], [])
        assert store.vault_stats()["events"] == 3


def test_incident_state_is_upserted(backend: Backend) -> None:
    correlator = Correlator()
    with backend.open() as store:
        first = [event("a", 0)]
        store.write(first, correlator.add(first, first[-1].time_ns))
        more = [event("b", 5, priority=Priority.CRITICAL), event("c", 6)]
        (state,) = correlator.add(more, more[-1].time_ns)
        store.write(more, [state])
        (listed,) = store.list_incidents()
    assert listed.id == state.id
    assert listed.event_count == 3
    assert list(listed.event_ids) == ["a", "b", "c"]
    assert listed.severity == state.severity


def test_list_filters_limit_and_count(backend: Backend) -> None:
    correlator = Correlator()
    staging = Workload("default", "staging", "Deployment", "api")
    with backend.open() as store:
        for n, workload in enumerate([WEB, DB, staging]):
            batch = [event(f"e{n}", n * 10, workload=workload,
                           priority=Priority.CRITICAL if n == 2 else Priority.NOTICE)]  # fmt: skip
            store.write(batch, correlator.add(batch, batch[-1].time_ns))
        newest_first = [i.workload.name for i in store.list_incidents()]
        assert newest_first == ["api", "db", "web"]
        assert [i.workload.name for i in store.list_incidents(limit=1)] == ["api"]
        assert [i.workload.name for i in store.list_incidents(namespace="prod")] == ["web"]
        assert [i.workload.name for i in store.list_incidents(since_ns=T0 + 10 * 10**9)] == [
            "api", "db",
        ]  # fmt: skip
        critical = store.list_incidents(min_severity=Severity.CRITICAL)
        assert all(i.severity >= Severity.CRITICAL for i in critical)
        assert store.count_incidents() == 3
        assert store.count_incidents(namespace="data") == 1
        assert store.count_incidents(status="closed") == 0


def test_context_events_are_filed_with_their_reason(backend: Backend) -> None:
    signal = event("s", 0)
    telemetry = event("t", 1, priority=Priority.INFORMATIONAL)
    incidents = correlated([signal, telemetry])
    with backend.open() as store:
        store.write([signal, telemetry], incidents)
        (incident,) = store.list_incidents()
        stored = store.stored_events_of(incident.id)
        limited = store.stored_events_of(incident.id, context_limit=0)
    assert [(s.event.id, s.context) for s in stored] == [("s", None), ("t", "low_priority")]
    assert [s.event.id for s in limited] == ["s"]
    assert list(incident.event_ids) == ["s"]


def test_linked_incidents_round_trip_equal(backend: Backend) -> None:
    correlator = Correlator(gap_s=300, max_duration_s=600)
    events = [event(f"e{n}", n * 200) for n in range(5)]  # 0..800 s: two incidents
    first, second = correlated(events, correlator)
    with backend.open() as store:
        store.write(events, [first, second])
        assert store.get_incident(second.id) == second
        assert store.get_incident(first.id) == first
        assert store.next_of(first.id) == second.id
        assert store.next_of(second.id) is None


def test_posture_round_trip(backend: Backend) -> None:
    posture = Posture(
        workloads={
            "prod/prod/Deployment/web": (
                PostureFinding("KS-0001", Severity.CRITICAL, "Privileged container", "privileged"),
                PostureFinding("KS-0042", Severity.MEDIUM, "Memory request missing"),
            ),
        },
        source="scan.json",
        cluster="prod",
    )
    with backend.open() as store:
        assert store.load_posture() is None
        store.save_posture(Posture(source="first"))
        store.save_posture(posture)  # replaces the first
    with backend.open(read_only=True) as store:
        assert store.load_posture() == posture


def test_altered_evidence_is_reported_not_returned(backend: Backend) -> None:
    events = [event("a", 0), event("b", 1)]
    incidents = correlated(events)
    with backend.open() as store:
        store.write(events, incidents)
    backend.execute("UPDATE segments SET sha256 = ? WHERE id = 1", ("0" * 64,))
    with backend.open(read_only=True) as store, pytest.raises(StoreError) as caught:
        store.stored_events_of(incidents[0].id)
    assert "evidence segment 1 does not match its sha256" in caught.value.message
    assert caught.value.file == store.name
