"""Owner lookups with the official kubernetes client against an in-process API server that
serves recorded objects (no cluster runs here; the client and its HTTP traffic are real)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

kubernetes = pytest.importorskip(
    "kubernetes", reason="needs the kubernetes client (extra 'cluster')"
)

from kubesentinel.runtime.enrich import Enricher  # noqa: E402
from kubesentinel.runtime.identity import CachedOwnerLookup  # noqa: E402
from kubesentinel.runtime.k8s_owners import KubernetesOwnerLookup  # noqa: E402
from kubesentinel.runtime.parse import parse_alert  # noqa: E402


def _obj(
    api: str, kind: str, ns: str, name: str, owner: tuple[str, str] | None
) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": ns, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Other", "name": "not-the-controller", "uid": "x"},
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u",
             "controller": True},
        ]  # fmt: skip
    template = {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}  # fmt: skip
    spec: dict[str, object] = {
        "Pod": template["spec"],
        "ReplicaSet": {"selector": {"matchLabels": {"app": name}}, "template": template},
        "Job": {"template": template},
        "ReplicationController": {"selector": {"app": name}, "template": template},
    }[kind]
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


LONG_POD = "a-very-long-deployment-name-that-gets-truncated-by-the-apise7xk2p"
RECORDED = {
    "/api/v1/namespaces/shop/pods/web-6d4cf56db6-x7k2p":
        _obj("v1", "Pod", "shop", "web-6d4cf56db6-x7k2p", ("ReplicaSet", "web-6d4cf56db6")),
    "/apis/apps/v1/namespaces/shop/replicasets/web-6d4cf56db6":
        _obj("apps/v1", "ReplicaSet", "shop", "web-6d4cf56db6", ("Deployment", "web")),
    "/api/v1/namespaces/ops/pods/nightly-29123460-bq2xz":
        _obj("v1", "Pod", "ops", "nightly-29123460-bq2xz", ("Job", "nightly-29123460")),
    "/apis/batch/v1/namespaces/ops/jobs/nightly-29123460":
        _obj("batch/v1", "Job", "ops", "nightly-29123460", ("CronJob", "nightly")),
    "/api/v1/namespaces/shop/pods/debug": _obj("v1", "Pod", "shop", "debug", None),
    "/api/v1/namespaces/legacy/pods/web-1-x7k2p":
        _obj("v1", "Pod", "legacy", "web-1-x7k2p", ("ReplicationController", "web-1")),
    "/api/v1/namespaces/legacy/replicationcontrollers/web-1":
        _obj("v1", "ReplicationController", "legacy", "web-1", ("DeploymentConfig", "web")),
    "/api/v1/namespaces/legacy/pods/bare-q2x4z":
        _obj("v1", "Pod", "legacy", "bare-q2x4z", ("ReplicationController", "bare")),
    "/api/v1/namespaces/legacy/replicationcontrollers/bare":
        _obj("v1", "ReplicationController", "legacy", "bare", None),
    f"/api/v1/namespaces/shop/pods/{LONG_POD}":
        _obj("v1", "Pod", "shop", LONG_POD, ("ReplicaSet", "long-rs")),
    "/apis/apps/v1/namespaces/shop/replicasets/long-rs":
        _obj("apps/v1", "ReplicaSet", "shop", "long-rs",
             ("Deployment", "a-very-long-deployment-name-that-gets-truncated-by-the-apiserver")),
}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        _Handler.requests.append(path)
        body = RECORDED.get(path)
        status = 200 if body is not None else 404
        missing = {"kind": "Status", "apiVersion": "v1", "code": 404, "reason": "NotFound"}
        payload = json.dumps(body or missing).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _lookup(host: str, **kwargs: float) -> KubernetesOwnerLookup:
    from kubernetes import client

    configuration = client.Configuration(host=host)
    return KubernetesOwnerLookup(client.ApiClient(configuration), **kwargs)


def test_in_process_api_server_resolves_controllers(api_server: str) -> None:
    lookup = _lookup(api_server)
    assert lookup.owner_of("shop", "web-6d4cf56db6-x7k2p") == ("Deployment", "web")
    assert lookup.owner_of("ops", "nightly-29123460-bq2xz") == ("CronJob", "nightly")
    assert lookup.owner_of("shop", "debug") == ("Pod", "debug")
    # OpenShift: a DeploymentConfig's pods belong to it, a bare ReplicationController's to that.
    assert lookup.owner_of("legacy", "web-1-x7k2p") == ("DeploymentConfig", "web")
    assert lookup.owner_of("legacy", "bare-q2x4z") == ("ReplicationController", "bare")
    assert lookup.owner_of("shop", "gone-pod") is None  # 404: naming takes over


def test_in_process_api_server_fixes_what_naming_gets_wrong(api_server: str) -> None:
    cached = CachedOwnerLookup(_lookup(api_server).owner_of, ttl_s=60)
    enricher = Enricher(cluster="prod", lookup=cached)
    line = json.dumps({
        "output": "shell", "priority": "Warning", "rule": "Terminal shell in container",
        "time": "2026-01-01T00:00:00.000000000Z", "source": "syscall",
        "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": LONG_POD},
    })  # fmt: skip
    alert = parse_alert(line, "test:1")
    (event,) = enricher.enrich([(alert, 0), (alert, 0)][:1])
    assert (event.workload.kind, event.workload.name) == (
        "Deployment",
        "a-very-long-deployment-name-that-gets-truncated-by-the-apiserver",
    )
    enricher.enrich([(alert, 0)])
    assert _Handler.requests.count(f"/api/v1/namespaces/shop/pods/{LONG_POD}") == 1  # TTL cache


def test_unreachable_api_backs_off_instead_of_stalling() -> None:
    now = [0.0]
    lookup = _lookup("http://127.0.0.1:9", timeout_s=0.5, backoff_s=30, clock=lambda: now[0])
    assert lookup.owner_of("shop", "web-6d4cf56db6-x7k2p") is None
    assert lookup._quiet_until == 30  # no second attempt until the back-off ends
    assert lookup.owner_of("shop", "other") is None
