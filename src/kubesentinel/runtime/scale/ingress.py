"""Ingress: Falco alerts from NATS, re-published to their workload's partition.

falcosidekick's subjects (``falco.<priority>.<rule>``) name no workload, so the stream cannot
be partitioned by workload on the server (docs/scale-out.md measures what partitioning by the
subject would do). Ingress parses and enriches each alert with the monitor's own stages,
hashes its workload key (``partition.partition_of``) and publishes the alert's bytes, as
received, to ``<out-subject>.<n>`` in a JetStream stream, with two headers: ``Nats-Msg-Id``
= the event id (the stream's duplicate window drops a second copy, so an ingress that crashes
after publishing and gets its input again publishes nothing twice) and ``Ks-Workload`` = the
workload it computed (workers use it rather than derive their own).

An input message is acknowledged only once the stream acknowledged its publication; an alert
that does not parse goes to the dead-letter file and its message is terminated, as in the
monitor. Falco's own health alerts (``source: internal``) are acknowledged and counted, not
forwarded. Any number of ingress processes may share the input's durable consumer; with more
than one, alerts of one workload may reach its partition out of order (as they may from
several Falco nodes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kubesentinel.errors import SourceError, StoreError
from kubesentinel.runtime.deadletter import DeadLetter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.scale.partition import (
    MSG_ID_HEADER,
    WORKLOAD_HEADER,
    partition_of,
    subject_of,
    workload_header,
)
from kubesentinel.runtime.sources.interface import Outcome, RawAlert, Source
from kubesentinel.runtime.workers import prepare

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

log = logging.getLogger("kubesentinel.ingress")
_T = TypeVar("_T")
DUPLICATE_WINDOW_S = 120.0  # JetStream's default: a redelivery within it is dropped
PUBLISH_TIMEOUT_S = 10.0


@dataclass(slots=True)
class IngressSummary:
    read: int = 0
    published: int = 0
    malformed: int = 0
    internal: int = 0
    not_published: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts_read": self.read,
            "published": self.published,
            "malformed": self.malformed,
            "internal": self.internal,
            "not_published": self.not_published,
            "duration_s": round(self.duration_s, 3),
        }


class PartitionPublisher:
    """Publishes to ``<out_subject>.<n>`` in JetStream stream ``out_stream`` (created when
    missing, with subjects ``<out_subject>.>``), on an event loop of its own."""

    def __init__(self, url: str, out_subject: str, out_stream: str, partitions: int) -> None:
        self.url = url
        self.out_subject = out_subject
        self.out_stream = out_stream
        self.partitions = partitions
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._call(self._open(), timeout=20)
        except BaseException:
            self.close()
            raise

    def publish(self, items: list[tuple[int, bytes, str, str]]) -> list[bool]:
        """(partition, payload, event id, workload header) each; whether each was stored."""
        return self._call(self._publish(items), timeout=PUBLISH_TIMEOUT_S * 2)

    def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                self._call(nc.close(), timeout=5)
            except Exception as exc:  # closing after an error: already reported
                log.debug("closing the NATS connection: %s", exc)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    async def _open(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        try:
            self._nc = await nats.connect(
                self.url, name="kubesentinel-ingress", connect_timeout=3.0,
                max_reconnect_attempts=-1, reconnect_time_wait=1.0,
            )  # fmt: skip
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise SourceError(
                f"cannot connect to NATS at {self.url}: {exc}",
                hint="is nats-server running there, with JetStream (nats-server -js)?",
            ) from None
        self._js = self._nc.jetstream()
        try:
            await self._js.stream_info(self.out_stream)
        except NotFoundError:
            await self._js.add_stream(
                name=self.out_stream,
                subjects=[f"{self.out_subject}.>"],
                duplicate_window=DUPLICATE_WINDOW_S,
            )

    async def _publish(self, items: list[tuple[int, bytes, str, str]]) -> list[bool]:
        js = self._js
        assert js is not None
        # One connection keeps the order of the publications: gather starts them in order.
        tasks = [
            js.publish(
                subject_of(self.out_subject, partition),
                payload,
                timeout=PUBLISH_TIMEOUT_S,
                stream=self.out_stream,
                headers={MSG_ID_HEADER: event_id, WORKLOAD_HEADER: workload},
            )
            for partition, payload, event_id, workload in items
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("%d of %d publications failed: %s", len(failed), len(items), failed[0])
        return [not isinstance(r, BaseException) for r in results]


def run_ingress(
    source: Source,
    publisher: PartitionPublisher,
    *,
    enricher: Enricher,
    dead_letter: DeadLetter,
    stop: threading.Event | None = None,
    stop_when_idle: bool = False,
    max_batch: int = 1024,
) -> IngressSummary:
    """Move the source's alerts to their partitions until it ends (or ``stop`` is set)."""
    summary = IngressSummary()
    started = time.perf_counter()
    try:
        for batch in source.batches(max_batch):
            if not batch:
                if stop_when_idle or (stop is not None and stop.is_set()):
                    break
                continue
            _forward(batch, publisher, enricher, dead_letter, summary)
    finally:
        summary.duration_s = time.perf_counter() - started
    return summary


def _forward(
    batch: list[RawAlert],
    publisher: PartitionPublisher,
    enricher: Enricher,
    dead_letter: DeadLetter,
    summary: IngressSummary,
) -> None:
    summary.read += len(batch)
    prepared = prepare(batch, enricher)
    settled: set[int] = set()
    if prepared.rejected:
        try:
            dead_letter.write(prepared.rejected)
        except (StoreError, OSError) as exc:
            log.error("cannot write the dead-letter file: %s", exc)
            _settle_all(batch, Outcome.UNAVAILABLE)
            summary.not_published += len(batch)
            return
        for bad in prepared.rejected:
            if bad.index >= 0:
                settled.add(bad.index)
                _settle(batch[bad.index], Outcome.REJECTED, bad.reason)
        summary.malformed += len(prepared.rejected)
    index = {item.origin: n for n, item in enumerate(batch)}
    items: list[tuple[int, bytes, str, str]] = []
    positions: list[int] = []
    for event in prepared.events:
        n = index[event.origin]
        positions.append(n)
        partition = partition_of(event.workload.key, publisher.partitions)
        items.append((partition, batch[n].data, event.id, workload_header(event.workload)))
    results = publisher.publish(items) if items else []
    for n, ok in zip(positions, results, strict=True):
        settled.add(n)
        _settle(batch[n], Outcome.STORED if ok else Outcome.UNAVAILABLE)
        if ok:
            summary.published += 1
        else:
            summary.not_published += 1
    for n, item in enumerate(batch):
        if n not in settled:  # Falco's health alerts: not forwarded
            summary.internal += 1
            _settle(item, Outcome.STORED)


def _settle(item: RawAlert, outcome: Outcome, reason: str = "") -> None:
    if item.ack is not None:
        item.ack(outcome, reason)


def _settle_all(batch: list[RawAlert], outcome: Outcome) -> None:
    for item in batch:
        _settle(item, outcome)
