"""`kubesentinel monitor --source http://...` as a real process: Falco's http_output and a
falcosidekick webhook POST alerts; SIGTERM stores what was accepted and prints the summary."""

from __future__ import annotations

import json
import signal
import socket
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
        assert _post(url, b"{truncated", "t0ken") == 200  # queued; the parser dead-letters it
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


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return int(response.status) == 200
    except OSError:
        return False
