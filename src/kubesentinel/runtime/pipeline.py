"""The monitor's pipeline, wired in one readable function.

    source -> parse -> (internal: health metrics) -> enrich -> filter -> correlate -> store -> ack

Every stage takes a whole batch. Items are acknowledged only after the store committed the
batch, so a crash never loses an accepted alert (a redelivering source sends it again and the
store ignores the duplicate). Malformed alerts go to the dead-letter file with their origin.

With ``store_process`` (the monitor's default on two cores or more) a SQLite store commits
from a process of its own (``store.writer``), in batch order, while this one parses the next
batches; items are still acknowledged only once their batch is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

from kubesentinel.models import Event, FalcoAlert, Incident
from kubesentinel.runtime.clock import StreamClock
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.deadletter import DeadLetter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.filters import ACCEPT_ALL, EventFilter
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.parse import Rejected
from kubesentinel.runtime.sources.interface import Outcome, RawAlert, Source
from kubesentinel.runtime.store.interface import IncidentStore
from kubesentinel.runtime.store.sqlite import EncodedWrite, SQLiteStore, encode_write
from kubesentinel.runtime.store.writer import StoreProcess
from kubesentinel.runtime.workers import Prepared, Preparer

log = logging.getLogger("kubesentinel.monitor")

DEFAULT_BATCH = 2048
END_OF_TIME = 2**63 - 1


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


@dataclass(frozen=True, slots=True)
class Stages:
    enricher: Enricher
    correlator: Correlator
    writer: _Writer
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
    event_filter: EventFilter = ACCEPT_ALL,
    stop: threading.Event | None = None,
    stop_when_idle: bool = False,
    max_batch: int = DEFAULT_BATCH,
    workers: int = 1,
    clock: StreamClock | None = None,
    wall: Callable[[], int] = time.time_ns,
    store_process: bool = False,
) -> Summary:
    """Process the source until it ends (or ``stop`` is set); at the end close every incident.

    ``stop_when_idle`` (--until-eof) also ends a live source at its first idle poll, which is
    how a replay through NATS or a socket finishes in CI. With ``workers`` > 1, parsing and
    enrichment run in ``workers - 1`` other processes while this one correlates; with
    ``store_process`` a SQLite store commits from a process of its own. Batches are committed
    in source order either way.
    """
    summary = Summary()
    clock = clock or StreamClock(wall)
    started = time.perf_counter()
    process = store_process and isinstance(store, SQLiteStore)
    parsers = workers - 1 if process else workers  # the writer takes one of the processes
    with _Writer(store, metrics, wall, process) as writer, Preparer(enricher, parsers) as preparer:
        stages = Stages(enricher, correlator, writer, metrics, dead_letter, event_filter)
        for batch, prepared in preparer.prepare(_until(source, stop, stop_when_idle, max_batch)):
            _commit(batch, prepared, stages, summary, clock=clock)
        closed = correlator.expire(END_OF_TIME)
        if closed:
            writer.submit([], [], closed, opened=0, open_incidents=0)
    summary.incidents_closed += len(closed)
    summary.duration_s = time.perf_counter() - started
    return summary


def _until(
    source: Source, stop: threading.Event | None, stop_when_idle: bool, max_batch: int
) -> Iterator[list[RawAlert]]:
    """The source's batches until it ends, or goes idle when told to stop.

    A stop request (SIGTERM) closes the source, which then hands out what it already accepted
    (an HTTP 200 promised it would be stored) and ends; stopping at once would lose that.
    """
    for batch in source.batches(max_batch):
        if not batch and (stop_when_idle or (stop is not None and stop.is_set())):
            return
        yield batch


def _commit(
    batch: list[RawAlert],
    prepared: Prepared,
    stages: Stages,
    summary: Summary,
    *,
    clock: StreamClock,
) -> None:
    correlator, metrics = stages.correlator, stages.metrics
    events, rejected, internal = prepared.events, prepared.rejected, prepared.internal
    if rejected:
        stages.dead_letter.write(rejected)
        for bad in rejected:
            log.warning("malformed alert at %s: %s", bad.origin, bad.reason)
    if internal:
        _record_internal(internal, metrics)
    accept = stages.event_filter.accept
    kept = events if stages.event_filter.accepts_all else [e for e in events if accept(e)]
    clock.observe(kept)
    now = clock.now()
    incidents: list[Incident] = correlator.add(kept, now)
    closed = correlator.expire(now)
    new = correlator.opened_total - summary.incidents_opened
    summary.read += len(batch)
    summary.malformed += len(rejected)
    summary.internal += len(internal)
    summary.filtered += len(events) - len(kept)
    summary.stored += len(kept)
    summary.incidents_opened += new
    # add() closes a workload's incident itself when a later event starts a new one.
    summary.incidents_closed += len(closed) + sum(i.status == "closed" for i in incidents)
    stages.writer.submit(
        batch,
        kept,
        [*incidents, *closed],
        opened=new,
        open_incidents=correlator.open_count,
        rejected=rejected,
    )


class _Writer:
    """Stores batches in order, then acknowledges their items and records their metrics
    (ingest-to-stored latency is measured there, after the commit): inline, or through a
    ``StoreProcess`` whose own thread runs the acknowledgements."""

    def __init__(
        self, store: IncidentStore, metrics: Metrics, wall: Callable[[], int], process: bool
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._wall = wall
        self._process: StoreProcess | None = None
        if process and isinstance(store, SQLiteStore):
            self._process = StoreProcess(store.path)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        try:
            self._process.close()
        except Exception:
            if exc is None:
                raise
            log.exception("the store writer failed while the monitor was stopping on an error")

    def submit(
        self,
        batch: list[RawAlert],
        events: list[Event],
        incidents: list[Incident],
        *,
        opened: int,
        open_incidents: int,
        rejected: Sequence[Rejected] = (),
    ) -> None:
        done = partial(self._done, batch, len(events), opened, open_incidents, rejected)
        if self._process is None:
            self._store.write(events, incidents)
            done()
            return
        # An empty write still goes through the writer: acknowledgements stay in batch order.
        encoded = encode_write(events, incidents) or EncodedWrite(b"[]", b"", b"[]")
        self._process.submit(encoded, done)

    def _done(
        self,
        batch: list[RawAlert],
        stored: int,
        opened: int,
        open_incidents: int,
        rejected: Sequence[Rejected],
    ) -> None:
        # Dead-lettered items are settled as rejected (NATS term: never redelivered); a
        # Rejected made outside prepare() (index -1) is matched by its origin.
        reasons = {r.index: r.reason for r in rejected if r.index >= 0}
        by_origin = {r.origin: r.reason for r in rejected if r.index < 0}
        for n, item in enumerate(batch):
            if item.ack is not None:
                reason = reasons.get(n) or by_origin.get(item.origin)
                if reason is None:
                    item.ack()  # Outcome.STORED
                else:
                    item.ack(Outcome.REJECTED, reason)
        now = self._wall()
        self._metrics.observe_batch(
            received=len(batch),
            malformed=len(rejected),
            stored=stored,
            incidents_opened=opened,
            open_incidents=open_incidents,
            latencies_ns=[now - item.received_ns for item in batch],
        )


def _record_internal(alerts: Sequence[FalcoAlert], metrics: Metrics) -> None:
    """Falco's own drops and metrics snapshots: health signals, never incidents."""
    for alert in alerts:
        metrics.record_internal(alert.rule, alert.output_fields)
