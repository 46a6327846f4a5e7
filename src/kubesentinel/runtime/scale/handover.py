"""A moved partition's state: its open incidents from the store, redeliveries checked there.

When a worker takes partition n (``claim``), the incidents the store holds open for workloads
of partition n are put back into its correlator with every stored event id, signal and
context, so a redelivered event is ignored and a new one extends the incident where the last
owner left it. When it gives n up (``release``) they are forgotten here, still open in the
store. A message delivered more than once (its owner died, or asked for it again) has its
event id looked up in the store before it is correlated: an event already stored was
correlated by a previous owner, whose incident may be closed by now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kubesentinel.models import Event, FalcoAlert, Incident
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.identity import OwnerLookup
from kubesentinel.runtime.scale.partition import partition_of
from kubesentinel.runtime.scale.source import PartitionedSource
from kubesentinel.runtime.scale.workload_states import SAVE_INTERVAL_S, WorkloadStates
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.runtime.store.postgres_schema import pg_id, pg_id_text

if TYPE_CHECKING:
    from kubesentinel.ai.analyzer import Analyzer

log = logging.getLogger("kubesentinel.scale")
END_OF_TIME = 2**63 - 1  # pipeline.END_OF_TIME: the end of input closes every incident
IDLE_GRACE_S = 60.0
PARTITION_CACHE = 100_000

_STORED_IDS = (
    "SELECT e.id FROM events e JOIN unnest(%s::bigint[], %s::bytea[]) AS b(time_ns, id) "
    "ON e.time_ns = b.time_ns AND e.id = b.id"
)


def stored_event_ids(store: VaultStore, events: Sequence[Event]) -> set[str]:
    """The ids of ``events`` that the store already holds (PostgreSQL)."""
    with store.read_snapshot("check redelivered events") as conn:
        rows = conn.execute(
            _STORED_IDS, ([e.time_ns for e in events], [pg_id(e.id) for e in events])
        ).fetchall()
    return {pg_id_text(bytes(row[0])) for row in rows}


class HandoverCorrelator(Correlator):
    """A correlator that skips redelivered events the store already holds, and keeps time
    per partition.

    The monitor's clock is the newest event time it has seen. A worker reads its partitions
    side by side, one ahead of another, so one clock would close a lagging partition's
    incidents before their workload's next events arrive. Here each partition has its own
    clock: the newest event time of that partition, advanced by the wall clock only after
    ``idle_grace_s`` without an event of it (a quiet partition still sees its incidents
    close; a stall or a takeover shorter than the grace closes nothing early).
    """

    def __init__(
        self,
        *args: Any,
        store: VaultStore,
        source: PartitionedSource,
        idle_grace_s: float = IDLE_GRACE_S,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self._store = store
        self._source = source
        self._grace_ns = int(idle_grace_s * 1_000_000_000)
        self._partitions = source.partitions
        self._partition: dict[str, int] = {}  # workload key -> its partition (a cache)
        self._newest: dict[int, tuple[int, int]] = {}  # partition -> (event ns, wall ns then)
        self.redelivered_skipped = 0

    def partition(self, key: str) -> int:
        n = self._partition.get(key)
        if n is None:
            if len(self._partition) > PARTITION_CACHE:
                self._partition.clear()
            n = self._partition[key] = partition_of(key, self._partitions)
        return n

    def expire(self, now_ns: int) -> list[Incident]:
        """Close the incidents quiet for longer than the gap by their partition's clock
        (``END_OF_TIME`` closes every one)."""
        if now_ns >= END_OF_TIME:
            return super().expire(now_ns)
        wall = time.monotonic_ns()
        gap, grace = self.gap_ns, self._grace_ns
        closed: list[Incident] = []
        for key, group in list(self._open.items()):
            newest, at = self._newest.get(self.partition(key), (0, wall))
            now = newest + max(0, wall - at - grace)
            if all(now - state.last_ns <= gap for state in group):
                continue
            kept = [state for state in group if now - state.last_ns <= gap]
            closed.extend(s.take("closed") for s in group if now - s.last_ns > gap)
            self._count -= len(group) - len(kept)
            if kept:
                self._open[key] = kept
            else:
                del self._open[key]
        return closed

    def add(
        self,
        events: Sequence[Event],
        now_ns: int,
        anomalies: Mapping[str, Scored] | None = None,
    ) -> list[Incident]:
        redelivered = self._source.redelivered
        if redelivered:
            again = [e for e in events if e.origin in redelivered]
            if again:
                events = self._first_copies(events, again, redelivered)
        if events:
            wall = time.monotonic_ns()
            newest = self._newest
            for event in events:
                n = self.partition(event.workload.key)
                seen = newest.get(n)
                if seen is None or event.time_ns > seen[0]:
                    newest[n] = (event.time_ns, wall)
        return super().add(events, now_ns, anomalies)

    def _first_copies(
        self, events: Sequence[Event], again: list[Event], redelivered: set[str]
    ) -> list[Event]:
        """``events`` less the redelivered copies of events already correlated: stored (by
        this worker or a previous owner), or earlier in this very batch (the first copy was
        still queued when the server delivered the message again)."""
        for event in again:
            redelivered.discard(event.origin)
        stored = stored_event_ids(self._store, again)
        copies = {e.origin for e in again}
        kept: list[Event] = []
        earlier: set[str] = set()
        for event in events:
            if event.origin in copies and (event.id in stored or event.id in earlier):
                continue
            earlier.add(event.id)
            kept.append(event)
        skipped = len(events) - len(kept)
        if skipped:
            self.redelivered_skipped += skipped
            log.info(
                "%d redelivered events were correlated already (stored, or earlier in the "
                "batch): not correlated again",
                skipped,
            )
        return kept

    def forget_partition(self, partition: int) -> None:
        self._newest.pop(partition, None)


class StoreHandover:
    """``source.Handover``: open incidents restored from the store on claim, forgotten on
    release; with an in-process ``analyzer``, its per-workload state too (saved on release
    and every ``SAVE_INTERVAL_S``, loaded on claim). Runs on the pipeline's thread, between
    batches."""

    def __init__(
        self,
        store: VaultStore,
        correlator: Correlator,
        partitions: int,
        *,
        analyzer: Analyzer | None = None,
        states: WorkloadStates | None = None,
    ) -> None:
        self.store = store
        self.correlator = correlator
        self.partitions = partitions
        self.owned: set[int] = set()
        self.restored = 0
        self.analyzer = analyzer
        self.states = states
        self._saved_at = time.monotonic()

    def claim(self, partition: int) -> None:
        self.owned.add(partition)
        here = set(self.correlator.open_workloads())
        restored = 0
        for incident in self.store.list_incidents(status="open"):
            key = incident.workload.key
            if key in here or partition_of(key, self.partitions) != partition:
                continue
            stored = self.store.stored_events_of(incident.id)
            self.correlator.adopt(incident, [(s.event, s.context) for s in stored])
            restored += 1
        self.restored += restored
        if restored:
            log.info("partition %d: %d open incidents restored from the store", partition, restored)
        if self.analyzer is not None and self.states is not None:
            from kubesentinel.ai.workload_state import import_workload

            loaded = 0
            for key, state in self.states.load().items():
                if partition_of(key, self.partitions) == partition:
                    import_workload(self.analyzer, key, state)
                    loaded += 1
            if loaded:
                log.info("partition %d: analyzer state of %d workloads loaded", partition, loaded)

    def release(self, partition: int, *, handed_over: bool = True) -> None:
        """Give the partition up; ``handed_over`` False: its lease was lost, and another
        worker may hold its state by now (nothing is saved)."""
        self.owned.discard(partition)
        n = self.partitions
        owned = self.owned
        self.correlator.release(lambda key: partition_of(key, n) in owned)
        if isinstance(self.correlator, HandoverCorrelator):
            self.correlator.forget_partition(partition)
        if self.analyzer is not None:
            from kubesentinel.ai.workload_state import (
                export_workload,
                forget_workload,
                known_workloads,
            )

            keys = [k for k in known_workloads(self.analyzer) if partition_of(k, n) == partition]
            if handed_over and self.states is not None:
                self.states.save({k: export_workload(self.analyzer, k) for k in keys})
            forget_workload(self.analyzer, keys)

    def tick(self) -> None:
        """Between batches: save the analyzer state of the workloads held, now and then."""
        if self.analyzer is None or self.states is None:
            return
        if time.monotonic() - self._saved_at < SAVE_INTERVAL_S:
            return
        self._saved_at = time.monotonic()
        from kubesentinel.ai.workload_state import export_workload, known_workloads

        n, owned = self.partitions, self.owned
        keys = [k for k in known_workloads(self.analyzer) if partition_of(k, n) in owned]
        self.states.save({k: export_workload(self.analyzer, k) for k in keys})


class PinnedEnricher(Enricher):
    """The monitor's enricher, but each event keeps the workload ingress computed for it
    (``Ks-Workload``), so no worker derives a different one (owner lookups can change)."""

    def __init__(
        self, pinned: dict[str, Any], cluster: str = "default", lookup: OwnerLookup | None = None
    ) -> None:
        super().__init__(cluster, lookup)
        self._pinned = pinned

    def enrich(self, parsed: Sequence[tuple[FalcoAlert, int]]) -> list[Event]:
        events = super().enrich(parsed)
        pinned = self._pinned
        for event in events:
            workload = pinned.pop(event.origin, None)
            if workload is not None and workload != event.workload:
                event.workload = workload
        return events
