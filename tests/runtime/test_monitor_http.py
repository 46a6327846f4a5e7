"""`kubesentinel monitor --source http://...` as a real process: Falco's http_output and a
falcosidekick webhook POST alerts; SIGTERM stores what was accepted and prints the summary."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ALERT = {
    "output": "Notice A shell was spawned in a container",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2026-01-01T00:00:00.000000000Z",
    "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-6d4cf56db6-x7k2p"},
    "source": "syscall",
    "tags": ["container", "mitre_execution", "T1059"],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: bytes, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_http_monitor_process(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source", url, "--format", "json",
         "--store", str(tmp_path / "ks.db"), "--dead-letter", str(tmp_path / "dl.jsonl"),
         "--no-k8s-lookup"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"KUBESENTINEL_HTTP_TOKEN": "t0ken", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _healthy(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        body = json.dumps(ALERT).encode()
        assert _post(url, body) == 401  # the token is required
        assert _post(url, body, "t0ken") == 200  # Falco http_output
        sidekick = dict(ALERT, uuid="8c1e4b6e-0f2a-4a53-9a53-0f3c1d2b9e77", hostname="node-1")
        assert _post(url, json.dumps(sidekick).encode(), "t0ken") == 200  # falcosidekick
        # Dead-lettered: 400 with the parser's reason, once the dead-letter file holds it.
        assert _post(url, b"{truncated", "t0ken") == 400
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert "kubesentinel_received_total" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert (summary["events_read"], summary["events_stored"], summary["malformed"]) == (3, 2, 1)
    assert summary["incidents_opened"] == 1


def test_https_monitor_process_with_mutual_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source",
         f"https://127.0.0.1:{port}", "--format", "json", "--store", str(tmp_path / "ks.db"),
         "--dead-letter", str(tmp_path / "dl.jsonl"), "--no-k8s-lookup", "--tls-cert",
         str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    context = ssl.create_default_context()
    ca.configure_trust(context)
    ca.issue_cert("falco").configure_cert(context)
    try:
        deadline = time.monotonic() + 20
        while not _healthy(port, context) and time.monotonic() < deadline:
            time.sleep(0.1)
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/", data=json.dumps(ALERT).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["events_stored"] == 1


def _healthy(port: int, context: ssl.SSLContext | None = None) -> bool:
    try:
        scheme = "https" if context else "http"
        url = f"{scheme}://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=1, context=context) as response:
            return int(response.status) == 200
    except OSError:
        return False
