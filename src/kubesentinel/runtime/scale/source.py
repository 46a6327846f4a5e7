"""A worker's source: the partitions it leases, one durable JetStream pull consumer each.

Leases (``leases.Leases``) decide which partitions this worker owns; this source turns their
decisions into fetching, on the pipeline's thread where the correlator lives:

- claimed: the handover restores the partition's open incidents from the store, then its
  consumer (durable ``ks-part-<n>``, filter ``<out-subject>.<n>``) starts fetching;
- released (another worker joined): fetching stops, the partition's queued alerts are
  processed, committed and acknowledged, its incidents are forgotten here (they stay open in
  the store), and only then is its lease key deleted;
- lost (the lease could not be renewed: this worker was too slow or cut off), or fenced (a
  write found a newer owner's token in the store, ``fence``): fetching stops, its queued
  alerts are given back unprocessed (nak), its incidents are forgotten, and alerts of a
  fenced write that were left out of the commit are given back instead of acknowledged.

Messages are acknowledged after the store committed their batch, as in ``sources.nats``; the
consumers' short ``ack_wait`` brings a dead owner's unacknowledged messages back quickly. A
message delivered more than once has its event id checked against the store
(``handover.HandoverCorrelator``): a batch the dead owner committed but never acknowledged is
not correlated twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from kubesentinel.errors import SourceError, StoreError
from kubesentinel.models.event import Workload
from kubesentinel.runtime.scale.fence import PartitionFence, Token
from kubesentinel.runtime.scale.leases import Leases
from kubesentinel.runtime.scale.partition import WORKLOAD_HEADER, subject_of, workload_from_header
from kubesentinel.runtime.sources.interface import Outcome, RawAlert
from kubesentinel.runtime.sources.queueing import DEFAULT_BUFFER_BYTES, AlertQueue

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

log = logging.getLogger("kubesentinel.scale")
_T = TypeVar("_T")
FETCH_BATCH: Final = 256
FETCH_TIMEOUT_S: Final = 0.5
NAK_DELAY_S: Final = 0.2
PINNED_MAX: Final = 100_000


class Handover(Protocol):
    """What the pipeline's side does when a partition arrives or leaves."""

    def claim(self, partition: int) -> None: ...

    def release(self, partition: int, *, handed_over: bool = True) -> None: ...

    def tick(self) -> None: ...


@dataclass(slots=True)
class _Part:
    n: int
    psub: Any = None
    task: asyncio.Task[None] | None = None
    fetching: bool = False
    state: str = "claimed"  # claimed -> active -> releasing -> gone; or lost


@dataclass(slots=True)
class _Posted:
    claims: deque[int] = field(default_factory=deque)
    releases: deque[int] = field(default_factory=deque)
    lost: deque[int] = field(default_factory=deque)


class PartitionedSource:
    """The partitions of ``out_stream`` this worker leases, read as one live source."""

    live = True

    def __init__(
        self,
        url: str,
        *,
        partitions: int,
        worker_id: str,
        out_subject: str,
        out_stream: str,
        lease_ttl_s: float = 10.0,
        ack_wait_s: float = 5.0,
        queue_size: int = 10_000,
        queue_bytes: int = DEFAULT_BUFFER_BYTES,
        idle_s: float = 0.2,
    ) -> None:
        self.name = f"{url}/{out_subject}.* ({partitions} partitions, worker {worker_id})"
        self.url = url
        self.partitions = partitions
        self.worker_id = worker_id
        self.out_subject = out_subject
        self.out_stream = out_stream
        self.queue = AlertQueue(queue_size, queue_bytes)
        self.idle_s = idle_s
        self.ack_wait_s = ack_wait_s
        self.pinned: dict[str, Workload] = {}  # origin -> the workload ingress computed
        self.redelivered: set[str] = set()  # origins of messages delivered more than once
        self.handover: Handover | None = None
        self.fence: PartitionFence | None = None
        self.last_error: str | None = None
        self._lease_ttl_s = lease_ttl_s
        self._parts: dict[int, _Part] = {}
        self._posted = _Posted()
        self._lock = threading.Lock()
        self._queued: Counter[int] = Counter()  # partition -> its alerts in the queue
        self._releasing: set[int] = set()
        self._fenced: set[int] = set()  # pipeline thread: partitions a write found claimed
        self._closing = False
        self._shut = False
        self._acks: deque[tuple[Msg, Outcome]] = deque()
        self._ack_scheduled = False
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.leases: Leases | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()
        try:
            self._call(self._open(), timeout=20)
        except BaseException:
            self._stop_loop()
            raise

    def owned(self) -> list[int]:
        """The partitions this worker fetches now."""
        return sorted(n for n, p in self._parts.items() if p.state == "active")

    def start(self) -> None:
        """Start taking partitions (after ``handover`` is set)."""
        assert self.leases is not None
        self._lease_task = asyncio.run_coroutine_threadsafe(self.leases.run(), self._loop)

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        try:
            while True:
                self._apply()
                batch = self.queue.take(max_batch, self.idle_s)
                if batch:
                    batch = self._keep(batch)
                if batch:
                    yield batch
                elif self._closing and not len(self.queue) and not self._fetching():
                    return
                else:
                    yield []
        finally:
            self._shutdown_now()

    def close(self) -> None:
        """Stop fetching; what is queued is still handed out, then every partition is released
        (its lease deleted after its acknowledgements are sent)."""
        if not self._closing:
            self._closing = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop_all_fetching)
            return
        self._shutdown_now()

    # -- on the pipeline's thread ------------------------------------------------------------

    def _apply(self) -> None:
        """Ownership changes the leases posted, applied between batches."""
        posted = self._posted
        while posted.lost:
            n = posted.lost.popleft()
            self._releasing.discard(n)
            if self.fence is not None:
                self.fence.forget(n)
            if self.handover is not None:
                self.handover.release(n, handed_over=False)
        while posted.claims:
            n = posted.claims.popleft()
            self._fenced.discard(n)
            if not self._record_claim(n):
                continue
            if self.handover is not None:
                self.handover.claim(n)
            self._submit(self._start_fetching(n))
        while posted.releases:
            self._releasing.add(posted.releases.popleft())
        for n in sorted(self._releasing):
            with self._lock:
                queued = self._queued[n]
            part = self._parts.get(n)
            if queued or (part is not None and part.fetching):
                continue  # its alerts still come through; their batch commits before the next
            self._releasing.discard(n)
            if self.handover is not None:
                self.handover.release(n)
            if self.fence is not None:
                self.fence.forget(n)
            self._submit(self._finish_release(n))
        if self.handover is not None:
            self.handover.tick()

    def _record_claim(self, n: int) -> bool:
        """Record the claim's fencing token before its incidents are restored; a claim the
        store knows a newer one of, or cannot record, is given up."""
        fence, leases = self.fence, self.leases
        if fence is None or leases is None:
            return True
        revision = leases.claimed.get(n)
        if revision is None:  # lost again before this worker got to it (already handled)
            return False
        try:
            recorded = fence.claim(n, Token(leases.epoch_ns, revision), time.time_ns())
        except StoreError as exc:
            log.error("partition %d not taken: %s", n, exc)
            recorded = False
        else:
            if not recorded:
                log.warning("partition %d: a newer owner is recorded; not taken", n)
        if not recorded:
            self._submit(self._give_up(n, revision))
        return recorded

    def fenced(self, held: dict[int, int | None]) -> None:
        """A write found these partitions claimed by a newer owner (on the pipeline thread,
        inside the write): their alerts in that write are given back, and the leases this
        worker held for them (by revision) are given up."""
        self._fenced.update(held)
        claimed = self.leases.claimed if self.leases is not None else {}
        for n, revision in held.items():
            if revision is None:
                continue
            part = self._parts.get(n)
            if part is not None and claimed.get(n) == revision:
                # At once, not when the event loop gets to it: every message fetched from now
                # on would come back to the new owner late, after the ones it read meanwhile.
                part.fetching = False
            self._submit(self._give_up(n, revision))

    def _keep(self, batch: list[RawAlert]) -> list[RawAlert]:
        """The batch less alerts fetched under leases this worker lost (given back to the
        stream)."""
        kept = []
        with self._lock:
            for item in batch:
                ack = item.ack
                owner = ack.owner if isinstance(ack, _PartAck) else None
                n = owner.n if owner is not None else -1
                self._queued[n] -= 1
                part = self._parts.get(n)
                # Fetched under a lease since lost, even if this worker claimed n again: its
                # incidents moved on without it (the stream delivers it again if unstored).
                if part is None or part.state == "lost" or owner is not part:
                    if isinstance(ack, _PartAck):
                        ack(Outcome.UNAVAILABLE)
                    self.pinned.pop(item.origin, None)
                    self.redelivered.discard(item.origin)
                    continue
                kept.append(item)
        return kept

    def _fetching(self) -> bool:
        return any(p.fetching for p in self._parts.values())

    def _ack(self, msg: Msg, outcome: Outcome, partition: int) -> None:
        if outcome is Outcome.STORED and partition in self._fenced:
            outcome = Outcome.UNAVAILABLE  # left out of a fenced write: the new owner stores it
        self._acks.append((msg, outcome))
        if not self._ack_scheduled:
            self._ack_scheduled = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._flush_acks)

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def _shutdown_now(self) -> None:
        if self._shut:
            return
        self._shut = True
        self._closing = True
        for n, part in list(self._parts.items()):
            if part.state in ("active", "releasing", "claimed") and self.handover is not None:
                self.handover.release(n)
        with contextlib.suppress(Exception):
            self._call(self._shutdown(), timeout=15)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    # -- on the event loop's thread ----------------------------------------------------------

    async def _open(self) -> None:
        import nats
        from nats.js.errors import NotFoundError

        try:
            self._nc = await nats.connect(
                self.url, name=f"kubesentinel-{self.worker_id}", connect_timeout=3.0,
                max_reconnect_attempts=-1, reconnect_time_wait=1.0, error_cb=self._on_error,
            )  # fmt: skip
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise SourceError(
                f"cannot connect to NATS at {self.url}: {exc}",
                hint="is nats-server running there, with JetStream (nats-server -js)?",
            ) from None
        js = self._js = self._nc.jetstream()
        try:
            await js.stream_info(self.out_stream)
        except NotFoundError:
            from kubesentinel.runtime.scale.ingress import DUPLICATE_WINDOW_S

            await js.add_stream(
                name=self.out_stream,
                subjects=[f"{self.out_subject}.>"],
                duplicate_window=DUPLICATE_WINDOW_S,
            )
        self.leases = await Leases.open(
            js,
            bucket=f"{self.out_stream}_LEASES",
            worker_id=self.worker_id,
            partitions=self.partitions,
            ttl_s=self._lease_ttl_s,
            on_claim=self._on_claim,
            on_release=self._on_release,
            on_lost=self._on_lost,
        )

    def _on_claim(self, n: int) -> None:
        self._parts[n] = _Part(n)
        self._posted.claims.append(n)

    async def _on_release(self, n: int) -> None:
        part = self._parts.get(n)
        if part is None or part.state != "active":
            return
        part.state = "releasing"
        await self._stop_fetching(part)
        self._posted.releases.append(n)

    async def _give_up(self, n: int, revision: int | None) -> None:
        """A claim the store refused (a newer owner's token, or no store): stop as if the
        lease was lost, and delete the key if it is still this worker's. Nothing is done if n
        was claimed again since (another ``revision``)."""
        if revision is None or (self.leases is not None and self.leases.claimed.get(n) != revision):
            return
        if self.fence is not None:
            self.fence.forget(n)
        if self.leases is not None:
            await self.leases.give_up(n)
        await self._on_lost(n)

    async def _on_lost(self, n: int) -> None:
        part = self._parts.get(n)
        if part is None:
            return
        log.warning("lost the lease of partition %d: stopped taking its alerts", n)
        part.state = "lost"
        await self._stop_fetching(part)
        self._parts.pop(n, None)
        self._posted.lost.append(n)

    async def _start_fetching(self, n: int) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        part = self._parts.get(n)
        if part is None or part.state != "claimed" or self._js is None:
            return
        subject = subject_of(self.out_subject, n)
        config = ConsumerConfig(
            durable_name=f"ks-part-{n}",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            max_ack_pending=max(1000, 2 * self.queue.max_items),
            filter_subject=subject,
        )
        try:
            part.psub = await self._js.pull_subscribe(
                subject, durable=f"ks-part-{n}", stream=self.out_stream, config=config
            )
        except Exception as exc:
            self.last_error = f"partition {n}: {exc}"
            log.error("cannot read partition %d: %s", n, exc)
            return
        part.state, part.fetching = "active", True
        part.task = asyncio.get_running_loop().create_task(self._fetch(part))
        log.info("took partition %d", n)

    async def _fetch(self, part: _Part) -> None:
        q = self.queue
        ack = self._ack
        n = part.n
        while part.fetching:
            room = q.room()
            if room <= 0:
                await asyncio.sleep(0.02)
                continue
            try:
                msgs = await part.psub.fetch(batch=min(FETCH_BATCH, room), timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected: the client reconnects by itself
                self.last_error = str(exc) or type(exc).__name__
                await asyncio.sleep(0.5)
                continue
            now = time.time_ns()
            for msg in msgs:
                meta = msg.metadata
                origin = f"nats:{msg.subject}#{meta.sequence.stream}"
                if meta.num_delivered > 1:  # its own origin: the first copy may be queued too
                    origin += f"~{meta.num_delivered}"
                headers = msg.headers or {}
                workload = workload_from_header(headers.get(WORKLOAD_HEADER, ""))
                if workload is not None:
                    if len(self.pinned) >= PINNED_MAX:  # left by alerts that did not parse
                        self.pinned.clear()
                    self.pinned[origin] = workload
                if meta.num_delivered > 1:
                    self.redelivered.add(origin)
                with self._lock:
                    self._queued[n] += 1
                item = RawAlert(msg.data, origin, now, _PartAck(ack, msg, n, part))
                # Partitions fetch side by side and may together overfill the queue: wait for
                # room rather than give the message back, which would reorder the partition.
                while not q.offer(item):
                    if not part.fetching:  # released meanwhile: back to the stream
                        with self._lock:
                            self._queued[n] -= 1
                        self.pinned.pop(origin, None)
                        await msg.nak(delay=NAK_DELAY_S)
                        break
                    await asyncio.sleep(0.01)

    async def _stop_fetching(self, part: _Part) -> None:
        part.fetching = False
        if part.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(part.task), FETCH_TIMEOUT_S * 4)

    def _stop_all_fetching(self) -> None:
        for part in self._parts.values():
            part.fetching = False

    async def _finish_release(self, n: int) -> None:
        """The partition's alerts are committed: send their acks, then give the lease up."""
        await self._send_acks(self._drain_acks())
        part = self._parts.pop(n, None)
        if part is not None and part.psub is not None:
            with contextlib.suppress(Exception):
                await part.psub.unsubscribe()
        if self.leases is not None:
            await self.leases.give_up(n)
        log.info("released partition %d", n)

    def _flush_acks(self) -> None:
        self._ack_scheduled = False
        msgs = self._drain_acks()
        if msgs:
            self._loop.create_task(self._send_acks(msgs))

    def _drain_acks(self) -> list[tuple[Msg, Outcome]]:
        msgs = []
        while self._acks:
            msgs.append(self._acks.popleft())
        return msgs

    async def _send_acks(self, msgs: list[tuple[Msg, Outcome]]) -> None:
        for msg, outcome in msgs:
            try:
                if outcome is Outcome.STORED:
                    await msg.ack()
                elif outcome is Outcome.REJECTED:
                    await msg.term()
                else:
                    await msg.nak(delay=NAK_DELAY_S)
            except Exception as exc:  # redelivered after ack_wait: at least once
                self.last_error = f"ack failed: {exc}"

    async def _shutdown(self) -> None:
        if self.leases is not None:
            await self.leases.stop()
        for part in list(self._parts.values()):
            await self._stop_fetching(part)
        await self._send_acks(self._drain_acks())
        for msg in [a.ack.msg for a in self.queue.take_all() if isinstance(a.ack, _PartAck)]:
            with contextlib.suppress(Exception):
                await msg.nak(delay=NAK_DELAY_S)
        if self.leases is not None:
            for n in list(self._parts):
                await self.leases.give_up(n)
            await self.leases.leave()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self.last_error = str(exc) or type(exc).__name__


class _PartAck:
    """``RawAlert.ack`` for one message of partition ``partition``."""

    __slots__ = ("ack", "msg", "owner", "partition")

    def __init__(
        self, ack: Callable[[Msg, Outcome, int], None], msg: Msg, partition: int, owner: _Part
    ) -> None:
        self.ack = ack
        self.msg = msg
        self.partition = partition
        self.owner = owner  # the ownership that fetched it: a later claim is another

    def __call__(self, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
        self.ack(self.msg, outcome, self.partition)
