"""The chart's monitor container, run for real: the rendered args, environment, config.yaml,
signing-key init step and mutual-TLS probe script, with the pod's paths mapped into a
temporary directory. Proves the real CLI accepts what the chart renders, the probe passes, and
Falco's http_output shape (client certificate, plus the bearer token here) gets in."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart import one, render

pytestmark = pytest.mark.integration
trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")

VALUES = {
    "ingest": {"token": {"existingSecret": "kubesentinel-ingest-token"}},
    "vault": {"signingKey": {"existingSecret": "kubesentinel-signing-key"}},
    "monitor": {"cluster": "prod-eu"},
}
ALERT = {
    "output": "Notice A shell was spawned in a container",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2026-01-01T00:00:00.000000000Z",
    "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-6d4cf56db6-x7k2p"},
    "source": "syscall",
    "tags": ["container", "mitre_execution", "T1059"],
}
TOKEN = "chart-t0ken"  # noqa: S105 (a test token)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pod:
    """The pod's file system under ``root``: every absolute path the chart uses is mapped."""

    PREFIXES = ("/etc/kubesentinel/", "/var/lib/kubesentinel", "/var/run/kubesentinel/", "/tmp")

    def __init__(self, root: Path, port: int, chart_port: int) -> None:
        self.root, self.port, self.chart_port = root, port, chart_port

    def map(self, text: str) -> str:
        for prefix in self.PREFIXES:
            text = text.replace(prefix, f"{self.root}{prefix}")
        return text.replace(f":{self.chart_port}", f":{self.port}")

    def path(self, pod_path: str) -> Path:
        path = Path(self.map(pod_path))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _secrets(pod: Pod) -> tuple[Any, Any]:
    """The Secrets the values name, written where the pod mounts them; (CA, client CA)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    server_ca, client_ca = trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert("kubesentinel.kubesentinel.svc", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(pod.path("/etc/kubesentinel/tls/tls.crt")))
    leaf.private_key_pem.write_to_path(str(pod.path("/etc/kubesentinel/tls/tls.key")))
    client_ca.cert_pem.write_to_path(str(pod.path("/etc/kubesentinel/client-ca/ca.crt")))
    probe = client_ca.issue_cert("kubesentinel-probe")
    probe.cert_chain_pems[0].write_to_path(str(pod.path("/etc/kubesentinel/probe-client/tls.crt")))
    probe.private_key_pem.write_to_path(str(pod.path("/etc/kubesentinel/probe-client/tls.key")))
    key = Ed25519PrivateKey.generate()
    secret = pod.path("/etc/kubesentinel/signing-key/key.pem")
    secret.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    secret.chmod(0o440)  # as a Secret volume with defaultMode 0440 leaves it
    pod.path("/var/run/kubesentinel/key/x")
    return server_ca, client_ca, key


def _post(port: int, context: ssl.SSLContext, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/falco", data=json.dumps(ALERT).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_rendered_monitor_runs_probes_healthy_and_stores_a_falco_alert(
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization

    manifest = render(tmp_path, VALUES)
    config_map = one(manifest, "ConfigMap", "kubesentinel")["data"]
    pod_spec = one(manifest, "StatefulSet")["spec"]["template"]["spec"]
    (init,) = pod_spec["initContainers"]
    (container,) = pod_spec["containers"]
    pod = Pod(tmp_path / "pod", _free_port(), container["ports"][0]["containerPort"])
    server_ca, client_ca, key = _secrets(pod)
    for name, text in config_map.items():
        pod.path(f"/etc/kubesentinel/config/{name}").write_text(pod.map(text))
    pod.path("/var/lib/kubesentinel/x")

    # The init container's command, as the pod runs it.
    subprocess.run([pod.map(arg) for arg in init["command"]], check=True, timeout=30)
    copied = Path(pod.map("/var/run/kubesentinel/key/vault-signing-key.pem"))
    assert copied.stat().st_mode & 0o777 == 0o600

    env = _env(container, pod)
    args = [pod.map(arg) for arg in container["args"]]
    probe = [pod.map(arg) for arg in container["readinessProbe"]["exec"]["command"]]
    probe[0] = sys.executable  # the image's python3
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", *args, "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the probe never passed"
            time.sleep(0.2)
        falco = ssl.create_default_context()
        server_ca.configure_trust(falco)
        client_ca.issue_cert("falco@node-1").configure_cert(falco)
        assert _post(pod.port, falco, TOKEN) == 200
        assert _post(pod.port, falco, None) == 401  # the token is asked for as well
        anonymous = ssl.create_default_context()
        server_ca.configure_trust(anonymous)
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            _post(pod.port, anonymous, TOKEN)  # no client certificate: refused by TLS
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["events_stored"] == 1
    store = Path(pod.map("/var/lib/kubesentinel/vault/kubesentinel.db"))
    config = ["--config", pod.map("/etc/kubesentinel/config/config.yaml")]
    verify = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "vault", "verify", *config, "--store", str(store)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "vault", "key", "export", *config],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert exported.strip() == public.strip()  # sealed with the Secret's key


def _env(container: dict[str, Any], pod: Pod) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"]}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = pod.map(variable["value"])
        else:
            assert variable["valueFrom"]["secretKeyRef"]["name"] == "kubesentinel-ingest-token"
            env[variable["name"]] = TOKEN
    return env


def test_the_rendered_analyzer_serves_the_rendered_monitor_over_mutual_tls(
    tmp_path: Path,
) -> None:
    pytest.importorskip("grpc", reason="the analyzer service needs the ai-serve extra")
    from tests.ai.served import train

    manifest = render(tmp_path, VALUES, {"ai": {"enabled": True, "model": {"file": "m.json.zst"}}})
    service = one(manifest, "Service", "analyzer")
    host = f"{service['metadata']['name']}.kubesentinel.svc"
    analyzer_spec = one(manifest, "Deployment", "analyzer")["spec"]["template"]["spec"]
    (analyzer,) = analyzer_spec["containers"]
    monitor_spec = one(manifest, "StatefulSet")["spec"]["template"]["spec"]
    (init,) = monitor_spec["initContainers"]
    (monitor,) = monitor_spec["containers"]
    ai_port = _free_port()
    served = Pod(tmp_path / "analyzer", ai_port, service["spec"]["ports"][0]["port"])
    pod = Pod(tmp_path / "monitor", _free_port(), monitor["ports"][0]["containerPort"])
    server_ca, client_ca, _ = _secrets(pod)

    # The analyzer's Secrets: one CA signs its certificate and the monitor's client certificate.
    ca = trustme.CA()
    leaf = ca.issue_cert(host, "localhost")
    leaf.cert_chain_pems[0].write_to_path(str(served.path("/etc/kubesentinel/tls/tls.crt")))
    leaf.private_key_pem.write_to_path(str(served.path("/etc/kubesentinel/tls/tls.key")))
    ca.cert_pem.write_to_path(str(served.path("/etc/kubesentinel/client-ca/ca.crt")))
    ca.cert_pem.write_to_path(str(pod.path("/etc/kubesentinel/analyzer-ca/ca.crt")))
    client = ca.issue_cert("kubesentinel-monitor")
    client.cert_chain_pems[0].write_to_path(
        str(pod.path("/etc/kubesentinel/analyzer-client/tls.crt"))
    )
    client.private_key_pem.write_to_path(str(pod.path("/etc/kubesentinel/analyzer-client/tls.key")))
    model = train(tmp_path)
    model.rename(served.path("/var/lib/kubesentinel/model/m.json.zst"))

    config_map = one(manifest, "ConfigMap", "kubesentinel")["data"]
    for name, text in config_map.items():
        # The Service's name resolves here as localhost (its certificate names both).
        local = text.replace(f"{host}:{served.chart_port}", f"localhost:{ai_port}")
        pod.path(f"/etc/kubesentinel/config/{name}").write_text(pod.map(local))
    pod.path("/var/lib/kubesentinel/x")
    subprocess.run([pod.map(arg) for arg in init["command"]], check=True, timeout=30)

    serving = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", *[served.map(arg) for arg in analyzer["args"]]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(analyzer, served),
    )  # fmt: skip
    proc = None
    try:
        deadline = time.monotonic() + 30
        while True:  # the analyzer's probe: its port accepts connections
            assert serving.poll() is None, serving.communicate()[1].decode()
            try:
                socket.create_connection(("127.0.0.1", ai_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the analyzer never listened"
                time.sleep(0.2)
        probe = [pod.map(arg) for arg in monitor["readinessProbe"]["exec"]["command"]]
        probe[0] = sys.executable
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubesentinel", *[pod.map(a) for a in monitor["args"]],
             "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(monitor, pod),
        )  # fmt: skip
        while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline + 30, "the probe never passed"
            time.sleep(0.2)
        falco = ssl.create_default_context()
        server_ca.configure_trust(falco)
        client_ca.issue_cert("falco@node-1").configure_cert(falco)
        assert _post(pod.port, falco, TOKEN) == 200
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        serving.send_signal(signal.SIGTERM)
        serving.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["events_stored"] == 1
    assert summary["events_scored"] == 1  # scored by the analyzer, over mutual TLS
