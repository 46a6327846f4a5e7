"""What falcosidekick's NATS output publishes, read from JetStream with a durable pull consumer.

falcosidekick publishes each alert (its JSON payload, with ``uuid``) on the subject
``falco.<priority>.<rule>``: the priority in lower case (``warning``, ``informational``) and
the rule lower-cased with every run of characters other than ``a-z0-9`` replaced by ``_`` and
leading/trailing ``_`` trimmed (``"Terminal shell in container"`` ->
``falco.notice.terminal_shell_in_container``; see ``subject_of``). Plain NATS subjects keep
nothing, so the monitor reads them through a JetStream stream: when the stream is missing it
is created (name ``stream``, default ``FALCO``, subjects ``falco.>``), and every message
published from then on is kept until acknowledged.

Each ``RawAlert.ack`` settles its message once the pipeline is done with it: ``ack`` after the
store committed the batch, ``term`` for a message that is not a Falco alert (it is in the
dead-letter file; a poison message is never redelivered), ``nak`` when it could not be stored.
A message handed out but never settled (a crash) is redelivered by the server after
``ack_wait_s``; messages still queued here at ``close()`` are negatively acknowledged, so they
come back after ``NAK_DELAY_S`` (1 s) instead. Delivery is therefore at least once: the store
ignores an event id it already has. The queue is bounded in messages and bytes; a message over
the byte budget is given back (``nak``) and fetching pauses while the queue is full.

The asyncio client (``nats-py``, imported lazily: start-up stays fast for other sources) runs
on its own thread and event loop; a bounded queue bridges it to the synchronous ``batches()``,
and fetching pauses while the queue is full (back-pressure: the messages wait in the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources.interface import Outcome, RawAlert
from kubesentinel.runtime.sources.queueing import DEFAULT_BUFFER_BYTES, AlertQueue, live_batches

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

DEFAULT_SUBJECT: Final = "falco.>"
DEFAULT_STREAM: Final = "FALCO"
DEFAULT_DURABLE: Final = "kubesentinel"
FETCH_BATCH: Final = 256
FETCH_TIMEOUT_S: Final = 0.5  # a pull request's life on the server
NAK_DELAY_S: Final = 1.0
_SLUG = re.compile(r"[^a-z0-9]+")
_T = TypeVar("_T")


def subject_of(priority: str, rule: str) -> str:
    """The subject falcosidekick publishes an alert on (its outputs/nats.go)."""
    return f"falco.{priority.lower()}.{_SLUG.sub('_', rule.lower()).strip('_')}"


class NatsSource:
    """A durable JetStream pull consumer on ``subject`` at ``url`` (``nats://HOST:PORT``)."""

    live = True  # waits for alerts until closed

    def __init__(
        self,
        url: str,
        subject: str = DEFAULT_SUBJECT,
        *,
        durable: str = DEFAULT_DURABLE,
        stream: str | None = None,
        queue_size: int = 10_000,
        queue_bytes: int = DEFAULT_BUFFER_BYTES,
        ack_wait_s: float = 30.0,
        connect_timeout_s: float = 3.0,
        idle_s: float = 0.2,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be positive")
        self.name = f"{url}/{subject}"
        self.url = url
        self.subject = subject
        self.durable = durable
        self.stream = stream
        self.queue = AlertQueue(queue_size, queue_bytes)
        self.idle_s = idle_s
        self.last_error: str | None = None
        self._ack_wait_s = ack_wait_s
        self._connect_timeout_s = connect_timeout_s
        self._closing = False
        self._iterating = False
        self._shut = False
        self._acks: deque[tuple[Msg, Outcome]] = deque()
        self._ack_scheduled = False
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._nc: Client | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()
        try:
            psub = self._call(self._open(), timeout=connect_timeout_s * 3 + 5)
        except TimeoutError:
            self._stop_loop()
            raise SourceError(
                f"NATS at {url} did not answer in time",
                hint="check that nats-server runs there with JetStream (nats-server -js)",
            ) from None
        except BaseException:
            self._stop_loop()
            raise
        self._fetcher = asyncio.run_coroutine_threadsafe(self._fetch(psub), self._loop)

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        self._iterating = True
        try:
            # Once closed, fetching stops and what is queued is still handed out and acked.
            yield from live_batches(
                self.queue, max_batch, idle_s=self.idle_s, ended=lambda: self._closing
            )
        finally:
            self._iterating = False
            if self._closing:
                self._shutdown_now()

    def close(self) -> None:
        """Stop fetching; send pending acks, give back (nak) what was never handed out.

        Called while ``batches()`` is being iterated (from a signal handler, say), it only
        raises a flag: the pipeline still acknowledges the batch in hand, and the generator
        finishes the shutdown when it ends. A second call shuts down at once.
        """
        if not self._closing:
            self._closing = True
            if self._iterating:
                return
        # While iterating, the queue's lock may be held by the very thread running a signal
        # handler: leave the queue alone then (its messages come back after ack_wait).
        self._shutdown_now(give_back=not self._iterating)

    def _shutdown_now(self, give_back: bool = True) -> None:
        if self._shut:
            return
        self._shut = True
        self._loop.call_soon_threadsafe(self._fetcher.cancel)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            self._fetcher.result(timeout=5)
        # Never handed to the pipeline: back now rather than after ack_wait.
        left = self.queue.take_all() if give_back else []
        naks = [alert.ack.msg for alert in left if isinstance(alert.ack, _Ack)]
        with contextlib.suppress(Exception):
            self._call(self._shutdown(naks), timeout=10)
        self._stop_loop()

    # -- on the pipeline's thread ------------------------------------------------------------

    def _ack(self, msg: Msg, outcome: Outcome) -> None:
        self._acks.append((msg, outcome))
        if not self._ack_scheduled:
            self._ack_scheduled = True
            # Once closed this raises: the server redelivers the message after ack_wait.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._flush_acks)

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    # -- on the event loop's thread ----------------------------------------------------------

    async def _open(self) -> JetStreamContext.PullSubscription:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        try:
            self._nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    name="kubesentinel",
                    connect_timeout=self._connect_timeout_s,
                    max_reconnect_attempts=-1,  # a monitor keeps trying once it has started
                    reconnect_time_wait=1.0,
                    error_cb=self._on_error,
                ),
                timeout=self._connect_timeout_s,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise SourceError(
                f"cannot connect to NATS at {self.url}: {self.last_error or exc or 'timed out'}",
                hint="is nats-server running there, with JetStream (nats-server -js)?",
            ) from None
        js = self._nc.jetstream()
        try:
            stream = await self._ensure_stream(js)
            config = ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait_s,
                max_ack_pending=max(1000, 2 * self.queue.max_items),
                filter_subject=self.subject,
            )
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(stream, self.durable)
                if info.config.filter_subject not in (None, self.subject):
                    raise SourceError(
                        f"NATS consumer {self.durable!r} on stream {stream!r} reads "
                        f"{info.config.filter_subject!r}, not {self.subject!r}",
                        hint="choose another durable name (?durable=NAME) or delete that consumer",
                    )
            return await js.pull_subscribe(
                self.subject, durable=self.durable, stream=stream, config=config
            )
        except SourceError:
            await self._nc.close()
            raise
        except (TimeoutError, nats.errors.Error) as exc:
            await self._nc.close()
            raise SourceError(
                f"NATS JetStream at {self.url} refused the stream or consumer: {exc}",
                hint="enable JetStream on the server (nats-server -js) and check the account",
            ) from None

    async def _ensure_stream(self, js: JetStreamContext) -> str:
        from nats.js.errors import NotFoundError

        if self.stream is None:
            with contextlib.suppress(NotFoundError):
                return await js.find_stream_name_by_subject(self.subject)
            name = DEFAULT_STREAM
        else:
            name = self.stream
            with contextlib.suppress(NotFoundError):
                await js.stream_info(name)
                return name
        covers = DEFAULT_SUBJECT if self.subject.startswith("falco.") else self.subject
        await js.add_stream(name=name, subjects=[covers])
        return name

    async def _fetch(self, psub: JetStreamContext.PullSubscription) -> None:
        q = self.queue
        ack = self._ack
        while not self._closing:
            room = q.room()  # only this task puts: room can only grow meanwhile
            if room <= 0:
                await asyncio.sleep(0.02)
                continue
            try:
                msgs = await psub.fetch(batch=min(FETCH_BATCH, room), timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                continue  # nothing new (nats.errors.TimeoutError is one too)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected: the client reconnects by itself
                self.last_error = str(exc) or type(exc).__name__
                await asyncio.sleep(0.5)
                continue
            now = time.time_ns()
            for msg in msgs:
                origin = f"nats:{msg.subject}#{msg.metadata.sequence.stream}"
                if not q.offer(RawAlert(msg.data, origin, now, _Ack(ack, msg))):
                    # Over the byte budget: the server redelivers it after the delay.
                    await msg.nak(delay=NAK_DELAY_S)

    def _flush_acks(self) -> None:
        self._ack_scheduled = False  # before draining: an ack appended later schedules anew
        msgs = self._drain_acks()
        if msgs:
            task = self._loop.create_task(self._send_acks(msgs))
            self._ack_tasks.add(task)
            task.add_done_callback(self._ack_tasks.discard)

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
                    await msg.term()  # a poison message: dead-lettered, never redelivered
                else:
                    await msg.nak(delay=NAK_DELAY_S)
            except Exception as exc:  # redelivered after ack_wait: at least once
                self.last_error = f"ack failed: {exc}"

    async def _shutdown(self, naks: list[Msg]) -> None:
        await self._send_acks(self._drain_acks())
        if self._ack_tasks:
            await asyncio.wait(list(self._ack_tasks), timeout=5)
        for msg in naks:
            with contextlib.suppress(Exception):
                # Delayed past the expiry of our last pull request, which may still wait on
                # the server and would otherwise swallow the message until ack_wait.
                await msg.nak(delay=NAK_DELAY_S)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self.last_error = str(exc) or type(exc).__name__


class _Ack:
    """``RawAlert.ack`` for one message: ack when stored, term when rejected (poison), nak
    when the monitor could not store it; keeps the message so close() can nak it."""

    __slots__ = ("ack", "msg")

    def __init__(self, ack: Callable[[Msg, Outcome], None], msg: Msg) -> None:
        self.ack = ack
        self.msg = msg

    def __call__(self, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
        self.ack(self.msg, outcome)
