"""Membership and partition ownership in one JetStream key-value bucket with a TTL.

Keys (the bucket's ``max_age`` is the lease TTL, so a key nobody rewrites disappears):

- ``w.<worker id>``: a live worker, rewritten every TTL/3 (value: JSON with its partition
  count, pid and host);
- ``p.<n>``: the owner of partition n: taken with ``create`` (fails when it exists: the
  server decides who wins), renewed with ``update(last=revision)`` (fails when the key
  expired or changed hands: the lease is lost), deleted by a release.

Each round a worker counts the live workers, keeps at most its fair share
``ceil(partitions / live workers)`` and takes free partitions up to it, lowest first; a worker
over its share (one joined) releases its highest partitions. No other consensus: the bucket's
compare-and-set is the only arbiter. A worker that dies stops renewing: its keys expire after
the TTL and the survivors take its partitions in their next round. A claim's creation revision,
after the bucket's creation time (``epoch_ns``), is its fencing token (``fence``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from kubesentinel.errors import SourceError

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

log = logging.getLogger("kubesentinel.scale")


def worker_key(worker_id: str) -> str:
    return f"w.{worker_id}"


def partition_key(n: int) -> str:
    return f"p.{n}"


async def open_bucket(js: JetStreamContext, bucket: str, ttl_s: float) -> KeyValue:
    """The lease bucket, created with ``ttl_s`` when missing (an existing one keeps its TTL)."""
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(bucket=bucket, ttl=ttl_s, history=1)


async def live_workers(kv: KeyValue) -> dict[str, dict[str, Any]]:
    """Worker id -> what it last wrote, for every unexpired ``w.*`` key."""
    from nats.js.errors import KeyNotFoundError, NoKeysError

    try:
        keys = await kv.keys()
    except NoKeysError:
        return {}
    workers: dict[str, dict[str, Any]] = {}
    for key in keys:
        if not key.startswith("w."):
            continue
        with contextlib.suppress(KeyNotFoundError):
            entry = await kv.get(key)
            if entry.value:
                workers[key[2:]] = orjson.loads(entry.value)
    return workers


async def owners(kv: KeyValue) -> dict[int, str]:
    """Partition -> the worker that holds its lease."""
    from nats.js.errors import KeyNotFoundError, NoKeysError

    try:
        keys = await kv.keys()
    except NoKeysError:
        return {}
    held: dict[int, str] = {}
    for key in keys:
        if key.startswith("p.") and key[2:].isdigit():
            with contextlib.suppress(KeyNotFoundError):
                entry = await kv.get(key)
                if entry.value:
                    held[int(key[2:])] = entry.value.decode()
    return held


class Leases:
    """One worker's membership and partition leases; ``run()`` is its renewal loop."""

    def __init__(
        self,
        kv: KeyValue,
        *,
        worker_id: str,
        partitions: int,
        ttl_s: float,
        on_claim: Callable[[int], None],
        on_release: Callable[[int], Awaitable[None]],
        on_lost: Callable[[int], Awaitable[None]],
        epoch_ns: int = 0,
    ) -> None:
        self.kv = kv
        self.epoch_ns = epoch_ns
        self.claimed: dict[int, int] = {}  # partition -> the revision that created its key
        self.worker_id = worker_id
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.held: dict[int, int] = {}  # partition -> revision of its key
        self.releasing: set[int] = set()
        self._on_claim = on_claim
        self._on_release = on_release
        self._on_lost = on_lost
        self._stopped = asyncio.Event()
        # A renewal and a release of the same key must not interleave: the release deletes
        # with the revision it knows, which a renewal in flight would make stale.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        *,
        bucket: str,
        worker_id: str,
        partitions: int,
        ttl_s: float,
        on_claim: Callable[[int], None],
        on_release: Callable[[int], Awaitable[None]],
        on_lost: Callable[[int], Awaitable[None]],
    ) -> Leases:
        kv = await open_bucket(js, bucket, ttl_s)
        stream = await js.stream_info(f"KV_{bucket}")
        ttl = stream.config.max_age or ttl_s
        for other, info in (await live_workers(kv)).items():
            if other == worker_id:  # restarted within the TTL: its old leases expire
                log.warning("worker id %r is still live in %s; a restart?", worker_id, bucket)
                continue
            if info.get("partitions") != partitions:
                raise SourceError(
                    f"worker {other!r} runs with {info.get('partitions')} partitions, "
                    f"not {partitions}",
                    hint="every ingress and worker of a deployment needs the same --partitions",
                )
        created = stream.created
        leases = cls(
            kv, worker_id=worker_id, partitions=partitions, ttl_s=ttl,
            on_claim=on_claim, on_release=on_release, on_lost=on_lost,
            epoch_ns=int(created.timestamp() * 1e9) if created is not None else 0,
        )  # fmt: skip
        await leases.heartbeat()
        return leases

    async def run(self) -> None:
        """Heartbeat, renew, rebalance every TTL/3 until ``stop()``."""
        while not self._stopped.is_set():
            try:
                async with self._lock:
                    await self.round()
            except Exception as exc:  # NATS unreachable for a moment: keys may expire
                log.warning("lease round failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.ttl_s / 3)

    async def round(self) -> None:
        await self.heartbeat()
        await self.renew()
        live = max(1, len(await live_workers(self.kv)))
        fair = math.ceil(self.partitions / live)
        kept = [n for n in sorted(self.held) if n not in self.releasing]
        for n in kept[fair:]:  # over the share: the highest go
            self.releasing.add(n)
            await self._on_release(n)
        if len(kept) < fair:
            await self.claim(fair - len(kept))

    async def heartbeat(self) -> None:
        value = orjson.dumps(
            {
                "partitions": self.partitions,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "held": sorted(self.held),
                "at": time.time(),
            }
        )
        await self.kv.put(worker_key(self.worker_id), value)

    async def renew(self) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        for n, revision in list(self.held.items()):
            try:
                self.held[n] = await self.kv.update(
                    partition_key(n), self.worker_id.encode(), last=revision
                )
            except KeyWrongLastSequenceError:
                self.held.pop(n, None)
                self.claimed.pop(n, None)
                self.releasing.discard(n)
                await self._on_lost(n)

    async def claim(self, wanted: int) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        taken = await owners(self.kv)
        for n in range(self.partitions):
            if wanted <= 0:
                return
            if n in taken or n in self.held:
                continue
            try:
                revision = await self.kv.create(partition_key(n), self.worker_id.encode())
            except KeyWrongLastSequenceError:
                continue  # another worker was faster
            self.held[n] = self.claimed[n] = revision
            wanted -= 1
            self._on_claim(n)

    async def give_up(self, n: int) -> None:
        """Delete partition n's key (after its alerts were committed and acknowledged)."""
        async with self._lock:
            revision = self.held.pop(n, None)
            self.claimed.pop(n, None)
            self.releasing.discard(n)
            if revision is not None:
                with contextlib.suppress(Exception):
                    await self.kv.delete(partition_key(n), last=revision)

    async def stop(self) -> None:
        self._stopped.set()

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.kv.delete(worker_key(self.worker_id))
