"""The monitor's pipeline, wired in one readable function.

    source -> parse -> (internal: health metrics) -> enrich -> filter -> correlate -> store -> ack

Every stage takes a whole batch. Items are acknowledged only after the store committed the
batch, so a crash never loses an accepted alert (a redelivering source sends it again and the
store ignores the duplicate). Malformed alerts go to the dead-letter file with their origin.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kubesentinel.models import Event, FalcoAlert, Incident, Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.parse import Rejected, parse_batch
from kubesentinel.runtime.sources.interface import RawAlert, Source
from kubesentinel.runtime.store.interface import IncidentStore

log = logging.getLogger("kubesentinel.monitor")

DEFAULT_BATCH = 2048
PARALLEL_MIN_CORES = 3
END_OF_TIME = 2**63 - 1


@dataclass(frozen=True, slots=True)
class EventFilter:
    """--namespace, --deployment and --min-priority; empty sets accept everything."""

    namespaces: frozenset[str] = frozenset()
    deployments: frozenset[str] = frozenset()
    min_priority: Priority = Priority.DEBUG

    def accept(self, event: Event) -> bool:
        if event.priority < self.min_priority:
            return False
        if self.namespaces and event.workload.namespace not in self.namespaces:
            return False
        return not self.deployments or (
            event.workload.kind == "Deployment" and event.workload.name in self.deployments
        )


@dataclass(slots=True)
class Summary:
    read: int = 0
    malformed: int = 0
    internal: int = 0
    filtered: int = 0
    stored: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    duration_s: float = 0.0

    def as_dict(self, refused: int = 0) -> dict[str, Any]:
        return {
            "events_read": self.read,
            "events_stored": self.stored,
            "malformed": self.malformed,
            "refused": refused,
            "internal": self.internal,
            "filtered_out": self.filtered,
            "incidents_opened": self.incidents_opened,
            "incidents_closed": self.incidents_closed,
            "duration_s": round(self.duration_s, 3),
        }


class DeadLetter:
    """Malformed alerts, one JSON object per line: where from, why, and the bytes (as text)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stream: TextIO | None = None

    def write(self, rejected: Sequence[Rejected]) -> None:
        if not rejected or self.path is None:
            return
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", encoding="utf-8")
        for item in rejected:
            record = {
                "origin": item.origin,
                "reason": item.reason,
                "data": item.data.decode("utf-8", errors="replace"),
            }
            self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class StreamClock:
    """Event time for replays, wall time when a live stream goes quiet.

    Incidents close when no event arrived for the window. A replayed file must be judged by
    the events' own timestamps, not by how fast it is read; an idle live source must still see
    time pass, so the clock advances with the wall clock since the newest event.
    """

    def __init__(self, wall: Callable[[], int] = time.time_ns) -> None:
        self._wall = wall
        self._event_ns = 0
        self._wall_at_event = wall()

    def observe(self, events: Sequence[Event]) -> None:
        newest = max((e.time_ns for e in events), default=0)
        if newest > self._event_ns:
            self._event_ns = newest
            self._wall_at_event = self._wall()

    def now(self) -> int:
        return self._event_ns + (self._wall() - self._wall_at_event)


@dataclass(frozen=True, slots=True)
class Stages:
    enricher: Enricher
    correlator: Correlator
    store: IncidentStore
    metrics: Metrics
    dead_letter: DeadLetter
    event_filter: EventFilter


def run(
    source: Source,
    *,
    enricher: Enricher,
    correlator: Correlator,
    store: IncidentStore,
    metrics: Metrics,
    dead_letter: DeadLetter,
    event_filter: EventFilter = EventFilter(),
    stop: threading.Event | None = None,
    stop_when_idle: bool = False,
    max_batch: int = DEFAULT_BATCH,
    workers: int = 1,
    clock: StreamClock | None = None,
    wall: Callable[[], int] = time.time_ns,
) -> Summary:
    """Process the source until it ends (or ``stop`` is set); at the end close every incident.

    ``stop_when_idle`` (--until-eof) also ends a live source at its first idle poll, which is
    how a replay through NATS or a socket finishes in CI. With ``workers`` > 1, parsing and
    enrichment run in ``workers - 1`` other processes while this one correlates and stores;
    batches are committed in source order either way.
    """
    summary = Summary()
    clock = clock or StreamClock(wall)
    stages = Stages(enricher, correlator, store, metrics, dead_letter, event_filter)
    started = time.perf_counter()
    with Preparer(enricher, workers) as preparer:
        for batch, prepared in preparer.prepare(_until(source, stop, stop_when_idle, max_batch)):
            _commit(batch, prepared, stages, summary, clock=clock, wall=wall)
    closed = correlator.expire(END_OF_TIME)
    if closed:
        store.write((), closed)
    summary.incidents_closed += len(closed)
    summary.duration_s = time.perf_counter() - started
    return summary


def _until(
    source: Source, stop: threading.Event | None, stop_when_idle: bool, max_batch: int
) -> Iterator[list[RawAlert]]:
    for batch in source.batches(max_batch):
        if not batch and stop_when_idle:
            return
        yield batch
        if stop is not None and stop.is_set():
            return


@dataclass(frozen=True, slots=True)
class Prepared:
    """What parsing and enrichment made of one batch (plain data: crosses processes)."""

    events: list[Event]
    rejected: list[Rejected]
    internal: list[FalcoAlert]


def prepare(batch: Sequence[RawAlert], enricher: Enricher) -> Prepared:
    parsed, rejected = parse_batch(batch)
    internal = [alert for alert, _ in parsed if alert.source == "internal"]
    if internal:
        parsed = [(alert, received) for alert, received in parsed if alert.source != "internal"]
    return Prepared(enricher.enrich(parsed), rejected, internal)


class Preparer:
    """Runs ``prepare`` inline, or in worker processes with a bounded number of batches in
    flight (so a fast file cannot be read into memory ahead of the store)."""

    def __init__(self, enricher: Enricher, workers: int) -> None:
        self._enricher = enricher
        cores = os.cpu_count() or 1
        # Measured on 2 cores: shipping events between processes costs more than the parsing
        # it spreads (60,000 alerts: 4.3 s inline, 5.0-5.4 s with a worker), so below
        # PARALLEL_MIN_CORES everything runs inline.
        self._processes = min(workers, cores) - 1 if cores >= PARALLEL_MIN_CORES else 0
        self._pool: Any = None

    def __enter__(self) -> Preparer:
        if self._processes:
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            self._pool = context.Pool(
                self._processes, initializer=_init_worker, initargs=(self._enricher,)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def prepare(
        self, batches: Iterable[list[RawAlert]]
    ) -> Iterator[tuple[list[RawAlert], Prepared]]:
        if self._pool is None:
            for batch in batches:
                yield batch, prepare(batch, self._enricher)
            return
        in_flight: deque[tuple[list[RawAlert], Any]] = deque()
        window = 2 * self._processes + 1
        for batch in batches:
            if not batch and not in_flight:
                yield batch, Prepared([], [], [])  # idle: let expiry run
                continue
            payload = [(item.data, item.origin, item.received_ns) for item in batch]
            in_flight.append((batch, self._pool.apply_async(_prepare_in_worker, (payload,))))
            while len(in_flight) > window or (in_flight and in_flight[0][1].ready()):
                done, result = in_flight.popleft()
                yield done, result.get()
        while in_flight:
            done, result = in_flight.popleft()
            yield done, result.get()


_worker_enricher: Enricher | None = None


def _init_worker(enricher: Enricher) -> None:
    global _worker_enricher  # noqa: PLW0603 - one enricher per worker process, set once
    _worker_enricher = enricher


def _prepare_in_worker(payload: list[tuple[bytes, str, int]]) -> Prepared:
    assert _worker_enricher is not None
    batch = [RawAlert(data, origin, received) for data, origin, received in payload]
    return prepare(batch, _worker_enricher)


def _commit(
    batch: list[RawAlert],
    prepared: Prepared,
    stages: Stages,
    summary: Summary,
    *,
    clock: StreamClock,
    wall: Callable[[], int],
) -> None:
    correlator, store, metrics = stages.correlator, stages.store, stages.metrics
    events, rejected, internal = prepared.events, prepared.rejected, prepared.internal
    if rejected:
        stages.dead_letter.write(rejected)
        for bad in rejected:
            log.warning("malformed alert at %s: %s", bad.origin, bad.reason)
    if internal:
        _record_internal(internal, metrics)
    kept = [event for event in events if stages.event_filter.accept(event)]
    clock.observe(kept)
    now = clock.now()
    incidents: list[Incident] = correlator.add(kept, now)
    closed = correlator.expire(now)
    store.write(kept, [*incidents, *closed])
    for item in batch:
        if item.ack is not None:
            item.ack()
    new = correlator.opened_total - summary.incidents_opened
    summary.read += len(batch)
    summary.malformed += len(rejected)
    summary.internal += len(internal)
    summary.filtered += len(events) - len(kept)
    summary.stored += len(kept)
    summary.incidents_opened += new
    summary.incidents_closed += len(closed)
    metrics.observe_batch(
        received=len(batch),
        malformed=len(rejected),
        stored=len(kept),
        incidents_opened=new,
        open_incidents=correlator.open_count,
        latencies_ns=[wall() - item.received_ns for item in batch],
    )


def _record_internal(alerts: Sequence[FalcoAlert], metrics: Metrics) -> None:
    """Falco's own drops and metrics snapshots: health signals, never incidents."""
    for alert in alerts:
        metrics.record_internal(alert.rule, alert.output_fields)
