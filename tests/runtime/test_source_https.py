"""HttpSource over TLS with real certificates made in the test (trustme), and mutual TLS."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesentinel.runtime.sources.http import HttpSource, Timeouts
from kubesentinel.runtime.sources.http_options import server_context
from tests.runtime.http_client import Client, Pipeline, post_bytes, status

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")

ALERT = b'{"rule": "Terminal shell in container", "priority": "Notice"}'


class Pki:
    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        self.cert, self.key, self.ca_file = root / "tls.crt", root / "tls.key", root / "ca.crt"
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        leaf.private_key_pem.write_to_path(str(self.key))
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def client(self, *, with_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.ca.issue_cert("falco@node-1").configure_cert(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def mtls(pki: Pki) -> Iterator[tuple[HttpSource, Pipeline]]:
    context = server_context(str(pki.cert), str(pki.key), str(pki.ca_file))
    src = HttpSource("127.0.0.1", 0, queue_size=8, tls=context)
    pipeline = Pipeline(src)
    yield src, pipeline
    pipeline.stop()


def _status(src: HttpSource, context: ssl.SSLContext) -> int:
    """The status of one POST, or 0 when the TLS layer refused the client."""
    try:
        client = Client(src.address, tls=context)
        client.send(post_bytes(ALERT))
        return status(client.response())
    except (ssl.SSLError, ConnectionError):
        return 0


def test_https_post_is_stored_and_answered(pki: Pki) -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=8, tls=server_context(str(pki.cert), str(pki.key)))
    pipeline = Pipeline(src)
    try:
        assert src.name.startswith("https://127.0.0.1:")
        client = Client(src.address, tls=pki.client())
        for _ in range(3):  # keep-alive over TLS
            client.send(post_bytes(ALERT))
            assert status(client.response()) == 200
        big = b'{"x": "' + b"a" * 300_000 + b'"}'  # many TLS records in one body
        client.send(post_bytes(big))
        assert status(client.response()) == 200
        assert [item.data for item in pipeline.items] == [ALERT] * 3 + [big]
    finally:
        pipeline.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate(
    pki: Pki, mtls: tuple[HttpSource, Pipeline]
) -> None:
    src, pipeline = mtls
    assert _status(src, pki.client()) == 0
    assert pipeline.items == []


def test_mutual_tls_accepts_a_client_certificate_from_the_ca(
    pki: Pki, mtls: tuple[HttpSource, Pipeline]
) -> None:
    src, pipeline = mtls
    assert _status(src, pki.client(with_cert=True)) == 200
    assert [item.data for item in pipeline.items] == [ALERT]


def test_a_client_certificate_from_another_ca_is_refused(
    pki: Pki, mtls: tuple[HttpSource, Pipeline], tmp_path: Path
) -> None:
    src, pipeline = mtls
    other = trustme.CA()
    context = pki.client()
    other.issue_cert("intruder").configure_cert(context)
    assert _status(src, context) == 0
    assert pipeline.items == []


def test_a_stalled_handshake_is_closed_after_its_timeout(pki: Pki) -> None:
    context = server_context(str(pki.cert), str(pki.key))
    src = HttpSource("127.0.0.1", 0, queue_size=8, tls=context, timeouts=Timeouts(handshake_s=0.3))
    try:
        silent = Client(src.address)  # plain TCP: never starts the handshake
        assert silent.closed_by_server(3)
    finally:
        src.close()


def test_tls_below_1_2_is_refused(pki: Pki) -> None:
    src = HttpSource("127.0.0.1", 0, queue_size=8, tls=server_context(str(pki.cert), str(pki.key)))
    try:
        context = pki.client()
        with warnings.catch_warnings():  # setting an old version is deprecated, on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                context.minimum_version = ssl.TLSVersion.TLSv1
                context.maximum_version = ssl.TLSVersion.TLSv1_1
            except (ValueError, ssl.SSLError):
                pytest.skip("this OpenSSL cannot speak TLS 1.1 at all")
        assert _status(src, context) == 0
    finally:
        src.close()
