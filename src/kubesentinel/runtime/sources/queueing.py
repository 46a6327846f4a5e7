"""The bounded queue live sources (HTTP, unix socket, NATS) hand alerts through, and the one
loop that turns it into batches.

The queue is bounded in alerts and in bytes (``runtime.buffer_size`` and
``runtime.buffer_bytes``): a flood of 1 MiB alerts fills it long before memory runs out. A full
queue refuses the alert (``offer`` returns False) and the source tells its sender to retry
later (HTTP 429) or leaves the message in the broker (NATS).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

from kubesentinel.runtime.sources.interface import RawAlert

DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024
# Data handed to the pipeline at once: a batch of large alerts is parsed, encoded and sent to
# the writer as a whole, so this bounds the pipeline's working memory beside the queue's.
BATCH_BYTES = 8 * 1024 * 1024


class AlertQueue:
    """FIFO of raw alerts bounded by ``max_items`` and by ``max_bytes`` of alert data.

    An alert larger than ``max_bytes`` is still taken when the queue is empty, so a small byte
    budget can never block an alert the source accepted by size.
    """

    def __init__(self, max_items: int, max_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("a queue needs room for at least one alert and one byte")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[RawAlert] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._waiting = 0
        self._blocked = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def room(self) -> int:
        """Alerts that fit now by count (the byte budget is checked per alert)."""
        return self.max_items - len(self._items) if self._bytes < self.max_bytes else 0

    def offer(self, item: RawAlert) -> bool:
        """Queue ``item`` unless the queue is full; never waits."""
        with self._lock:
            if self._full(len(item.data)):
                return False
            self._append(item)
        return True

    def offer_many(self, items: list[RawAlert]) -> int:
        """Queue ``items`` in order while they fit; how many were queued. Never waits."""
        queued = 0
        with self._lock:
            for item in items:
                if self._full(len(item.data)):
                    break
                self._items.append(item)
                self._bytes += len(item.data)
                queued += 1
            if queued and self._waiting:
                self._ready.notify()
        return queued

    def put(self, item: RawAlert, timeout: float) -> bool:
        """Queue ``item``, waiting up to ``timeout`` s for room; False if there was none."""
        size = len(item.data)
        with self._lock:
            if self._full(size):
                self._blocked += 1
                try:
                    if not self._room.wait_for(lambda: not self._full(size), timeout):
                        return False
                finally:
                    self._blocked -= 1
            self._append(item)
        return True

    def _full(self, size: int) -> bool:
        return bool(self._items) and (
            len(self._items) >= self.max_items or self._bytes + size > self.max_bytes
        )

    def _append(self, item: RawAlert) -> None:
        self._items.append(item)
        self._bytes += len(item.data)
        if self._waiting:
            self._ready.notify()

    def take(self, max_batch: int, timeout: float, max_bytes: int = BATCH_BYTES) -> list[RawAlert]:
        """Up to ``max_batch`` queued alerts and about ``max_bytes`` of data (at least one
        alert); waits up to ``timeout`` s for the first one only, so a lone alert is stored at
        once (latency) and a burst goes in one batch (throughput)."""
        with self._lock:
            if not self._items:
                self._waiting += 1
                try:
                    self._ready.wait_for(lambda: bool(self._items), timeout)
                finally:
                    self._waiting -= 1
            items = self._items
            if self._bytes <= max_bytes:  # the common case: everything queued fits
                count = min(len(items), max_batch)
                batch = [items.popleft() for _ in range(count)]
                self._bytes -= sum(len(item.data) for item in batch)
            else:
                batch, size = [], 0
                while items and len(batch) < max_batch and (not batch or size < max_bytes):
                    item = items.popleft()
                    batch.append(item)
                    size += len(item.data)
                self._bytes -= size
            if self._blocked and batch:
                self._room.notify_all()
            return batch

    def take_all(self) -> list[RawAlert]:
        with self._lock:
            batch = list(self._items)
            self._items.clear()
            self._bytes = 0
            if self._blocked:
                self._room.notify_all()
            return batch


def live_batches(
    q: AlertQueue,
    max_batch: int,
    *,
    idle_s: float,
    ended: Callable[[], bool],
    draining: Callable[[], bool] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[list[RawAlert]]:
    """Batches from ``q`` until ``ended()`` holds with the queue empty.

    An empty batch every ``idle_s`` while nothing arrives lets the pipeline expire incidents;
    none while ``draining()`` holds (closed, but readers still queue what they had read: a
    stopping pipeline ends at its first empty batch). ``on_batch`` gets the queue depth after
    each take (a gauge).
    """
    if max_batch < 1:
        raise ValueError("max_batch must be positive")
    while True:
        batch = q.take(max_batch, idle_s)
        if on_batch is not None:
            on_batch(len(q))
        if batch:
            yield batch
        elif ended():
            return
        elif draining is None or not draining():
            yield []
