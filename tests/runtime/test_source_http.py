"""HttpSource: real HTTP requests against the receiver on 127.0.0.1 (port 0)."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources.http import HttpSource
from kubesentinel.runtime.sources.interface import RawAlert
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


@pytest.fixture
def source() -> Iterator[HttpSource]:
    src = HttpSource("127.0.0.1", 0, queue_size=4, idle_s=0.05)
    yield src
    src.close()


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
        with urllib.request.urlopen(request, timeout=2) as response:  # local
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(src: HttpSource, path: str) -> tuple[int, str, bytes]:
    host, port = src.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=2) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def drain(src: HttpSource, count: int) -> list[RawAlert]:
    got: list[RawAlert] = []
    for batch in src.batches(100):
        got += batch
        if len(got) >= count:
            break
    return got


def raw(src: HttpSource, data: bytes, *, replies: int = 1) -> list[bytes]:
    """Send bytes on one connection; return up to ``replies`` whole responses."""
    out: list[bytes] = []
    with socket.create_connection(src.address, timeout=2) as conn:
        conn.sendall(data)
        buf = b""

        def more() -> bool:
            nonlocal buf
            chunk = conn.recv(65536)
            buf += chunk
            return bool(chunk)

        while len(out) < replies:
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if not more():
                    return out
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[:end])
            size = end + 4 + (int(length.group(1)) if length else 0)
            while len(buf) < size:
                if not more():
                    return out
            out.append(buf[:size])
            buf = buf[size:]
    return out


def test_an_alert_is_queued_before_200_and_comes_out_unchanged(source: HttpSource) -> None:
    status, _, body = post(source, SIDEKICK)
    assert (status, body) == (200, b"")
    assert len(source.queue) == 1  # queued by the time the sender saw 200
    [item] = drain(source, 1)
    assert item.data == SIDEKICK
    assert item.origin == "http:127.0.0.1"
    assert item.ack is None


def test_post_on_another_path_is_accepted_too(source: HttpSource) -> None:
    assert post(source, SIDEKICK, path="/falco?x=1")[0] == 200
    assert [item.data for item in drain(source, 1)] == [SIDEKICK]


def test_a_full_queue_answers_429_with_retry_after_and_counts_it(source: HttpSource) -> None:
    for _ in range(4):
        assert post(source, SIDEKICK)[0] == 200
    status, headers, _ = post(source, SIDEKICK)
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert source.metrics.snapshot()["refused"] == 1
    assert len(drain(source, 4)) == 4
    assert post(source, SIDEKICK)[0] == 200  # room again


def test_the_bearer_token_is_required_when_configured() -> None:
    token = secrets.token_urlsafe(16)
    src = HttpSource("127.0.0.1", 0, queue_size=4, token=token)
    try:
        status, headers, _ = post(src, SIDEKICK)
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert post(src, SIDEKICK, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(src, SIDEKICK, {"Authorization": f"Bearer {token}"})[0] == 200
        assert get(src, "/healthz")[0] == 200  # probes need no token
        assert len(src.queue) == 1
    finally:
        src.close()


def test_bodies_over_the_limit_get_413_and_an_empty_body_400() -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=4, max_body=1000)
    try:
        assert post(src, b"x" * 1001)[0] == 413
        assert post(src, b"x" * 100_000)[0] == 413  # far over: answered, connection closed
        assert post(src, b"")[0] == 400
        assert post(src, b"x" * 1000)[0] == 200  # the limit itself is fine
        assert len(src.queue) == 1
    finally:
        src.close()


def test_malformed_json_is_queued_for_the_dead_letter_file(source: HttpSource) -> None:
    assert post(source, b"{not json")[0] == 200
    assert [item.data for item in drain(source, 1)] == [b"{not json"]


def test_healthz_reports_queue_depth(source: HttpSource) -> None:
    post(source, SIDEKICK)
    status, ctype, body = get(source, "/healthz")
    assert status == 200
    assert ctype == "application/json"
    assert json.loads(body) == {"status": "ok", "queue_depth": 1, "queue_size": 4}


def test_metrics_are_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe_batch(received=5, stored=5, latencies_ns=[1_000_000] * 5)
    src = HttpSource("127.0.0.1", 0, queue_size=1, metrics=metrics)
    try:
        post(src, SIDEKICK)
        post(src, SIDEKICK)  # refused: the queue holds one
        status, ctype, body = get(src, "/metrics")
    finally:
        src.close()
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    samples = parse_exposition(body.decode())
    assert samples["kubesentinel_received_total"] == 5
    assert samples["kubesentinel_refused_total"] == 1
    assert samples["kubesentinel_queue_depth"] == 1


def test_unknown_paths_and_methods(source: HttpSource) -> None:
    assert get(source, "/nope")[0] == 404
    assert post(source, SIDEKICK, path="/metrics")[0] == 405
    [reply] = raw(source, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 405")


def test_keep_alive_and_pipelined_requests_are_answered_in_order(source: HttpSource) -> None:
    one = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SIDEKICK) + SIDEKICK
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    first, second, third = raw(source, one + one + health, replies=3)
    assert first == second == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert third.startswith(b"HTTP/1.1 200 OK\r\n")
    assert third.endswith(b'"queue_depth": 2, "queue_size": 4}\n')
    assert len(source.queue) == 2


def test_expect_100_continue_is_answered_before_the_body(source: HttpSource) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
    with socket.create_connection(source.address, timeout=2) as conn:
        conn.sendall(head % len(SIDEKICK))
        assert conn.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(SIDEKICK)
        assert conn.recv(1024).startswith(b"HTTP/1.1 200 OK")
    assert [item.data for item in drain(source, 1)] == [SIDEKICK]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", b"411"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"411"),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"400"),
        (b"garbage\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000, b"431"),
    ],
)
def test_framing_errors_close_the_connection(
    source: HttpSource, request_bytes: bytes, status: bytes
) -> None:
    [reply] = raw(source, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"\r\nConnection: close\r\n" in reply
    assert len(source.queue) == 0


def test_shutting_down_answers_503_then_queued_alerts_are_still_handed_out(
    source: HttpSource,
) -> None:
    post(source, SIDEKICK)
    conn = http.client.HTTPConnection(*source.address, timeout=2)
    try:
        conn.request("POST", "/", SIDEKICK)
        assert conn.getresponse().read() == b""
        source.closing = True  # what close() sets first, before the listener stops
        conn.request("POST", "/", SIDEKICK)
        response = conn.getresponse()
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
    finally:
        conn.close()
    source.close()
    assert [len(batch) for batch in source.batches(10)] == [2]  # then the generator ends


def test_a_port_in_use_is_a_source_error_with_a_hint(source: HttpSource) -> None:
    with pytest.raises(SourceError, match="cannot listen") as info:
        HttpSource("127.0.0.1", source.address[1], queue_size=1)
    assert "in use" in (info.value.hint or "")
