"""The pipeline with a list source, the real stages, a real SQLite store and a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from kubesentinel.models import Priority
from kubesentinel.runtime import pipeline, workers
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.deadletter import DeadLetter, read_dead_letter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.filters import EventFilter
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources.interface import Outcome, RawAlert
from kubesentinel.runtime.store.sqlite import SQLiteStore

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def alert(rule: str, seconds: float, pod: str = "web-6d4cf56db6-x7k2p", **extra: object) -> bytes:
    time_ns = BASE_NS + int(seconds * 1e9)
    body = {
        "hostname": "node-1",
        "output": f"{rule} happened",
        "output_fields": {
            "evt.time": time_ns,
            "k8s.ns.name": "shop",
            "k8s.pod.name": pod,
            "container.id": "abc123def456",
        },
        "priority": "Warning",
        "rule": rule,
        "source": "syscall",
        "tags": ["mitre_execution", "T1059"],
        **extra,
    }
    return json.dumps(body).encode()


class ListSource:
    """A finite source over prepared batches; records acknowledgements."""

    name = "list"

    def __init__(self, batches: list[list[bytes]]) -> None:
        self._batches = batches
        self.acked: list[str] = []
        self.outcomes: dict[str, tuple[Outcome, str]] = {}

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        for n, batch in enumerate(self._batches):
            yield [
                RawAlert(
                    data,
                    f"list:{n}:{i}",
                    BASE_NS,
                    ack=partial(self._settle, f"list:{n}:{i}"),
                )
                for i, data in enumerate(batch)
            ]

    def _settle(self, origin: str, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
        self.acked.append(origin)
        self.outcomes[origin] = (outcome, reason)

    def close(self) -> None:
        pass


class FakeWall:
    def __init__(self) -> None:
        self.now = BASE_NS

    def __call__(self) -> int:
        return self.now


def _run(
    tmp_path: Path, source: ListSource, **options: object
) -> tuple[pipeline.Summary, SQLiteStore]:
    store = SQLiteStore(tmp_path / "ks.db")
    dead_letter = DeadLetter(tmp_path / "dead.jsonl")
    try:
        summary = pipeline.run(
            source,
            enricher=Enricher(cluster="test"),
            correlator=Correlator(window_s=60),
            store=store,
            metrics=Metrics(),
            dead_letter=dead_letter,
            wall=FakeWall(),
            **options,  # type: ignore[arg-type]
        )
    finally:
        dead_letter.close()
    return summary, store


def test_good_events_around_malformed_ones_are_stored_and_acknowledged(tmp_path: Path) -> None:
    source = ListSource(
        [
            [alert("Terminal shell in container", 0), b'{"rule": "x", "prio', b"\x00\xff garbage"],
            [alert("Terminal shell in container", 5), alert("Read sensitive file untrusted", 9)],
        ]
    )
    summary, store = _run(tmp_path, source)
    assert (summary.read, summary.stored, summary.malformed) == (5, 3, 2)
    assert len(source.acked) == 5  # malformed ones too: they are safe in the dead-letter file
    rejected = {o: r for o, (outcome, r) in source.outcomes.items() if outcome is Outcome.REJECTED}
    assert sorted(rejected) == ["list:0:1", "list:0:2"]
    assert rejected["list:0:1"].startswith("truncated JSON")
    assert rejected["list:0:2"] == "binary data, not JSON"
    stored = [o for o, (outcome, _) in source.outcomes.items() if outcome is Outcome.STORED]
    assert sorted(stored) == ["list:0:0", "list:1:0", "list:1:1"]
    dead = list(read_dead_letter(tmp_path / "dead.jsonl"))
    assert [(d.origin, d.data) for d in dead] == [
        ("list:0:1", b'{"rule": "x", "prio'),
        ("list:0:2", b"\x00\xff garbage"),
    ]
    (incident,) = store.list_incidents()
    assert incident.workload.key == "test/shop/Deployment/web"
    # The second shell alert is identical to the first (same rule and fields): a repeat.
    assert (incident.event_count, incident.context.repeat) == (2, 1)
    assert {(r.rule, r.count) for r in incident.rules} == {
        ("Terminal shell in container", 2),
        ("Read sensitive file untrusted", 1),
    }
    assert incident.status == "closed"  # the end of a finite source closes what is open
    assert len(store.events_of(incident.id)) == 3


def test_internal_events_are_health_metrics_never_incidents(tmp_path: Path) -> None:
    internal = json.dumps(
        {
            "hostname": "node-1",
            "output": "Falco metrics snapshot",
            "output_fields": {"evt.time": BASE_NS, "falco.num_evts": 10},
            "priority": "Informational",
            "rule": "Falco internal: metrics snapshot",
            "source": "internal",
            "time": "2026-01-01T00:00:00.000000000Z",
        }
    ).encode()
    summary, store = _run(
        tmp_path, ListSource([[internal, alert("Terminal shell in container", 1)]])
    )
    assert (summary.internal, summary.stored) == (1, 1)
    assert len(store.list_incidents()) == 1


def test_filters_and_windows(tmp_path: Path) -> None:
    quiet = alert("Terminal shell in container", 0, priority="Notice")
    later = alert("Terminal shell in container", 600)  # beyond the 60 s window: a new incident
    other_ns = alert("Terminal shell in container", 1).replace(b'"shop"', b'"dev"')
    summary, store = _run(
        tmp_path,
        ListSource([[quiet, alert("Terminal shell in container", 1), later, other_ns]]),
        event_filter=EventFilter(namespaces=frozenset({"shop"}), min_priority=Priority.WARNING),
    )
    assert (summary.stored, summary.filtered) == (2, 2)
    assert summary.incidents_opened == 2
    assert len(store.list_incidents()) == 2


def test_redelivered_events_are_stored_once(tmp_path: Path) -> None:
    first = alert("Terminal shell in container", 0, uuid="4b0ff8a4-6b0e-4e5c-9d4c-5d9f0e6d1a01")
    summary, store = _run(tmp_path, ListSource([[first], [first]]))
    (incident,) = store.list_incidents()
    assert incident.event_count == 1
    assert len(store.events_of(incident.id)) == 1
    assert summary.read == 2


def test_worker_processes_give_the_same_result_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesentinel.runtime.simulate import simulate

    monkeypatch.setattr(workers, "PARALLEL_MIN_CORES", 1)  # use a worker even on small machines
    lines = [line.encode() for line in simulate(seed=5, hours=0.25, events_per_s=2.0).lines()]
    batches = [lines[i : i + 97] for i in range(0, len(lines), 97)] + [[b"{broken"]]
    results = []
    for processes, folder in ((1, "serial"), (2, "parallel")):
        (tmp_path / folder).mkdir()
        source = ListSource(batches)
        summary, store = _run(tmp_path / folder, source, workers=processes, max_batch=97)
        incidents = store.list_incidents(limit=1000)
        results.append(
            (summary.as_dict(), [(i.id, i.event_count, i.risk_score) for i in incidents])
        )
        assert source.acked == [
            f"list:{n}:{i}" for n, b in enumerate(batches) for i in range(len(b))
        ]
    (serial_summary, serial), (parallel_summary, parallel) = results
    serial_summary.pop("duration_s")
    parallel_summary.pop("duration_s")
    assert serial_summary == parallel_summary
    assert serial == parallel
    assert serial_summary["malformed"] == 1


def test_every_opened_incident_is_counted_closed_at_the_end(tmp_path: Path) -> None:
    # Two incidents on one workload: the second event, beyond the window, closes the first.
    source = ListSource(
        [[alert("Terminal shell in container", 0)], [alert("Terminal shell in container", 600)]]
    )
    summary, _store = _run(tmp_path, source)
    assert (summary.incidents_opened, summary.incidents_closed) == (2, 2)


def test_store_process_gives_the_same_result_and_acknowledges_in_order(tmp_path: Path) -> None:
    from kubesentinel.runtime.simulate import simulate

    lines = [line.encode() for line in simulate(seed=9, hours=0.25, events_per_s=2.0).lines()]
    batches = [lines[i : i + 113] for i in range(0, len(lines), 113)] + [[b"{broken"]]
    results = []
    for process, folder in ((False, "inline"), (True, "process")):
        (tmp_path / folder).mkdir()
        source = ListSource(batches)
        summary, store = _run(tmp_path / folder, source, store_process=process, max_batch=113)
        incidents = store.list_incidents(limit=1000)
        stored = sum(len(store.events_of(i.id)) for i in incidents)
        results.append((summary.as_dict(), [(i.id, i.event_count, i.status) for i in incidents]))
        assert stored == summary.stored
        assert source.acked == [
            f"list:{n}:{i}" for n, b in enumerate(batches) for i in range(len(b))
        ]
    (inline_summary, inline), (process_summary, by_process) = results
    inline_summary.pop("duration_s")
    process_summary.pop("duration_s")
    assert inline_summary == process_summary
    assert inline == by_process
