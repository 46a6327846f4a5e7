"""HttpSource: real HTTP requests against the receiver on 127.0.0.1 (port 0)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import h11
import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources.http import HttpSource, Timeouts
from kubesentinel.runtime.sources.interface import Outcome, RawAlert
from tests.runtime.http_client import Client, Pipeline, post_bytes, status, wait_until
from tests.runtime.test_metrics import parse_exposition

# falcosidekick's webhook payload: Falco's alert plus "uuid".
SIDEKICK = json.dumps({
    "uuid": "4e8c5a8f-1b0e-4f3a-9a44-2c1f3a4e5b6d",
    "output": "16:31:56.746609046: Notice A shell was spawned in a container",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2024-05-06T16:31:56.746609046Z",
    "output_fields": {"container.id": "1c2d3e4f5a6b", "k8s.ns.name": "shop"},
    "source": "syscall",
    "tags": ["container", "mitre_execution", "T1059"],
    "hostname": "node-1",
}).encode()  # fmt: skip
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def source() -> Iterator[HttpSource]:
    src = HttpSource("127.0.0.1", 0, queue_size=4, idle_s=0.05)
    yield src
    src.close()


@pytest.fixture
def stored(source: HttpSource) -> Iterator[Pipeline]:
    """The source with a pipeline that stores everything."""
    pipeline = Pipeline(source)
    yield pipeline
    pipeline.stop()


def post(
    src: HttpSource, body: bytes, headers: dict[str, str] | None = None, path: str = "/"
) -> tuple[int, dict[str, str], bytes]:
    host, port = src.address
    request = urllib.request.Request(
        f"http://{host}:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # local
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(src: HttpSource, path: str) -> tuple[int, str, bytes]:
    host, port = src.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def take(src: HttpSource, count: int) -> list[RawAlert]:
    got: list[RawAlert] = []
    for batch in src.batches(100):
        got += batch
        if len(got) >= count:
            break
    return got


def settle(item: RawAlert, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
    assert item.ack is not None
    item.ack(outcome, reason)


def test_the_answer_waits_until_the_pipeline_stored_the_alert(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(SIDEKICK, headers="Content-Type: application/json\r\n"))
    [item] = take(source, 1)
    assert item.data == SIDEKICK
    assert re.fullmatch(r"http:127\.0\.0\.1:\d+#1", item.origin)  # unique per alert
    assert client.quiet_for(0.3)  # queued, not yet stored: no answer
    settle(item)
    assert client.response() == OK


def test_a_second_settlement_of_the_same_alert_is_ignored(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(SIDEKICK))
    [item] = take(source, 1)
    settle(item)
    settle(item, Outcome.UNAVAILABLE, "late")
    assert client.response() == OK
    assert client.quiet_for(0.2)  # no second answer


def test_a_rejected_alert_gets_400_with_a_printable_reason(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(b'{"rule": "x'))
    [item] = take(source, 1)
    settle(item, Outcome.REJECTED, "not a Falco alert: truncated JSON after 11 chars\x1b[31m\n")
    reply = client.response()
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reply.endswith(b"\r\n\r\nnot a Falco alert: truncated JSON after 11 chars?[31m?\n")


def test_an_alert_that_could_not_be_stored_gets_503_with_retry_after(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(SIDEKICK))
    [item] = take(source, 1)
    settle(item, Outcome.UNAVAILABLE, "store: disk I/O error")
    reply = client.response()
    assert reply.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nRetry-After: 1\r\n" in reply
    assert reply.endswith(b"store: disk I/O error\n")


def test_post_on_another_path_is_accepted_too(source: HttpSource, stored: Pipeline) -> None:
    assert post(source, SIDEKICK, path="/falco?x=1")[0] == 200
    assert [item.data for item in stored.items] == [SIDEKICK]


def test_pipelined_answers_keep_request_order_whatever_the_settling_order(
    source: HttpSource,
) -> None:
    client = Client(source.address)
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    client.send(post_bytes(b"1") + health + post_bytes(b"2") + post_bytes(b"x" * 2000))
    first, second, third = take(source, 3)
    settle(third)
    settle(second, Outcome.REJECTED, "bad")
    assert client.quiet_for(0.2)  # the first answer is owed, so nothing may go out
    settle(first)
    replies = [client.response() for _ in range(4)]
    assert replies[0] == OK
    assert replies[1].startswith(b"HTTP/1.1 200 ")
    assert b'"status": "ok"' in replies[1]
    assert status(replies[2]) == 400
    assert replies[3] == OK
    assert [first.data, second.data, third.data] == [b"1", b"2", b"x" * 2000]


def test_a_connection_stops_being_read_while_its_answers_are_owed() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=100, max_pending=3, idle_s=0.05)
    try:
        client = Client(src.address)
        client.send(b"".join(post_bytes(b"%d" % i) for i in range(7)))
        assert wait_until(lambda: len(src.queue) == 3)
        assert client.quiet_for(0.2)
        assert len(src.queue) == 3
        got: list[RawAlert] = []
        while len(got) < 7:
            batch = take(src, 1)
            for item in batch:
                settle(item)
            got += batch
        assert [item.data for item in got] == [b"%d" % i for i in range(7)]
        assert [client.response() for _ in range(7)] == [OK] * 7
    finally:
        src.close()


def test_a_client_leaving_before_its_answer_breaks_nothing(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(SIDEKICK))
    [item] = take(source, 1)
    client.close()
    settle(item)
    again = Client(source.address)
    again.send(post_bytes(SIDEKICK))
    [item] = take(source, 1)
    settle(item)
    assert again.response() == OK


def test_an_immediate_answer_waits_behind_an_owed_one(source: HttpSource) -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=4, max_body=100, idle_s=0.05)
    try:
        client = Client(src.address)
        client.send(post_bytes(b"1") + post_bytes(b"x" * 101) + post_bytes(b"2"))
        first, second = take(src, 2)
        assert client.quiet_for(0.2)
        settle(first)
        settle(second)
        assert [status(client.response()) for _ in range(3)] == [200, 413, 200]
    finally:
        src.close()


def test_a_full_queue_answers_429_with_retry_after_and_counts_it(source: HttpSource) -> None:
    clients = [Client(source.address) for _ in range(5)]
    for client in clients:
        client.send(post_bytes(SIDEKICK))
    reply = clients[4].response()
    assert status(reply) == 429
    assert b"\r\nRetry-After: 1\r\n" in reply
    assert source.metrics.snapshot()["refused"] == 1
    for item in take(source, 4):
        settle(item)
    assert [c.response() for c in clients[:4]] == [OK] * 4


def test_a_queue_full_by_bytes_answers_429() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=100, queue_bytes=1000, idle_s=0.05)
    try:
        first, second = Client(src.address), Client(src.address)
        first.send(post_bytes(b"x" * 800))
        assert wait_until(lambda: len(src.queue) == 1)
        second.send(post_bytes(b"y" * 300))
        assert status(second.response()) == 429
    finally:
        src.close()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_token_is_required_when_configured(scheme: str) -> None:
    token = secrets.token_urlsafe(16)
    src = HttpSource("127.0.0.1", 0, queue_size=4, token=token)
    pipeline = Pipeline(src)
    try:
        code, headers, _ = post(src, SIDEKICK)
        assert code == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert post(src, SIDEKICK, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(src, SIDEKICK, {"Authorization": f"Basic {token}"})[0] == 401
        assert post(src, SIDEKICK, {"Authorization": f"{scheme} {token}"})[0] == 200
        assert get(src, "/healthz")[0] == 200  # probes need no token
        assert len(pipeline.items) == 1
    finally:
        pipeline.stop()


def test_bodies_over_the_limit_get_413_and_an_empty_body_400() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=4, max_body=1000)
    pipeline = Pipeline(src)
    try:
        assert post(src, b"x" * 1001)[0] == 413
        assert post(src, b"x" * 100_000)[0] == 413  # far over: answered, connection closed
        assert post(src, b"")[0] == 400
        assert post(src, b"x" * 1000)[0] == 200  # the limit itself is fine
        assert [len(item.data) for item in pipeline.items] == [1000]
    finally:
        pipeline.stop()


def test_a_body_in_pieces_and_pipelined_requests_arrive_whole(
    source: HttpSource, stored: Pipeline
) -> None:
    client = Client(source.address)
    first = post_bytes(b'{"a": "' + b"x" * 5000 + b'"}')
    client.send(first[:100])  # the head, cut short
    client.send(first[100:3000])
    assert client.quiet_for(0.1)
    client.send(first[3000:] + post_bytes(b'{"b": 1}') + post_bytes(b'{"c": 2}')[:30])
    client.send(post_bytes(b'{"c": 2}')[30:])
    assert [client.response() for _ in range(3)] == [OK] * 3
    assert [len(item.data) for item in stored.items] == [5009, 8, 8]


def test_a_chunked_body_is_accepted_and_bounded_by_max_body() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=4, max_body=10)
    pipeline = Pipeline(src)
    try:
        client = Client(src.address)
        chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        client.send(chunked.encode() + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert client.response() == OK
        client.send(chunked.encode() + b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
        assert status(client.response()) == 413
        assert [item.data for item in pipeline.items] == [b"abcde"]
    finally:
        pipeline.stop()


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n"
        b"content-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_request_smuggling_shapes_are_refused(source: HttpSource, head: bytes) -> None:
    client = Client(source.address)
    client.send(head)
    reply = client.response()
    assert status(reply) == 400
    assert b"\r\nConnection: close\r\n" in reply
    assert len(source.queue) == 0


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # no framing: an empty body
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400),  # HTTP/1.1 needs Host
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000, 431),
    ],
)
def test_bad_requests_get_their_status(source: HttpSource, request_bytes: bytes, code: int) -> None:
    client = Client(source.address)
    client.send(request_bytes)
    assert status(client.response()) == code
    assert len(source.queue) == 0


def test_malformed_json_is_queued_for_the_dead_letter_file(source: HttpSource) -> None:
    client = Client(source.address)
    client.send(post_bytes(b"{not json"))
    assert [item.data for item in take(source, 1)] == [b"{not json"]


def test_healthz_reports_queue_depth(source: HttpSource) -> None:
    Client(source.address).send(post_bytes(SIDEKICK))
    assert wait_until(lambda: len(source.queue) == 1)
    code, ctype, body = get(source, "/healthz")
    assert code == 200
    assert ctype == "application/json"
    assert json.loads(body) == {"status": "ok", "queue_depth": 1, "queue_size": 4}


def test_set_unavailable_answers_503_at_once_until_cleared(
    source: HttpSource, stored: Pipeline
) -> None:
    source.set_unavailable("store: database is locked\r\n")
    code, headers, body = post(source, SIDEKICK)
    assert (code, headers["Retry-After"]) == (503, "1")
    assert b"database is locked" in body
    code, _, body = get(source, "/healthz")
    assert code == 503
    assert json.loads(body) == {
        "status": "unavailable",
        "reason": "store: database is locked??",
        "queue_depth": 0,
        "queue_size": 4,
    }
    source.set_unavailable(None)
    assert post(source, SIDEKICK)[0] == 200
    assert get(source, "/healthz")[0] == 200


def test_metrics_are_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe_batch(received=5, stored=5, latencies_ns=[1_000_000] * 5)
    src = HttpSource("127.0.0.1", 0, queue_size=1, metrics=metrics)
    try:
        Client(src.address).send(post_bytes(SIDEKICK))
        refused = Client(src.address)
        assert wait_until(lambda: len(src.queue) == 1)
        refused.send(post_bytes(SIDEKICK))  # refused: the queue holds one
        assert status(refused.response()) == 429
        code, ctype, body = get(src, "/metrics")
    finally:
        src.close()
    assert code == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    samples = parse_exposition(body.decode())
    assert samples["kubesentinel_received_total"] == 5
    assert samples["kubesentinel_refused_total"] == 1
    assert samples["kubesentinel_queue_depth"] == 1


def test_unknown_paths_and_methods(source: HttpSource) -> None:
    assert get(source, "/nope")[0] == 404
    assert post(source, SIDEKICK, path="/metrics")[0] == 405
    client = Client(source.address)
    client.send(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(client.response()) == 405


def test_expect_100_continue_is_answered_before_the_body(
    source: HttpSource, stored: Pipeline
) -> None:
    client = Client(source.address)
    head = "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n"
    client.send(head.format(len(SIDEKICK)).encode())
    assert client.sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(SIDEKICK)
    assert client.response() == OK
    assert [item.data for item in stored.items] == [SIDEKICK]


def test_http_1_0_and_connection_close_are_answered_then_closed(
    source: HttpSource, stored: Pipeline
) -> None:
    for head in ("POST / HTTP/1.0\r\n", "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"):
        client = Client(source.address)
        client.send(f"{head}Content-Length: 2\r\n\r\n{{}}".encode())
        reply = client.response()
        assert status(reply) == 200
        assert b"\r\nConnection: close\r\n" in reply
        assert client.closed_by_server()


def test_shutting_down_answers_503_and_still_delivers_the_answers_owed(
    source: HttpSource,
) -> None:
    waiting, idle = Client(source.address), Client(source.address)
    idle.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(idle.response()) == 200
    waiting.send(post_bytes(SIDEKICK))
    assert wait_until(lambda: len(source.queue) == 1)
    source.close()
    idle.send(post_bytes(SIDEKICK))
    reply = idle.response()
    assert status(reply) == 503
    assert b"\r\nRetry-After: 1\r\n" in reply
    batches = list(source.batches(10))  # ends: closed and drained
    assert [len(batch) for batch in batches] == [1]
    settle(batches[0][0])
    assert waiting.response() == OK
    assert waiting.closed_by_server()  # nothing is owed any more: the loop has ended


def test_a_slow_head_or_body_is_closed_after_its_timeout() -> None:
    timeouts = Timeouts(head_s=0.3, body_s=0.3, keep_alive_s=0.6)
    src = HttpSource("127.0.0.1", 0, queue_size=4, timeouts=timeouts)
    try:
        slow_head, slow_body, idle = (Client(src.address) for _ in range(3))
        slow_head.send(b"POST / HTTP/1.1\r\nHost: x\r\n")
        slow_body.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert slow_head.closed_by_server(3)
        assert slow_body.closed_by_server(3)
        assert idle.closed_by_server(3)
        assert len(src.queue) == 0
    finally:
        src.close()


def test_slowloris_connections_do_not_starve_a_good_client() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=1000, max_connections=50)
    pipeline = Pipeline(src)
    slow: list[Client] = []
    try:
        for _ in range(300):  # six times the cap, each trickling a request head
            client = Client(src.address)
            client.send(b"POST / HTTP/1.1\r\n")
            slow.append(client)
        for client in slow[-50:]:
            with contextlib.suppress(OSError):  # evicted already
                client.send(b"X-a: b\r\n")
        for _ in range(20):  # each on a new connection: every one must get in
            client = Client(src.address)
            client.send(post_bytes(SIDEKICK))
            client.sock.settimeout(2)
            assert client.response() == OK
            client.close()
        assert len(pipeline.items) == 20
    finally:
        for client in slow:
            client.close()
        pipeline.stop()


def test_a_port_in_use_is_a_source_error_with_a_hint(source: HttpSource) -> None:
    with pytest.raises(SourceError, match="cannot listen") as info:
        HttpSource("127.0.0.1", source.address[1], queue_size=1)
    assert "in use" in (info.value.hint or "")


def test_a_known_head_is_taken_without_h11_and_answered_the_same(
    source: HttpSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender's repeated head (same bytes) skips h11's parse: the alerts, their order,
    origins and answers are as before, pipelined or not, and a body still on its way, a
    request after it and a head h11 ended at a bare LF LF all take the full path."""
    parsers: list[object] = []
    real = h11.Connection
    monkeypatch.setattr(h11, "Connection", lambda *a, **k: parsers.append(1) or real(*a, **k))
    client = Client(source.address)
    items: list[RawAlert] = []

    def exchange(data: bytes, count: int) -> list[bytes]:
        client.send(data)
        got: list[RawAlert] = []  # read before any is settled: none waits for an answer
        deadline = time.monotonic() + 5
        while len(got) < count and time.monotonic() < deadline:
            got += source.queue.take(count - len(got), timeout=0.05)
        assert len(got) == count, f"read {len(got)} of {count} requests"
        for item in got:
            settle(item)
        items.extend(got)
        return [client.response() for _ in range(count)]

    assert exchange(post_bytes(b'{"n": 1}'), 1) == [OK]
    assert len(parsers) == 1  # h11 parsed it, and its head is known from now on
    assert exchange(post_bytes(b'{"n": 2}') + post_bytes(b'{"n": 3}'), 2) == [OK, OK]
    assert len(parsers) == 2  # the known head was not parsed, the pipelined one was
    partial = post_bytes(b'{"n": 4}')
    client.send(partial[:-3])  # known head, body not all here: h11 takes it
    assert client.quiet_for(0.1)
    assert exchange(partial[-3:], 1) == [OK]
    assert len(parsers) == 3
    bare = b"POST / HTTP/1.1\nHost: x\nContent-Length: 8\n\n" + b'{"n": 5}'
    assert exchange(bare, 1) == exchange(bare, 1) == [OK]
    assert len(parsers) == 5  # the LF-only head is parsed every time: never remembered
    assert [item.data for item in items] == [b'{"n": %d}' % n for n in (1, 2, 3, 4, 5, 5)]
    origins = [item.origin for item in items]
    assert len(set(origins)) == len(origins)


def test_a_known_head_is_still_checked_against_the_moment(
    source: HttpSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a known head says is h11's; whether it may be taken now is decided anew: while
    the store is unavailable it gets 503, and a smuggling shape is never learnt."""
    parsers: list[object] = []
    real = h11.Connection
    monkeypatch.setattr(h11, "Connection", lambda *a, **k: parsers.append(1) or real(*a, **k))
    client = Client(source.address)
    client.send(post_bytes(b"1"))
    settle(take(source, 1)[0])
    assert client.response() == OK
    source.set_unavailable("disk full")
    client.send(post_bytes(b"2"))
    assert status(client.response()) == 503
    source.set_unavailable(None)
    twice = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz"
    for _ in range(2):
        other = Client(source.address)
        other.send(twice)
        assert status(other.response()) == 400
    # h11 parsed the first request, the one refused while unavailable (a known head is taken
    # only when it may be), and each smuggling attempt: none was learnt.
    assert len(parsers) == 4
    assert len(source.queue) == 0


def test_a_long_head_is_never_remembered(
    source: HttpSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known heads are bounded in bytes as well as in count: a head over 1 KiB is parsed by
    h11 every time (a sender cannot pin 16 KiB heads in the receiver's memory)."""
    parsers: list[object] = []
    real = h11.Connection
    monkeypatch.setattr(h11, "Connection", lambda *a, **k: parsers.append(1) or real(*a, **k))
    client = Client(source.address)
    request = post_bytes(b"{}", headers=f"X-Pad: {'a' * 1100}\r\n")
    for n in range(2):
        client.send(request)
        settle(take(source, 1)[0])
        assert client.response() == OK
        assert len(parsers) == n + 1
