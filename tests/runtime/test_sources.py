"""open_source: each --source URI form reaches its source; the rest fail with a hint."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources import open_source
from kubesentinel.runtime.sources.file import StreamSource
from kubesentinel.runtime.sources.http import HttpSource
from kubesentinel.runtime.sources.unix import UnixSource


def test_exports() -> None:
    from kubesentinel.runtime import sources

    assert sorted(sources.__all__) == ["RawAlert", "Source", "open_source"]


def test_stdin_and_files(tmp_path: Path) -> None:
    path = tmp_path / "alerts: 2024.jsonl"  # a colon does not make it a URI
    path.write_bytes(b'{"a": 1}\n')
    stdin = open_source("-", queue_size=8)
    assert isinstance(stdin, StreamSource)
    assert stdin.name == "stdin"
    for uri in (str(path), path.as_uri()):
        source = open_source(uri, queue_size=8, follow=False)
        assert isinstance(source, StreamSource)
        assert [item.data for batch in source.batches(10) for item in batch] == [b'{"a": 1}']


def test_http_gets_the_queue_size_metrics_and_token() -> None:
    metrics = Metrics()
    token = secrets.token_hex(8)
    source = open_source("http://127.0.0.1:0", queue_size=3, metrics=metrics, token=token)
    try:
        assert isinstance(source, HttpSource)
        assert source.queue.max_items == 3
        assert source.metrics is metrics
        assert not source.authorized(None)
        assert source.authorized(f"Bearer {token}".encode())
        assert source.name == f"http://127.0.0.1:{source.address[1]}"
    finally:
        source.close()


def test_unix(tmp_path: Path) -> None:
    path = tmp_path / "falco.sock"
    source = open_source(f"unix://{path}", queue_size=5)
    try:
        assert isinstance(source, UnixSource)
        assert source.path == str(path)
        assert source.queue.max_items == 5
        assert path.is_socket()
    finally:
        source.close()


@pytest.mark.parametrize(
    ("uri", "message", "hint"),
    [
        ("grpc://localhost:5060", "unsupported", "removed in 0.44"),
        ("unix+grpc:///run/falco/falco.sock", "unknown scheme", "unix:///PATH"),
        ("kafka://broker:9092/falco", "unknown scheme 'kafka'", "nats://HOST:PORT/SUBJECT"),
        ("https://0.0.0.0:2801", "https needs a certificate", "https://HOST:PORT"),
        ("http://0.0.0.0", "host and port", "http://HOST:PORT"),
        ("http://0.0.0.0:99999", "port must be a number", "http://HOST:PORT"),
        ("unix://", "socket path", "unix:///PATH"),
        ("file://server/share/a.jsonl", "local file", "file:///PATH"),
        ("nats://127.0.0.1:4222/falco.>?group=x", "unknown query parameter", "nats://"),
        ("/no/such/file.jsonl", "not found", "existing JSON-lines file"),
    ],
)
def test_bad_uris_are_source_errors_with_hints(uri: str, message: str, hint: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        open_source(uri, queue_size=8)
    assert info.value.code == "KS-E032"
    assert hint in (info.value.hint or "")
