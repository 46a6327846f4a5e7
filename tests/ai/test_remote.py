"""RemoteScorer against a real `ai serve` server: the same Scored as the analyzer in process,
TLS and mutual TLS with real certificates (trustme), clear errors when it cannot score."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc", reason="the ai-serve extra (grpcio) runs the service")

from kubesentinel.ai.modelfile import load_analyzer
from kubesentinel.ai.remote import MAX_EVENTS_PER_CALL, RemoteScorer
from kubesentinel.ai.service import Limits, Running, TLSFiles
from kubesentinel.cli import main
from kubesentinel.errors import ServiceError
from tests.ai.served import as_monitor, free_port, serve, stream_events

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")


@pytest.fixture
def plain(model: Path) -> Iterator[Running]:
    running = serve(model)
    yield running
    running.stop(0)


def test_remote_scores_equal_the_analyzer_in_process(plain: Running, model: Path) -> None:
    reference = load_analyzer(model)
    events = stream_events()[:3000]
    with RemoteScorer(f"127.0.0.1:{plain.port}", timeout_s=30) as remote:
        for start in range(0, len(events), MAX_EVENTS_PER_CALL):
            batch = events[start : start + MAX_EVENTS_PER_CALL]
            assert remote.score_batch(batch) == as_monitor(reference, batch)
            remote.settle()
        assert remote.score_batch([]) == []


def test_events_without_their_bytes_are_sent_as_falco_json(plain: Running, model: Path) -> None:
    reference = load_analyzer(model)
    events = stream_events()[:400]
    built = [dataclasses.replace(e, raw=b"") for e in events]
    with RemoteScorer(f"http://127.0.0.1:{plain.port}") as remote:
        got = remote.score_batch(built)
    want = as_monitor(reference, events)
    assert got == want
    assert any(s.reasons for s in want)


def test_big_batches_are_split_within_the_server_limits(model: Path) -> None:
    running = serve(model, Limits(max_events=MAX_EVENTS_PER_CALL))
    reference = load_analyzer(model)
    events = stream_events()[:5000]
    # Sent as consecutive calls, learned as one batch once it is settled: as in process.
    want = as_monitor(reference, events)
    try:
        with RemoteScorer(f"127.0.0.1:{running.port}", timeout_s=60) as remote:
            assert remote.score_batch(events) == want
    finally:
        running.stop(0)


def test_unreachable_endpoint_is_a_clear_error() -> None:
    port = free_port()
    with (
        RemoteScorer(f"127.0.0.1:{port}", timeout_s=5) as remote,
        pytest.raises(ServiceError, match=rf"127\.0\.0\.1:{port} is unreachable") as error,
    ):
        remote.score_batch(stream_events()[:1])
    assert error.value.code == "KS-E062"
    assert "ai.endpoint" in (error.value.hint or "")


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("ftp://h:1", "unknown scheme 'ftp'"), ("nohost", "is not host:port"), ("h:x", "host:port")],
)
def test_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        RemoteScorer(endpoint)


class Certificates:
    def __init__(self, tmp: Path) -> None:
        self.ca = trustme.CA()
        server = self.ca.issue_cert("localhost", "127.0.0.1")
        self.server = TLSFiles(
            server.cert_chain_pems[0].bytes(), server.private_key_pem.bytes(), None
        )
        self.ca_file = tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        client = self.ca.issue_cert("monitor@kubesentinel")
        self.client_cert, self.client_key = tmp / "client.pem", tmp / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))


def test_tls(model: Path, tmp_path: Path) -> None:
    certs = Certificates(tmp_path)
    running = serve(model, tls=certs.server)
    events = stream_events()[:200]
    try:
        url = f"https://localhost:{running.port}"
        with RemoteScorer(url, tls_ca=str(certs.ca_file)) as remote:
            assert remote.score_batch(events) == as_monitor(load_analyzer(model), events)
        with (
            RemoteScorer(f"localhost:{running.port}", timeout_s=5) as plaintext,
            pytest.raises(ServiceError, match="UNAVAILABLE"),
        ):
            plaintext.score_batch(events[:1])
        other = trustme.CA()
        stranger = tmp_path / "other-ca.pem"
        other.cert_pem.write_to_path(str(stranger))
        with (
            RemoteScorer(url, tls_ca=str(stranger), timeout_s=5) as untrusting,
            pytest.raises(ServiceError, match="UNAVAILABLE"),
        ):
            untrusting.score_batch(events[:1])
    finally:
        running.stop(0)


def test_mutual_tls_requires_a_client_certificate(model: Path, tmp_path: Path) -> None:
    certs = Certificates(tmp_path)
    mutual = dataclasses.replace(certs.server, client_ca=certs.ca.cert_pem.bytes())
    running = serve(model, tls=mutual)
    events = stream_events()[:100]
    url = f"https://localhost:{running.port}"
    try:
        with (
            RemoteScorer(url, tls_ca=str(certs.ca_file), timeout_s=5) as anonymous,
            pytest.raises(ServiceError, match="analyzer service at https://localhost"),
        ):
            anonymous.score_batch(events)
        with RemoteScorer(
            url,
            tls_ca=str(certs.ca_file),
            tls_cert=str(certs.client_cert),
            tls_key=str(certs.client_key),
        ) as known:
            assert known.score_batch(events) == as_monitor(load_analyzer(model), events)
    finally:
        running.stop(0)


def test_serve_refuses_plaintext_beyond_loopback(
    model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["ai", "serve", "--listen", "0.0.0.0:0", "--model", str(model)])
    assert code == 2
    err = capsys.readouterr().err
    assert "KS-E062" in err
    assert "refusing to serve on 0.0.0.0:0 without TLS" in err


def test_serve_refuses_a_pickle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"\x80\x04K\x01.")
    assert main(["ai", "serve", "--listen", "127.0.0.1:0", "--model", str(pickle)]) == 2
    assert "a pickle runs code" in capsys.readouterr().err


def test_serve_tls_options_go_together(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ai", "serve", "--listen", "127.0.0.1:0", "--model", str(model)]
    assert main([*argv, "--tls-cert", "c.pem"]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    assert main([*argv, "--tls-client-ca", "ca.pem"]) == 2
    assert "--tls-client-ca needs --tls-cert" in capsys.readouterr().err


@pytest.mark.integration
def test_serve_process_scores_learns_and_stops_on_sigterm(model: Path, tmp_path: Path) -> None:
    saved = tmp_path / "learned.json.zst"
    process = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", "ai", "serve", "--listen", "127.0.0.1:0",
         "--model", str(model), "--save-model", str(saved), "--cluster", "sim"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "plaintext, threshold 0.75, learning on" in line, line
        port = int(line.split(" on 127.0.0.1:")[1].split()[0])
        events = stream_events()[:500]
        reference = load_analyzer(model)
        with RemoteScorer(f"127.0.0.1:{port}") as remote:
            assert remote.score_batch(events) == as_monitor(reference, events)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    # What the server kept learning was saved: it scores the next events as the reference,
    # which learned the same events, does.
    later = stream_events()[500:900]
    deadline = time.monotonic() + 5
    while not saved.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load_analyzer(saved).score_batch(later) == reference.score_batch(later)


def test_without_grpc_installed_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from kubesentinel.cli import main\n"
        "from kubesentinel.errors import AIError\n"
        "from kubesentinel.ai.remote import RemoteScorer\n"
        "try:\n"
        "    RemoteScorer('127.0.0.1:1')\n"
        "except AIError as exc:\n"
        "    print(exc.code, exc, exc.hint)\n"
        "sys.exit(main(['ai', 'serve', '--listen', '127.0.0.1:0', '--model', 'm.json']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "KS-E060 the analyzer service needs grpc, which is not installed" in result.stdout
    assert "pip install 'kubesentinel[ai-serve]'" in result.stdout
    assert "KS-E060" in result.stderr
    assert "needs grpc" in result.stderr
