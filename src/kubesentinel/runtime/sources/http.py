"""An HTTP(S) receiver for Falco's ``http_output`` and falcosidekick's webhook output.

Both POST one JSON alert per request (falcosidekick adds ``uuid``), on any path but
``/healthz`` and ``/metrics``. The body is queued as is with an ``ack``, and the answer waits
until the pipeline settles it, so a 200 means the alert is in the store:

- ``200`` stored; ``400`` with the parser's reason when it is not a Falco alert (it is in the
  dead-letter file: the sender must not retry it); ``503`` with ``Retry-After`` when it could
  not be stored (the store failed, the monitor stopped), so the sender retries;
- at once, before the queue: ``429`` with ``Retry-After`` when the queue is full by count or
  bytes (counted as ``refused``); ``503`` with ``Retry-After`` while shutting down or while
  ``set_unavailable(reason)`` holds; ``401`` without the bearer token when one is set;
  ``413`` over ``max_body``; ``400`` for an empty body, a malformed request, or a
  Content-Length given twice or beside Transfer-Encoding (request smuggling); ``431`` for a
  head over 16 KiB; ``405``/``404`` for other methods and paths.

``GET /healthz`` answers ``{"status": "ok", "queue_depth": N, "queue_size": M}`` (503 with
``"shutting down"`` or ``"unavailable"`` and the reason); ``GET /metrics`` the Prometheus text
of the monitor's ``Metrics``. Both stay open without the token, for probes and scrapers.

h11 parses every request head and frames its body (HTTP/1.1 keep-alive, pipelining, chunked
bodies, ``Expect: 100-continue``; HTTP/1.0 connections close after one request, as h11
decides); one thread runs a ``selectors`` loop over the sockets (http_loop.py). Answers are
written in request order per connection, from prebuilt bytes: each request gets a fresh
``h11.Connection`` fed the previous one's unread bytes, because the answer is only known after
the pipeline settles and by then later pipelined requests have been read. A Content-Length
body that has fully arrived is sliced from the bytes h11 has not consumed, sparing two h11
events per request. A connection is not read while ``max_pending`` answers are owed on it.
The alerts read in one loop round go to the queue together; the ``ack`` runs on the store's
thread: it appends to a deque and wakes the loop through a socket pair, once per burst.

Limits: ``max_connections`` (at the cap the oldest idle connection, one without a request
head read or an answer owed, is closed for the newcomer; out of file descriptors, the same,
else the listener rests 100 ms); the head must arrive within ``Timeouts.head_s``, the body
within ``Timeouts.body_s``, the TLS handshake within ``Timeouts.handshake_s``; an idle
keep-alive connection is closed after ``Timeouts.keep_alive_s``.

Auth: with a ``token`` a POST needs ``Authorization: Bearer TOKEN`` (the scheme in any case;
digests compared in constant time); who may listen unauthenticated, and on which address, is
decided by ``http_options.options_from_args``.

TLS: pass an ``ssl.SSLContext`` (see ``http_options.server_context``: TLS 1.2 or later, and
with a client CA the client certificate is required, as Falco's ``http_output.mtls`` sends).
The handshake runs non-blocking in the same loop. ``close()`` stops the listener and answers
503; the loop keeps delivering the answers of alerts already queued while ``batches()`` hands
them out, for up to ``Timeouts.grace_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources import http_wire as wire
from kubesentinel.runtime.sources.http_loop import Loop
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.queueing import DEFAULT_BUFFER_BYTES, AlertQueue, live_batches

MAX_BODY_BYTES: Final = 1024 * 1024
MAX_CONNECTIONS: Final = 1024
MAX_PENDING: Final = 32


@dataclass(frozen=True, slots=True)
class Timeouts:
    handshake_s: float = 10.0
    head_s: float = 10.0  # the whole request head, from its first byte
    body_s: float = 30.0
    keep_alive_s: float = 300.0
    grace_s: float = 10.0  # after close(): answers owed are still delivered this long


class HttpSource:
    """Listen on ``host:port``; ``port=0`` picks a free port (see ``address``)."""

    live = True  # waits for alerts until closed

    def __init__(
        self,
        host: str,
        port: int,
        queue_size: int,
        *,
        metrics: Metrics | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        queue_bytes: int = DEFAULT_BUFFER_BYTES,
        max_body: int = MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        max_pending: int = MAX_PENDING,
        timeouts: Timeouts = Timeouts(),
        idle_s: float = 0.2,
    ) -> None:
        if queue_size < 1 or max_connections < 1 or max_pending < 1:
            raise ValueError("queue_size, max_connections and max_pending must be positive")
        self.metrics = metrics if metrics is not None else Metrics()
        self.queue = AlertQueue(queue_size, queue_bytes)
        self.max_body = max_body
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.timeouts = timeouts
        self.idle_s = idle_s
        self.tls = tls
        self.closing = False
        self.unavailable: str | None = None
        self._auth = _digest(token.encode()) if token else None
        self.listener = wire.listen(host, port)
        bound = self.listener.getsockname()
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        shown = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        self.name = f"{'https' if tls else 'http'}://{shown}:{self.address[1]}"
        self._loop = Loop(self)
        self._thread = threading.Thread(target=self._loop.run, name=self.name, daemon=True)
        self._thread.start()

    def authorized(self, header: bytes | None) -> bool:
        if self._auth is None:
            return True
        if header is None:
            return False
        scheme, _, credentials = header.partition(b" ")
        # Compare digests: constant time, and the token's length does not leak either.
        ok = hmac.compare_digest(_digest(credentials), self._auth)
        return ok and scheme.lower() == b"bearer"

    def set_unavailable(self, reason: str | None) -> None:
        """While a reason is set, POSTs get 503 with Retry-After and /healthz says why."""
        self.unavailable = wire.text(reason).decode().strip() if reason else None

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        return live_batches(
            self.queue,
            max_batch,
            idle_s=self.idle_s,
            ended=lambda: self.closing,
            on_batch=lambda depth: self.metrics.set_gauges(queue_depth=depth),
        )

    def close(self) -> None:
        """Refuse new alerts and stop the listener; ``batches()`` drains the queue and ends.

        Waits for the loop only when every queued alert is settled: called from a signal
        handler on the pipeline's thread, waiting for answers that thread owes would stall.
        """
        self.closing = True
        loop = self._loop
        loop.wake()
        if not self.queue and loop.unsettled <= len(loop.settled):
            self._thread.join(timeout=min(2.0, self.timeouts.grace_s))

    def health(self) -> tuple[int, bytes]:
        doc: dict[str, object] = {"status": "ok"}
        if self.closing:
            doc["status"] = "shutting down"
        elif self.unavailable is not None:
            doc = {"status": "unavailable", "reason": self.unavailable}
        doc.update(queue_depth=len(self.queue), queue_size=self.queue.max_items)
        return (200 if doc["status"] == "ok" else 503), (json.dumps(doc) + "\n").encode()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value.strip()).digest()
