"""A day of a simulated cluster: background noise all day, four attacks, a workload that only
sends telemetry and one that never stops sending distinct alerts. Incidents must be bounded
episodes, each attack its own incident with its own alerts, and telemetry no incident at all.

The stream goes through the real stages the monitor runs (parse, enrich, correlate, store) in
its batches of 2,048, with the pipeline's calls (``add`` then ``expire`` at the batch's time).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubesentinel.models import Event, Incident, Priority, Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.simulate import ScenarioLabel, simulate
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.runtime.workers import prepare

S = 1_000_000_000
HOURS = 24
GAP_S, MAX_S = 300, 3600
CLUSTER = "sim"
QUIET = Workload(CLUSTER, "kube-system", "DaemonSet", "dns-probe")  # telemetry only
CHATTY = Workload(CLUSTER, "batch", "Deployment", "etl")  # a distinct alert every 2 minutes
BACKGROUND = ("node-agent", "fluent-bit", "dependency-audit", "postgres", "cart")


@dataclass
class Day:
    labels: tuple[ScenarioLabel, ...]
    events: list[Event]
    incidents: dict[str, Incident]  # final state of each
    store: SQLiteStore


def _extra(start_ns: int) -> list[Event]:
    events = []
    for minute in range(HOURS * 60):
        at = start_ns + minute * 60 * S + 7 * S
        quiet = (("Informational", Priority.INFORMATIONAL, ()),
                 ("Debug", Priority.DEBUG, ()),
                 ("Telemetry", Priority.WARNING, ("telemetry", "container")))  # fmt: skip
        for n, (name, priority, tags) in enumerate(quiet):
            probe = f"DNS probe {name}"
            events.append(_event(f"q{minute}-{n}", at + n * S, QUIET, probe, priority=priority,
                                 tags=tags, cmdline="dig kubernetes"))  # fmt: skip
        if minute % 2 == 0:
            events.append(_event(f"etl{minute}", at, CHATTY, "Run shell untrusted",
                                 cmdline=f"sh -c etl --part {minute}"))  # fmt: skip
    return events


def _event(
    event_id: str,
    time_ns: int,
    workload: Workload,
    rule: str,
    *,
    cmdline: str,
    priority: Priority = Priority.NOTICE,
    tags: tuple[str, ...] = ("container",),
) -> Event:
    process = cmdline.split(maxsplit=1)[0]
    return Event(
        event_id, time_ns, time_ns, rule, priority, "syscall", "node-1", workload,
        f"{workload.name}-0", "0123456789ab", "registry.example.com/x:1", (), (), tags,
        f"{rule} (command={cmdline})", {"proc.name": process, "proc.cmdline": cmdline},
        f"test:{event_id}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    sim = simulate(seed=1, hours=HOURS)
    raw = [RawAlert(line.encode(), f"sim:{n}", 0) for n, line in enumerate(sim.lines())]
    enricher = Enricher(cluster=CLUSTER)
    events: list[Event] = []
    for start in range(0, len(raw), 2048):
        events += prepare(raw[start : start + 2048], enricher).events
    events += _extra(sim.start_ns)
    events.sort(key=lambda e: e.time_ns)
    store = SQLiteStore(tmp_path_factory.mktemp("day") / "ks.db")
    correlator = Correlator(gap_s=GAP_S, max_duration_s=MAX_S)
    final: dict[str, Incident] = {}
    for start in range(0, len(events), 2048):
        batch = events[start : start + 2048]
        now = batch[-1].time_ns
        states = [*correlator.add(batch, now), *correlator.expire(now)]
        store.write(batch, states)
        final.update((i.id, i) for i in states)
    closed = correlator.expire(2**63 - 1)
    store.write([], closed)
    final.update((i.id, i) for i in closed)
    return Day(sim.labels, events, final, store)


def _of(day: Day, name: str) -> list[Incident]:
    return sorted(
        (i for i in day.incidents.values() if i.workload.name == name), key=lambda i: i.first_ns
    )


def test_incidents_are_bounded_episodes(day: Day) -> None:
    assert day.store.count_incidents() == len(day.incidents)
    assert all(i.status == "closed" for i in day.incidents.values())
    assert max(i.last_ns - i.first_ns for i in day.incidents.values()) <= MAX_S * S
    for name in BACKGROUND:
        episodes = _of(day, name)
        assert len(episodes) >= 100, name  # the noise makes many short incidents...
        spans = sorted(i.last_ns - i.first_ns for i in episodes)
        assert spans[len(spans) // 2] <= 20 * 60 * S, name  # ...mostly short ones
    # Before: node-agent was one critical incident of 5,004 events from 00:00 to 23:59.
    node_agent = _of(day, "node-agent")
    assert sum(i.severity.label == "critical" for i in node_agent) == 1  # the attack's


def test_a_workload_that_never_pauses_gets_a_chain_of_linked_incidents(day: Day) -> None:
    chain = _of(day, "etl")
    assert len(chain) == HOURS  # one per hour: each spans the max duration at most
    assert chain[0].previous_id is None
    assert [i.previous_id for i in chain[1:]] == [i.id for i in chain[:-1]]
    listed = [event_id for i in chain for event_id in i.event_ids]
    assert listed == [e.id for e in day.events if e.workload == CHATTY]
    stored = day.store.get_incident(chain[5].id)
    assert stored is not None
    assert (stored.previous_id, day.store.next_of(stored.id)) == (chain[4].id, chain[6].id)


def test_each_attack_is_its_own_incident_listing_its_alerts(day: Day) -> None:
    holders: dict[str, str] = {}
    for label in day.labels:
        steps = {(s.time_ns, s.rule) for s in label.steps}
        ids = {e.id for e in day.events if (e.time_ns, e.rule) in steps}
        assert len(ids) == len(label.steps), label.id
        found = [i for i in day.incidents.values() if ids & {*i.event_ids, *i.context_ids}]
        assert len(found) == 1, label.id  # one incident holds the whole attack
        incident = found[0]
        assert incident.workload.name == label.workload.name
        assert incident.severity.label in ("high", "critical"), label.id
        assert incident.last_ns - incident.first_ns <= 15 * 60 * S, label.id
        stored = {s.event.id: s.context for s in day.store.stored_events_of(incident.id)}
        assert ids <= stored.keys(), label.id  # every alert of the attack, in its incident
        signals = {event_id for event_id in ids if stored[event_id] is None}
        from_store = day.store.get_incident(incident.id)
        assert from_store is not None
        assert signals <= set(from_store.event_ids)
        assert {r.rule for r in from_store.rules} >= set(label.rules)
        holders[label.id] = incident.id
    assert len(set(holders.values())) == len(day.labels)


def test_telemetry_alone_opens_no_incident(day: Day) -> None:
    assert _of(day, "dns-probe") == []
    raw = sqlite3.connect(Path(day.store.path))
    try:
        counts = raw.execute(
            "SELECT count(*), count(e.incident) FROM events e"
            " JOIN facets f ON f.id = e.facet WHERE f.name = 'dns-probe'"
        ).fetchone()
    finally:
        raw.close()
    assert counts == (HOURS * 60 * 3, 0)  # all stored, none in an incident


def test_context_is_counted_on_the_incidents(day: Day) -> None:
    by_reason: dict[str, int] = defaultdict(int)
    for incident in day.incidents.values():
        by_reason["repeat"] += incident.context.repeat
        assert incident.event_count == len(incident.event_ids)
    assert by_reason["repeat"] > 10 * sum(i.event_count for i in _of(day, "node-agent"))
