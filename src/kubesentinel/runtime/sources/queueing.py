"""The bounded queue that live sources (HTTP, unix socket, NATS) hand alerts through."""

from __future__ import annotations

import queue

from kubesentinel.runtime.sources.interface import RawAlert


def drain(q: queue.Queue[RawAlert], first: RawAlert, max_batch: int) -> list[RawAlert]:
    """``first`` plus whatever is already queued, up to ``max_batch``: never waits for more,
    so a lone alert is stored at once (latency) and a burst goes in one batch (throughput)."""
    batch = [first]
    try:
        while len(batch) < max_batch:
            batch.append(q.get_nowait())
    except queue.Empty:
        pass
    return batch
