"""UnixSource: a real unix socket in tmp_path, several clients, back-pressure without drops."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.unix import UnixSource


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "falco.sock")


@pytest.fixture
def source(sock_path: str) -> Iterator[UnixSource]:
    src = UnixSource(sock_path, queue_size=100, idle_s=0.05)
    yield src
    src.close()


def connect(path: str) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(2)
    client.connect(path)
    return client


def collect(src: UnixSource, count: int, timeout: float = 2.0) -> list[RawAlert]:
    got: list[RawAlert] = []
    deadline = time.monotonic() + timeout
    for batch in src.batches(100):
        got += batch
        if len(got) >= count or time.monotonic() > deadline:
            break
    return got


def test_lines_from_several_clients_with_their_origins(source: UnixSource, sock_path: str) -> None:
    first, second = connect(sock_path), connect(sock_path)
    first.sendall(b'{"c": 1, "n": 1}\n{"c": 1, "n": 2}\n')
    second.sendall(b'{"c": 2, "n": 1}\n')
    first.close()
    second.close()
    got = collect(source, 3)
    assert sorted((item.origin, item.data) for item in got) == [
        (f"unix:{sock_path}#1:1", b'{"c": 1, "n": 1}'),
        (f"unix:{sock_path}#1:2", b'{"c": 1, "n": 2}'),
        (f"unix:{sock_path}#2:1", b'{"c": 2, "n": 1}'),
    ]
    assert all(item.ack is None for item in got)


def test_a_line_split_across_writes_and_an_unterminated_last_line(
    source: UnixSource, sock_path: str
) -> None:
    client = connect(sock_path)
    client.sendall(b'{"a":')
    time.sleep(0.05)
    client.sendall(b' 1}\n{"b": 2}')  # the client leaves without a final newline
    client.close()
    assert [item.data for item in collect(source, 2)] == [b'{"a": 1}', b'{"b": 2}']


def test_a_full_queue_blocks_the_writer_and_drops_nothing(sock_path: str) -> None:
    src = UnixSource(sock_path, queue_size=2, idle_s=0.05)
    try:
        client = connect(sock_path)
        client.sendall(b"".join(b'{"n": %d}\n' % n for n in range(50)))
        deadline = time.monotonic() + 1
        while len(src.queue) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert len(src.queue) == 2  # full: the reading thread waits, it does not drop
        client.close()
        got = collect(src, 50)
    finally:
        src.close()
    assert [item.data for item in got] == [b'{"n": %d}' % n for n in range(50)]


def test_idle_yields_empty_batches_and_close_ends_the_stream(sock_path: str) -> None:
    src = UnixSource(sock_path, queue_size=4, idle_s=0.02)
    batches = src.batches(10)
    assert next(batches) == []
    client = connect(sock_path)
    client.sendall(b'{"n": 1}\n')
    got: list[RawAlert] = []
    while not got:
        got = next(batches)
    src.close()
    assert list(batches) == []
    client.close()
    assert not os.path.exists(sock_path)  # the socket file is removed


def test_a_stale_socket_file_is_replaced(sock_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)
    stale.close()  # left behind, nobody listening
    src = UnixSource(sock_path, queue_size=4, idle_s=0.05)
    try:
        client = connect(sock_path)
        client.sendall(b'{"n": 1}\n')
        client.close()
        assert [item.data for item in collect(src, 1)] == [b'{"n": 1}']
    finally:
        src.close()


def test_a_live_socket_or_a_regular_file_is_left_alone(source: UnixSource, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="already listening") as info:
        UnixSource(source.path, queue_size=4)
    assert info.value.code == "KS-E032"
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    with pytest.raises(SourceError, match="not a socket"):
        UnixSource(str(regular), queue_size=4)
    assert regular.read_text() == "keep me"
    with pytest.raises(SourceError, match="cannot listen"):
        UnixSource(str(tmp_path / "no" / "such" / "dir.sock"), queue_size=4)
