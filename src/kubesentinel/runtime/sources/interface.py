"""The source contract: read raw alerts in batches, each with an acknowledgement.

A source hands out raw bytes (one JSON alert each) in batches. The pipeline calls each item's
``ack`` only after the store has committed the batch, so nothing accepted is lost; a source
that can redeliver (NATS JetStream) redelivers what was never acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)  # not frozen: one per alert, and a frozen __init__ costs twice as much
class RawAlert:
    data: bytes
    origin: str  # "alerts.jsonl:12", "http:127.0.0.1", "nats:falco.warning.x#42"
    received_ns: int
    ack: Callable[[], None] | None = None


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
