"""The monitor's pipeline, wired in one readable function.

    source -> parse -> (internal: health metrics) -> enrich -> filter -> score -> correlate
    -> store -> settle

``score`` runs only with an ``AnomalyStage`` (``runtime/anomaly.py``: a model is loaded): the
batch's events through the behavioural analyzer, whose anomalies the correlator may turn into
signals.

Every stage takes a whole batch. Items are settled (``sources.interface.Outcome``) only once
their outcome is durable: STORED after the store committed the batch, REJECTED after the
dead-letter file holds a malformed alert, UNAVAILABLE when the store could not take them. So a
crash never loses an acknowledged alert (a redelivering source sends the rest again, and the
store ignores a duplicate).

No single alert can stop the pipeline: a failure while parsing or enriching one alert rejects
that alert (``workers.prepare``); a failure while correlating a batch is retried one event at a
time, and the event that fails is dead-lettered with the reason.

When the store fails (a full disk, an I/O error, a damaged file) the pipeline stops
acknowledging: what was in flight is settled UNAVAILABLE (HTTP 503, NATS nak), a live source
answers 503 to new alerts, one line says why, and the store is tried again every
``STORE_RETRY_S``; a finite source (a file) stops with the error instead, since nobody would
send its alerts again. Everything acknowledged before stays stored.

With ``store_process`` (the monitor's default on two cores or more) the store (SQLite or
PostgreSQL) commits from a process of its own (``store.writer``), in batch order, while this
one parses the next batches; items are still settled only once their batch is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from kubesentinel.errors import KubeSentinelError, StoreError
from kubesentinel.models import Event, FalcoAlert, Incident
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.runtime.anomaly import AnomalyStage
from kubesentinel.runtime.clock import StreamClock
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.deadletter import DeadLetter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.filters import ACCEPT_ALL, EventFilter
from kubesentinel.runtime.incident_log import IncidentLog
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.parse import Rejected
from kubesentinel.runtime.rejects import add_each, reject_events
from kubesentinel.runtime.sources.interface import Outcome, RawAlert, Source, settle
from kubesentinel.runtime.store.interface import IncidentStore, VaultStore
from kubesentinel.runtime.store.rows import EncodedWrite, encode_write
from kubesentinel.runtime.store.writer import StoreProcess
from kubesentinel.runtime.workers import Prepared, Preparer

log = logging.getLogger("kubesentinel.monitor")

DEFAULT_BATCH = 2048
END_OF_TIME = 2**63 - 1
# How often a live monitor tries the store again after a failure.
STORE_RETRY_S: Final = 5.0
UNAVAILABLE_REASON: Final = "the incident store is unavailable, retry later"


@dataclass(slots=True)
class Summary:
    read: int = 0
    malformed: int = 0
    internal: int = 0
    filtered: int = 0
    stored: int = 0
    unavailable: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    scored: int = 0  # events the analyzer scored (0: scoring off)
    anomalies: int = 0  # of them, at or above ai.threshold
    learned: int = 0  # of them, learned by the analyzer (outside incidents, below threshold)
    held: int = 0  # of them, not learned: inside an incident's hold
    duration_s: float = 0.0
    store_error: str | None = None

    def as_dict(self, refused: int = 0) -> dict[str, Any]:
        return {
            "events_read": self.read,
            "events_stored": self.stored,
            "malformed": self.malformed,
            "refused": refused,
            "not_stored": self.unavailable,
            "internal": self.internal,
            "filtered_out": self.filtered,
            "incidents_opened": self.incidents_opened,
            "incidents_closed": self.incidents_closed,
            "events_scored": self.scored,
            "anomalies": self.anomalies,
            "events_learned": self.learned,
            "events_held": self.held,
            "duration_s": round(self.duration_s, 3),
            "store_error": self.store_error,
        }


@dataclass(frozen=True, slots=True)
class Stages:
    enricher: Enricher
    correlator: Correlator
    writer: _Writer
    metrics: Metrics
    dead_letter: DeadLetter
    event_filter: EventFilter
    incident_log: IncidentLog
    anomaly: AnomalyStage | None = None


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
    store_retry_s: float = STORE_RETRY_S,
    anomaly: AnomalyStage | None = None,
    on_reportable: Callable[[Sequence[str]], None] | None = None,
) -> Summary:
    """Process the source until it ends (or ``stop`` is set); at the end close every incident.

    ``stop_when_idle`` (--until-eof) also ends a live source at its first idle poll, which is
    how a replay through NATS or a socket finishes in CI. With ``workers`` > 1, parsing and
    enrichment run in ``workers - 1`` other processes while this one correlates; with
    ``store_process`` a vault store commits from a process of its own. Batches are committed
    in source order either way. A finite source whose store fails raises the StoreError once
    everything in flight is settled. With ``anomaly`` every batch is scored before it is
    correlated (the caller closes the scorer). ``on_reportable`` gets the ids of the incidents
    a batch opened or escalated, once that batch is committed (``reporting.on_incident``): it
    must only hand them on, as it runs on the commit's acknowledgement path.
    """
    summary = Summary()
    clock = clock or StreamClock(wall)
    started = time.perf_counter()
    process = store_process and isinstance(store, VaultStore)
    parsers = workers - 1 if process else workers  # the writer takes one of the processes
    writer = _Writer(store, metrics, wall, process, on_reportable)
    health = _StoreHealth(source, store_retry_s)
    try:
        with Preparer(enricher, parsers) as preparer:
            stages = Stages(
                enricher,
                correlator,
                writer,
                metrics,
                dead_letter,
                event_filter,
                IncidentLog(),
                anomaly,
            )
            batches = _until(source, stop, stop_when_idle, max_batch)
            for batch, prepared in preparer.prepare(batches):
                if not health.admit(batch, writer):
                    _refuse(batch, summary)
                    continue
                try:
                    _commit(batch, prepared, stages, summary, clock=clock)
                except StoreError as exc:
                    if not source.live:
                        raise
                    health.fail(exc, writer)
            closed = correlator.expire(END_OF_TIME)
            summary.incidents_closed += len(closed)
            if closed and not health.failed:
                stages.incident_log.closed(closed)
                writer.submit([], [], closed, [], opened=0, open_incidents=0)
        writer.close()
    except StoreError as exc:
        summary.store_error = str(exc)
        writer.abandon()
        raise
    except BaseException:  # Ctrl-C, or a bug: still commit and settle what the writer holds
        writer.abandon()
        raise
    finally:
        summary.unavailable += writer.unavailable
        summary.duration_s = time.perf_counter() - started
        if anomaly is not None:
            summary.learned, summary.held = anomaly.learned, anomaly.held
    return summary


def _until(
    source: Source, stop: threading.Event | None, stop_when_idle: bool, max_batch: int
) -> Iterator[list[RawAlert]]:
    """The source's batches until it ends, or goes idle when told to stop.

    A stop request (SIGTERM) closes the source, which then hands out what it already accepted
    (each was promised an answer) and ends; stopping at once would leave them unanswered.
    """
    for batch in source.batches(max_batch):
        if not batch and (stop_when_idle or (stop is not None and stop.is_set())):
            return
        yield batch


def _refuse(batch: list[RawAlert], summary: Summary) -> None:
    summary.read += len(batch)
    summary.unavailable += len(batch)
    settle(batch, Outcome.UNAVAILABLE, UNAVAILABLE_REASON)


def _commit(
    batch: list[RawAlert],
    prepared: Prepared,
    stages: Stages,
    summary: Summary,
    *,
    clock: StreamClock,
) -> None:
    correlator, metrics = stages.correlator, stages.metrics
    events, rejected, internal = prepared.events, list(prepared.rejected), prepared.internal
    if internal:
        _record_internal(internal, metrics)
    accept = stages.event_filter.accept
    wanted = events if stages.event_filter.accepts_all else [e for e in events if accept(e)]
    clock.observe(wanted)
    now = clock.now()
    anomalies = _score(stages.anomaly, wanted, summary)
    opened_before = correlator.opened_total
    incidents, kept = _correlate(correlator, wanted, now, batch, rejected, anomalies=anomalies)
    closed = correlator.expire(now)
    if stages.anomaly is not None:
        stages.anomaly.settle(incidents)
    if rejected:
        try:
            _dead_letter(stages.dead_letter, rejected)
        except StoreError:
            _refuse(batch, summary)  # never submitted: settle it here, as not stored
            raise
    new = correlator.opened_total - opened_before
    summary.read += len(batch)
    summary.malformed += len(rejected)
    summary.internal += len(internal)
    summary.filtered += len(events) - len(wanted)
    summary.stored += len(kept)
    summary.incidents_opened += new
    # add() closes a workload's incident itself when a later event starts a new one.
    summary.incidents_closed += len(closed) + sum(i.status == "closed" for i in incidents)
    reportable = stages.incident_log.changed(incidents)
    stages.incident_log.closed(closed)
    stages.writer.submit(
        batch,
        kept,
        [*incidents, *closed],
        rejected,
        opened=new,
        open_incidents=correlator.open_count,
        reportable=reportable,
    )


def _dead_letter(dead_letter: DeadLetter, rejected: Sequence[Rejected]) -> None:
    """Durably, before anything is answered 400; a file that cannot be written is a store
    failure (nothing is answered until it works again)."""
    try:
        dead_letter.write(rejected)
    except StoreError:
        raise
    except (KubeSentinelError, OSError) as exc:
        raise StoreError(f"cannot write the dead-letter file: {exc}") from exc
    first = rejected[0]
    more = f" (and {len(rejected) - 1} more in this batch)" if len(rejected) > 1 else ""
    log.warning("malformed alert at %s: %s%s", first.origin, first.reason, more)


def _score(
    stage: AnomalyStage | None, events: list[Event], summary: Summary
) -> dict[str, Scored] | None:
    """The batch's anomalies (event id -> score), or None when scoring is off."""
    if stage is None:
        return None
    scored, anomalies = stage.scored, stage.anomalies
    found = stage.score(events)
    summary.scored += stage.scored - scored
    summary.anomalies += stage.anomalies - anomalies
    return found


def _correlate(
    correlator: Correlator,
    events: list[Event],
    now: int,
    batch: list[RawAlert],
    rejected: list[Rejected],
    *,
    anomalies: dict[str, Scored] | None = None,
) -> tuple[list[Incident], list[Event]]:
    """The batch's incidents, and the events to store. A batch that fails to correlate is
    retried one event at a time; an event that fails alone is dead-lettered (``rejected``)."""
    try:
        if anomalies is None:  # scoring off: the call every Correlator subclass takes
            return correlator.add(events, now), events
        return correlator.add(events, now, anomalies), events
    except Exception:  # one bad event must not stop the monitor
        log.exception("correlating a batch failed; retrying it event by event")
    incidents, failed = add_each(correlator, events, now, anomalies)
    rejected += reject_events(failed, batch, "correlating")
    bad = {id(event) for event, _ in failed}
    return incidents, [event for event in events if id(event) not in bad]


class _StoreHealth:
    """A circuit breaker on the store. After a failed write, alerts are refused for
    ``retry_s`` (a live source answers 503 at once); then the next alerts are let through
    to try the store again, and the first commit after that closes the breaker."""

    def __init__(self, source: Source, retry_s: float) -> None:
        self._mark = getattr(source, "set_unavailable", None)
        self._retry_s = retry_s
        self._next_try = 0.0
        self._trying = False
        self._commits_at_failure = 0
        self.failed: StoreError | None = None

    def admit(self, batch: list[RawAlert], writer: _Writer) -> bool:
        """Whether to process ``batch`` (False: settle it as not stored)."""
        if self.failed is None:
            return True
        if writer.commits > self._commits_at_failure:
            self.failed = None
            self._trying = False
            log.warning("the store takes writes again; accepting alerts")
            return True
        if self._trying:
            return True
        if not batch or time.monotonic() < self._next_try:
            return False
        self._trying = True
        if self._mark is not None:
            self._mark(None)
        return True

    def fail(self, exc: StoreError, writer: _Writer) -> None:
        if self.failed is None:
            log.error(
                "%s; alerts are refused (HTTP 503, NATS nak) and the store is tried again "
                "every %g s; everything acknowledged so far is stored",
                exc,
                self._retry_s,
            )
        self.failed = exc
        self._trying = False
        self._next_try = time.monotonic() + self._retry_s
        if self._mark is not None:
            self._mark(UNAVAILABLE_REASON)
        writer.restart()
        self._commits_at_failure = writer.commits


@dataclass(frozen=True, slots=True)
class _Counts:
    """A batch's figures for the metrics, recorded once it is committed, and the incidents
    whose report is then due."""

    stored: int
    opened: int
    open_incidents: int
    reportable: Sequence[str] = ()


class _Writer:
    """Stores batches in order, then settles their items and records their metrics
    (ingest-to-stored latency is measured there, after the commit): inline, or through a
    ``StoreProcess`` whose own thread runs the settlements."""

    def __init__(
        self,
        store: IncidentStore,
        metrics: Metrics,
        wall: Callable[[], int],
        process: bool,
        on_reportable: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self._store = store
        self._on_reportable = on_reportable
        self._metrics = metrics
        self._wall = wall
        self._process: StoreProcess | None = None
        self._lock = threading.Lock()
        self.unavailable = 0  # items settled UNAVAILABLE because a write failed
        self.commits = 0  # writes committed (settled on the acknowledgement thread)
        if process and isinstance(store, VaultStore):
            self._process = StoreProcess(store.location, store.signing_key)

    def close(self) -> None:
        """Wait for every write in flight; raise the first failure."""
        if self._process is not None:
            self._process.close()

    def abandon(self) -> None:
        """Stop after a failure: what is still in flight is settled as not stored."""
        if self._process is None:
            return
        try:
            self._process.close()
        except KubeSentinelError:
            pass  # already raised, or settled through _done
        except Exception:  # stopping on an error already reported
            log.exception("the store writer failed while the monitor was stopping")

    def restart(self) -> None:
        """After a failed write: a new writer process (the old one has stopped)."""
        if self._process is None:
            return
        location, key = self._process.location, self._process.signing_key
        self.abandon()
        self._process = StoreProcess(location, key)

    def submit(
        self,
        batch: list[RawAlert],
        events: list[Event],
        incidents: list[Incident],
        rejected: Sequence[Rejected],
        *,
        opened: int,
        open_incidents: int,
        reportable: Sequence[str] = (),
    ) -> None:
        counts = _Counts(len(events), opened, open_incidents, reportable)
        done = partial(self._done, batch, counts, rejected)
        if self._process is None:
            try:
                self._store.write(events, incidents)
            except StoreError as exc:
                done(exc)
                raise
            done(None)
            return
        # An empty write still goes through the writer: settlements stay in batch order.
        encoded = encode_write(events, incidents) or EncodedWrite(b"[]", b"[]", b"", b"[]", b"[]")
        self._process.submit(encoded, done)

    def _done(
        self,
        batch: list[RawAlert],
        counts: _Counts,
        rejected: Sequence[Rejected],
        error: StoreError | None,
    ) -> None:
        if error is not None:
            with self._lock:
                self.unavailable += len(batch)
            settle(batch, Outcome.UNAVAILABLE, UNAVAILABLE_REASON)
            return
        self.commits += 1
        if rejected:
            # By position in the batch; a Rejected made without one (index -1) by its origin.
            reasons = {bad.index: bad.reason for bad in rejected if bad.index >= 0}
            by_origin = {bad.origin: bad.reason for bad in rejected if bad.index < 0}
            for n, item in enumerate(batch):
                if item.ack is not None:
                    reason = reasons.get(n) or by_origin.get(item.origin)
                    if reason is None:
                        item.ack(Outcome.STORED, "")
                    else:
                        item.ack(Outcome.REJECTED, reason)
        else:
            for item in batch:
                if item.ack is not None:
                    item.ack(Outcome.STORED, "")
        if counts.reportable and self._on_reportable is not None:
            self._on_reportable(counts.reportable)  # committed: a reader now sees them
        now = self._wall()
        self._metrics.observe_batch(
            received=len(batch),
            malformed=len(rejected),
            stored=counts.stored,
            incidents_opened=counts.opened,
            open_incidents=counts.open_incidents,
            latencies_ns=[now - item.received_ns for item in batch],
        )


def _record_internal(alerts: Sequence[FalcoAlert], metrics: Metrics) -> None:
    """Falco's own drops and metrics snapshots: health signals, never incidents."""
    for alert in alerts:
        metrics.record_internal(alert.rule, alert.output_fields)
