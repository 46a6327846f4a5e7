"""The source contract: read raw alerts in batches, each settled once the pipeline is done.

A source hands out raw bytes (one JSON alert each) in batches. The pipeline settles each item
through its ``ack`` exactly once, and only after the outcome is durable:

- ``Outcome.STORED``: the store committed the item's batch (HTTP 200, NATS ack);
- ``Outcome.REJECTED``: not a Falco alert, and the dead-letter file holds it (HTTP 400 with the
  reason, NATS ``term``: a poison message is never redelivered);
- ``Outcome.UNAVAILABLE``: not stored (the store failed, the monitor is stopping): the sender
  keeps it and retries (HTTP 503 with ``Retry-After``, NATS ``nak``).

A source that cannot answer (a file, stdin) hands out items without ``ack``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class Outcome(enum.IntEnum):
    STORED = 0
    REJECTED = 1
    UNAVAILABLE = 2


class Ack(Protocol):
    def __call__(self, outcome: Outcome = Outcome.STORED, reason: str = "") -> None: ...


@dataclass(slots=True)  # not frozen: one per alert, and a frozen __init__ costs more
class RawAlert:
    data: bytes
    origin: str  # "alerts.jsonl:12", "http:127.0.0.1", "nats:falco.warning.x#42"
    received_ns: int
    ack: Ack | None = None


def settle(items: list[RawAlert], outcome: Outcome, reason: str = "") -> None:
    """Settle every item of ``items`` that can be answered."""
    for item in items:
        if item.ack is not None:
            item.ack(outcome, reason)


class Source(Protocol):
    name: str
    # A live source (a listener, a broker) never ends by itself; a file or pipe ends at EOF.
    live: bool

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        """Batches of at most ``max_batch`` items; ends when a finite source is exhausted.

        A live source yields an empty list when nothing arrived for a while, so the pipeline
        can close expired incidents; it stops when ``close()`` is called.
        """
        ...

    def close(self) -> None: ...
