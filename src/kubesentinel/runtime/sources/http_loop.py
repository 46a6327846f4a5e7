"""The HTTP receiver's event loop (see http.py): one thread accepts, handshakes, reads with
h11 and writes the answers, in request order per connection."""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import h11

from kubesentinel.runtime.metrics import CONTENT_TYPE
from kubesentinel.runtime.sources import http_wire as wire
from kubesentinel.runtime.sources.interface import Outcome, RawAlert

if TYPE_CHECKING:
    from kubesentinel.runtime.sources.http import HttpSource

log = logging.getLogger("kubesentinel.http")

MAX_HEAD_BYTES: Final = 16 * 1024
LINGER_S: Final = 2.0
LISTEN_PAUSE_S: Final = 0.1
# A refused body (401, 413) is read and dropped up to this many times max_body, so the sender
# reads a clean answer on a live connection; beyond that the connection is closed.
DISCARD_FACTOR: Final = 4
RECV_BYTES: Final = 256 * 1024
# Request heads known (a sender's are about 200 bytes): at most 4 MiB of them in all.
MAX_HEADS: Final = 4096
MAX_KNOWN_HEAD_BYTES: Final = 1024
TLS_WRITE: Final = 64 * 1024
_OUT_OF_FDS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_NEVER: Final = float("inf")
_READ: Final = selectors.EVENT_READ
_WRITE: Final = selectors.EVENT_WRITE
# Request states of a connection.
_HEAD, _BODY, _DISCARD, _STOPPED = range(4)


class _Slot:
    """One answer owed on a connection, in request order; the ``ack`` of a queued alert."""

    __slots__ = ("answer", "close", "conn", "loop", "outcome", "reason")

    def __init__(self, loop: Loop, conn: _Conn, close: bool, answer: bytes | None) -> None:
        self.loop = loop
        self.conn = conn
        self.close = close
        self.answer = answer
        self.outcome: Outcome | None = None
        self.reason = ""

    def __call__(self, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
        # Runs on the store's thread: record, queue, and wake the loop unless a wake-up is
        # already on its way (the loop clears the flag before it drains the deque).
        if self.outcome is not None:
            return  # settled already: the first outcome stands
        self.outcome = outcome
        self.reason = reason
        loop = self.loop
        loop.settled.append(self)
        if not loop.woken:
            loop.wake()


class _Conn:
    __slots__ = (
        "body", "close", "closing", "dead", "deadline", "discard", "eof", "handshaking", "head",
        "lingering", "mask", "origin", "outbuf", "parser", "pending", "retry", "size", "sock",
        "state", "tls", "want",
    )  # fmt: skip

    def __init__(self, sock: socket.socket, origin: str, deadline: float, tls: bool) -> None:
        self.sock = sock
        self.origin = origin
        self.tls = tls
        self.handshaking = tls
        self.want = _READ  # what the TLS handshake waits for
        self.parser: h11.Connection | None = None  # one per request
        self.head = b""  # the raw head so far: h11 does not keep it for the smuggling check
        self.state = _HEAD
        self.body: list[bytes] = []
        self.size = 0
        self.discard = 0  # bytes of a refused body still allowed through
        self.close = False  # the request being read asked to close after its answer
        self.pending: deque[_Slot] = deque()
        self.outbuf = b""
        self.retry = 0  # TLS: a write that must be retried with the same length
        self.closing = False  # close once everything owed is sent
        self.eof = False
        self.lingering = False
        self.dead = False
        self.mask = 0
        self.deadline = deadline


class Loop:
    """One thread: accept, handshake, read, answer; the only code that touches the sockets."""

    def __init__(self, source: HttpSource) -> None:
        self.source = source
        self.timeouts = source.timeouts
        self.selector = selectors.DefaultSelector()
        self.selector.register(source.listener, _READ, None)
        self.listening = True
        self.resume_at = 0.0
        self.conns: dict[socket.socket, _Conn] = {}  # in accept order: the oldest first
        self.settled: deque[_Slot] = deque()
        self.unsettled = 0  # alerts queued whose settlement the loop has not handled yet
        self.incoming: list[RawAlert] = []  # read this round, offered to the queue at its end
        self.received = 0  # alerts read so far: numbers their origins
        self.woken = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, _READ, self)
        self.sweep_s = min(0.5, self.timeouts.head_s / 4, self.timeouts.handshake_s / 4)
        self.next_sweep = time.monotonic() + self.sweep_s
        self.grace_until = _NEVER
        self.heads: dict[bytes, _Head] = {}  # see known_head

    def wake(self) -> None:
        self.woken = True
        # Full: a wake-up is pending anyway; closed: the loop has ended.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def run(self) -> None:
        try:
            while self.step():
                pass
        finally:
            for conn in list(self.conns.values()):
                self.drop(conn)
            self.selector.close()
            self._wake_r.close()
            self._wake_w.close()
            if self.listening:
                self.source.listener.close()

    def step(self) -> bool:
        """One round of the loop; False once closing is complete."""
        for key, mask in self.selector.select(self.sweep_s):
            conn = key.data
            if conn is None:
                self.accept()
            elif conn is self:
                self.settle()
            else:
                try:
                    if conn.handshaking:
                        self.handshake(conn)
                        continue
                    if mask & _READ:
                        self.read(conn)
                    if mask & _WRITE and not conn.dead:
                        self.flush(conn)
                except Exception:  # one bad connection must not stop the listener
                    log.exception("dropped a connection from %s", conn.origin)
                    self.drop(conn)
        if self.incoming:
            self.enqueue()
        now = time.monotonic()
        if now >= self.next_sweep:
            self.sweep(now)
        if self.resume_at and now >= self.resume_at and not self.source.closing:
            self.resume_at = 0.0
            self.selector.register(self.source.listener, _READ, None)
        if self.source.closing:
            return self.closing(now)
        return True

    def closing(self, now: float) -> bool:
        if self.listening:
            self.listening = False
            if not self.resume_at:
                self.selector.unregister(self.source.listener)
            self.source.listener.close()
            self.grace_until = now + self.timeouts.grace_s
        owed = self.unsettled or any(c.outbuf or c.pending for c in self.conns.values())
        return bool(owed) and now < self.grace_until

    # --- connections -----------------------------------------------------------------------

    def accept(self) -> None:
        source = self.source
        for _ in range(64):  # bounded: a flood of connects must not starve the open ones
            try:
                sock, peer = source.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS and not self.evict():
                    # Nothing to close: rest the listener instead of spinning on it.
                    self.selector.unregister(source.listener)
                    self.resume_at = time.monotonic() + LISTEN_PAUSE_S
                return
            if len(self.conns) >= source.max_connections and not self.evict():
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            now = time.monotonic()
            if source.tls is not None:
                try:
                    sock = source.tls.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except (OSError, ValueError):
                    sock.close()
                    continue
                conn = _Conn(sock, _origin(peer), now + self.timeouts.handshake_s, True)
            else:
                conn = _Conn(sock, _origin(peer), now + self.timeouts.head_s, False)
            self.conns[sock] = conn
            self.watch(conn)

    def evict(self) -> bool:
        """Close the oldest connection that owes nothing and has no request head read."""
        for conn in self.conns.values():
            if (conn.state == _HEAD and not conn.pending and not conn.outbuf) or conn.lingering:
                self.drop(conn)
                return True
        return False

    def handshake(self, conn: _Conn) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            conn.want = _READ
        except ssl.SSLWantWriteError:
            conn.want = _WRITE
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.origin, exc)
            self.drop(conn)
            return
        else:
            conn.handshaking = False
            conn.deadline = time.monotonic() + self.timeouts.head_s
            self.watch(conn)
            if sock.pending():
                self.read(conn)
            return
        self.watch(conn)

    def watch(self, conn: _Conn) -> None:
        """Poll for what the connection can use now: never for reading while answers are
        owed up to the limit, so one client cannot queue unbounded work."""
        if conn.handshaking:
            mask = conn.want
        else:
            mask = _WRITE if conn.outbuf else 0
            if conn.lingering or self.readable(conn):
                mask |= _READ
        if mask == conn.mask:
            return
        if not conn.mask:
            self.selector.register(conn.sock, mask, conn)
        elif not mask:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, mask, conn)
        conn.mask = mask

    def readable(self, conn: _Conn) -> bool:
        return conn.state != _STOPPED and len(conn.pending) < self.source.max_pending

    def read(self, conn: _Conn) -> None:
        sock = conn.sock
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                break
            except OSError:
                self.drop(conn)
                return
            if not data:
                self.end_of_input(conn)
                return
            if conn.lingering:
                return  # the answer is sent; only waiting for the client to close
            self.feed(conn, data)
            # TLS keeps decrypted bytes the selector cannot see: read them while we may.
            if conn.dead or not _tls_pending(sock) or not self.readable(conn):
                break
        self.flush(conn)

    def end_of_input(self, conn: _Conn) -> None:
        """The client sent its last byte: answer what it asked, then close."""
        if (conn.pending or conn.outbuf) and (conn.parser is None or conn.state == _STOPPED):
            conn.eof = conn.closing = True
            conn.state = _STOPPED
            self.watch(conn)
        else:
            self.drop(conn)

    def drop(self, conn: _Conn) -> None:
        if conn.dead:
            return
        conn.dead = True
        self.conns.pop(conn.sock, None)
        if conn.mask:
            self.selector.unregister(conn.sock)
        conn.sock.close()
        conn.pending.clear()
        conn.parser = None

    def sweep(self, now: float) -> None:
        """Close connections past their deadline (slow heads, bodies, handshakes, idle
        keep-alives, lingering closes); those owed an answer wait on the pipeline, not on us."""
        self.next_sweep = now + self.sweep_s
        late = [c for c in self.conns.values() if now > c.deadline and not c.pending]
        for conn in late:
            self.drop(conn)

    # --- requests --------------------------------------------------------------------------

    def feed(self, conn: _Conn, data: bytes) -> None:
        parser = conn.parser
        if parser is None:
            if self.known_head(conn, data):
                return
            parser = conn.parser = h11.Connection(h11.SERVER, MAX_HEAD_BYTES)
            conn.head = data
            conn.deadline = time.monotonic() + self.timeouts.head_s
        elif conn.state == _HEAD:
            conn.head += data
        parser.receive_data(data)
        self.drive(conn)

    def known_head(self, conn: _Conn, data: bytes) -> bool:
        """A request whose head is byte for byte one h11 parsed and accepted before, with its
        whole body here, taken without h11. A sender repeats its head but for Content-Length,
        so most heads are known after a few hundred requests; parsing one with h11 costs about
        a third of the receiver's time per alert. The result is h11's own (the same bytes, the
        same first request of a fresh parser); what depends on the moment (authorization,
        limits, shutting down, answers owed) is checked again, and anything else takes h11."""
        end = data.find(b"\r\n\r\n") + 4
        head = self.heads.get(data[:end]) if end > 3 else None
        if head is None:
            return False
        source = self.source
        body = data[end:]
        if (
            conn.state != _HEAD
            or len(body) < head.length
            or len(conn.pending) >= source.max_pending
            or source.closing
            or source.unavailable is not None
            or not source.authorized(head.auth)
        ):
            return False
        conn.close = head.close
        self.alert(conn, body[: head.length], head.close)
        self.next_request(conn, body[head.length :], head.close)
        if conn.parser is not None:  # a pipelined request followed: h11 takes it from here
            self.drive(conn)
        return True

    def remember_head(self, received: bytes, rest: bytes, head: _Head) -> None:
        """Keep an accepted head for known_head: when h11's head ended at the first CRLF CRLF
        (not at a bare LF LF, which it also takes), and while the table is small, in count and
        in bytes (a sender making up new heads only wears it out)."""
        end = len(received) - len(rest)
        if not 4 <= end <= MAX_KNOWN_HEAD_BYTES or len(self.heads) >= MAX_HEADS:
            return
        if received[end - 4 : end] != b"\r\n\r\n":
            return
        key = received[:end]
        if key.find(b"\r\n\r\n") == end - 4 and b"\n\n" not in key:
            self.heads[key] = head

    def drive(self, conn: _Conn) -> None:
        """Handle the events h11 has ready, up to the limit of answers owed; the caller then
        flushes (which also updates what the connection is polled for)."""
        limit = self.source.max_pending
        while conn.parser is not None and conn.state != _STOPPED and len(conn.pending) < limit:
            try:
                event = conn.parser.next_event()
            except h11.RemoteProtocolError as exc:
                self.fail(conn, exc.error_status_hint)
                break
            if isinstance(event, h11.Data):
                self.data(conn, event.data)
            elif isinstance(event, h11.Request):
                self.request(conn, event)
            elif isinstance(event, h11.EndOfMessage):
                self.end_of_message(conn)
            else:  # NEED_DATA; PAUSED and ConnectionClosed cannot occur: one request each
                break

    def fail(self, conn: _Conn, status: int) -> None:
        messages = {431: b"request head too large\n", 501: b"unsupported transfer coding\n"}
        body = messages.get(status, b"malformed request\n")
        self.answer(conn, wire.response(status, body, close=True), close=True)

    def request(self, conn: _Conn, request: h11.Request) -> None:
        source = self.source
        auth, length, chunked, expect, close = _fields(request)
        conn.close = close
        if wire.smuggled(conn.head, chunked):
            message = b"Content-Length twice or with Transfer-Encoding\n"
            self.answer(conn, wire.response(400, message, close=True), close=True)
            return
        received, conn.head = conn.head, b""
        conn.deadline = time.monotonic() + self.timeouts.body_s
        path = request.target.partition(b"?")[0]
        if request.method != b"POST" or path in (b"/healthz", b"/metrics"):
            self.refuse(conn, self.get(request.method, path, close), length, expect)
            return
        refusal: tuple[int, bytes] | None = None
        if source.closing:
            refusal = 503, b"shutting down\n"
        elif source.unavailable is not None:
            refusal = 503, wire.text(f"unavailable: {source.unavailable}")
        elif not source.authorized(auth):
            refusal = 401, b"bearer token required\n"
        elif length > source.max_body:
            refusal = 413, b"body over the size limit\n"
        elif length == 0 or (length < 0 and not chunked):
            refusal = 400, b"empty body\n"
        if refusal is not None:
            self.refuse(conn, wire.response(*refusal, close=close), length, expect)
            return
        if not (chunked or expect):
            # h11 framed the body by a Content-Length it validated: when all of it is here,
            # slice it from the bytes h11 has not consumed instead of two more h11 events
            # (a third of h11's cost per request); a partial body goes through h11.
            rest = conn.parser.trailing_data[0] if conn.parser is not None else b""
            if len(rest) >= length:
                self.remember_head(received, rest, _Head(auth, length, close))
                self.alert(conn, rest[:length], close)
                self.next_request(conn, rest[length:], close)
                return
        conn.state = _BODY
        conn.body = []
        conn.size = 0
        if expect:
            self.answer(conn, wire.CONTINUE)

    def refuse(self, conn: _Conn, answer: bytes, length: int, expect: bool) -> None:
        """Answer before the body; drop the body as it comes unless the client waits for
        100 Continue or it is too big to be worth reading: then close after the answer."""
        budget = DISCARD_FACTOR * self.source.max_body
        if expect or length > budget:
            self.answer(conn, _closing(answer), close=True)
            return
        self.answer(conn, answer)
        conn.state = _DISCARD
        conn.discard = budget

    def data(self, conn: _Conn, chunk: bytes | bytearray) -> None:
        if conn.state == _BODY:
            conn.size += len(chunk)
            if conn.size <= self.source.max_body:
                conn.body.append(bytes(chunk))
                return
            # Only a chunked body gets here: a Content-Length over the limit is refused first.
            conn.body = []
            self.refuse(conn, wire.response(413, b"body over the size limit\n"), -1, False)
            return
        conn.discard -= len(chunk)
        if conn.discard < 0:
            conn.state = _STOPPED
            conn.closing = True

    def end_of_message(self, conn: _Conn) -> None:
        parser = conn.parser
        assert parser is not None
        close = conn.close or parser.their_state is h11.MUST_CLOSE
        if conn.state == _BODY:
            self.alert(conn, b"".join(conn.body), close)
            conn.body = []
        self.next_request(conn, parser.trailing_data[0], close)

    def next_request(self, conn: _Conn, leftover: bytes, close: bool) -> None:
        if close or conn.state == _STOPPED:
            conn.parser = None
            conn.state = _STOPPED
            conn.closing = True
            return
        conn.state = _HEAD
        if leftover:  # a pipelined request: a fresh parser per request (see the docstring)
            conn.parser = h11.Connection(h11.SERVER, MAX_HEAD_BYTES)
            conn.head = leftover
            conn.deadline = time.monotonic() + self.timeouts.head_s
            conn.parser.receive_data(leftover)
        else:
            conn.parser = None
            conn.deadline = time.monotonic() + self.timeouts.keep_alive_s

    def alert(self, conn: _Conn, body: bytes, close: bool) -> None:
        source = self.source
        if source.closing:  # closed while the body was on its way
            self.answer(conn, wire.response(503, b"shutting down\n", close=close), close=close)
            return
        slot = _Slot(self, conn, close, None)
        conn.pending.append(slot)
        # Unique per alert: the pipeline matches a dead-lettered alert to its request by it.
        self.received += 1
        origin = f"{conn.origin}#{self.received}"
        self.incoming.append(RawAlert(body, origin, time.time_ns(), slot))

    def enqueue(self) -> None:
        """Offer the alerts of this round to the queue at once (one lock, one wake-up of the
        pipeline); those that do not fit are answered 429 in their place."""
        incoming, self.incoming = self.incoming, []
        source = self.source
        taken = source.queue.offer_many(incoming)
        self.unsettled += taken
        if taken == len(incoming):
            return
        source.metrics.add(refused=len(incoming) - taken)
        refused: dict[_Conn, None] = {}
        for item in incoming[taken:]:
            slot = item.ack
            assert isinstance(slot, _Slot)
            slot.answer = wire.response(429, b"queue full, retry later\n", close=slot.close)
            refused[slot.conn] = None
        for conn in refused:
            if not conn.dead:
                self.release_safely(conn)

    def answer(self, conn: _Conn, data: bytes, *, close: bool = False) -> None:
        """Send ``data`` after every answer still owed on the connection."""
        if close:
            conn.state = _STOPPED
            conn.closing = True
        if conn.pending:
            conn.pending.append(_Slot(self, conn, close, data))
        else:
            conn.outbuf += data

    def get(self, method: bytes, path: bytes, close: bool) -> bytes:
        source = self.source
        if method != b"GET":
            return wire.response(405, b"method not allowed\n", close=close)
        if path == b"/healthz":
            code, body = source.health()
            return wire.response(code, body, ctype="application/json", close=close)
        if path == b"/metrics":
            source.metrics.set_gauges(queue_depth=len(source.queue))
            body = source.metrics.render_prometheus().encode()
            return wire.response(200, body, ctype=CONTENT_TYPE, close=close)
        return wire.response(404, b"not found\n", close=close)

    # --- answers ---------------------------------------------------------------------------

    def settle(self) -> None:
        """Turn the acks the store's thread queued into answers, in each connection's order."""
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)
        self.woken = False  # before draining: an ack appended after this wakes us again
        settled = self.settled
        touched: dict[_Conn, None] = {}
        while settled:
            slot = settled.popleft()
            self.unsettled -= 1
            conn = slot.conn
            if conn.dead:
                continue  # the client left: nobody to tell
            slot.answer = _answer(slot)
            touched[conn] = None
        for conn in touched:
            self.release_safely(conn)

    def release_safely(self, conn: _Conn) -> None:
        try:
            self.release(conn)
        except Exception:  # one bad connection must not stop the listener
            log.exception("dropped a connection from %s", conn.origin)
            self.drop(conn)

    def release(self, conn: _Conn) -> None:
        pending = conn.pending
        ready: list[bytes] = []
        while pending and pending[0].answer is not None:
            ready.append(pending.popleft().answer)  # type: ignore[arg-type]
        if ready:
            conn.outbuf += b"".join(ready)
        if not pending and conn.parser is None and not conn.closing:
            conn.deadline = time.monotonic() + self.timeouts.keep_alive_s
        if conn.parser is not None:
            self.drive(conn)  # requests read while the limit of answers owed was reached
        self.flush(conn)
        if not conn.dead and self.readable(conn) and _tls_pending(conn.sock):
            self.read(conn)

    def flush(self, conn: _Conn) -> None:
        if conn.outbuf:
            out = conn.outbuf
            size = 0
            try:
                if conn.tls:
                    # OpenSSL wants a retried write to have the same length.
                    size = conn.retry or min(len(out), TLS_WRITE)
                    conn.retry = 0
                    sent = conn.sock.send(out[:size])
                else:
                    sent = conn.sock.send(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                sent = 0
                conn.retry = size
            except OSError:
                self.drop(conn)
                return
            conn.outbuf = out[sent:]
        if conn.closing and not conn.outbuf and not conn.pending:
            self.finish(conn)
            return
        self.watch(conn)

    def finish(self, conn: _Conn) -> None:
        """Close after the last answer; over plain TCP half-close and drain for a while first:
        closing with unread input makes the kernel send a reset, which can destroy the answer
        (a 413) before the client reads it."""
        if conn.eof or conn.tls or conn.lingering:
            if not conn.lingering:
                self.drop(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(conn)
            return
        conn.lingering = True
        conn.parser = None
        conn.deadline = time.monotonic() + LINGER_S
        self.watch(conn)


class _Head(NamedTuple):
    """What an accepted request head says: its Authorization, Content-Length, and whether
    the connection closes after it."""

    auth: bytes | None
    length: int
    close: bool


def _fields(request: h11.Request) -> tuple[bytes | None, int, bool, bool, bool]:
    """Authorization, Content-Length (-1: none), chunked, Expect 100-continue, close after."""
    close = request.http_version == b"1.0"
    auth: bytes | None = None
    length = -1
    chunked = expect = False
    for raw, value in request.headers.raw_items():  # a list: iterating Headers costs 3x more
        name = raw.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"authorization":
            auth = value
        elif name == b"expect":
            expect = value.lower() == b"100-continue"
        elif name == b"connection":
            close = close or b"close" in value.lower()  # HTTP/1.0: always closed, as h11 does
    return auth, length, chunked, expect, close


def _answer(slot: _Slot) -> bytes:
    outcome = slot.outcome
    if outcome == Outcome.STORED:
        return wire.OK_CLOSE if slot.close else wire.OK
    if outcome == Outcome.REJECTED:
        return wire.response(400, wire.text(slot.reason or "not a Falco alert"), close=slot.close)
    return wire.response(503, wire.text(slot.reason or "not stored"), close=slot.close)


def _closing(answer: bytes) -> bytes:
    """``answer`` with ``Connection: close`` added if it lacks it."""
    if b"\r\nConnection: close\r\n" in answer:
        return answer
    head, sep, body = answer.partition(b"\r\n\r\n")
    return head + b"\r\nConnection: close" + sep + body


def _tls_pending(sock: socket.socket) -> int:
    """Decrypted bytes TLS holds that the selector cannot see."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0


def _origin(peer: Any) -> str:
    """``http:ADDRESS:PORT`` of a TCP peer (``[ADDRESS]:PORT`` for IPv6)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"http:{host}:{peer[1]}"
    return f"http:{peer}"
