"""Fuzz the HTTP receiver with mutated real requests: no input may raise inside the loop, stop
it, or keep a good client from being answered."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kubesentinel.runtime.sources.http import HttpSource
from tests.runtime.http_client import Client, Pipeline, post_bytes

ALERT = b'{"output": "A shell was spawned", "priority": "Notice", "rule": "Terminal shell"}'
SAMPLES = [
    post_bytes(ALERT, "/falco", "Content-Type: application/json\r\nUser-Agent: falco\r\n"),
    post_bytes(ALERT, "/", "Authorization: Bearer x\r\nExpect: 100-continue\r\n"),
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    post_bytes(ALERT) + post_bytes(ALERT),
]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[HttpSource, _Errors]]:
    src = HttpSource("127.0.0.1", 0, queue_size=64, max_body=4096, idle_s=0.05)
    pipeline = Pipeline(src)
    errors = _Errors()
    logger = logging.getLogger("kubesentinel.http")
    logger.addHandler(errors)
    yield src, errors
    logger.removeHandler(errors)
    pipeline.stop()


def _exchange(src: HttpSource, data: bytes) -> None:
    """Send ``data``, end the input, read until the receiver closes (or 5 s pass)."""
    with socket.create_connection(src.address, timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except OSError:
            pass  # a reset is an answer too


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sample=st.sampled_from(SAMPLES),
    cut=st.integers(min_value=0, max_value=300),
    junk=st.binary(max_size=40),
    skip=st.integers(min_value=0, max_value=40),
)
@example(sample=SAMPLES[0], cut=0, junk=b"\x00\xff\r\n\r\n", skip=0)
@example(sample=SAMPLES[2], cut=60, junk=b"ffffffffffffffff\r\n", skip=3)
def test_mutated_requests_never_break_the_receiver(
    receiver: tuple[HttpSource, _Errors], sample: bytes, cut: int, junk: bytes, skip: int
) -> None:
    src, errors = receiver
    _exchange(src, sample[:cut] + junk + sample[cut + skip :])
    good = Client(src.address)
    good.send(post_bytes(ALERT))
    assert good.response().startswith(b"HTTP/1.1 200 ")
    good.close()
    assert [r.getMessage() for r in errors.records] == []
