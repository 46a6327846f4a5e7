"""`scan --cluster`: the official kubernetes client against an in-process API server.

No real API server runs here. A small HTTP server in the test process serves the recorded
objects in data/cluster/objects.json the way an API server lists them (items without kind,
pages with ``limit``/``continue``, ``fieldSelector`` on names, Status objects for errors), and
the client reaches it through a kubeconfig with a bearer token. kmock was tried first, but
its request parser fails on cluster-scoped lists such as ``/api/v1/namespaces`` (HTTP 500).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kubesentinel.cli import main
from kubesentinel.static import cluster
from kubesentinel.static.cluster import RESOURCES, kinds_to_read, read_cluster

RECORDED = Path(__file__).parent / "data" / "cluster" / "objects.json"
CONTEXT = "recorded"
TOKEN = "not-a-secret"  # noqa: S105 - a test token for the loopback server
ALL_KINDS = frozenset(RESOURCES)
_LIST_PATH = re.compile(r"^/(?:api/(v1)|apis/([^/]+/[^/]+))(?:/namespaces/([^/]+))?/([^/]+)$")


class ApiServer:
    """Serves list requests for the recorded objects on a loopback port, in a thread."""

    def __init__(self, forbidden: tuple[str, ...] = ()) -> None:
        self.forbidden = forbidden
        self.requests: list[str] = []
        self.records: list[dict[str, Any]] = json.loads(RECORDED.read_text())
        served = {f"{r.group_version}/{r.plural}" for r in RESOURCES.values()}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                url = urlsplit(self.path)
                match = _LIST_PATH.match(url.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, _status(401, "Unauthorized"))
                if match is None:
                    return self._send(404, _status(404, "the server could not find it"))
                group_version = match.group(1) or match.group(2)
                namespace, plural = match.group(3), match.group(4)
                resource = f"{group_version}/{plural}"
                if resource not in served:
                    return self._send(404, _status(404, "the server could not find it"))
                if resource in owner.forbidden:
                    message = f'{plural} is forbidden: User "reader" cannot list resource'
                    return self._send(403, _status(403, message))
                query = parse_qs(url.query)
                self._send(200, owner.page(resource, namespace, query))

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def page(self, resource: str, namespace: str | None, query: dict[str, list[str]]) -> Any:
        items = [
            {k: v for k, v in r["object"].items() if k not in ("apiVersion", "kind")}
            for r in self.records
            if r["resource"] == resource
            and (namespace is None or r["object"]["metadata"].get("namespace") == namespace)
        ]
        for selector in query.get("fieldSelector", []):
            name = selector.removeprefix("metadata.name=")
            items = [i for i in items if i["metadata"]["name"] == name]
        start = int(query.get("continue", ["0"])[0])
        limit = int(query.get("limit", ["500"])[0])
        metadata: dict[str, Any] = {"resourceVersion": "48900"}
        if start + limit < len(items):
            metadata["continue"] = str(start + limit)
        kind = resource.rsplit("/", 1)[1]
        return {"kind": f"{kind}List", "apiVersion": resource.rsplit("/", 1)[0],
                "metadata": metadata, "items": items[start : start + limit]}  # fmt: skip

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "code": code}  # fmt: skip


def _kubeconfig(path: Path, server: str, context: str = CONTEXT) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: recorded\n  cluster: {{server: '{server}'}}\n"
        "users:\n- name: reader\n  user: {token: '" + TOKEN + "'}\n"
        f"contexts:\n- name: {context}\n  context: {{cluster: recorded, user: reader}}\n"
        f"current-context: {context}\n"
    )
    return path


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with ApiServer(forbidden=("rbac.authorization.k8s.io/v1/clusterroles",)) as server:
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config", server.url)))
        yield server


def _json_scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(["scan", "--cluster", "--format", "json", "--severity-threshold", "low", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_scan_cluster_against_in_process_api_server_finds_issues_on_live_objects(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, err = _json_scan(capsys)
    assert code == 1
    files = {(f["rule_id"], f["file"]) for f in report["findings"]}
    assert ("KS-0001", f"cluster://{CONTEXT}/prod/Deployment/web") in files
    assert ("KS-0004", f"cluster://{CONTEXT}/prod/Deployment/web") in files
    assert ("KS-0002", f"cluster://{CONTEXT}/prod/Pod/debug") in files
    assert ("KS-0003", f"cluster://{CONTEXT}/other/Deployment/api") in files
    assert ("KS-0056", f"cluster://{CONTEXT}/prod/Service/web") in files
    # The ReplicaSet and Pod run by the Deployment are left to it, with a notice.
    names = {f["object"]["name"] for f in report["findings"]}
    assert "web-5d8f7c9b6d" not in names
    assert "web-5d8f7c9b6d-x7k2p" not in names
    assert any("run by a scanned controller" in n["message"] for n in report["notices"])
    # A 403 on one kind is a warning naming it; everything else was scanned.
    assert "KS-W040" in err
    assert "cannot list ClusterRole objects (HTTP 403" in err


def test_scan_cluster_against_in_process_api_server_strips_server_bookkeeping(
    api: ApiServer,
) -> None:
    batch = read_cluster(ALL_KINDS)
    web = next(o for o in batch.objects if o.kind == "Deployment" and o.name == "web")
    assert web.api_version == "apps/v1"
    assert web.body["kind"] == "Deployment"
    assert "status" not in web.body
    metadata = web.body["metadata"]
    assert not {"managedFields", "resourceVersion", "uid", "generation"} & set(metadata)
    assert metadata["annotations"] == {"deployment.kubernetes.io/revision": "3"}
    assert web.source.file == f"cluster://{CONTEXT}/prod/Deployment/web"
    assert [w.code for w in batch.warnings] == ["KS-W040"]


def test_scan_cluster_against_in_process_api_server_one_namespace(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, err = _json_scan(capsys, "--namespace", "prod")
    assert code == 1
    namespaces = {f["object"]["namespace"] for f in report["findings"]}
    assert namespaces == {"prod", None}
    # The only object outside the namespace is the Namespace "prod" itself.
    outside = {(f["object"]["kind"], f["object"]["name"]) for f in report["findings"]
               if f["object"]["namespace"] is None}  # fmt: skip
    assert outside == {("Namespace", "prod")}
    assert "KS-W040" not in err  # cluster-wide kinds are not listed for one namespace
    batch = read_cluster(ALL_KINDS, namespace="prod")
    assert [o.name for o in batch.objects if o.kind == "Namespace"] == ["prod"]


def test_scan_cluster_against_in_process_api_server_with_a_named_context(
    api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(tmp_path / "two", api.url, context="second")
    monkeypatch.setenv("KUBECONFIG", str(config))
    batch = read_cluster(ALL_KINDS, context="second")
    assert batch.files == ["cluster://second"]
    assert any(o.name == "debug" for o in batch.objects)


def test_cluster_context_missing_from_kubeconfig_is_exit_2(
    api: ApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "--cluster", "--context", "nope"]) == 2
    err = capsys.readouterr().err
    assert "KS-E042" in err
    assert "no context 'nope' in the kubeconfig" in err


def test_cluster_without_kubeconfig_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    assert main(["scan", "--cluster"]) == 2
    err = capsys.readouterr().err
    assert "KS-E042" in err
    assert "cannot load a kubeconfig" in err


def test_cluster_unreachable_api_server_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = _kubeconfig(tmp_path / "config", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert main(["scan", "--cluster"]) == 2
    err = capsys.readouterr().err
    assert "KS-E043" in err
    assert f"cannot read from the API server at http://127.0.0.1:{port}" in err


def test_kinds_read_are_the_rules_targets_plus_namespaces_and_never_secrets() -> None:
    kinds = kinds_to_read(frozenset({"Pod", "Secret", "ClusterRole", "CustomThing"}))
    assert kinds == ["Pod", "Namespace", "ClusterRole"]
    assert "Secret" not in RESOURCES


def test_scan_cluster_against_in_process_api_server_follows_continue_tokens(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "PAGE_SIZE", 1)
    batch = read_cluster(frozenset({"Pod"}))
    # Both pods: with ReplicaSets not read, the owned pod is the only place its spec is seen.
    assert sorted(o.name for o in batch.objects if o.kind == "Pod") == [
        "debug",
        "web-5d8f7c9b6d-x7k2p",
    ]
    pod_requests = [r for r in api.requests if r.startswith("/api/v1/pods")]
    assert pod_requests == ["/api/v1/pods?limit=1", "/api/v1/pods?limit=1&continue=1"]


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "markdown"])
def test_scan_cluster_against_in_process_api_server_renders_in_every_format(
    api: ApiServer, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "--cluster", "--format", fmt]) == 1
    out = capsys.readouterr().out
    assert f"cluster://{CONTEXT}/prod/Deployment/web" in out
