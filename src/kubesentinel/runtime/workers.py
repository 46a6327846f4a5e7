"""Parsing and enrichment of batches, inline or in worker processes (``runtime.workers``).

No input stops this stage: an item that fails to parse, or whose enrichment raises, becomes a
``Rejected`` with the reason (``internal error while enriching: <type>: <message>`` for the
latter) and the rest of its batch goes on. Worker processes are started with ``spawn``: the
monitor runs threads (sources, the store writer's receiver) by the time they start, and a fork
then can copy a lock another thread holds and deadlock the child.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import Event, FalcoAlert
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import Rejected, internal_error, parse_batch
from kubesentinel.runtime.sources.interface import RawAlert

PARALLEL_MIN_CORES = 3


@dataclass(frozen=True, slots=True)
class Prepared:
    """What parsing and enrichment made of one batch (plain data: crosses processes)."""

    events: list[Event]
    rejected: list[Rejected]
    internal: list[FalcoAlert]


# Parsing and enrichment go through a batch this many alerts at a time: the alerts of a slice
# are still in the CPU cache when enrichment reads them (faster than one pass over the whole
# batch: docs/performance.md).
SLICE = 128


def prepare(batch: Sequence[RawAlert], enricher: Enricher) -> Prepared:
    """Parse and enrich a batch; never raises for one item: each item of the batch ends up an
    event, an internal alert or a Rejected (whose ``index`` is its position in ``batch``)."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    internal: list[FalcoAlert] = []
    for start in range(0, len(batch), SLICE):
        part = batch[start : start + SLICE]
        try:
            parsed, bad = parse_batch(part, start)
            health: list[FalcoAlert] = []
            if any(alert.source == "internal" for alert, _ in parsed):
                health = [alert for alert, _ in parsed if alert.source == "internal"]
                parsed = [pair for pair in parsed if pair[0].source != "internal"]
            enriched = enricher.enrich(parsed)
        except Exception:
            # Rare: redo this slice one item at a time, so only the item that fails is lost.
            enriched, bad, health = _prepare_each(part, start, enricher)
        events += enriched
        if bad:
            rejected += bad
        if health:
            internal += health
    return Prepared(events, rejected, internal)


def _prepare_each(
    items: Sequence[RawAlert], offset: int, enricher: Enricher
) -> tuple[list[Event], list[Rejected], list[FalcoAlert]]:
    events: list[Event] = []
    rejected: list[Rejected] = []
    internal: list[FalcoAlert] = []
    for n, item in enumerate(items, offset):
        parsed, bad = parse_batch([item], n)
        rejected += bad
        for alert, received_ns in parsed:
            if alert.source == "internal":
                internal.append(alert)
                continue
            try:
                events.append(enricher.enrich_one(alert, received_ns))
            except Exception as exc:
                reason = internal_error("enriching", exc)
                rejected.append(Rejected(item.origin, reason, bytes(item.data), n))
    return events, rejected, internal


class Preparer:
    """Runs ``prepare`` inline, or in worker processes with a bounded number of batches in
    flight (so a fast file cannot be read into memory ahead of the store)."""

    def __init__(self, enricher: Enricher, workers: int) -> None:
        self._enricher = enricher
        cores = os.cpu_count() or 1
        # Measured on 2 cores: shipping events between processes costs more than the parsing
        # it spreads (docs/performance.md), so below PARALLEL_MIN_CORES everything runs inline.
        self._processes = min(workers, cores) - 1 if cores >= PARALLEL_MIN_CORES else 0
        self._pool: Any = None

    def __enter__(self) -> Preparer:
        if self._processes:
            # Never fork: threads run by now (see the module docstring). Each worker gets a
            # pickled copy of the enricher; spawning costs more at start than fork would.
            context = multiprocessing.get_context("spawn")
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
