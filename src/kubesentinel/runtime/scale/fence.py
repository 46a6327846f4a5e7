"""Fencing tokens: a worker that lost a partition's lease cannot commit that partition's alerts.

A lease alone does not stop a worker that was paused past its TTL (a GC pause, CPU
starvation, a network cut): when it wakes it still holds a batch, and would commit it while
the new owner works on the same partition. So every ownership has a token, and the store
checks it:

- The token of a claim is the lease key's creation revision in the JetStream bucket, after
  the bucket's creation time (a recreated bucket starts its revisions again, later). Revisions
  of one bucket only grow, so a later claim always has a larger token.
- The new owner records its token in ``scale_fence`` (partition, epoch, token, worker) in the
  vault's PostgreSQL schema *before* it restores the partition's open incidents, and only
  ever raises a recorded token.
- Every write checks, inside its own transaction, that no larger token is recorded for the
  partitions its events and incidents belong to, reading those rows ``FOR SHARE``: a claim
  waits for a write in flight to commit (and then restores what it wrote), and a write that
  comes after a claim sees the new token.

A write that finds a partition fenced leaves that partition's events and incidents out and
commits the rest; the fenced partition's messages are given back (nak), and its new owner
stores them (events are idempotent on their id). The old owner forgets the partition as if
its lease had expired. The claim's table is beside the vault's tables, outside its sealed
chain: it is coordination state, not evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Incident
from kubesentinel.runtime.scale.partition import partition_of
from kubesentinel.runtime.scale.pgsession import SchemaSession
from kubesentinel.runtime.store.interface import Fenced

log = logging.getLogger("kubesentinel.scale")

_CREATE: Final = (
    "CREATE TABLE IF NOT EXISTS scale_fence (partition integer PRIMARY KEY, "
    "epoch bigint NOT NULL, token bigint NOT NULL, worker text NOT NULL, "
    "claimed_ns bigint NOT NULL)"
)
# Raise the recorded token, never lower it; RETURNING says whether this claim is the newest.
_CLAIM: Final = (
    "INSERT INTO scale_fence AS f (partition, epoch, token, worker, claimed_ns) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (partition) DO UPDATE SET "
    "epoch = excluded.epoch, token = excluded.token, worker = excluded.worker, "
    "claimed_ns = excluded.claimed_ns "
    "WHERE (f.epoch, f.token) <= (excluded.epoch, excluded.token) RETURNING partition"
)
_CHECK: Final = (
    "SELECT partition, epoch, token, worker FROM scale_fence WHERE partition = ANY(%s) FOR SHARE"
)


@dataclass(frozen=True, slots=True, order=True)
class Token:
    """One ownership of one partition: later claims compare greater."""

    epoch: int  # the lease bucket's creation time, ns
    revision: int  # the lease key's creation revision in that bucket


class PartitionFence:
    """This worker's tokens, recorded on claim and checked on every write.

    ``on_fenced`` is called (on the writing thread) with the partitions a write found
    claimed by a newer owner, each with the lease revision this worker held for it then (None:
    it held none, the alerts were fetched under an ownership already given up), before the
    rest of the write is retried.
    """

    def __init__(
        self,
        location: str,
        partitions: int,
        worker_id: str,
        on_fenced: Callable[[dict[int, int | None]], None],
    ) -> None:
        self._session = SchemaSession(location, _CREATE, "kubesentinel-fence")
        self.name = self._session.name
        self.partitions = partitions
        self.worker_id = worker_id
        self.tokens: dict[int, Token] = {}
        self.fenced_writes = 0
        self._on_fenced = on_fenced

    # -- claiming ------------------------------------------------------------------------------

    def claim(self, partition: int, token: Token, now_ns: int) -> bool:
        """Record ``token`` for ``partition``; False when a newer claim is already recorded
        (this lease is stale: the caller treats the partition as lost)."""
        try:
            row = (
                self._session.connect()
                .execute(_CLAIM, (partition, token.epoch, token.revision, self.worker_id, now_ns))
                .fetchone()
            )
        except psycopg.Error as exc:
            self._session.drop()
            raise StoreError(
                f"cannot record the fencing token of partition {partition} in {self.name}: {exc}"
            ) from None
        if row is None:
            self.tokens.pop(partition, None)
            return False
        self.tokens[partition] = token
        return True

    def forget(self, partition: int) -> None:
        self.tokens.pop(partition, None)

    # -- writing -------------------------------------------------------------------------------

    def scope(self, events: Sequence[Event], incidents: Sequence[Incident]) -> list[int]:
        """The partitions a write touches."""
        n = self.partitions
        keys = {e.workload.key for e in events} | {i.workload.key for i in incidents}
        return sorted({partition_of(key, n) for key in keys})

    def check(self, conn: psycopg.Connection[Any], scope: Sequence[int]) -> None:
        """Inside the write's transaction: raise ``Fenced`` when a partition of ``scope`` has
        a newer recorded token than this worker's (or this worker holds no token for it)."""
        if not scope:
            return
        mine = self.tokens
        fenced: set[int] = set()
        owners: list[str] = []
        rows = conn.execute(_CHECK, (list(scope),)).fetchall()
        recorded = {int(p): (Token(int(e), int(t)), str(w)) for p, e, t, w in rows}
        for partition in scope:
            token = mine.get(partition)
            theirs = recorded.get(partition)
            if token is None or (theirs is not None and theirs[0] > token):
                fenced.add(partition)
                if theirs is not None:
                    owners.append(theirs[1])
        if fenced:
            raise Fenced(fenced, owners)

    def without(
        self, exc: Fenced, events: Sequence[Event], incidents: Sequence[Incident]
    ) -> tuple[list[Event], list[Incident]]:
        """The write less the fenced partitions; those are given up (``on_fenced``)."""
        self.fenced_writes += 1
        lost = exc.partitions
        log.warning("%s", exc)
        held = {}
        for partition in lost:
            token = self.tokens.pop(partition, None)
            held[partition] = None if token is None else token.revision
        self._on_fenced(held)
        n = self.partitions
        return (
            [e for e in events if partition_of(e.workload.key, n) not in lost],
            [i for i in incidents if partition_of(i.workload.key, n) not in lost],
        )

    def close(self) -> None:
        self._session.drop()
